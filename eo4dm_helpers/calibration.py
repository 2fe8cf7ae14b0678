"""Inter-sensor calibration: fit, store and apply ``reference = a·sensor + b`` between sensors.

Keeps the series comparable as MODIS ends and VIIRS / Sentinel-2 take over (design note §7: "calibration
radiométrique des indices issus de nouveaux produits"). On coincident dates and pixels:

- local chain (10 m tile grid): S2, L9, L7 against Landsat-8, NDVI and NDWI, from scenes preprocessed by
  the local engine (``chains.highres_scenes``) with the calibration switched OFF (DOMAIN.md §1.4 table
  is what is being re-estimated);
- global chain (~463 m grid): VIIRS against MODIS, same-day daily NDWI and LST (``chains.global_days``
  with both sensors' periods opened), DOMAIN.md §1.9.

Both ordinary least squares (y on x: the best predictor of the reference, but its slope is attenuated
by noise in the sensor's values) and reduced major axis (symmetric, for two instruments that both
measure with error) are fitted. Results go to ``<archive>/calibration/<sensor>_to_<reference>_<index>.json``
and :func:`calibration_for` turns them into the ``config.Calibration`` mapping the composites apply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import products as P
from .config import Calibration, Config, LocalChain, LocalTile, SensorPeriod
from .storage import write_text_atomic

LANDSAT_M = 30.0  # the Landsat pixel (DOMAIN.md §4.3): default comparison cell of the local chain
STAGE_ABOVE_PX = 2048 * 2048  # larger tiles are staged on disk scene by scene (bounded memory)
MIN_PAIRS = 30  # below this a regression says nothing (and one scene's pixels are not independent)
GOOD_R2, USABLE_R2 = 0.8, 0.6  # verdict thresholds (DOMAIN.md §1.9: NDWI 0.83 "direct", LST 0.44-0.55 "too different")
LOCAL_SENSORS = ("S2", "L7", "L8", "L9")
GLOBAL_SENSORS = ("MODIS", "VIIRS")
LOCAL_INDICES = ("NDVI", "NDWI")
GLOBAL_INDICES = ("NDWI", "LST")
CALIBRATED = ("S2", "L7", "L9")  # config.Calibration: coefficients to Landsat-8 (DOMAIN.md §1.4)
DEFAULT_PAIRS = "S2:L8,L9:L8,L7:L8,VIIRS:MODIS"
FOLDER = "calibration"
FORMAT_VERSION = 1

Method = Literal["ols", "rma"]
Level = Literal["good", "usable", "poor"]
Log = Callable[[str], None]


class CalibrationError(ValueError):
    """Too few or degenerate pairs, or an impossible sensor pair."""


# --------------------------------------------------------------------------------------------
# Regression
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """``y = slope·x + intercept`` and the RMSE of its residuals in y."""

    slope: float
    intercept: float
    rmse: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.slope * np.asarray(x) + self.intercept if isinstance(x, np.ndarray) else \
            self.slope * x + self.intercept

    @property
    def coefficients(self) -> tuple[float, float]:
        return (self.slope, self.intercept)


@dataclass(frozen=True)
class Fit:
    """OLS and RMA lines of y on x with the Pearson r, n finite pairs and x's 1st-99th percentile range."""

    ols: Line
    rma: Line
    r: float
    n: int
    x_range: tuple[float, float]

    @property
    def r2(self) -> float:
        return self.r * self.r

    def line(self, method: Method) -> Line:
        if method not in ("ols", "rma"):
            raise CalibrationError(f"method must be 'ols' or 'rma', got {method!r}")
        return self.ols if method == "ols" else self.rma


def fit(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float], min_n: int = MIN_PAIRS) -> Fit:
    """OLS and reduced-major-axis fits of ``y`` on ``x`` over the pairs where both are finite.

    OLS slope = r·sd(y)/sd(x); RMA slope = sign(r)·sd(y)/sd(x); both lines pass through the means.
    Raises :class:`CalibrationError` with fewer than ``min_n`` finite pairs or a constant variable.
    """
    xa, ya = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise CalibrationError(f"x and y differ in length ({xa.size} and {ya.size})")
    keep = np.isfinite(xa) & np.isfinite(ya)
    n = int(keep.sum())
    if n < max(min_n, 3):
        dropped = xa.size - n
        raise CalibrationError(f"only {n} finite pair(s) of {xa.size} ({dropped} with NaN or inf dropped): "
                               f"at least {max(min_n, 3)} are needed to fit")
    xa, ya = xa[keep], ya[keep]
    xm, ym = xa.mean(), ya.mean()
    dx, dy = xa - xm, ya - ym
    sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
    for name, ss, m in (("x", sxx, xm), ("y", syy, ym)):
        if ss <= (1e-12 * max(1.0, abs(m))) ** 2 * n:  # constant up to rounding: no line through it
            raise CalibrationError(f"{name} has zero variance (all {n} values ≈ {m:.6g}): no regression is defined")
    r = float(np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0))
    ratio = float(np.sqrt(syy / sxx))
    a_ols = sxy / sxx
    a_rma = (1.0 if r >= 0 else -1.0) * ratio

    def line(a: float) -> Line:
        b = float(ym - a * xm)
        return Line(float(a), b, float(np.sqrt(np.mean((ya - (a * xa + b)) ** 2))))

    lo, hi = np.percentile(xa, [1, 99])
    return Fit(line(a_ols), line(a_rma), r, n, (float(lo), float(hi)))


