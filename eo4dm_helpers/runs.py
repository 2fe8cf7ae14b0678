"""Who writes into the archive: the routine run holding its lock, or an analyst's notebook.

``run_all.py`` takes the archive lock, then names itself in the environment of the kernels it starts
(``EO4DM_RUN_ID``, ``EO4DM_LOCK_HOLDER``): their archive writes go ahead only while that lock is still
theirs. A notebook executed by hand has neither: it works in a work folder of its own
(``<output>/work/interactive-<user>/``) and takes the lock only while it writes into the archive, so it
never races a scheduled run.

Every work folder carries a ``.run`` marker naming the run that made it; a commit moves only files staged
by its own run, and a new routine run removes the work folders of earlier (dead) runs before it starts.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

RUN_ENV, HOLDER_ENV = "EO4DM_RUN_ID", "EO4DM_LOCK_HOLDER"
MARKER = ".run"
INTERACTIVE = "interactive-"


class WorkFolderError(RuntimeError):
    """A work folder belongs to another run: its files are never committed by this one."""


def new_run_id() -> str:
    return f"run-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{os.getpid()}"


def interactive_id() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return INTERACTIVE + (re.sub(r"[^A-Za-z0-9_.-]", "_", user) or "user")


def current() -> tuple[str, str | None]:
    """(run id, lock holder) of this process: the routine's from the environment, else an interactive id
    and no holder (the lock is then taken for each archive write)."""
    run = os.environ.get(RUN_ENV)
    if run:
        return run, os.environ.get(HOLDER_ENV) or None
    return interactive_id(), None


def work_root(output: Path) -> Path:
    return Path(output) / "work"


def _owner(folder: Path) -> str | None:
    """The run named by the nearest ``.run`` marker in ``folder`` or above it (None: no marker)."""
    for f in (folder, *folder.parents):
        marker = f / MARKER
        if marker.is_file():
            return marker.read_text(encoding="utf-8", errors="replace").strip()
    return None


def make_work(folder: Path, run_id: str) -> Path:
    """Create ``folder`` for ``run_id`` (or reuse it when it is already that run's)."""
    folder = Path(folder)
    owner = _owner(folder)
    if owner is not None and owner != run_id:
        raise WorkFolderError(f"the work folder {folder} belongs to {owner}, not to this run ({run_id}): "
                              "choose another work_dir or remove it")
    folder.mkdir(parents=True, exist_ok=True)
    if owner is None:
        (folder / MARKER).write_text(run_id, encoding="utf-8")
    return folder


def check_owner(folder: Path, run_id: str) -> None:
    """Raise unless ``folder`` (or a parent work folder) was made by ``run_id``."""
    owner = _owner(Path(folder))
    if owner is None:
        raise WorkFolderError(f"{folder} has no {MARKER} marker: its files are not committed (not staged by this "
                              "run); run the step again")
    if owner != run_id:
        raise WorkFolderError(f"{folder} was staged by {owner}, not by this run ({run_id}): its files are not "
                              "committed (a dead run's work); run the step again")


def clean_dead_work(output: Path, keep: str) -> list[Path]:
    """Remove the work folders of earlier routine runs (never an analyst's ``interactive-*`` folder)."""
    root = work_root(output)
    removed = []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if p.name == keep or p.name.startswith(INTERACTIVE):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed
