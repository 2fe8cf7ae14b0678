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

from . import chains
from .archive import Archive, Month, grid_of, write_raster
from .composites import Composite
from .config import Config, ConfigError, Grid, LocalTile, load_config, parse_dekad
from .dekads import Dekad
from .local.highres import Staged
from .local.land import LandMask, worldcover_scenes
from .local.preprocess import land_mask
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
    """Stop early, naming what to fix, when the configured backend cannot run: the local backend needs
    its scene store; Earth Engine needs credentials that Google accepts (AuthError)."""
    if cfg.backend == "earthengine":
        from .ee.session import initialize

        initialize(cfg)
    elif cfg.paths.scenes is None:
        raise ConfigError("paths.scenes: the local backend needs the folder of local scenes")


def open_context(params: str | Path, dekad: str, work_dir: str | Path | None = None) -> Context:
    """Load and validate the parameters and the dekad, as every notebook's first call."""
    cfg = load_config(os.path.expanduser(params))
    d = parse_dekad(dekad)
    if cfg.backend == "earthengine":
        from .ee.session import initialize

        initialize(cfg)  # AuthError names what to fix
    elif cfg.paths.scenes is None:
        raise ConfigError("paths.scenes: the local backend needs the folder of local scenes")
    if d.end >= cfg.today():
        raise ConfigError(f"dekad: {d.label} is not complete yet on {cfg.today()} (it ends {d.end})")
    work = Path(os.path.expanduser(work_dir)) if work_dir else cfg.paths.output / "work" / d.label
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
        for index, sensor in (("NDWI", sensors[0]), ("NDVI", sensors[0]), ("LST", sensors[1])):
            if index not in comp.mean:
                continue
            write_raster(ctx.staged.global_composite(sensor, index, period), [comp.mean[index], comp.count[index]],
                         [index, "count"], grid, {"IMAGES": len(comp.images), "PERIOD": getattr(period, "label", "")})
    ctx.note("global", {"images": comp_d.n_images, "month_images": comp_m.n_images if comp_m else None,
                        "sensors": list(sensors), "availability": avail.as_rows()})
    ctx.note("inputs", sorted(set(ctx.notes().get("inputs", [])) | set(avail.inputs)))
    return GlobalResult(comp_d, comp_m, sensors, avail, land)


# --------------------------------------------------------------------------------------------
# Local chain
# --------------------------------------------------------------------------------------------
def _tile_land(ctx: Context, tile: LocalTile) -> LandMask:
    """The tile's land mask, staged once as a GeoTIFF and read by window (a 10 m tile's mask is
    ~340 MB as an array). Cached under ``<output>/cache/land``, keyed by the grid and WorldCover."""
    root = ctx.cfg.paths.scenes
    assert root is not None
    key = repr(tile.grid) + "".join(f"{s.collection}/{s.index}" for ss in worldcover_scenes(root).values() for s in ss)
    name = f"{tile.id}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.tif"
    return LandMask.staged(root, tile.grid, ctx.cfg.paths.output / "cache" / "land" / name)


def run_highres(ctx: Context, sensors: tuple[str, ...]) -> dict[str, chains.Availability]:
    """Preprocess the high-resolution scenes of ``sensors`` for every tile; stage them in the work
    folder, each written window by window."""
    out = {}
    for tile in ctx.cfg.local_chain.tiles:
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


def run_local_composite(ctx: Context) -> dict[str, Composite]:
    """Dekad composite of the staged S2 + Landsat scenes with window widening, per tile, written
    window by window into the work folder's archive mirror."""
    out = {}
    windows = {}
    for tile in ctx.cfg.local_chain.tiles:
        paths = {i: ctx.staged.local_composite(tile.id, i, ctx.dekad) for i in ("NDVI", "NDWI")}
        comp = chains.write_local_composite(ctx.cfg, ctx.dekad, tile, staged_scenes(ctx, tile),
                                            _tile_land(ctx, tile), paths)
        ctype = comp.composite_type(ctx.dekad)
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
