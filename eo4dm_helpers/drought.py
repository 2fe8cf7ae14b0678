"""The indicators step: VCI/TCI/VHI (global chain), VAI (local chain), statistics per zone.

Everything is computed window by window in one streaming pass over the reference files (each file is
read once), so memory stays bounded whatever the grid size (a 10 m tile, 24 years of reference).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from . import indicators as I
from .archive import Archive, Month, Period
from .blocks import BlockWriter, block_windows, read_window
from .config import Config, Grid
from .dekads import Dekad
from .workflow import Context, commit
from .zones import ZoneStats, load_zones, zone_masks


class ArchiveInputError(RuntimeError):
    """An archive file the indicators are computed from cannot be used (on another grid, no valid pixel);
    the message names the file and what to do."""


def check_grid(paths: Iterable[Path], grid: Grid, key: str) -> None:
    """Every input on ``grid`` (CRS, transform, size) and in the archive's layout (2 floating-point bands:
    value and count or QSCORE): indicators read bands 1 and 2 window by window as if they were, so a file
    on another grid, with another band count or integer data would silently give wrong values (or fail
    without naming the file). Reads the headers only."""
    import rasterio

    for p in paths:
        try:
            with rasterio.open(p) as src:
                got = Grid.from_affine(src.crs, src.transform, src.width, src.height)
                count, dtypes = src.count, src.dtypes
        except rasterio.errors.RasterioIOError as exc:
            raise OSError(f"{p}: unreadable raster ({' '.join(str(exc).split())})") from None
        why = got.mismatch(grid)
        if why is not None:
            raise ArchiveInputError(
                f"{p}: grid {got.crs} {got.width} x {got.height} px at ({got.x0:g}, {got.y0:g}) differs from {key} "
                f"({grid.crs} {grid.width} x {grid.height} px at ({grid.x0:g}, {grid.y0:g}); {why}): not a file of "
                "this archive; rebuild or remove it")
        if count != 2:
            raise ArchiveInputError(f"{p}: {count} band{'s' if count != 1 else ''}, expected 2 (value, count): not "
                                    "a file of this archive; rebuild or remove it")
        if not all(np.issubdtype(np.dtype(d), np.floating) for d in dtypes):
            raise ArchiveInputError(f"{p}: {', '.join(dict.fromkeys(dtypes))} data, expected floating point (the "
                                    "archive stores float32 values with NaN for no data): not a file of this "
                                    "archive; rebuild or remove it")


class NoValidPixel(ArchiveInputError):
    """The current composite has no valid pixel (every value NaN): the period has no data (not a failure
    for a dekad: :func:`run_indicators` records it as a no-data dekad)."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(f"{path} has no valid pixel (every value is NaN)")


def _no_valid_pixel(path: Path) -> NoValidPixel:
    return NoValidPixel(path)


