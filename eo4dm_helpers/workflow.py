"""The routine's steps for one dekad, as called by the notebooks (and by ``backfill``).

Each notebook runs one step. Intermediate products go to the run's work folder, which mirrors the
archive layout under ``<work>/archive``; ``commit`` moves them into the historical store with atomic
renames, so the store only ever receives complete files.
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from . import chains
from .archive import Archive, Month, grid_of, read_raster, write_raster
from .composites import Composite
from .config import Config, ConfigError, Grid, LocalTile, load_config, parse_dekad
from .dekads import Dekad
from .local.preprocess import Processed, land_mask
from .storage import atomic_path, write_text_atomic


@dataclass
class Context:
    cfg: Config
    dekad: Dekad
    work: Path  # this run's work folder for this dekad

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
    """Stop early, with the key to change, when the configured backend cannot run here."""
    if cfg.backend != "local":
        raise ConfigError("backend: an Earth Engine run needs the download step, which this version does not "
                          "have yet; review the graphs with --dry-run, or use backend: local with paths.scenes")
    if cfg.paths.scenes is None:
        raise ConfigError("paths.scenes: the local backend needs the folder of local scenes")


def open_context(params: str | Path, dekad: str, work_dir: str | Path | None = None) -> Context:
    """Load and validate the parameters and the dekad, as every notebook's first call."""
    cfg = load_config(params)
    d = parse_dekad(dekad)
    if cfg.backend == "earthengine":
        from .ee.session import initialize

        initialize(cfg)  # AuthError names what to fix
    elif cfg.paths.scenes is None:
        raise ConfigError("paths.scenes: the local backend needs the folder of local scenes")
    if d.end >= cfg.today():
        raise ConfigError(f"dekad: {d.label} is not complete yet on {cfg.today()} (it ends {d.end})")
    work = Path(work_dir) if work_dir else cfg.paths.output / "work" / d.label
    work.mkdir(parents=True, exist_ok=True)
    return Context(cfg, d, work)


@functools.lru_cache(maxsize=8)
def _land(root: Path, grid: Grid) -> np.ndarray:
    return land_mask(root, grid)


def land_for(cfg: Config, grid: Grid) -> np.ndarray:
    assert cfg.paths.scenes is not None
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


def run_global(ctx: Context) -> GlobalResult:
    """Preprocess the dekad's daily MODIS/VIIRS products and composite them (+ the month on D3)."""
    cfg, d = ctx.cfg, ctx.dekad
    grid = cfg.global_chain.grid
    land = land_for(cfg, grid)
    month = d.index == 3  # DOMAIN.md §1.5: the month is produced with the 3rd dekad (go_month)
    first, last = chains.month_bounds(d) if month else (d.start, d.end)
    days, avail = chains.global_days(cfg, first, last, land)
    sensors = chains.global_period_sensor(cfg, d.start)
    comp_d = chains.global_composites(days, d.start, d.end, land.shape)
    if comp_d.n_images == 0:
        raise chains.NoDataError(
            f"global chain, {d.label}: no usable MODIS/VIIRS day ({sum(avail.found.values())} product(s) found, "
            f"{len(avail.dropped)} dropped: {'; '.join(sorted({x.reason for x in avail.dropped})) or 'none'}); "
            "nothing written")
    comp_m = chains.global_composites(days, first, last, land.shape) if month else None
    for period, comp in ((d, comp_d), (Month(d.year, d.month), comp_m)):
        if comp is None:
            continue
        for index, sensor in (("NDWI", sensors[0]), ("LST", sensors[1])):
            write_raster(ctx.staged.global_composite(sensor, index, period), [comp.mean[index], comp.count[index]],
                         [index, "count"], grid, {"IMAGES": len(comp.images), "PERIOD": getattr(period, "label", "")})
    ctx.note("global", {"images": comp_d.n_images, "month_images": comp_m.n_images if comp_m else None,
                        "sensors": list(sensors), "availability": avail.as_rows()})
    return GlobalResult(comp_d, comp_m, sensors, avail, land)


# --------------------------------------------------------------------------------------------
# Local chain
# --------------------------------------------------------------------------------------------
def _scene_file(ctx: Context, tile: LocalTile, p: Processed) -> Path:
    return ctx.work / "scenes" / tile.id / f"{p.day.isoformat()}_{p.product}_{p.scene_id}.tif"


