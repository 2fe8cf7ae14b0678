"""Batch export to Drive, then download with pydrive2 (design note §2 and §6: ~10 min for a 500 MB tile,
15 GB of free Drive).

Per product: start ``Export.image.toDrive`` (explicit CRS, transform, region, maxPixels from
``ExportPlan.export``) with a request id kept in the state, so a retried or resumed start never makes a
second task; poll the tasks with backoff and an overall time-out, logging each one's duration and EECU
usage; download every file of the export, check its size and md5 against Drive's metadata, mosaic the
files into the archive COG (atomic), and only then delete them from Drive.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cog import assemble_files
from .errors import (
    ExportTimeout,
    RetryPolicy,
    TransferError,
    TransientError,
    VerificationError,
    call_with_retry,
    classify,
)
from .io import DriveFile, DriveIO, ExportIO, TaskStatus
from .pixels import FILL, download_expression
from .plan import ExportPlan
from .state import TransferState

DRIVE_FOLDER = "eo4dm_exports"


@dataclass(frozen=True)
class PollPolicy:
    """Task polling: the first wait, growing by ``factor`` up to ``max_delay``; give up after ``timeout``
    seconds of this run (the tasks keep running on Earth Engine and a rerun resumes them)."""

    first: float = 10.0
    factor: float = 1.5
    max_delay: float = 120.0
    timeout: float = 4 * 3600.0


POLL = PollPolicy()


def export_params(plan: ExportPlan, folder: str, prefix: str) -> dict[str, Any]:
    """``Export.image.toDrive`` arguments: ``plan.export`` (crs, crsTransform, region, maxPixels) with the
    filled image of the direct route, the Drive folder and a unique file-name prefix."""
    return {**plan.export, "image": download_expression(plan), "folder": folder, "fileNamePrefix": prefix,
            "fileFormat": "GeoTIFF"}


def start_export(plan: ExportPlan, state: TransferState, io: ExportIO, folder: str, *, retry: RetryPolicy,
                 sleep: Callable[[float], None], log: Callable[[str], None]) -> str:
    """Start (or resume starting) the product's export; returns the task name, kept in the state."""
    entry = state.get(plan.product)
    if entry.get("status") != "starting" or "request_id" not in entry:
        rid = str(uuid.uuid4())
        entry = state.update(plan.product, status="starting", request_id=rid, prefix=f"{plan.product}_{rid[:8]}",
                             folder=folder, task=None, files=None, error=None)
    params = export_params(plan, entry["folder"], entry["prefix"])
    task = call_with_retry(lambda: io.start_export(params, entry["request_id"]), f"{plan.product} (export start)",
                           retry, sleep=sleep, log=log)
    state.update(plan.product, status="exporting", task=task)
    log(f"{plan.product}: export to Drive started (folder {entry['folder']}, files {entry['prefix']}*)")
    return task


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def wait_for_exports(products: list[str], state: TransferState, io: ExportIO, policy: PollPolicy, *,
                     retry: RetryPolicy, clock: Callable[[], float], sleep: Callable[[float], None],
                     log: Callable[[str], None]) -> Iterator[tuple[str, TransferError | None]]:
    """Poll the products' tasks until each ends; yield ``(product, None)`` as each succeeds (so it can be
    downloaded while the others run) or ``(product, error)`` when it failed. Raises
    :class:`ExportTimeout` naming the tasks still running after ``policy.timeout``."""
    pending = list(products)
    started = clock()
    delay = policy.first
    while pending:
        for product in list(pending):
            entry = state.get(product)
            try:
                st: TaskStatus = call_with_retry(lambda e=entry: io.task_status(e["task"]),
                                                 f"{product} (export status)", retry, sleep=sleep, log=log)
            except TransferError as err:
                pending.remove(product)
                yield product, err
                continue
            if not st.done:
                continue
            pending.remove(product)
            took = (st.update - st.start) if st.start and st.update else None
            eecu = f"{st.eecu_seconds:.1f} EECU-seconds" if st.eecu_seconds is not None else "EECU usage not reported"
            if st.state == "SUCCEEDED":
                state.update(product, status="exported", eecu_seconds=st.eecu_seconds, export_seconds=took)
                log(f"{product}: export done in {_minutes(took) if took is not None else '?'}, {eecu}")
                yield product, None
            else:
                msg = st.error or ("cancelled (rerun to export it again)" if st.state == "CANCELLED" else st.state)
                err = classify(RuntimeError(msg), f"{product} (export task)")
                if isinstance(err, TransientError):  # the task is over: a rerun starts a new one
                    err = TransferError(f"{err}; rerun to export it again")
                state.update(product, status="failed", error=str(err))
                log(f"{product}: export {st.state.lower()} after {_minutes(took) if took else '?'}, {eecu}")
                yield product, err
        if not pending:
            return
        if clock() - started >= policy.timeout:
            raise ExportTimeout(f"export(s) still running after {_minutes(policy.timeout)}: {', '.join(pending)}. "
                                "They keep running on Earth Engine; rerun later to download them (nothing is "
                                f"exported again; state in {state.path})")
        sleep(min(delay, max(0.0, policy.timeout - (clock() - started))))
        delay = min(policy.max_delay, delay * policy.factor)