# --------------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    level: Level
    sentence: str


def level_of(r2: float) -> Level:
    """good (R² ≥ 0.8), usable (0.6 ≤ R² < 0.8), poor (R² < 0.6); R² = r·r, so compared to 1e-9."""
    return "good" if r2 >= GOOD_R2 - 1e-9 else "usable" if r2 >= USABLE_R2 - 1e-9 else "poor"


def quality(f: Fit, *, sensor: str = "sensor", reference: str = "reference", index: str = "",
            reference_years: Sequence[int] | None = None, min_years: int = 3,
            first_year: int | None = None) -> Verdict:
    """The verdict and one sentence for the report.

    For a poor LST fit the sentence says the TCI reference must be rebuilt from ``sensor`` alone
    (DOMAIN.md §1.9), that the chain already does so (``drought.global_indicators`` pools only the
    current LST sensor) once ``global_chain.lst_sensors`` names ``sensor``, and how many reference years
    ``sensor`` has (``reference_years``: years with its LST composites in the archive).
    """
    level = level_of(f.r2)
    a, b = f.rma.coefficients
    what = f"{sensor} vs {reference} {index}".strip()
    stats = f"R² {f.r2:.2f}, n {f.n:,}, RMSE {f.rma.rmse:.3g}"
    relation = f"{reference} ≈ {a:.3f}·{sensor} {'+' if b >= 0 else '−'} {abs(b):.3f} (RMA)"
    medium = sensor in GLOBAL_SENSORS and reference in GLOBAL_SENSORS
    if level == "good":
        s = f"{what}: good fit ({stats}), {relation}: the series can be spliced with these coefficients."
        if medium and index in ("NDWI", "NDVI"):
            shift = max(abs((a - 1.0) * v + b) for v in f.x_range)
            s += (f" As the EO4DM study found for NDWI (R² 0.83, a 1.01, b 0.03; DOMAIN.md §1.9), {sensor} can "
                  f"continue the {reference} record: the VCI reference pools both sensors uncalibrated, which "
                  f"shifts {index} by at most {shift:.3f} over the observed range.")
        return Verdict(level, s)
    if level == "usable":
        return Verdict(level, f"{what}: usable fit ({stats}), {relation}: the coefficients remove the bias but "
                              "leave scatter; apply them with care and refit with more coincident dates.")
    if index == "LST":
        years = sorted(set(reference_years or ()))
        have = f"the archive holds {sensor} LST composites for {len(years)} year(s)" + \
            (f" ({years[0]}-{years[-1]})" if years else "")
        enough = f"enough for indicators.reference.min_years = {min_years}" if len(years) >= min_years else \
            f"fewer than indicators.reference.min_years = {min_years}, so TCI and VHI are not produced until " \
            f"{sensor} LST composites of {min_years} years are in the archive"
        since = f" ({sensor} LST is available since {first_year})" if first_year else ""
        return Verdict(level, (
            f"{what}: poor fit ({stats}): {sensor} LST is too different from {reference} LST to splice the "
            f"series, even with calibration (DOMAIN.md §1.9). Rebuild the TCI reference from {sensor} alone: "
            f"the TCI reference already pools only the current LST sensor (drought.global_indicators uses "
            f"ref_sensors=(lst_sensor,)), so setting the parameter global_chain.lst_sensors to {sensor} from the "
            f"switch date (ending {reference} the day before) does it, while the NDWI record (VCI) keeps both "
            f"sensors. Reference years: {have}, {enough}{since}."))
    return Verdict(level, f"{what}: poor fit ({stats}): do not splice the series with these coefficients; "
                          "calibration_for keeps the parameters' coefficients for this sensor and index.")


# --------------------------------------------------------------------------------------------
# Coincident pixels
# --------------------------------------------------------------------------------------------
@dataclass
class Pairs:
    """Coincident valid pixels of ``sensor`` (x) and ``reference`` (y) for one index."""

    sensor: str
    reference: str
    index: str
    x: np.ndarray
    y: np.ndarray
    dates: list[tuple[date, date]] = field(default_factory=list)  # (sensor day, reference day) with pixels
    max_days: int = 0
    requested: tuple[date, date] | None = None
    notes: list[str] = field(default_factory=list)  # dropped scenes, days without partner...

    @property
    def n(self) -> int:
        return int(self.x.size)

    @property
    def period(self) -> tuple[date, date] | None:
        if not self.dates:
            return None
        days = [d for pair in self.dates for d in pair]
        return min(days), max(days)


def _day(v: date | str) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v))


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


