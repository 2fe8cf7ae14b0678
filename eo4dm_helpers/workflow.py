"""The routine's steps for one dekad, as called by the notebooks (and by ``backfill``).

Each notebook runs one step. Intermediate products go to the run's work folder, which mirrors the
archive layout under ``<work>/archive``; ``commit`` moves them into the historical store with atomic
renames, so the store only ever receives complete files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import chains, runs
from . import completeness as C
from .archive import SOURCE_LOCAL, SOURCE_TAG, Archive, Month, grid_of, write_raster
from .capabilities import capabilities
from .composites import Composite
from .config import Config, ConfigError, Grid, LocalTile, load_config, parse_dekad
from .dekads import Dekad
from .local.highres import Staged
from .local.land import LandMask, worldcover_scenes
from .local.preprocess import land_mask
from .storage import archive_lock, atomic_path, write_text_atomic


@dataclass
class Context:
    cfg: Config
    dekad: Dekad
    work: Path  # this run's work folder for this dekad
    run_id: str = field(default_factory=lambda: runs.current()[0])
    holder: str | None = field(default_factory=lambda: runs.current()[1])  # the routine's lock, if any

    @property
    def archive(self) -> Archive:
        return Archive(self.cfg.paths.archive)

    @property
    def staged(self) -> Archive:
        """The work folder's mirror of the archive (what ``commit`` will move in)."""
        return Archive(self.work / "archive")

    def note(self, key: str, value: object) -> None:
        """Record a fact for the report (availability, windows, timings) in ``<work>/notes.json``."""
        p = self.work / "notes.json"
        notes = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
        notes[key] = value
        write_text_atomic(p, json.dumps(notes, indent=1, default=str))

    def notes(self) -> dict:
        p = self.work / "notes.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def check_backend(cfg: Config) -> None:
    """Stop early, naming what to fix, when the configured backend cannot run: the local backend needs
    its scene store to build composites (checked by the steps that read scenes: indicators and reports from
    the archive need none); Earth Engine needs credentials that Google accepts (AuthError)."""
    if cfg.backend == "earthengine":
        from .ee.session import initialize

        initialize(cfg)


SCENES_NEEDED = "paths.scenes: the local backend needs the folder of local scenes to build composites"


def open_context(params: str | Path, dekad: str, work_dir: str | Path | None = None, *,
                 engine: bool = True) -> Context:
    """Load and validate the parameters and the dekad, as every notebook's first call.

    Run by ``run_all.py``, the work folder is the routine's; run by hand, it is the analyst's own
    (``<output>/work/interactive-<user>/<dekad>``) and archive writes take the lock (``commit``).
    ``engine=False``: the notebook reads the archive only (indicators, bulletin), so Earth Engine is not
    initialised and needs no credentials."""
    cfg = load_config(os.path.expanduser(params))
    d = parse_dekad(dekad)
    if engine and cfg.backend == "earthengine":
        from .ee.session import initialize

        initialize(cfg)  # AuthError names what to fix
    if d.end >= cfg.today():
        raise ConfigError(f"dekad: {d.label} is not complete yet on {cfg.today()} (it ends {d.end})")
    run_id, holder = runs.current()
    work = Path(os.path.expanduser(work_dir)) if work_dir else runs.work_root(cfg.paths.output) / run_id / d.label
    runs.make_work(work, run_id)
    return Context(cfg, d, work, run_id, holder)


@functools.lru_cache(maxsize=8)
def _land(root: Path, grid: Grid) -> np.ndarray:
    return land_mask(root, grid)


def land_for(cfg: Config, grid: Grid) -> np.ndarray:
    if cfg.paths.scenes is None:
        raise ConfigError(SCENES_NEEDED)
    return _land(cfg.paths.scenes, grid)


# --------------------------------------------------------------------------------------------
# Global chain
# --------------------------------------------------------------------------------------------
@dataclass
class GlobalResult:
    dekad: Composite
    month: Composite | None
    sensors: tuple[str, str]
    availability: chains.Availability
    land: np.ndarray = field(repr=False)
    no_data: str | None = None  # why the dekad has no composite (a no-data record was staged)