def md5_of(path: Path, chunk: int = 2**20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, f: DriveFile) -> bool:
    return path.is_file() and path.stat().st_size == f.size and md5_of(path) == f.md5


def fetch_file(drive: DriveIO, f: DriveFile, dest: Path, *, retry: RetryPolicy, sleep: Callable[[float], None],
               log: Callable[[str], None], attempts: int = 2) -> Path:
    """Download ``f`` to ``dest`` (via ``dest.part``), checked against Drive's size and md5; a local copy
    already verified is kept. A mismatch is downloaded again once, then raises :class:`VerificationError`."""
    if _verified(dest, f):
        return dest
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, attempts + 1):
        call_with_retry(lambda: drive.download(f, part), f"{f.name} (Drive download)", retry, sleep=sleep, log=log,
                        drive=True)
        size, digest = part.stat().st_size, md5_of(part)
        if size == f.size and digest == f.md5:
            os.replace(part, dest)
            return dest
        part.unlink(missing_ok=True)
        msg = (f"{f.name}: the download does not match Drive's metadata ({size} bytes, md5 {digest}; Drive says "
               f"{f.size} bytes, md5 {f.md5})")
        if attempt == attempts:
            raise VerificationError(f"{msg} after {attempts} downloads. The file stays in Drive; rerun to try again")
        log(f"{msg}: downloading it again")
    raise AssertionError("unreachable")


def finish_export(plan: ExportPlan, state: TransferState, drive: DriveIO, work_dir: Path, *, retry: RetryPolicy,
                  sleep: Callable[[float], None], log: Callable[[str], None]) -> Path:
    """Download, verify and mosaic an exported product into the archive, then delete it from Drive."""
    entry = state.get(plan.product)
    folder = Path(work_dir) / plan.product
    folder.mkdir(parents=True, exist_ok=True)
    if entry.get("status") == "exported":
        files = call_with_retry(lambda: drive.list_files(entry["prefix"]), f"{plan.product} (Drive listing)", retry,
                                sleep=sleep, log=log, drive=True)
        if not files:
            raise TransferError(f"{plan.product}: the export succeeded but Drive has no file named "
                                f"{entry['prefix']}*: was it moved or deleted? Rerun to export it again")
        state.update(plan.product, files=[{"id": f.id, "name": f.name, "size": f.size, "md5": f.md5} for f in files])
        t0 = time.monotonic()
        local = [fetch_file(drive, f, folder / f.name, retry=retry, sleep=sleep, log=log) for f in files]
        mb = sum(f.size for f in files) / 2**20
        log(f"{plan.product}: {len(files)} file(s), {mb:.1f} MB downloaded and verified (md5) in "
            f"{time.monotonic() - t0:.1f} s")
        assemble_files(sorted(local), plan.grid, plan.bands, folder / "assembling.tif", plan.archive_path, FILL)
        state.update(plan.product, status="archived")
        for p in local:
            p.unlink(missing_ok=True)
    files = [DriveFile(d["id"], d["name"], d["size"], d["md5"]) for d in entry.get("files", [])]
    kept = []
    for f in files:  # the archive holds the verified copy: only now is the Drive file deleted
        try:
            call_with_retry(lambda f=f: drive.delete(f), f"{f.name} (Drive delete)", retry, sleep=sleep, log=log,
                            drive=True)
        except TransferError as err:
            kept.append(f.name)
            log(f"warning: {err} - delete it by hand to free Drive space")
    state.update(plan.product, status="done", kept_in_drive=kept or None)
    return plan.archive_path