def _sample(x: np.ndarray, y: np.ndarray, limit: int | None, *seed: object) -> tuple[np.ndarray, np.ndarray]:
    if limit is None or x.size <= limit:
        return x, y
    pick = np.sort(_rng(*seed).choice(x.size, limit, replace=False))
    return x[pick], y[pick]


def raw_chain(chain: LocalChain, sensors: tuple[SensorPeriod, ...] | None = None) -> LocalChain:
    """``chain`` without any calibration (and with ``sensors`` if given): what the fit must see."""
    changes: dict[str, Any] = {"calibration": {}}
    if "calibration_source" in {f.name for f in dataclasses.fields(chain)}:  # opt-in archive source, if wired
        changes["calibration_source"] = "parameters"
    if sensors is not None:
        changes["sensors"] = sensors
    return dataclasses.replace(chain, **changes)


def _local_period(cfg: Config, sensor: str) -> SensorPeriod:
    """The sensor's configured validity, else its catalog start (DOMAIN.md §4.1, §4.3)."""
    for s in cfg.local_chain.sensors:
        if s.name == sensor:
            return s
    return SensorPeriod(sensor, P.HIGH_RES[sensor][0].start)


def scene_dates(cfg: Config, sensor: str, start: date, end: date) -> list[date]:
    """Local dates (DOMAIN.md §3.4) of ``sensor``'s scenes in [start, end] within its validity period."""
    from .dekads import acquisition_day, acquisition_window
    from .local.scenes import list_scenes

    if cfg.paths.scenes is None:
        raise CalibrationError("paths.scenes is required: the pairs are read from the local scene store")
    period = _local_period(cfg, sensor)
    out = set()
    for prod in P.HIGH_RES[sensor]:
        lo, hi = acquisition_window(start, end, cfg.timezone, dating=prod.dating)  # local dates (DOMAIN.md §3.4)
        for s in list_scenes(cfg.paths.scenes, prod.collection, lo, hi):
            d = acquisition_day(s.time_start, cfg.timezone, dating=prod.dating)
            if start <= d <= end and period.covers(d):
                out.add(d)
    return sorted(out)


def match_dates(xs: Sequence[date], ys: Sequence[date], max_days: int) -> list[tuple[date, date]]:
    """For each date of ``xs``, the nearest date(s) of ``ys`` within ±``max_days`` (ties: all)."""
    out = []
    for dx in xs:
        near = [(abs((dy - dx).days), dy) for dy in ys if abs((dy - dx).days) <= max_days]
        if near:
            best = min(d for d, _ in near)
            out += [(dx, dy) for d, dy in sorted(near, key=lambda t: t[1]) if d == best]
    return out


def _day_scenes(cfg: Config, tile: LocalTile, sensor: str, day: date, land: Any, folder: Path | None,
                notes: list[str]) -> list:
    """``sensor``'s scenes of local date ``day`` preprocessed by ``chains.highres_scenes``, uncalibrated."""
    from .chains import highres_scenes
    from .dekads import Dekad

    sub = dataclasses.replace(cfg, local_chain=raw_chain(cfg.local_chain, (SensorPeriod(sensor, day, day),)))
    got, avail = highres_scenes(sub, tile, Dekad.containing(day), (sensor,), land=land, folder=folder)
    notes.extend(f"{d.product} {d.scene_id} dropped: {d.reason}" for d in avail.dropped)
    return got