def run_highres(ctx: Context, sensors: tuple[str, ...]) -> dict[str, chains.Availability]:
    """Preprocess the high-resolution scenes of ``sensors`` for every tile; stage them in the work folder."""
    out = {}
    for tile in ctx.cfg.local_chain.tiles:
        images, avail = chains.highres_scenes(ctx.cfg, tile, ctx.dekad, sensors, land_for(ctx.cfg, tile.grid))
        folder = ctx.work / "scenes" / tile.id
        for old in folder.glob("*.tif") if folder.is_dir() else []:
            if old.name.split("_")[1] in {s for s in ("S2", "L7", "L8", "L9") if s in sensors}:
                old.unlink()
        for p in images:
            write_raster(_scene_file(ctx, tile, p), [p.values["NDVI"], p.values["NDWI"]], ["NDVI", "NDWI"],
                         tile.grid, {"DAY": p.day.isoformat(), "PRODUCT": p.product, "SENSOR": p.sensor,
                                     "SCENE": p.scene_id, "TIME_START": p.time_start.isoformat()})
        ctx.note(f"highres_{'_'.join(sensors)}_{tile.id}", avail.as_rows())
        out[tile.id] = avail
    return out


def staged_scenes(ctx: Context, tile: LocalTile) -> list[Processed]:
    out = []
    for f in sorted((ctx.work / "scenes" / tile.id).glob("*.tif")):
        data, tags = read_raster(f)
        out.append(Processed(tags["PRODUCT"], tags["SENSOR"], tags["SCENE"],
                             datetime.fromisoformat(tags["TIME_START"]), date.fromisoformat(tags["DAY"]),
                             {"NDVI": data[0], "NDWI": data[1]}))
    return out


def run_local_composite(ctx: Context) -> dict[str, Composite]:
    """Dekad composite of the staged S2 + Landsat scenes with window widening, per tile."""
    out = {}
    windows = {}
    for tile in ctx.cfg.local_chain.tiles:
        land = land_for(ctx.cfg, tile.grid)
        comp = chains.local_composite(ctx.cfg, ctx.dekad, staged_scenes(ctx, tile), land)
        if comp.n_images == 0:
            raise chains.NoDataError(f"local chain, tile {tile.id}, {ctx.dekad.label}: no usable Sentinel-2 or "
                                     "Landsat scene even over the whole month; nothing written")
        ctype = comp.composite_type(ctx.dekad)
        for index in ("NDVI", "NDWI"):
            write_raster(ctx.staged.local_composite(tile.id, index, ctx.dekad), [comp.mean[index], comp.count[index]],
                         [index, "count"], tile.grid,
                         {"COMPOSITE_TYPE": ctype, "IMAGES": comp.n_images,
                          "WINDOW": f"{comp.window[0]}/{comp.window[1]}" if comp.window else ""})
        windows[tile.id] = {"type": ctype, "images": comp.n_images, "level": comp.level or "dekad",
                            "window": [str(w) for w in comp.window] if comp.window else None}
        out[tile.id] = comp
    ctx.note("local_composites", windows)
    return out


# --------------------------------------------------------------------------------------------
# Commit ("download" on the local backend)
# --------------------------------------------------------------------------------------------
def commit(ctx: Context) -> list[Path]:
    """Move the staged composites into the historical store, one atomic rename per file.

    Files are first checked to be readable rasters on the expected grid; a file that fails stops the
    commit before anything is moved.
    """
    src_root = ctx.work / "archive"
    files = sorted(p for p in src_root.rglob("*") if p.is_file()) if src_root.is_dir() else []
    for f in files:  # validate every raster first: all or nothing
        if f.suffix == ".tif":
            grid_of(f)
    moved = []
    for f in files:
        dest = ctx.cfg.paths.archive / f.relative_to(src_root)
        with atomic_path(dest) as tmp:
            shutil.copyfile(f, tmp)
        f.unlink()
        moved.append(dest)
    ctx.note("committed", [str(p.relative_to(ctx.cfg.paths.archive)) for p in moved])
    return moved


def backfill(cfg: Config, first: Dekad, last: Dekad, *, log=print) -> int:
    """Build the historical composites (no indicators) for every dekad of [first, last] that the
    archive lacks, in-process. Returns the number of dekads processed."""
    done = 0
    d = first
    arch = Archive(cfg.paths.archive)
    while d <= last:
        sensors = chains.global_period_sensor(cfg, d.start)
        need_global = cfg.global_chain.enabled and not arch.global_composite(sensors[0], "NDWI", d).exists()
        need_local = cfg.local_chain.enabled and any(
            not arch.local_composite(t.id, "NDWI", d).exists() for t in cfg.local_chain.tiles)
        if need_global or need_local:
            work = cfg.paths.output / "work" / f"backfill-{d.label}"
            ctx = Context(cfg, d, work)
            work.mkdir(parents=True, exist_ok=True)
            try:
                if need_global:
                    run_global(ctx)
            except chains.NoDataError as exc:
                log(f"backfill {d.label}: {exc}")
            try:
                if need_local:
                    run_highres(ctx, ("S2", "L7", "L8", "L9"))
                    run_local_composite(ctx)
            except chains.NoDataError as exc:
                log(f"backfill {d.label}: {exc}")
            commit(ctx)
            shutil.rmtree(work, ignore_errors=True)
            done += 1
            log(f"backfill {d.label}: done")
        d = d.next()
    return done


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
