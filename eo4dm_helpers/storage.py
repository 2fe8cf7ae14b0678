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
    """Another run holds the lock."""


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Exclusive lock on an archive folder. A lock left by a dead process on this host is taken over."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".eo4dm.lock"
    me = f"{socket.gethostname()}:{os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = lock.read_text(encoding="utf-8", errors="replace").strip() if lock.exists() else ""
            host, _, pid = holder.partition(":")
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            raise LockError(f"{folder} is locked by another run ({holder or 'unknown'}); "
                            f"wait for it to finish or remove {lock} if no run is active") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(me)
        break
    else:  # pragma: no cover - two stale takeovers in a row
        raise LockError(f"could not take the lock {lock}")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            if lock.read_text(encoding="utf-8").strip() == me:
                lock.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True
