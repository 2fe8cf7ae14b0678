"""Bring a dekad's composites home from Earth Engine: direct tiled download for what fits in a few
requests, batch export to Drive for the rest (DOMAIN.md §5.5, design note §2 and §6).

``download_dekad`` is what the download notebook calls. It starts the Drive exports first (they run on
Earth Engine meanwhile), downloads the direct products, then collects the exports as they finish. The
state of every product is kept in ``<work>/download/state.json``: a rerun skips what is done, resumes
running exports and half-fetched tiles, and never re-exports a finished export.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from .drive import DRIVE_FOLDER, POLL, PollPolicy, finish_export, start_export, wait_for_exports
from .errors import RETRY, RetryPolicy, TransferError, classify
from .io import TransferIO
from .pixels import band_dtypes, download_together
from .plan import ExportPlan
from .state import TransferState
from .tiles import LIMITS, Limits, bytes_per_pixel, plan_tiles

Method = Literal["direct", "drive"]
# At most this many computePixels requests go direct: the global dekad (~1165 x 820 px, 2 bands) takes
# one; a 10 m tile (18,500 x 18,500 px) takes ~73 and goes to Drive (DOMAIN.md §5.5 sizing).
DIRECT_MAX_REQUESTS = 8


class Choice(NamedTuple):
    method: Method
    reason: str


def _mb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def choose_method(plan: ExportPlan, force: Method | None = None, limits: Limits = LIMITS) -> Choice:
    """``direct`` when the product fits in at most :data:`DIRECT_MAX_REQUESTS` ``computePixels`` requests,
    else ``drive``; ``force`` overrides (a forced direct download is tiled whatever its size)."""
    if force not in (None, "direct", "drive"):
        raise ValueError(f"method must be 'direct', 'drive' or None, not {force!r}")
    g = plan.grid
    dtypes = band_dtypes(plan)
    n = len(plan_tiles(g.width, g.height, dtypes, limits))
    size = _mb(g.width * g.height * bytes_per_pixel(dtypes))
    if force == "direct":
        return Choice("direct", f"forced by the user: {n} computePixels request(s), {size} with the mask bytes")
    if force == "drive":
        return Choice("drive", f"forced by the user: batch export to Drive ({size} with the mask bytes)")
    if n <= DIRECT_MAX_REQUESTS:
        return Choice("direct", f"{n} computePixels request(s) of at most {_mb(limits.request_bytes)} "
                                f"({size} with the mask bytes)")
    return Choice("drive", f"{size} with the mask bytes would take {n} computePixels requests (direct up to "
                           f"{DIRECT_MAX_REQUESTS}): batch export to Drive; force 'direct' to tile it")


def fetched_together(plans: Sequence[ExportPlan]) -> list[list[ExportPlan]]:
    """``plans`` grouped by the image they share (``ExportPlan.shared``) and their grid, in order: each
    group is fetched in one set of ``computePixels`` requests; a plan sharing nothing is alone."""
    groups: dict[object, list[ExportPlan]] = {}
    for p in plans:
        key = (id(p.shared), p.grid) if p.shared is not None else id(p)
        groups.setdefault(key, []).append(p)
    return list(groups.values())


def _check_paths(plans: Sequence[ExportPlan], archive_root: Path) -> None:
    root = Path(archive_root).resolve()
    names = set()
    for p in plans:
        if not Path(p.archive_path).resolve().is_relative_to(root):
            raise ValueError(f"{p.product}: {p.archive_path} is outside the archive {root}")
        if p.product in names:
            raise ValueError(f"two plans are named {p.product}")
        names.add(p.product)


def download_dekad(plans: Sequence[ExportPlan], work_dir: Path, archive_root: Path, io: TransferIO, *,
                   method: Method | None = None, concurrency: int = 4, log: Callable[[str], None] = print,
                   drive_folder: str = DRIVE_FOLDER, limits: Limits = LIMITS, retry: RetryPolicy = RETRY,
                   poll: PollPolicy = POLL, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> list[Path]:
    """Download every plan into ``plan.archive_path`` (COG, atomic rename) and return those paths.

    ``method`` forces one route for all plans (default: :func:`choose_method`; an export already running
    from an earlier run is collected whatever ``method``); ``concurrency`` bounds the parallel
    ``computePixels`` requests. Products already done are skipped; a failure of one product
    does not stop the others, and one :class:`TransferError` listing every failure is raised at the end
    (a rerun resumes). Deterministic errors are never retried.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    _check_paths(plans, archive_root)
    work = Path(work_dir) / "download"
    state = TransferState(work / "state.json")
    failures: dict[str, str] = {}
    direct: list[ExportPlan] = []
    exports: list[ExportPlan] = []
    kw = {"retry": retry, "sleep": sleep, "log": log}

    for p in plans:
        entry = state.get(p.product)
        status = entry.get("status")
        if status == "done" and p.archive_path.exists():
            log(f"{p.product}: already in the archive ({p.archive_path.name})")
            continue
        if status is None and p.archive_path.exists():
            log(f"{p.product}: already in the archive ({p.archive_path.name}); delete it to download it again")
            state.update(p.product, status="done", method="none", reason="file present before this run")
            continue
        if status in ("starting", "exporting", "exported", "archived") and entry.get("method") == "drive":
            log(f"{p.product}: resuming its Drive export ({status})")
            exports.append(p)
            continue
        choice = choose_method(p, method, limits)
        log(f"{p.product}: method {choice.method} - {choice.reason}")
        state.reset(p.product, method=choice.method, reason=choice.reason)
        (exports if choice.method == "drive" else direct).append(p)

    if exports and io.drive is None:
        for p in exports:
            failures[p.product] = (f"{p.product}: needs a Drive export but no Drive is configured: give LiveIO a "
                                   "PyDrive2Drive (user credentials, or a service account with a shared drive), "
                                   "or force method='direct'")
        exports = []
    if exports:
        _warn_drive_space([p for p in exports if state.get(p.product).get("status") is None], io, log)
    started = []
    for p in exports:  # start every export first: Earth Engine works on them while we download the rest
        try:
            if state.get(p.product).get("status") in (None, "starting"):
                start_export(p, state, io, drive_folder, **kw)
            started.append(p)
        except TransferError as err:  # stays "starting": a rerun reuses the request id (never two tasks)
            failures[p.product] = str(err)
            state.update(p.product, error=str(err))

    for group in fetched_together(direct):
        try:
            download_together(group, work, io, concurrency=concurrency, limits=limits, **kw)
            for p in group:
                state.update(p.product, status="done", error=None)
        except TransferError as err:  # fetched tiles stay in the work folder for the rerun
            for p in group:
                failures[p.product] = str(err)
                state.update(p.product, status="failed", error=str(err))

    by_name = {p.product: p for p in started}
    finished = [n for n in by_name if state.get(n).get("status") in ("exported", "archived")]  # earlier runs
    try:
        for product in finished:
            _collect(by_name[product], None, state, io, work, failures, kw)
        running = [n for n in by_name if n not in finished]
        for product, err in wait_for_exports(running, state, io, poll, clock=clock, **kw):
            _collect(by_name[product], err, state, io, work, failures, kw)
    except TransferError as err:  # time-out: the tasks go on; a rerun resumes them
        failures["exports"] = str(err)

    if failures:
        raise TransferError(f"{len(failures)} of {len(plans)} product(s) not downloaded (rerun to resume; state in "
                            f"{state.path}):\n" + "\n".join(f"- {m}" for m in failures.values()))
    return [p.archive_path for p in plans]


