"""Build the embedded demo archive into ``cfg.paths.scenes`` (resumable, deterministic)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..config import Config, Grid
from ..local.scenes import collection_dir, write_scene
from ..storage import write_text_atomic
from .highres import render_s2_pair
from .medres import render_worldcover
from .model import (
    SAMPLE_PRODUCTS,
    WORLDCOVER_COLLECTIONS,
    WORLDCOVER_TIME,
    RenderedScene,
    acquisition_dates,
    acquisition_time,
    finer,
    product_grids,
    scene_index,
    worldcover_index,
)
from .render import WORLDCOVER_GLOBAL_FACTOR, render_scene
from .territory import DEMO_DROUGHT, outline_geojson, zones_geojson
from .world import SPAN_END, SPAN_START

GENERATOR_VERSION = "2"  # 2: MOD09GA sur_refl_b01 and VNP09GA I1 (NDVI)
MANIFEST = "manifest.json"
Progress = Callable[[int, int], None]
# (product key, local date ISO) or ("WorldCover", "<version>:<grid name>")
Task = tuple[str, str]


def _grids(cfg: Config) -> tuple[Grid, Grid]:
    if not cfg.local_chain.tiles:
        raise ValueError("the demo archive needs one local_chain tile (the 10 m demo tile)")
    return cfg.local_chain.tiles[0].grid, cfg.global_chain.grid


def _root(cfg: Config) -> Path:
    if cfg.paths.scenes is None:
        raise ValueError("paths.scenes is not set: nowhere to write the demo archive")
    return Path(cfg.paths.scenes)


def _sidecar(root: Path, collection: str, index: str, time_start: datetime) -> Path:
    return collection_dir(root, collection) / f"{time_start.astimezone(UTC).year:04d}" / f"{index}.json"


def _worldcover_grids(cfg: Config) -> dict[str, Grid]:
    tile, glob = _grids(cfg)
    return {cfg.local_chain.tiles[0].id: tile, "global": finer(glob, WORLDCOVER_GLOBAL_FACTOR)}


def _plan(cfg: Config, start: date, end: date) -> list[tuple[Task, list[tuple[str, Path]]]]:
    """Every task with the (collection, sidecar) of each scene it writes."""
    root = _root(cfg)
    plan: list[tuple[Task, list[tuple[str, Path]]]] = []
    for version, collection in WORLDCOVER_COLLECTIONS.items():
        for name in _worldcover_grids(cfg):
            side = _sidecar(root, collection, worldcover_index(version, name), WORLDCOVER_TIME[version])
            plan.append((("WorldCover", f"{version}:{name}"), [(collection, side)]))
    for key in SAMPLE_PRODUCTS:
        if key == "S2_CLOUD_PROBABILITY":
            continue  # written with S2
        keys = [key, "S2_CLOUD_PROBABILITY"] if key == "S2" else [key]
        for day in acquisition_dates(key, start, end):
            outs = [(SAMPLE_PRODUCTS[k].collection,
                     _sidecar(root, SAMPLE_PRODUCTS[k].collection, scene_index(k, day), acquisition_time(k, day)))
                    for k in keys]
            plan.append(((key, day.isoformat()), outs))
    return plan


def _render_task(cfg: Config, task: Task) -> list[RenderedScene]:
    key, arg = task
    if key == "WorldCover":
        version, name = arg.split(":", 1)
        return [render_worldcover(version, _worldcover_grids(cfg)[name], name)]
    day = date.fromisoformat(arg)
    grid = product_grids(*_grids(cfg))[key]
    if key == "S2":
        return list(render_s2_pair(day, grid))
    return [render_scene(key, day, grid)]


_WORKER_CFG: Config | None = None


def _init_worker(cfg: Config) -> None:
    global _WORKER_CFG
    _WORKER_CFG = cfg


def _run_task(task: Task, cfg: Config | None = None) -> int:
    cfg = cfg or _WORKER_CFG
    assert cfg is not None
    scenes = _render_task(cfg, task)
    for s in scenes:
        write_scene(_root(cfg), s.collection, s.index, s.time_start, s.properties, s.groups, s.grid)
    return len(scenes)


def _grid_record(cfg: Config) -> dict[str, list[Any]]:
    return {name: [*g.transform, g.width, g.height, g.crs] for name, g in zip(("tile", "global"), _grids(cfg),
                                                                              strict=True)}


def _manifest(cfg: Config, start: date, end: date, counts: Counter[str]) -> dict[str, Any]:
    return {
        "generator": "eo4dm_helpers.sample",
        "version": GENERATOR_VERSION,
        "span": {"start": start.isoformat(), "end": end.isoformat()},
        "complete": start <= SPAN_START and end >= SPAN_END,
        "timezone": cfg.territory.timezone,
        "grids": _grid_record(cfg),
        "drought": {"first": DEMO_DROUGHT.first.label, "last": DEMO_DROUGHT.last.label,
                    "ndwi_drop": DEMO_DROUGHT.ndwi_drop, "ndvi_drop": DEMO_DROUGHT.ndvi_drop,
                    "lst_rise": DEMO_DROUGHT.lst_rise, "region": DEMO_DROUGHT.region.wkt},
        "files": {"outline": "outline.geojson", "zones": "zones.geojson"},
        "counts": dict(sorted(counts.items())),
    }


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(path, text)
    return True


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def build_demo_archive(
    cfg: Config,
    *,
    progress: Progress | None = None,
    start: date | None = None,
    end: date | None = None,
    force: bool = False,
    workers: int | None = None,
) -> Path:
    """Write every missing scene of the demo archive (local dates ``start``-``end``, default the whole
    span), ``outline.geojson``, ``zones.geojson`` and, last, ``manifest.json``. Returns the root.

    A scene whose sidecar exists is skipped (``force`` rewrites it); the manifest is marked incomplete
    while scenes are being written. ``progress(done, total)`` counts scenes written. Output bytes depend
    only on the configuration grids, never on the order of work or the number of ``workers``
    (default: up to 2 processes).
    """
    start, end = max(start or SPAN_START, SPAN_START), min(end or SPAN_END, SPAN_END)
    root = _root(cfg)
    old = read_manifest(cfg)
    if old is not None and old.get("version") != GENERATOR_VERSION:
        force = True  # scenes of another generator version are rewritten, never mixed
    plan = _plan(cfg, start, end)
    todo = [(task, len(outs)) for task, outs in plan if force or not all(side.exists() for _, side in outs)]
    if _is_complete(cfg):  # a partial run over a complete archive keeps its manifest
        manifest_text = (root / MANIFEST).read_text(encoding="utf-8")
    else:
        counts: Counter[str] = Counter(coll for _, outs in plan for coll, _ in outs)
        manifest_text = _dumps(_manifest(cfg, start, end, counts))
    root.mkdir(parents=True, exist_ok=True)
    if todo:  # while scenes are written the manifest says so, and which generator version writes them
        (root / MANIFEST).write_text(_dumps({"version": GENERATOR_VERSION, "complete": False}), encoding="utf-8")
    _write_if_changed(root / "outline.geojson", _dumps(outline_geojson()))
    _write_if_changed(root / "zones.geojson", _dumps(zones_geojson()))
    done, total = 0, sum(n for _, n in todo)
    for n in _execute(cfg, [task for task, _ in todo], workers):
        done += n
        if progress:
            progress(done, total)
    _write_if_changed(root / MANIFEST, manifest_text)
    return root


def _execute(cfg: Config, todo: list[Task], workers: int | None) -> Iterable[int]:
    n = workers if workers is not None else min(2, os.cpu_count() or 1)
    if n <= 1 or len(todo) < 40:
        for task in todo:
            yield _run_task(task, cfg)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(n, initializer=_init_worker, initargs=(cfg,)) as pool:
        yield from pool.imap_unordered(_run_task, todo, chunksize=8)


def read_manifest(cfg: Config) -> dict[str, Any] | None:
    path = _root(cfg) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_complete(cfg: Config) -> bool:
    m = read_manifest(cfg)
    if not m or m.get("version") != GENERATOR_VERSION or not m.get("complete"):
        return False
    return m.get("grids") == _grid_record(cfg)


def is_built(cfg: Config) -> bool:
    """True when the complete demo archive of this generator version exists for ``cfg``'s grids."""
    return _is_complete(cfg) and (_root(cfg) / "zones.geojson").is_file()
