"""The indicators step of the routine: VCI/TCI/VHI (global chain), VAI (local chain), zone statistics."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from . import indicators as I
from .archive import Month, Period, read_raster, write_raster
from .config import Config
from .workflow import Context, land_for
from .zones import load_zones, zone_masks, zone_table


@dataclass
class IndicatorSet:
    period: Period
    values: dict[str, np.ndarray] = field(default_factory=dict)  # name -> value
    qscores: dict[str, np.ndarray] = field(default_factory=dict)
    reference_years: dict[str, list[int]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # name -> reason it was not produced


def _current(path) -> tuple[np.ndarray, np.ndarray]:
    data, _ = read_raster(path)
    return data[0], data[1]


def global_indicators(ctx: Context, period: Period) -> IndicatorSet:
    """VCI (NDWI), TCI (LST), VHI and their QSCOREs for a dekad or month (DOMAIN.md §1.6)."""
    cfg, arch = ctx.cfg, ctx.archive
    from .chains import global_period_sensor

    start = period.start if hasattr(period, "start") else ctx.dekad.start
    ndwi_sensor, lst_sensor = global_period_sensor(cfg, start)
    out = IndicatorSet(period)
    parts = {}
    # NDWI reference pools MODIS and VIIRS (R² 0.83, no calibration needed); LST only from the
    # current LST sensor (not interchangeable), DOMAIN.md §1.9.
    for name, index, sensors, func in (("VCI", "NDWI", ("MODIS", "VIIRS"), I.vci),
                                       ("TCI", "LST", (lst_sensor,), I.tci)):
        sensor = ndwi_sensor if index == "NDWI" else lst_sensor
        cur_path = arch.global_composite(sensor, index, period)
        if not cur_path.exists():
            out.missing[name] = f"no {sensor} {index} composite for {getattr(period, 'label', period)}"
            continue
        hist = arch.global_history(index, period, sensors)
        try:
            years = I.reference_years(period, hist, cfg.indicators.reference)
        except I.IndicatorUnavailable as exc:
            out.missing[name] = str(exc)
            continue
        ref = I.reference_stats({y: hist[y] for y in years}, period, cfg.indicators.reference.min_years)
        value, count = _current(cur_path)
        parts[name] = (func(value, ref), I.qscore(count, period, ref))
        out.reference_years[name] = years
    for name, (v, q) in parts.items():
        out.values[name], out.qscores[name] = v, q
    if "VCI" in parts and "TCI" in parts:
        out.values["VHI"] = I.vhi(parts["VCI"][0], parts["TCI"][0], cfg.indicators.alpha)
        out.qscores["VHI"] = I.qscore_vhi(parts["VCI"][1], parts["TCI"][1])
    else:
        out.missing["VHI"] = "needs both VCI and TCI: " + "; ".join(f"{k}: {v}" for k, v in out.missing.items())
    return out


def local_indicators(ctx: Context, tile_id: str) -> IndicatorSet:
    """VAI (NDWI z-score) for a tile, filtered by the reference NDVI (DOMAIN.md §1.6, issue §3)."""
    cfg, arch, d = ctx.cfg, ctx.archive, ctx.dekad
    out = IndicatorSet(d)
    cur = arch.local_composite(tile_id, "NDWI", d)
    if not cur.exists():
        out.missing["VAI"] = f"no local NDWI composite for tile {tile_id}"
        return out
    hist = arch.local_history(tile_id, "NDWI", d)
    try:
        years = I.reference_years(d, hist, cfg.indicators.reference)
    except I.IndicatorUnavailable as exc:
        out.missing["VAI"] = str(exc)
        return out
    ref = I.reference_stats({y: hist[y] for y in years}, d, cfg.indicators.reference.min_years)
    value, count = _current(cur)
    v = I.vai(value, ref)
    ndvi_hist = arch.local_history(tile_id, "NDVI", d)
    ndvi_years = [y for y in years if y in ndvi_hist]
    if ndvi_years:
        ndvi_ref = I.reference_stats({y: ndvi_hist[y] for y in ndvi_years}, d)
        v = I.vai_vegetation_filter(v, ndvi_ref.mean, cfg.indicators.vai_bare_soil_ndvi,
                                    cfg.indicators.vai_dense_vegetation_ndvi)
    out.values["VAI"], out.qscores["VAI"] = v, I.qscore(count, d, ref)
    out.reference_years["VAI"] = years
    return out


def run_indicators(ctx: Context) -> dict[str, IndicatorSet]:
    """Compute, stage and commit every indicator of the dekad (and month on D3); write zone stats."""
    from .workflow import commit

    cfg, d = ctx.cfg, ctx.dekad
    sets: dict[str, IndicatorSet] = {}
    if cfg.global_chain.enabled:
        periods: list[Period] = [d] + ([Month(d.year, d.month)] if d.index == 3 else [])
        for p in periods:
            s = global_indicators(ctx, p)
            sets["global" if p is d else "global_month"] = s
            for name, v in s.values.items():
                write_raster(ctx.staged.global_indicator(name, p), [v, s.qscores[name]], [name, "QSCORE"],
                             cfg.global_chain.grid, {"REFERENCE_YEARS": ",".join(map(str, s.reference_years.get(
                                 name, s.reference_years.get("VCI", []))))})
    if cfg.local_chain.enabled:
        for tile in cfg.local_chain.tiles:
            s = local_indicators(ctx, tile.id)
            sets[f"local_{tile.id}"] = s
            if "VAI" in s.values:
                write_raster(ctx.staged.local_indicator(tile.id, "VAI", d), [s.values["VAI"], s.qscores["VAI"]],
                             ["VAI", "QSCORE"], tile.grid,
                             {"REFERENCE_YEARS": ",".join(map(str, s.reference_years["VAI"]))})
    rows = zone_rows(cfg, sets)
    if rows:
        buf = io.StringIO()
        keys = list(dict.fromkeys(k for r in rows for k in r))
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        (ctx.staged.root / "stats" / d.label).mkdir(parents=True, exist_ok=True)
        ctx.staged.zone_stats(d).write_text(buf.getvalue(), encoding="utf-8")
    ctx.note("indicators", {k: {"produced": sorted(s.values), "missing": s.missing,
                                "reference_years": s.reference_years} for k, s in sets.items()})
    commit(ctx)
    return sets


def zone_rows(cfg: Config, sets: dict[str, IndicatorSet]) -> list[dict[str, object]]:
    if cfg.territory.zones is None:
        return []
    zones = load_zones(cfg.territory.zones, cfg.territory.zone_name_field)
    rows: list[dict[str, object]] = []
    if "global" in sets and "VHI" in sets["global"].values:
        grid = cfg.global_chain.grid
        masks = {k: m & land_for(cfg, grid) for k, m in zone_masks(zones, grid).items()} \
            if cfg.paths.scenes else zone_masks(zones, grid)
        rows += [{"chain": "global", **r} for r in zone_table(
            sets["global"].values["VHI"], sets["global"].qscores["VHI"], masks, I.VHI_BREAKS, "VHI")]
    for tile in cfg.local_chain.tiles:
        s = sets.get(f"local_{tile.id}")
        if s and "VAI" in s.values:
            rows += [{"chain": f"local {tile.id}", **r} for r in zone_table(
                s.values["VAI"], s.qscores["VAI"], zone_masks(zones, tile.grid), I.VAI_BREAKS, "VAI")]
    return rows
