"""Time series for the bulletin: per-zone index of the current year against its reference envelope,
and the territory-wide VHI timeline of the index page."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .archive import Archive
from .blocks import read_window
from .config import Config
from .dekads import Dekad, dekad_range
from .indicators import CLASS_NAMES, CONVENTIONS, VAI_BREAKS, classify
from .zones import Zone, zone_masks


@dataclass
class ZoneSeries:
    """One zone, one index: the current year's dekad means and the min/mean/max of past years."""

    zone: str
    index: str
    dekads: list[int] = field(default_factory=list)  # dekad of the year, 1..36
    current: list[float] = field(default_factory=list)
    env_min: list[float] = field(default_factory=list)
    env_mean: list[float] = field(default_factory=list)
    env_max: list[float] = field(default_factory=list)


def _means(path, masks: dict[str, np.ndarray]) -> dict[str, float]:
    v = read_window(path, None, (1,))[0]
    out = {}
    for name, m in masks.items():
        sel = v[m]
        sel = sel[~np.isnan(sel)]
        out[name] = float(sel.mean()) if sel.size else np.nan
    return out


def zone_series(cfg: Config, upto: Dekad, index: str, zones: list[Zone], sensors: tuple[str, ...] = ("MODIS", "VIIRS"),
                reference_years: list[int] | None = None) -> list[ZoneSeries]:
    """Zone means of the global ``index`` composites for every dekad of ``upto``'s year up to it, and
    the envelope over ``reference_years`` (default: every earlier year in the archive)."""
    arch = Archive(cfg.paths.archive)
    masks = zone_masks(zones, cfg.global_chain.grid)
    out = {z.name: ZoneSeries(z.name, index) for z in zones}
    for d in dekad_range(Dekad(upto.year, 1, 1), Dekad(upto.year, 12, 3)):
        hist = arch.global_history(index, d, sensors)
        years = [y for y in (reference_years or sorted(hist)) if y < upto.year and y in hist]
        past = [_means(hist[y], masks) for y in years]
        cur = _means(hist[upto.year], masks) if d <= upto and upto.year in hist else {}
        k = (d.month - 1) * 3 + d.index
        for name, s in out.items():
            vals = np.array([p[name] for p in past], dtype=float)
            vals = vals[~np.isnan(vals)]
            s.dekads.append(k)
            s.current.append(cur.get(name, np.nan))
            s.env_min.append(float(vals.min()) if vals.size else np.nan)
            s.env_mean.append(float(vals.mean()) if vals.size else np.nan)
            s.env_max.append(float(vals.max()) if vals.size else np.nan)
    return list(out.values())


def vhi_timeline(cfg: Config) -> list[dict[str, object]]:
    """Territory-wide VHI of every dekad in the archive (:func:`indicator_timeline`)."""
    return indicator_timeline(cfg, "VHI")


def indicator_timeline(cfg: Config, name: str = "VHI") -> list[dict[str, object]]:
    """Territory-wide ``name`` (VHI, VCI: global; VAI: every tile's pixels pooled) of every dekad in the
    archive: mean (``value`` and ``name``), share in drought (the convention's drought classes: Moderate or
    worse for EO4DM and VAI, VHI < 40 for Kogan), status, class shares."""

    arch = Archive(cfg.paths.archive)
    if name == "VAI":
        breaks = VAI_BREAKS
        files = sorted((arch.root / "indicators" / "local").glob("*/dekad/VAI_*.tif"))
    else:
        breaks = CONVENTIONS[cfg.indicators.convention].vhi_breaks
        folder = arch.root / "indicators" / "global" / "dekad"
        files = sorted(folder.glob(f"{name}_*.tif")) if folder.is_dir() else []
    by: dict[Dekad, tuple[list[np.ndarray], list[str]]] = {}
    for p in files:
        label = p.stem.split("_")[-1]  # YYYYMMDn
        d = Dekad(int(label[:4]), int(label[4:6]), int(label[7]))
        v, st = territory_values(p)
        vals, sts = by.setdefault(d, ([], []))
        vals.append(v.ravel())
        sts.append(st)
    rows = []
    for d, (vals, sts) in sorted(by.items()):
        fig = territory_figures(np.concatenate(vals), breaks)
        st = "provisional" if "provisional" in sts else sts[0]
        rows.append({"dekad": d.label, "value": fig["mean"], name: fig["mean"], "status": st, **fig})
    return rows


MAX_READ = 1024  # px per side read of a territory-wide indicator (a decimated read beyond: 10 m tiles, 4884 px grids)


def territory_values(path) -> tuple[np.ndarray, str]:
    """An indicator file's values as read for territory-wide figures (at most ``MAX_READ`` px a side) and
    its STATUS tag: the one read behind the bulletin's headline and the index page, so their figures agree."""
    import rasterio

    with rasterio.open(path) as src:
        v = src.read(1, out_shape=(min(src.height, MAX_READ), min(src.width, MAX_READ))).astype(np.float32)
        return v.ravel(), src.tags().get("STATUS", "")


def territory_figures(v: np.ndarray, breaks: tuple[float, ...]) -> dict[str, float]:
    """Territory-wide figures of indicator values (NaN at sea: land only), unrounded: ``mean``,
    ``% in drought`` (the scheme's drought classes: Moderate or worse for EO4DM and VAI, VHI < 40 for Kogan)
    and ``% <class>`` for each class. Round only to display."""
    codes = classify(v, breaks)
    valid = codes[codes > 0]
    names = getattr(breaks, "names", CLASS_NAMES)
    if not valid.size:
        return {"mean": np.nan, "% in drought": np.nan, **{f"% {n}": np.nan for n in names}}
    drought = getattr(breaks, "drought", 3)  # VAI_BREAKS: Moderate or worse (VAI <= -1, DOMAIN.md §1.7)
    return {"mean": float(np.nanmean(v)), "% in drought": 100 * float(np.mean(valid <= drought)),
            **{f"% {n}": 100 * float(np.mean(valid == i + 1)) for i, n in enumerate(names)}}