def run_global(ctx: Context) -> GlobalResult:
    """Preprocess the dekad's daily MODIS/VIIRS products and composite them (+ the month on D3).

    A dekad without any usable day stages a no-data record instead of composites (``result.no_data``
    says why): the dekad is then complete for the global chain, and its bulletin says so."""
    cfg, d = ctx.cfg, ctx.dekad
    grid = cfg.global_chain.grid
    land = land_for(cfg, grid)
    month = d.index == 3  # DOMAIN.md §1.5: the month is produced with the 3rd dekad (go_month)
    first, last = chains.month_bounds(d) if month else (d.start, d.end)
    sensors = chains.global_period_sensor(cfg, d.start)
    days, avail = chains.global_days(cfg, first, last, land)
    comp_d = chains.global_composites(days, d.start, d.end, land.shape)
    ctx.note("inputs", sorted(set(ctx.notes().get("inputs", [])) | set(avail.inputs)))
    if comp_d.n_images == 0:
        found = sum(avail.found.values())
        reason = (f"no usable MODIS/VIIRS day ({found} product(s) found, {len(avail.dropped)} "
                  f"dropped: {'; '.join(sorted({x.reason for x in avail.dropped})) or 'none'})")
        if not found:  # nothing at all: a store or catalogue out of reach, never recorded as "no data"
            raise chains.NoDataError(f"global chain, {d.label}: {reason}: is the source reachable? nothing written "
                                     f"(a dekad that truly has no product: {C.nodata_hint(cfg, 'global', d)})")
        stage_no_data(ctx, "global", reason)
        ctx.note("global", {"images": 0, "month_images": None, "sensors": list(sensors),
                            "availability": avail.as_rows(), "no_data": reason})
        return GlobalResult(comp_d, None, sensors, avail, land, no_data=reason)
    comp_m = chains.global_composites(days, first, last, land.shape) if month else None
    wanted = global_outputs(cfg)
    for period, comp in ((d, comp_d), (Month(d.year, d.month), comp_m)):
        if comp is None:
            continue
        for index, sensor in (("NDWI", sensors[0]), ("NDVI", sensors[0]), ("LST", sensors[1])):
            if index not in comp.mean or index not in wanted or sensor is None:
                continue
            write_raster(ctx.staged.global_composite(sensor, index, period), [comp.mean[index], comp.count[index]],
                         [index, "count"], grid, {"IMAGES": len(comp.images), "PERIOD": getattr(period, "label", ""),
                          SOURCE_TAG: SOURCE_LOCAL})
    ctx.note("global", {"images": comp_d.n_images, "month_images": comp_m.n_images if comp_m else None,
                        "sensors": list(sensors), "availability": avail.as_rows()})
    return GlobalResult(comp_d, comp_m, sensors, avail, land)


def global_outputs(cfg: Config) -> tuple[str, ...]:
    """The global composites written: those ``global_chain.indices`` lists; when it is not given, every
    index computed (NDWI, NDVI, LST as before), LST only when configured (capabilities)."""
    cap = capabilities(cfg)
    if cfg.global_chain.indices is not None:
        return cap.global_indices
    return ("NDWI", "NDVI") + (("LST",) if cap.lst else ())


def stage_no_data(ctx: Context, chain: str, reason: str) -> Path:
    """Stage the no-data record of ``chain`` ("global" or a tile id) for the dekad (committed with the
    dekad's other products; it stands for the composites and indicators that cannot exist)."""
    path = C.nodata_path(ctx.staged.root, chain, ctx.dekad)
    write_text_atomic(path, C.nodata_record(reason))
    return path


# --------------------------------------------------------------------------------------------
# Local chain
# --------------------------------------------------------------------------------------------
def _tile_land(ctx: Context, tile: LocalTile) -> LandMask:
    """The tile's land mask, staged once as a GeoTIFF and read by window (a 10 m tile's mask is
    ~340 MB as an array). Cached under ``<output>/cache/land``, keyed by the grid and WorldCover."""
    root = ctx.cfg.paths.scenes
    if root is None:
        raise ConfigError(SCENES_NEEDED)
    key = repr(tile.grid) + "".join(f"{s.collection}/{s.index}" for ss in worldcover_scenes(root).values() for s in ss)
    name = f"{tile.id}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.tif"
    return LandMask.staged(root, tile.grid, ctx.cfg.paths.output / "cache" / "land" / name)


def run_highres(ctx: Context, sensors: tuple[str, ...], tiles: tuple[LocalTile, ...] | None = None
                ) -> dict[str, chains.Availability]:
    """Preprocess the high-resolution scenes of ``sensors`` for every tile (or ``tiles``); stage them in
    the work folder, each written window by window."""
    out = {}
    for tile in ctx.cfg.local_chain.tiles if tiles is None else tiles:
        folder = ctx.work / "scenes" / tile.id
        for old in folder.glob("*.tif") if folder.is_dir() else []:
            if old.name.split("_")[1] in {s for s in ("S2", "L7", "L8", "L9") if s in sensors}:
                old.unlink()
        _, avail = chains.highres_scenes(ctx.cfg, tile, ctx.dekad, sensors, _tile_land(ctx, tile), folder)
        ctx.note(f"highres_{'_'.join(sensors)}_{tile.id}", avail.as_rows())
        out[tile.id] = avail
    return out


def staged_scenes(ctx: Context, tile: LocalTile) -> list[Staged]:
    """The scenes staged for ``tile`` (their tags only; pixels are read by window)."""
    return [Staged.from_file(f) for f in sorted((ctx.work / "scenes" / tile.id).glob("*.tif"))]