def _collect(plan: ExportPlan, err: TransferError | None, state: TransferState, io: TransferIO, work: Path,
             failures: dict[str, str], kw: dict) -> None:
    """Finish a successful export (download, verify, archive, delete from Drive) or record its error;
    the product's status stays where it was, so a rerun resumes from there."""
    if err is None:
        try:
            assert io.drive is not None
            finish_export(plan, state, io.drive, work, **kw)
            state.update(plan.product, error=None)
            return
        except TransferError as e:
            err = e
        except OSError as e:  # disk errors while writing the files
            err = classify(e, plan.product)
    failures[plan.product] = str(err)
    state.update(plan.product, error=str(err))


def _warn_drive_space(new: list[ExportPlan], io: TransferIO, log: Callable[[str], None]) -> None:
    """Warn when the new exports may not fit in the Drive (upper bound: uncompressed float32)."""
    if not new or io.drive is None:
        return
    try:
        free = io.drive.free_bytes()
    except Exception:  # only a warning: the export itself reports a full Drive clearly
        return
    need = sum(p.grid.width * p.grid.height * len(p.bands) * 4 for p in new)
    if free is not None and need > free:
        log(f"warning: the Drive has {_mb(free)} free and the {len(new)} new export(s) may need up to {_mb(need)} "
            "(uncompressed); free space in the Drive if the exports fail")
