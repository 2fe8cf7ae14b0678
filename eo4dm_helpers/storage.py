"""Atomic file writes and the run lock (ARCHITECTURE.md §4).

Every write goes to a temporary file in the destination folder, is flushed to disk, then renamed
over the destination: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success fsync it and rename it to ``dest``.

    On error the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{dest.name}"
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
        with contextlib.suppress(OSError):
            dir_fd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):  # never hide the error by another (e.g. on a read-only disk)
            tmp.unlink()
        if exc.errno is not None and exc.filename is None:  # write() errors (ENOSPC...) name no file: name it
            raise OSError(exc.errno, exc.strerror, str(dest)) from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomic(dest: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def clean_temporaries(folder: str | os.PathLike[str]) -> int:
    """Remove temporary files left by a crashed run below ``folder``; return how many."""
    n = 0
    for p in Path(folder).rglob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if p.is_dir():
                import shutil

                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n


class LockError(RuntimeError):
    """Another run holds the lock, or the lock cannot be used."""


LOCK_NAME = ".eo4dm.lock"
_HELD: set[str] = set()  # locks this process holds (a lock naming this pid but not in here is stale)


def lock_holder() -> str:
    """How this process names itself in a lock file: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def read_lock(folder: str | os.PathLike[str]) -> str | None:
    """The holder named by the lock of ``folder`` (None when there is no lock)."""
    lock = Path(folder) / LOCK_NAME
    try:
        return lock.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(f"the lock {lock} cannot be read ({exc.strerror}): remove it if no run is active") from None


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str]) -> Iterator[str]:
    """Exclusive lock on an archive folder; yields this process's holder name (``host:pid``).

    A lock left by a dead process on this host is taken over, and so is one naming this very process (its
    pid was reused, e.g. pid 1 in a container). A lock held by another host, or naming no process, is never
    taken over; neither is a lock path that is not a regular file.
    """
    from .interrupt import deferred

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    me = lock_holder()
    acquired = False
    try:
        with deferred():  # a signal now is raised once the lock is whole (and then released below)
            for _ in range(3):
                try:
                    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o644)
                except FileExistsError:
                    if lock.is_symlink() or not lock.is_file():
                        raise LockError(f"the lock {lock} is not a regular file: remove it if no run is "
                                        "active") from None
                    holder = read_lock(folder) or ""
                    host, _, pid = holder.partition(":")
                    mine = holder == me and str(lock.resolve()) in _HELD  # this process holds it already
                    if not mine and host == socket.gethostname() and pid.isdigit() and \
                            (int(pid) == os.getpid() or not _alive(int(pid))):
                        lock.unlink(missing_ok=True)  # stale: its process is gone (or its pid is now ours)
                        continue
                    raise LockError(f"{folder} is locked by another run ({holder or 'unknown'}); "
                                    f"wait for it to finish or remove {lock} if no run is active") from None
                acquired = True
                try:
                    with os.fdopen(fd, "w") as fh:
                        fh.write(me)
                except OSError:  # e.g. a full disk: never leave a lock that names nobody
                    lock.unlink(missing_ok=True)
                    acquired = False
                    raise
                _HELD.add(str(lock.resolve()))
                break
            else:  # pragma: no cover - stale takeovers racing with another process
                raise LockError(f"could not take the lock {lock}")
        yield me
    finally:
        if acquired:
            _HELD.discard(str(lock.resolve()))
            with deferred(), contextlib.suppress(OSError):
                if lock.read_text(encoding="utf-8").strip() == me:
                    lock.unlink()


@contextlib.contextmanager
def archive_lock(folder: str | os.PathLike[str], holder: str | None = None) -> Iterator[str]:
    """The lock for writing into ``folder``: when ``holder`` (the runner that started this process) holds
    it, nothing more is taken; otherwise it is taken for the duration (a notebook run by hand)."""
    if holder:
        current = read_lock(folder)
        if current != holder:
            raise LockError(f"the run that started this step ({holder}) no longer holds the lock of {folder} "
                            f"({current or 'no lock'}): nothing was written")
        yield holder
        return
    with run_lock(folder) as me:
        yield me


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True
