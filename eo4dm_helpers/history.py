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


def build_composites(cfg: Config, dekad: Dekad, inv: C.Inventory, *, log: Log = print,
                     replace: set[str] | None = None) -> list[Path]:
    """The composites ``dekad`` lacks (or their no-data records), and those of the chains in ``replace``
    (imported ones rebuilt), committed; returns the files written."""
    need = _chains_lacking(C.missing(cfg, dekad, inv, bulletin=False), cfg.paths.archive) | (replace or set())
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
        files = commit(ctx)
        _forget_derived(cfg, inv, files)
        return files
    finally:
        _cleanup(ctx)


def _forget_derived(cfg: Config, inv: C.Inventory, files: Iterable[Path]) -> None:
    """Drop from ``inv`` what a commit of new composites removed (their dekad's indicators, statistics)."""
    for f in files:
        d, chain = C.product_of(f.relative_to(cfg.paths.archive))
        if d is not None and f.relative_to(cfg.paths.archive).parts[0] == "composites":
            inv.discard(C.derived_of(cfg, d, [chain]))


def imported_chains(cfg: Config, dekad: Dekad, inv: C.Inventory) -> set[str]:
    """Chains ("global", tile ids) of ``dekad`` with a composite imported from EO4DM (tag SOURCE)."""
    from .archive import SOURCE_IMPORT, source_of

    out = set()
    for p in C.expected(cfg, dekad, inv, bulletin=False):
        if p.kind in (C.COMPOSITE, C.MONTH_COMPOSITE) and inv.has(p.path) and source_of(p.path) == SOURCE_IMPORT:
            out.add(C.product_of(p.path.relative_to(cfg.paths.archive))[1])
    return out


def build_composites_ee(cfg: Config, dekads: Iterable[Dekad], inv: C.Inventory, *, log: Log = print,
                        replace: dict[Dekad, set[str]] | None = None, io=None, policy=None) -> list[Path]:
    """Every composite ``dekads`` lack on Earth Engine (and those of ``replace``: chains to rebuild, e.g.
    imported EO4DM composites), in batches of many dekads (``ee.backfill``), committed; returns the files
    written. The inventory forgets what the commits made stale (indicators of replaced composites)."""
    from .ee import backfill as B

    todo: dict[str, list[Dekad]] = {}
    for d in dekads:
        chains = _chains_lacking(C.missing(cfg, d, inv, bulletin=False), cfg.paths.archive)
        chains |= (replace or {}).get(d, set())
        for c in sorted(chains):
            todo.setdefault(c, []).append(d)
    if not todo:
        return []
    if io is None:
        from .ee.steps import live_io

        io = live_io(cfg)
    if policy is None:
        dl = cfg.download
        policy = B.BatchPolicy(concurrency=dl.concurrency, method=None if dl.method == "auto" else dl.method)
    out = B.backfill(cfg, todo, io, policy=policy, log=log, drive_folder=cfg.download.drive_folder)
    files = out.files or []
    _forget_derived(cfg, inv, files)
    inv.add(files)
    return files


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