def _blocks(v: np.ndarray, block: int) -> np.ndarray:
    """(rows, cols, block·block) view of the whole ``block`` × ``block`` cells of ``v`` (ragged edge dropped)."""
    h, w = v.shape[0] // block * block, v.shape[1] // block * block
    return v[:h, :w].reshape(h // block, block, w // block, block).swapaxes(1, 2).reshape(h // block, w // block, -1)


def _scene_pixels(sx: Any, sy: Any, indices: Sequence[str], shape: tuple[int, int], block: int
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Values valid in both scenes (``Processed`` or ``Staged``, read window by window), per index; with
    ``block`` > 1, means over ``block`` × ``block`` cells whose every pixel is valid in both."""
    from .local.windows import WINDOW, iter_windows

    parts: dict[str, tuple[list, list]] = {idx: ([], []) for idx in indices}
    for win in iter_windows(shape, max(block, WINDOW // block * block)):  # windows start on cell corners
        vx, vy = sx.read(list(indices), win), sy.read(list(indices), win)
        for idx in indices:
            a, b = vx[idx], vy[idx]
            if block > 1:
                a, b = _blocks(a, block), _blocks(b, block)
                k = (np.isfinite(a) & np.isfinite(b)).all(axis=-1)
                a, b = a[k].mean(axis=-1), b[k].mean(axis=-1)
            else:
                k = np.isfinite(a) & np.isfinite(b)
                a, b = a[k], b[k]
            parts[idx][0].append(a)
            parts[idx][1].append(b)
    return {idx: (np.concatenate(a), np.concatenate(b)) for idx, (a, b) in parts.items()}


def _tile_pairs(cfg: Config, t: LocalTile, sensor: str, reference: str, matched: list[tuple[date, date]],
                indices: Sequence[str], cell: int, max_per_scene: int | None, stage: Path | None,
                found: dict[str, tuple[list, list, list]], notes: list[str], log: Log) -> None:
    """Add the pairs of tile ``t`` to ``found``; each date's scenes are preprocessed once and dropped
    (staged files removed) after their last matched date pair."""
    from .local.land import LandMask
    from .local.preprocess import land_mask

    root = cfg.paths.scenes
    assert root is not None
    land: LandMask | np.ndarray = LandMask.staged(root, t.grid, stage / f"land_{t.id}.tif") \
        if stage is not None else land_mask(root, t.grid)
    last_use: dict[tuple[str, date], int] = {}
    for i, (dx, dy) in enumerate(matched):
        last_use[(sensor, dx)] = last_use[(reference, dy)] = i
    cache: dict[tuple[str, date], list] = {}
    for i, (dx, dy) in enumerate(matched):
        for key in ((sensor, dx), (reference, dy)):
            if key not in cache:
                cache[key] = _day_scenes(cfg, t, key[0], key[1], land, stage, notes)
        for sx in cache[(sensor, dx)]:
            for sy in cache[(reference, dy)]:
                counts = []
                for idx, (px, py) in _scene_pixels(sx, sy, indices, (t.grid.height, t.grid.width), cell).items():
                    px, py = _sample(px, py, max_per_scene, sx.scene_id, sy.scene_id, idx)
                    counts.append(f"{px.size} {idx}")
                    if px.size:
                        found[idx][0].append(px.astype(np.float32))
                        found[idx][1].append(py.astype(np.float32))
                        found[idx][2].append((dx, dy))
                log(f"{t.id}: {sensor} {dx} ({sx.scene_id}) x {reference} {dy} ({sy.scene_id}): "
                    f"{', '.join(counts)} pairs")
        for key in [k for k, last in last_use.items() if last <= i and k in cache]:
            for obj in cache.pop(key):  # staged scenes no longer needed are removed
                path = getattr(obj, "path", None)
                if path is not None:
                    Path(path).unlink(missing_ok=True)


def local_pairs(cfg: Config, sensor: str, reference: str, start: date | str, end: date | str, *,
                indices: Sequence[str] = LOCAL_INDICES, days: int = 0, tile: str | None = None,
                block: int | None = None, max_per_scene: int | None = 200_000, folder: Path | None = None,
                log: Log | None = None) -> dict[str, Pairs]:
    """Coincident valid pixels of two high-resolution sensors on the tile grid(s), per index.

    Scenes are paired by local date: each ``sensor`` date with the nearest ``reference`` date within
    ±``days``. Only the scenes of paired dates are preprocessed, each once, by ``chains.highres_scenes``
    with the calibration off (DOMAIN.md §1.4 chain otherwise unchanged). Values are compared as means of
    ``block`` × ``block`` tile pixels valid in both scenes (default: the 30 m Landsat pixel, 3 on a 10 m
    tile), which also damps per-pixel noise and misregistration; ``max_per_scene`` caps the values per
    scene pair (deterministic sample); ``folder`` stages scenes on disk (bounded memory on 10 m tiles).
    """
    start, end = _day(start), _day(end)
    for s in (sensor, reference):
        if s not in LOCAL_SENSORS:
            raise CalibrationError(f"{s!r} is not a high-resolution sensor ({', '.join(LOCAL_SENSORS)})")
    if sensor == reference:
        raise CalibrationError(f"a sensor cannot be calibrated against itself ({sensor})")
    if days < 0 or (block is not None and block < 1):
        raise CalibrationError(f"days must be >= 0 and block >= 1 (got {days}, {block})")
    tiles = [t for t in cfg.local_chain.tiles if tile in (None, t.id)]
    if not tiles:
        raise CalibrationError(f"no local_chain tile {tile!r}")
    log = log or (lambda m: None)
    found = {idx: ([], [], []) for idx in indices}  # x parts, y parts, date pairs
    notes: list[str] = []
    xs, ys = scene_dates(cfg, sensor, start, end), scene_dates(cfg, reference, start, end)
    matched = match_dates(xs, ys, days)
    if xs and ys and not matched:
        notes.append(f"no {reference} scene within ±{days} day(s) of any of the {len(xs)} {sensor} date(s)")
    for t in tiles:
        with contextlib.ExitStack() as stack:
            stage = Path(folder) if folder is not None else None
            if stage is None and t.grid.width * t.grid.height > STAGE_ABOVE_PX:  # a 10 m tile: on disk
                Path(cfg.paths.output).mkdir(parents=True, exist_ok=True)
                stage = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="calibration-",
                                                                             dir=cfg.paths.output)))
            cell = block or max(1, round(LANDSAT_M / t.grid.resolution))
            _tile_pairs(cfg, t, sensor, reference, matched, indices, cell, max_per_scene, stage, found, notes, log)
    out = {}
    for idx in indices:
        xp, yp, dp = found[idx]
        p = Pairs(sensor, reference, idx, np.concatenate(xp) if xp else np.empty(0, np.float32),
                  np.concatenate(yp) if yp else np.empty(0, np.float32), sorted(set(dp)), days, (start, end),
                  list(notes))
        out[idx] = p
    return out


def _medium_cfg(cfg: Config, sensor: str) -> Config:
    """``cfg`` with NDWI and LST both from ``sensor`` since its catalog start (DOMAIN.md §4.4, §4.5)."""
    first = max(P.MEDIUM_RES_NDWI[sensor][0].start, min(p.start for p in P.MEDIUM_RES_LST[sensor]))
    period = (SensorPeriod(sensor, first),)
    gc = dataclasses.replace(cfg.global_chain, ndwi_sensors=period, lst_sensors=period)
    return dataclasses.replace(cfg, global_chain=gc)


def global_pairs(cfg: Config, start: date | str, end: date | str, *, sensor: str = "VIIRS",
                 reference: str = "MODIS", indices: Sequence[str] = GLOBAL_INDICES,
                 max_per_day: int | None = 50_000, chunk_days: int = 16, log: Log | None = None) -> dict[str, Pairs]:
    """Same-day valid pixels of the two medium-resolution sensors' daily products on the global grid.

    Each sensor's days come from ``chains.global_days`` with its NDWI and LST both from that sensor
    (QA masks, common NDWI ∩ LST mask, daily NaN-score rule of DOMAIN.md §1.3 unchanged), read ``chunk_days``
    at a time; ``max_per_day`` caps the pixels kept per day (deterministic sample; bounded memory over years).
    """
    from .chains import global_days
    from .local.preprocess import land_mask

    start, end = _day(start), _day(end)
    if {sensor, reference} != set(GLOBAL_SENSORS):
        raise CalibrationError(f"the global chain pairs VIIRS with MODIS, got {sensor} and {reference}")
    if cfg.paths.scenes is None:
        raise CalibrationError("paths.scenes is required: the pairs are read from the local scene store")
    log = log or (lambda m: None)
    grid = cfg.global_chain.grid
    land = land_mask(cfg.paths.scenes, grid)
    cx, cy = _medium_cfg(cfg, sensor), _medium_cfg(cfg, reference)
    found = {idx: ([], [], []) for idx in indices}
    notes: list[str] = []
    a = start
    while a <= end:
        b = min(end, a + timedelta(days=chunk_days - 1))
        dx, ax = global_days(cx, a, b, land)
        dy, ay = (global_days(cy, a, b, land) if dx else ([], None))
        for av in (ax, ay):
            if av is not None:
                notes.extend(f"{d.product} {d.scene_id} dropped: {d.reason}" for d in av.dropped)
        by_day = {p.day: p for p in dy}
        for px in dx:
            py = by_day.get(px.day)
            if py is None:
                continue
            counts = []
            for idx in indices:
                if idx not in px.values or idx not in py.values:
                    continue
                vx, vy = px.values[idx], py.values[idx]
                k = np.isfinite(vx) & np.isfinite(vy)
                sx, sy = _sample(vx[k], vy[k], max_per_day, px.day, idx)
                counts.append(f"{sx.size} {idx}")
                if sx.size:
                    found[idx][0].append(sx.astype(np.float32))
                    found[idx][1].append(sy.astype(np.float32))
                    found[idx][2].append((px.day, py.day))
            log(f"{px.day}: {sensor} x {reference}: {', '.join(counts)} pairs")
        a = b + timedelta(days=1)
    return {idx: Pairs(sensor, reference, idx,
                       np.concatenate(found[idx][0]) if found[idx][0] else np.empty(0, np.float32),
                       np.concatenate(found[idx][1]) if found[idx][1] else np.empty(0, np.float32),
                       sorted(set(found[idx][2])), 0, (start, end), list(notes)) for idx in indices}


def pairs(cfg: Config, sensor: str, reference: str, start: date | str, end: date | str, *,
          indices: Sequence[str] | None = None, days: int = 0, **kw: Any) -> dict[str, Pairs]:
    """Coincident valid pixels of ``sensor`` and ``reference`` per index: the local chain's S2/L7/L9 vs
    L8 (:func:`local_pairs`) or the global chain's VIIRS vs MODIS, same day (:func:`global_pairs`)."""
    if sensor in GLOBAL_SENSORS and reference in GLOBAL_SENSORS:
        if days:
            raise CalibrationError("VIIRS vs MODIS pairs daily products of the same day: days must be 0")
        for unused in ("tile", "folder", "block"):  # the global chain: one ~463 m grid, held in memory
            kw.pop(unused, None)
        if "max_per_scene" in kw:
            kw["max_per_day"] = kw.pop("max_per_scene")
        return global_pairs(cfg, start, end, sensor=sensor, reference=reference,
                            indices=tuple(indices or GLOBAL_INDICES), **kw)
    return local_pairs(cfg, sensor, reference, start, end, indices=tuple(indices or LOCAL_INDICES), days=days, **kw)


def parse_pairs(text: str, days: int = 0) -> list[tuple[str, str, int]]:
    """``"S2:L8,L9:L8:8,VIIRS:MODIS"`` → [(sensor, reference, ±days)]; a third field overrides ``days``."""
    out = []
    for item in (s.strip() for s in str(text).split(",")):
        if not item:
            continue
        parts = [p.strip() for p in item.split(":")]
        if len(parts) not in (2, 3):
            raise CalibrationError(f"pair {item!r}: expected SENSOR:REFERENCE or SENSOR:REFERENCE:DAYS")
        s, r = parts[0].upper(), parts[1].upper()
        local = s in LOCAL_SENSORS and r in LOCAL_SENSORS
        medium = s in GLOBAL_SENSORS and r in GLOBAL_SENSORS
        if not (local or medium) or s == r:
            raise CalibrationError(f"pair {item!r}: pair two different sensors of the same chain "
                                   f"({', '.join(LOCAL_SENSORS)} or {', '.join(GLOBAL_SENSORS)})")
        try:
            d = int(parts[2]) if len(parts) == 3 else (0 if medium else days)
        except ValueError:
            raise CalibrationError(f"pair {item!r}: days must be an integer") from None
        out.append((s, r, d))
    return out


# --------------------------------------------------------------------------------------------
# Results and the archive
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    """One stored calibration: the fit, which line is applied, its verdict and provenance."""

    sensor: str
    reference: str
    index: str
    fit: Fit
    verdict: Verdict
    method: Method = "rma"
    period: tuple[date, date] | None = None  # first and last date of the coincident scenes
    requested: tuple[date, date] | None = None
    scene_pairs: int = 0
    max_days: int = 0
    fitted: str = ""  # ISO time (UTC) of the fit

    @property
    def coefficients(self) -> tuple[float, float]:
        """(a, b) of the applied line: reference = a·sensor + b."""
        return self.fit.line(self.method).coefficients

    def to_json(self) -> dict[str, Any]:
        f = self.fit
        a, b = self.coefficients

        def span(p: tuple[date, date] | None) -> dict[str, str] | None:
            return {"start": p[0].isoformat(), "end": p[1].isoformat()} if p else None

        return {
            "version": FORMAT_VERSION, "sensor": self.sensor, "reference": self.reference, "index": self.index,
            "relation": f"{self.reference} = a * {self.sensor} + b", "method": self.method, "a": a, "b": b,
            "r2": f.r2, "r": f.r, "n": f.n,
            "ols": {"a": f.ols.slope, "b": f.ols.intercept, "rmse": f.ols.rmse},
            "rma": {"a": f.rma.slope, "b": f.rma.intercept, "rmse": f.rma.rmse},
            "x_range": list(f.x_range), "period": span(self.period), "requested": span(self.requested),
            "scene_pairs": self.scene_pairs, "max_days": self.max_days,
            "quality": self.verdict.level, "note": self.verdict.sentence, "fitted": self.fitted,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Result:
        def span(v: dict[str, str] | None) -> tuple[date, date] | None:
            return (date.fromisoformat(v["start"]), date.fromisoformat(v["end"])) if v else None

        f = Fit(Line(d["ols"]["a"], d["ols"]["b"], d["ols"]["rmse"]),
                Line(d["rma"]["a"], d["rma"]["b"], d["rma"]["rmse"]), float(d["r"]), int(d["n"]),
                tuple(d.get("x_range", (float("nan"), float("nan")))))  # type: ignore[arg-type]
        return cls(d["sensor"], d["reference"], d["index"], f, Verdict(d["quality"], d.get("note", "")),
                   d.get("method", "rma"), span(d.get("period")), span(d.get("requested")),
                   int(d.get("scene_pairs", 0)), int(d.get("max_days", 0)), d.get("fitted", ""))


def lst_reference_years(archive_root: Path, sensor: str) -> list[int]:
    """Years with at least one ``sensor`` LST dekad composite in the archive (what TCI can pool)."""
    folder = Path(archive_root) / "composites" / "global" / "dekad"
    years = {int(p.name.split("_")[2][:4]) for p in folder.glob(f"{sensor}_LST_*_COMPD*.tif")} \
        if folder.is_dir() else set()
    return sorted(years)


def assess(p: Pairs, cfg: Config | None = None, *, method: Method = "rma", min_n: int = MIN_PAIRS) -> Result:
    """Fit ``p`` and judge it (the LST verdict counts the sensor's reference years in ``cfg``'s archive)."""
    f = fit(p.x, p.y, min_n)
    years, min_years, first = None, 3, None
    if p.index == "LST":
        first = min(q.start for q in P.MEDIUM_RES_LST.get(p.sensor, ())).year if p.sensor in P.MEDIUM_RES_LST \
            else None
        if cfg is not None:
            years = lst_reference_years(cfg.paths.archive, p.sensor)
            min_years = cfg.indicators.reference.min_years
    v = quality(f, sensor=p.sensor, reference=p.reference, index=p.index, reference_years=years,
                min_years=min_years, first_year=first)
    gap = max((abs((dy - dx).days) for dx, dy in p.dates), default=0)
    if gap:  # R² does not see a surface that changed between the two dates
        v = Verdict(v.level, f"{v.sentence} The scenes are paired up to {gap} day(s) apart: surface change "
                             "between the dates adds scatter and can bias the coefficients; prefer same-day pairs.")
    return Result(p.sensor, p.reference, p.index, f, v, method, p.period, p.requested, len(p.dates), p.max_days,
                  datetime.now(UTC).isoformat(timespec="seconds"))


def calibration_path(archive_root: Path, sensor: str, reference: str, index: str) -> Path:
    return Path(archive_root) / FOLDER / f"{sensor}_to_{reference}_{index}.json"


def store(archive_root: Path, result: Result) -> Path:
    """Write ``result`` atomically to ``<archive>/calibration/<sensor>_to_<reference>_<index>.json``."""
    from . import runs
    from .storage import archive_lock

    path = calibration_path(archive_root, result.sensor, result.reference, result.index)
    with archive_lock(archive_root, runs.current()[1]):  # a notebook run by hand never races the routine
        return write_text_atomic(path, json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n")


def load(archive_root: Path, sensor: str, reference: str, index: str) -> Result | None:
    path = calibration_path(archive_root, sensor, reference, index)
    if not path.is_file():
        return None
    try:
        return Result.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"{path}: unreadable calibration record ({exc.__class__.__name__}: {exc})") from None


def load_all(archive_root: Path) -> list[Result]:
    folder = Path(archive_root) / FOLDER
    out = []
    for p in sorted(folder.glob("*_to_*_*.json")) if folder.is_dir() else []:
        s, _, rest = p.stem.partition("_to_")
        r, _, idx = rest.partition("_")
        got = load(archive_root, s, r, idx)
        if got is not None:
            out.append(got)
    return out


def calibration_for(cfg: Config, archive_root: Path | None = None, *,
                    accept: Iterable[Level] = ("good", "usable")) -> dict[str, Calibration]:
    """The ``local_chain.calibration`` mapping with the archive's fitted coefficients to L8 where present.

    Per sensor (S2, L7, L9) and index, a stored fit whose verdict is in ``accept`` replaces the
    parameters' coefficients (DOMAIN.md §1.4 table); a poor fit does not. An index with neither is
    left uncalibrated (1, 0) when the other index has coefficients.
    """
    root = Path(archive_root) if archive_root is not None else cfg.paths.archive
    ok = set(accept)
    out = {}
    for sensor in CALIBRATED:
        base = cfg.local_chain.calibration.get(sensor)
        coeffs: dict[str, tuple[float, float] | None] = {"ndwi": base.ndwi if base else None,
                                                         "ndvi": base.ndvi if base else None}
        fitted = False
        for idx in ("NDWI", "NDVI"):
            r = load(root, sensor, "L8", idx)
            if r is not None and r.verdict.level in ok:
                coeffs[idx.lower()] = tuple(round(v, 6) for v in r.coefficients)  # type: ignore[assignment]
                fitted = True
        if base is not None or fitted:
            out[sensor] = Calibration(ndwi=coeffs["ndwi"] or (1.0, 0.0), ndvi=coeffs["ndvi"] or (1.0, 0.0))
    return out


def local_chain_for(cfg: Config, archive_root: Path | None = None) -> LocalChain:
    """``cfg.local_chain`` with :func:`calibration_for` applied when ``local_chain.calibration_source``
    is ``"archive"`` (opt-in; absent or ``"parameters"``: unchanged). The one-line wiring point."""
    lc = cfg.local_chain
    if getattr(lc, "calibration_source", "parameters") != "archive":
        return lc
    return dataclasses.replace(lc, calibration=calibration_for(cfg, archive_root))


def calibration_rows(cfg: Config, archive_root: Path | None = None) -> list[dict[str, object]]:
    """Per sensor and index: the coefficients the composites would apply and where they come from."""
    root = Path(archive_root) if archive_root is not None else cfg.paths.archive
    applied = calibration_for(cfg, root)
    rows: list[dict[str, object]] = []
    for sensor in CALIBRATED:
        for idx in ("NDVI", "NDWI"):
            cal = applied.get(sensor)
            a, b = getattr(cal, idx.lower()) if cal else (1.0, 0.0)
            r = load(root, sensor, "L8", idx)
            base = cfg.local_chain.calibration.get(sensor)
            from_archive = r is not None and cal is not None and r.verdict.level in ("good", "usable")
            rows.append({"sensor": sensor, "index": idx, "a": round(a, 4), "b": round(b, 4),
                         "source": "archive fit" if from_archive else "parameters" if base else "none (1, 0)",
                         "stored fit": f"{r.verdict.level}, R² {r.fit.r2:.2f}" if r else "-"})
    return rows


# --------------------------------------------------------------------------------------------
# The notebook's calls
# --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One sensor pair and index: its pairs, its result (None when not fitted) and why not."""

    pairs: Pairs
    result: Result | None = None
    error: str = ""
    path: Path | None = None

    @property
    def sentence(self) -> str:
        p = self.pairs
        if self.result is not None:
            return self.result.verdict.sentence
        return f"{p.sensor} vs {p.reference} {p.index}: not fitted: {self.error}"


def run(cfg: Config, pair_text: str = DEFAULT_PAIRS, start: date | str | None = None,
        end: date | str | None = None, *, days: int = 0, save: bool = True, method: Method = "rma",
        min_n: int = MIN_PAIRS, log: Log | None = None, **kw: Any) -> list[Outcome]:
    """Collect pairs, fit, judge and (``save``) store every pair of ``pair_text`` over [start, end]."""
    if start is None or end is None:
        raise CalibrationError("start and end (YYYY-MM-DD) are required")
    out = []
    for sensor, reference, d in parse_pairs(pair_text, days):
        for p in pairs(cfg, sensor, reference, start, end, days=d, log=log, **kw).values():
            o = Outcome(p)
            try:
                o.result = assess(p, cfg, method=method, min_n=min_n)
            except CalibrationError as exc:
                o.error = str(exc) if p.n else (f"no coincident valid pixels within ±{d} day(s) "
                                                f"from {p.requested[0]} to {p.requested[1]}" if p.requested else
                                                str(exc))
            if o.result is not None and save:
                o.path = store(cfg.paths.archive, o.result)
            out.append(o)
    return out


def rows(outcomes: Iterable[Outcome]) -> list[dict[str, object]]:
    """One table row per outcome: coefficients, R², n, RMSE, period, verdict."""
    out: list[dict[str, object]] = []
    for o in outcomes:
        p, r = o.pairs, o.result
        row: dict[str, object] = {"sensor": p.sensor, "reference": p.reference, "index": p.index, "n": p.n,
                                  "±days": p.max_days, "scene pairs": len(p.dates)}
        if r is not None:
            f = r.fit
            row.update({"R²": round(f.r2, 3), "OLS a": round(f.ols.slope, 4), "OLS b": round(f.ols.intercept, 4),
                        "OLS RMSE": round(f.ols.rmse, 4), "RMA a": round(f.rma.slope, 4),
                        "RMA b": round(f.rma.intercept, 4), "RMA RMSE": round(f.rma.rmse, 4),
                        "period": f"{r.period[0]} to {r.period[1]}" if r.period else "", "verdict": r.verdict.level})
        else:
            row["verdict"] = f"not fitted: {o.error}"
        out.append(row)
    return out


def plot(o: Outcome, ax: Any = None, max_points: int = 20_000) -> Any:
    """Scatter of the pairs (a deterministic sample of ``max_points``) with the OLS, RMA and 1:1 lines;
    R², n and each line's RMSE in the legend. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    p = o.pairs
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 5.0))
    unit = " (°C)" if p.index == "LST" else ""
    ax.set_xlabel(f"{p.sensor} {p.index}{unit}")
    ax.set_ylabel(f"{p.reference} {p.index}{unit}")
    title = f"{p.sensor} → {p.reference} {p.index}"
    if p.period:
        title += f"\n{p.period[0]} to {p.period[1]}, {len(p.dates)} scene pair(s)"
    ax.set_title(title, fontsize=10)
    if p.n == 0:
        ax.text(0.5, 0.5, "no coincident valid pixels", ha="center", va="center", transform=ax.transAxes)
        return ax.figure
    x, y = _sample(p.x, p.y, max_points, "plot", p.sensor, p.reference, p.index)
    r = o.result
    label = f"pairs (n = {p.n:,}" + (f", R² = {r.fit.r2:.3f})" if r else ")")
    ax.scatter(x, y, s=2, alpha=0.25, color="0.35", rasterized=True, label=label, linewidths=0)
    lo, hi = float(min(np.min(x), np.min(y))), float(max(np.max(x), np.max(y)))
    xs = np.array([lo, hi])
    ax.plot(xs, xs, ls=":", color="k", lw=1, label="1:1")
    if r is not None:
        for m, colour in (("ols", "tab:orange"), ("rma", "tab:blue")):
            ln = r.fit.line(m)  # type: ignore[arg-type]
            ax.plot(xs, ln(xs), color=colour, lw=1.8,
                    label=f"{m.upper()}: y = {ln.slope:.3f}x {'+' if ln.intercept >= 0 else '−'} "
                          f"{abs(ln.intercept):.3f}, RMSE {ln.rmse:.3g}")
        ax.text(0.98, 0.02, r.verdict.level, transform=ax.transAxes, ha="right", va="bottom", fontsize=11,
                color={"good": "tab:green", "usable": "tab:orange", "poor": "tab:red"}[r.verdict.level])
    ax.legend(loc="upper left", fontsize=7.5, markerscale=4, framealpha=0.85)
    ax.set_aspect("equal", adjustable="datalim")
    return ax.figure


def plot_all(outcomes: Sequence[Outcome], cols: int = 2) -> Any:
    """:func:`plot` of every outcome on one grid of panels; returns the Figure."""
    import matplotlib.pyplot as plt

    n = max(1, len(outcomes))
    ncols = min(cols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.4 * ncols, 5.2 * nrows), squeeze=False)
    for ax, o in zip(axes.ravel(), outcomes, strict=False):
        plot(o, ax)
    for ax in axes.ravel()[len(outcomes):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
