"""Dekads processed in-process, without notebooks: the historical reference (``--backfill``, and auto
mode's dekads before the bulletins start). The steps are the notebooks' own, per backend; each dekad
gets what it lacks (completeness.missing) and nothing else, and every write goes through ``commit``
(or, on Earth Engine, the download step), so a run cut short leaves whole files and incomplete dekads
that the next run completes.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from . import chains, runs
from . import completeness as C
from .config import Config
from .dekads import Dekad
from .workflow import Context, commit, run_global, run_highres, run_local_composite

Log = Callable[[str], None]


def _context(cfg: Config, dekad: Dekad, step: str) -> Context:
    run_id, holder = runs.current()
    work = runs.work_root(cfg.paths.output) / run_id / f"{step}-{dekad.label}"
    if work.exists():  # this run's own leftovers (a step that failed): start afresh
        shutil.rmtree(work)
    runs.make_work(work, run_id)
    return Context(cfg, dekad, work, run_id, holder)


def _cleanup(ctx: Context) -> None:
    shutil.rmtree(ctx.work, ignore_errors=True)
    with contextlib.suppress(OSError):  # the run's folder, when nothing else is in it
        ctx.work.parent.rmdir()


def _chains_lacking(todo: Iterable[C.Product], root: Path) -> set[str]:
    out = set()
    for p in todo:
        if p.kind in (C.COMPOSITE, C.MONTH_COMPOSITE):
            out.add(C.product_of(p.path.relative_to(root))[1])
    return out


def build_composites(cfg: Config, dekad: Dekad, inv: C.Inventory, *, log: Log = print) -> list[Path]:
    """The composites ``dekad`` lacks (or their no-data records), committed; returns the files written."""
    need = _chains_lacking(C.missing(cfg, dekad, inv, bulletin=False), cfg.paths.archive)
    if not need:
        return []
    ctx = _context(cfg, dekad, "history")
    try:
        if cfg.backend == "earthengine":
            from .ee import steps

            return steps.download(ctx)
        if "global" in need:
            try:
                res = run_global(ctx)
                if res.no_data:
                    log(f"{dekad.label}: global chain: {res.no_data}")
            except chains.NoDataError as exc:  # no sensor configured for the date: nothing is expected
                log(f"{dekad.label}: global chain: {exc}")
        tiles = tuple(t for t in cfg.local_chain.tiles if t.id in need)
        if tiles:
            sensors = tuple(s.name for s in cfg.local_chain.sensors)
            run_highres(ctx, sensors, tiles=tiles)
            comps = run_local_composite(ctx, tiles=tiles)
            for t in tiles:
                if t.id not in comps:
                    log(f"{dekad.label}: local chain, tile {t.id}: no usable scene (no-data record)")
        return commit(ctx)
    finally:
        _cleanup(ctx)


def build_indicators(cfg: Config, dekad: Dekad) -> list[Path]:
    """Indicators and zone statistics of ``dekad`` from the archive, committed; returns the files written."""
    from .drought import run_indicators

    ctx = _context(cfg, dekad, "indicators")
    try:
        run_indicators(ctx)
        return [cfg.paths.archive / p for p in ctx.notes().get("committed", [])]
    finally:
        _cleanup(ctx)


def complete(cfg: Config, dekads: Iterable[Dekad], inv: C.Inventory, *, log: Log = print,
             progress: Callable[[int, int, Dekad], None] | None = None) -> int:
    """Give each of ``dekads`` (in order) every product it lacks except the bulletin; returns how many
    dekads were worked on."""
    dekads = list(dekads)
    worked = 0
    for k, d in enumerate(dekads, start=1):
        todo = C.missing(cfg, d, inv, bulletin=False)
        if not todo:
            continue
        if progress:
            progress(k, len(dekads), d)
        if C.composites_missing(todo):
            inv.add(build_composites(cfg, d, inv, log=log))
            todo = C.missing(cfg, d, inv, bulletin=False)
            if C.composites_missing(todo):
                log(f"warning: {d.label}: still lacks "
                    f"{C.summary(p for p in todo if p.kind in (C.COMPOSITE, C.MONTH_COMPOSITE))} after processing")
        if any(p.kind in C.DERIVED for p in todo):
            inv.add(build_indicators(cfg, d))
        worked += 1
    return worked