def run_local_composite(ctx: Context, tiles: tuple[LocalTile, ...] | None = None) -> dict[str, Composite]:
    """Dekad composite of the staged S2 + Landsat scenes with window widening, per tile, written
    window by window into the work folder's archive mirror. A tile without any usable scene even over
    the whole month stages a no-data record instead (noted under ``local_composites``)."""
    out = {}
    windows: dict[str, dict] = {}
    for tile in ctx.cfg.local_chain.tiles if tiles is None else tiles:
        paths = {i: ctx.staged.local_composite(tile.id, i, ctx.dekad) for i in ("NDVI", "NDWI")
                 if i in capabilities(ctx.cfg).local_indices}  # those local_chain.indices lists
        try:
            comp = chains.write_local_composite(ctx.cfg, ctx.dekad, tile, staged_scenes(ctx, tile),
                                                _tile_land(ctx, tile), paths)
        except chains.NoDataError as exc:
            found = sum(int(r.get("found", 0)) for k, rows in ctx.notes().items()
                        if k.startswith("highres_") and k.endswith(f"_{tile.id}") for r in rows)
            if not found:  # nothing at all: never recorded as "no data" (see run_global)
                raise chains.NoDataError(f"{exc} (no scene found at all: is the source reachable? a tile and dekad "
                                         f"that truly have none: {C.nodata_hint(ctx.cfg, tile.id, ctx.dekad)})"
                                         ) from None
            stage_no_data(ctx, tile.id, str(exc))
            windows[tile.id] = {"type": None, "images": 0, "level": None, "window": None, "no_data": str(exc)}
            continue
        ctype = comp.composite_type(ctx.dekad)
        windows[tile.id] = {"type": ctype, "images": comp.n_images, "level": comp.level or "dekad",
                            "window": [str(w) for w in comp.window] if comp.window else None}
        out[tile.id] = comp
    ctx.note("local_composites", windows)
    return out


# --------------------------------------------------------------------------------------------
# Commit ("download" on the local backend)
# --------------------------------------------------------------------------------------------
_ORDER = {"composites": 0, "nodata": 1, "indicators": 2, "stats": 3}


def commit(ctx: Context) -> list[Path]:
    """Move the staged products into the historical store, one atomic rename per file, under the archive
    lock (the routine's, or taken here when the notebook runs by hand).

    Only files staged by this run are moved (the work folder's ``.run`` marker). Every raster is first
    checked to be readable on a grid; a file that fails stops the commit before anything is moved. What
    was computed from products about to be replaced (a dekad's indicators and zone statistics when its
    composites change, its statistics when its indicators change) is removed first, and files go in
    dependency order (composites, indicators, statistics last): a commit cut short leaves the dekad
    incomplete, which the next run completes, never stale.
    """
    src_root = ctx.work / "archive"
    files = sorted(p for p in src_root.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if src_root.is_dir() else []
    if not files:
        ctx.note("committed", [])
        return []
    runs.check_owner(ctx.work, ctx.run_id)
    for f in files:  # validate every raster first: all or nothing
        if f.suffix == ".tif":
            grid_of(f)
    rel = [f.relative_to(src_root) for f in files]
    archive = ctx.cfg.paths.archive
    stale: list[Path] = []
    for r in rel:
        dekad, chain = C.product_of(r)
        if dekad is None:
            continue
        if r.parts[0] in ("composites", "nodata"):
            stale += C.derived_of(ctx.cfg, dekad, [chain])
            if r.parts[0] == "composites":  # data now exists: the no-data record no longer holds
                stale.append(C.nodata_path(archive, chain, dekad))
            else:  # no data now: earlier composites of the dekad no longer hold
                stale += C.superseded_by(ctx.cfg, dekad, chain, src_root / r)
        elif r.parts[0] == "indicators":
            stats = Archive(archive).zone_stats(dekad)
            stale += [stats, C.stats_sidecar(stats)]
    moved = []
    with archive_lock(archive, ctx.holder):
        for p in dict.fromkeys(stale):  # gone until rewritten (new versions are moved in below)
            p.unlink(missing_ok=True)
        for r in sorted(rel, key=lambda r: (_ORDER.get(r.parts[0], 9), r.suffix == ".json", r.as_posix())):
            src, dest = src_root / r, archive / r
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
            src.unlink()
            moved.append(dest)
    ctx.note("committed", [str(p.relative_to(archive)) for p in moved])
    return moved


def backfill(cfg: Config, first: Dekad, last: Dekad, *, log=print) -> int:
    """Build the composites (no indicators) of every dekad of [first, last] that lacks some, in-process
    (the historical reference). Returns the number of dekads processed."""
    from .history import build_composites

    inv = C.Inventory.scan(cfg)
    done = 0
    for d in _dekads(first, last):
        if C.composites_missing(C.missing(cfg, d, inv, bulletin=False)):
            inv.add(build_composites(cfg, d, inv, log=log))
            done += 1
            log(f"backfill {d.label}: done")
    return done


def _dekads(first: Dekad, last: Dekad) -> list[Dekad]:
    from .dekads import dekad_range

    return dekad_range(first, last)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