@dataclass
class IndicatorSet:
    period: Period
    produced: dict[str, Path] = field(default_factory=dict)  # name -> staged file
    reference_years: dict[str, list[int]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # name -> why it was not produced
    no_data: str | None = None  # why the period has no data (an all-NaN composite, a no-data record)
    warnings: dict[str, str] = field(default_factory=dict)  # e.g. pixels with a flat reference
    sources: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # name -> provenance -> reference years


def period_end(period: Period) -> date:
    return period.end if isinstance(period, Dekad) else \
        (date(period.year + period.month // 12, period.month % 12 + 1, 1) - timedelta(days=1))


def status(cfg: Config, period: Period) -> str:
    """"provisional" while late products may still change the inputs, then "final"."""
    return "provisional" if cfg.today() <= period_end(period) + timedelta(days=10 * cfg.indicators.provisional_dekads) \
        else "final"


def _reference(cfg: Config, period: Period, hist: dict[int, Path], out: IndicatorSet, name: str
               ) -> dict[int, Path] | None:
    try:
        years = I.reference_years(period, hist, cfg.indicators.reference)
    except I.IndicatorUnavailable as exc:
        out.missing[name] = str(exc)
        return None
    out.reference_years[name] = years
    refs = {y: hist[y] for y in years}
    out.sources[name] = reference_sources(refs)
    return refs


def reference_sources(refs: dict[int, Path]) -> dict[str, list[int]]:
    """The reference years by provenance of their composite (tag SOURCE: eo4dm-ee, eo4dm-local,
    EO4DM-import), so a reference that mixes imported EO4DM composites in is said so."""
    from .archive import source_of

    out: dict[str, list[int]] = {}
    for y, p in sorted(refs.items()):
        out.setdefault(source_of(p), []).append(y)
    return out


def sources_tag(sources: dict[str, list[int]]) -> str:
    """``"EO4DM-import:12,eo4dm-ee:11"``: years of the reference by provenance (indicator tag)."""
    return ",".join(f"{k}:{len(v)}" for k, v in sorted(sources.items()))


def global_indicators(ctx: Context, period: Period, stats: ZoneStats, zones) -> IndicatorSet:
    """VCI, TCI, VHI with QSCORE for a dekad or a month (DOMAIN.md §1.6), in the configured convention."""
    from .capabilities import capabilities
    from .chains import NoDataError, sensor_for

    cfg, arch = ctx.cfg, ctx.archive
    conv = I.CONVENTIONS[cfg.indicators.convention]
    cap = capabilities(cfg)
    start = period.start if isinstance(period, Dekad) else date(period.year, period.month, 1)
    gc = cfg.global_chain
    ndwi_sensor, lst_sensor = sensor_for(gc.ndwi_sensors, start), sensor_for(gc.lst_sensors, start)
    if ndwi_sensor is None or (cap.lst and lst_sensor is None):
        raise NoDataError(f"no medium-resolution sensor is configured for {start} "
                          "(global_chain.ndwi_sensors / lst_sensors)")
    out = IndicatorSet(period)
    inputs: dict[str, tuple[Path, dict[int, Path]]] = {}
    # The vegetation index reference pools MODIS and VIIRS (NDWI R² 0.83, no calibration needed);
    # LST only from the current LST sensor (not interchangeable, DOMAIN.md §1.9). Only the indicators the
    # configuration produces (capabilities): without LST, no TCI or VHI, and nothing says they failed.
    wanted = [("VCI", cap.vci_index, ndwi_sensor, ("MODIS", "VIIRS")), ("TCI", "LST", lst_sensor, (lst_sensor,))]
    for name, index, sensor, ref_sensors in wanted:
        if name not in cap.global_indicators:
            continue
        cur = arch.global_composite(sensor, index, period)
        if not cur.exists():
            out.missing[name] = f"no {sensor} {index} composite for {getattr(period, 'label', period)}"
            continue
        refs = _reference(cfg, period, arch.global_history(index, period, ref_sensors), out, name)
        if refs is not None:
            inputs[name] = (cur, refs)
    names = list(inputs) + (["VHI"] if len(inputs) == 2 else [])
    if "VHI" not in names and "VHI" in cap.global_indicators:
        out.missing["VHI"] = "needs both VCI and TCI: " + "; ".join(f"{k}: {v}" for k, v in out.missing.items())
    if not names:
        return out
    grid = cfg.global_chain.grid
    tags = {n: {"REFERENCE_YEARS": ",".join(map(str, out.reference_years.get(n, out.reference_years.get("VCI", [])))),
                "REFERENCE_SOURCES": sources_tag(out.sources.get(n) or _merged_sources(out.sources)),
                "CONVENTION": conv.name, "STATUS": status(cfg, period),
                **({I.RECORD_BAND: I.RECORD_TAG} if n != "VHI" else {})} for n in names}
    # VCI and TCI carry a third band RECORD ("beyond the record", indicators.beyond_record)
    files = {n: (ctx.staged.global_indicator(n, period), [n, "QSCORE"] + ([I.RECORD_BAND] if n != "VHI" else []))
             for n in names}
    check_grid([p for cur, refs in inputs.values() for p in (cur, *refs.values())], grid, "global_chain.grid")
    for cur, _ in inputs.values():
        if not _has_valid_pixel(cur, grid):  # before any statistic is accumulated
            raise _no_valid_pixel(cur)
    flat = dict.fromkeys(inputs, 0)
    valid = dict.fromkeys(inputs, 0)  # pixels of the current composite with a value
    min_years = cfg.indicators.reference.min_years
    with BlockWriter(files, grid, tags) as w:
        for win in block_windows(grid):
            parts, records = {}, {}
            for name, (cur, refs) in inputs.items():
                ref = I.reference_stats(refs, period, min_years, win)
                c = read_window(cur, win, (1, 2))
                valid[name] += int(np.count_nonzero(~np.isnan(c[0])))
                flat[name] += I.undefined_share(c[0], ref.max - ref.min)
                v = (I.vci if name == "VCI" else I.tci)(c[0], ref) * conv.scale
                parts[name] = (v.astype(np.float32), I.qscore(c[1], period, ref))
                records[name] = I.beyond_record(c[0], ref, inverted=name == "TCI")
            if "VHI" in names:
                parts["VHI"] = (I.vhi(parts["VCI"][0], parts["TCI"][0], cfg.indicators.alpha),
                                I.qscore_vhi(parts["VCI"][1], parts["TCI"][1]))
            masks = zone_masks(zones, grid, win) if zones and isinstance(period, Dekad) else {}
            for name, (v, q) in parts.items():
                w.write(name, win, [v, q] + ([records[name]] if name in records else []))
                if masks:
                    stats.add(name, masks, v, q, conv.vhi_breaks, records.get(name))
        for name, n in valid.items():
            if not n:  # raised inside the writer: nothing is staged
                raise _no_valid_pixel(inputs[name][0])
    out.produced = {n: p for n, (p, _) in files.items()}
    for name, n in flat.items():
        if n:
            out.warnings[name] = (f"{n} pixel(s) have a flat reference (max = min over the reference years): "
                                  f"{name} is undefined (NaN) there")
    return out


def local_indicators(ctx: Context, tile_id: str, grid: Grid, stats: ZoneStats, zones) -> IndicatorSet:
    """VAI (NDWI z-score, DOMAIN.md §1.6; NDVI's when local_chain.indices has no NDWI) for a tile, masked where
    the reference NDVI says bare soil or dense vegetation (thresholds indicators.vai_bare_soil_ndvi /
    vai_dense_vegetation_ndvi); without NDVI composites the filter is skipped and a warning says so."""
    from .capabilities import capabilities

    cfg, arch, d = ctx.cfg, ctx.archive, ctx.dekad
    cap = capabilities(cfg)
    out = IndicatorSet(d)
    index = cap.vai_index  # NDWI as EO4DM (DOMAIN.md §1.6), else NDVI (local_chain.indices)
    if index is None:
        return out
    cur = arch.local_composite(tile_id, index, d)
    if not cur.exists():
        out.missing["VAI"] = f"no local {index} composite for tile {tile_id}"
        return out
    refs = _reference(cfg, d, arch.local_history(tile_id, index, d), out, "VAI")
    if refs is None:
        return out
    ndvi_hist = arch.local_history(tile_id, "NDVI", d) if cap.vai_filter else {}
    ndvi_refs = {y: ndvi_hist[y] for y in refs if y in ndvi_hist}
    if not cap.vai_filter:
        out.warnings["VAI"] = ("bare-soil / dense-vegetation filter not applied: it needs an NDVI reference and "
                               "local_chain.indices does not list NDVI")
    path = ctx.staged.local_indicator(tile_id, "VAI", d)
    bare, dense = cfg.indicators.vai_bare_soil_ndvi, cfg.indicators.vai_dense_vegetation_ndvi
    tags = {"VAI": {"REFERENCE_YEARS": ",".join(map(str, refs)), "STATUS": status(cfg, d), "INDEX": index,
                    "REFERENCE_SOURCES": sources_tag(out.sources.get("VAI", {})),
                    "CONVENTION": cfg.indicators.convention,
                    I.VEG_BAND: I.veg_filter_tag(bare, dense) if ndvi_refs else "not applied: no reference NDVI"}}
    check_grid([cur, *refs.values(), *ndvi_refs.values()], grid, f"local_chain.tiles[{tile_id}].grid")
    if not _has_valid_pixel(cur, grid):
        raise _no_valid_pixel(cur)
    flat = valid = 0
    min_years = cfg.indicators.reference.min_years
    with BlockWriter({"VAI": (path, ["VAI", "QSCORE", I.VEG_BAND])}, grid, tags) as w:
        for win in block_windows(grid):
            ref = I.reference_stats(refs, d, min_years, win)
            c = read_window(cur, win, (1, 2))
            valid += int(np.count_nonzero(~np.isnan(c[0])))
            flat += I.undefined_share(c[0], ref.std)
            v = I.vai(c[0], ref)
            veg = np.full(v.shape, np.nan, np.float32)  # what the vegetation filter removed (band VEG_FILTER)
            if ndvi_refs:
                ndvi_ref = I.reference_stats(ndvi_refs, d, 1, win)
                v = I.vai_vegetation_filter(v, ndvi_ref.mean, bare, dense)
                veg = I.vai_filter_band(ndvi_ref.mean, bare, dense)
            q = I.qscore(c[1], d, ref)
            w.write("VAI", win, [v, q, veg])
            if zones:
                masks = zone_masks(zones, grid, win)
                stats.add(f"VAI {tile_id}", masks, v, q, I.VAI_BREAKS)
                stats.add_filter(f"VAI {tile_id}", masks, veg)
        if not valid:
            raise _no_valid_pixel(cur)
    out.produced["VAI"] = path
    if flat:
        flat_note = f"{flat} pixel(s) have a constant reference (std = 0): VAI is undefined (NaN) there"
        out.warnings["VAI"] = "; ".join(filter(None, (out.warnings.get("VAI"), flat_note)))
    return out


def _merged_sources(sources: dict[str, dict[str, list[int]]]) -> dict[str, list[int]]:
    """VHI's reference: the union of VCI's and TCI's, by provenance."""
    out: dict[str, set[int]] = {}
    for by in sources.values():
        for k, years in by.items():
            out.setdefault(k, set()).update(years)
    return {k: sorted(v) for k, v in out.items()}


def run_indicators(ctx: Context) -> dict[str, IndicatorSet]:
    """Compute, stage and commit every indicator of the dekad (and month with D3) and the zone stats."""
    cfg, d = ctx.cfg, ctx.dekad
    zones = load_zones(cfg.territory.zones, cfg.territory.zone_name_field) if cfg.territory.zones else []
    stats = ZoneStats()
    sets: dict[str, IndicatorSet] = {}
    conv = I.CONVENTIONS[cfg.indicators.convention]
    if cfg.global_chain.enabled:
        sets["global"] = _or_no_data(ctx, "global", lambda: global_indicators(ctx, d, stats, zones))
        if d.index == 3:  # monthly indicators from monthly composites (DOMAIN.md §1.5)
            month = Month(d.year, d.month)
            try:
                sets["global_month"] = global_indicators(ctx, month, stats, zones)
            except NoValidPixel as exc:  # a month without data: its indicators are not produced
                sets["global_month"] = IndicatorSet(month, no_data=f"{exc.path.name} has no valid pixel")
    if cfg.local_chain.enabled:
        for tile in cfg.local_chain.tiles:
            sets[f"local_{tile.id}"] = _or_no_data(
                ctx, tile.id, lambda tile=tile: local_indicators(ctx, tile.id, tile.grid, stats, zones))
    rows = [{"chain": "global", **r} for name in ("VHI", "VCI", "TCI") for r in stats.rows(name, conv.vhi_breaks)]
    for tile in cfg.local_chain.tiles:
        rows += [{"chain": f"local {tile.id}", **r, "indicator": "VAI"}
                 for r in stats.rows(f"VAI {tile.id}", I.VAI_BREAKS)]
    if cfg.territory.zones is not None and any(st.produced for k, st in sets.items() if k != "global_month"):
        _stage_zone_stats(ctx, rows)
    ctx.note("indicators", {k: {"produced": sorted(s.produced), "missing": s.missing, "warnings": s.warnings,
                                "no_data": s.no_data,
                                "reference_years": s.reference_years, "reference_sources": s.sources}
                            for k, s in sets.items()})
    commit(ctx)
    return sets


def _or_no_data(ctx: Context, chain: str, compute) -> IndicatorSet:
    """``compute()``'s indicators of ``chain`` ("global" or a tile id) for the dekad, or a no-data dekad: one
    with a no-data record already (nothing to compute), or whose current composite has no valid pixel. The
    latter is recorded as the routine records an all-cloud dekad (a ``nodata/...`` record, which completeness
    reads), superseding only that dekad's composites of the chain: a rerun finds the same no-data dekad. Never
    a failure."""
    from .completeness import nodata_path, nodata_reason, nodata_record
    from .storage import write_text_atomic

    d = ctx.dekad
    record = nodata_path(ctx.cfg.paths.archive, chain, d)
    if record.is_file():
        return IndicatorSet(d, no_data=nodata_reason(record))
    try:
        return compute()
    except NoValidPixel as exc:
        arch = ctx.archive
        root = arch.root
        dekad_files = [p for p in exc.path.parent.glob(f"*_{d.yyyymm}_COMPD{d.index}.tif")] \
            if chain == "global" else list(arch.local_composite(chain, "*", d).parent.glob(
                arch.local_composite(chain, "*", d).name))
        reason = (f"the composite {exc.path.name} has no valid pixel (every value is NaN): "
                  "no usable acquisition, a dekad without data")
        write_text_atomic(nodata_path(ctx.staged.root, chain, d),
                          nodata_record(reason, [str(p.relative_to(root)) for p in sorted(dekad_files)]))
        return IndicatorSet(d, no_data=reason)


def _has_valid_pixel(path: Path, grid: Grid) -> bool:
    """Whether band 1 of ``path`` has a value anywhere (window by window; stops at the first)."""
    return any(np.any(~np.isnan(read_window(path, win, (1,))[0])) for win in block_windows(grid))


def _stage_zone_stats(ctx: Context, rows: list[dict[str, object]]) -> None:
    """Stage ``stats/<dekad>/zones.csv`` and its record of the zone layer it was computed with (written
    even when no zone meets the grid, so that the dekad counts as complete)."""
    from .completeness import stats_sidecar, zone_layer_digest
    from .storage import write_text_atomic

    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r)) or ["chain", "zone", "indicator", "pixels"]
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    target = ctx.staged.zone_stats(ctx.dekad)
    write_text_atomic(target, buf.getvalue())
    write_text_atomic(stats_sidecar(target), json.dumps({"zone_layer_sha256": zone_layer_digest(ctx.cfg),
                                                         "zone_name_field": ctx.cfg.territory.zone_name_field},
                                                        indent=1) + "\n")


def provisional_dekads(cfg: Config, before: Dekad, inv=None) -> list[Dekad]:
    """Dekads among the ``provisional_dekads`` before ``before`` that later runs recompute (late products
    may have arrived): those whose indicators are marked provisional, and those still provisional by date
    that an earlier run started (a composite or no-data record exists) but left incomplete, e.g. cut short
    after its commit removed their indicators. Dekads never processed are left to auto mode and
    ``--backfill``."""
    import rasterio

    from .completeness import Inventory, missing

    arch = Archive(cfg.paths.archive)
    inv = inv or Inventory.scan(cfg)
    out = []
    for k in range(cfg.indicators.provisional_dekads, 0, -1):
        d = before.shift(-k)
        if d in inv.dekads and status(cfg, d) == "provisional" and missing(cfg, d, inv, bulletin=False):
            out.append(d)
            continue
        from .capabilities import capabilities

        best = [n for n in ("VHI", "VCI", "TCI") if n in capabilities(cfg).global_indicators][:1]  # VHI as before
        paths = [arch.global_indicator(n, d) for n in best] + \
            [arch.local_indicator(t.id, "VAI", d) for t in cfg.local_chain.tiles]
        for p in paths:
            if p.exists():
                try:
                    with rasterio.open(p) as src:
                        provisional = src.tags().get("STATUS") == "provisional"
                except rasterio.errors.RasterioIOError as exc:
                    raise OSError(f"{p}: unreadable raster ({' '.join(str(exc).split())}); rebuild it with "
                                  f"--dekad {d.label}") from None
                if provisional:
                    out.append(d)
                    break
    return out


def backfill_indicators(cfg: Config, first: Dekad, last: Dekad, *, log=print) -> int:
    """Indicators and zone statistics of every dekad of [first, last] that lacks some that its archive
    allows (composites present, enough reference years): the history behind the bulletin's timelines.
    Returns the number of dekads computed."""
    from .completeness import COMPOSITE, MONTH_COMPOSITE, Inventory, missing
    from .dekads import dekad_range
    from .history import build_indicators

    inv, done = Inventory.scan(cfg), 0
    for d in dekad_range(first, last):
        todo = [p for p in missing(cfg, d, inv, bulletin=False) if p.kind not in (COMPOSITE, MONTH_COMPOSITE)]
        if todo:
            inv.add(build_indicators(cfg, d))
            done += 1
            log(f"indicators {d.label}: done")
    return done
