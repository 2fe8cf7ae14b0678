"""SIGTERM, SIGHUP and SIGINT as one exception, :class:`Interrupted`, raised in the main thread.

``run_all.py`` turns them into a clean stop: kernels killed, temporaries removed, the run state recorded
as interrupted, the lock released, one line on stderr and exit code 6. Short critical sections (taking
and releasing the lock, writing the run state) run under :func:`deferred`: a signal arriving there is
held and raised when the section ends, so that no lock is left half-written.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGHUP", "SIGINT")) if s is not None)


class Interrupted(BaseException):  # noqa: N818 - a BaseException like KeyboardInterrupt, not an error
    """The run received SIGTERM, SIGHUP or SIGINT."""

    def __init__(self, signum: int):
        self.signum = signum
        self.signame = signal.Signals(signum).name
        super().__init__(self.signame)


_state = threading.local()
_received: list[int] = []  # the signal received under raising(), kept until the block ends (see check())


def _pending() -> list[int]:
    if not hasattr(_state, "pending"):
        _state.pending, _state.depth = [], 0
    return _state.pending


def _handler(signum: int, _frame) -> None:
    if not _received:
        _received.append(signum)
    pending = _pending()
    if _state.depth:  # inside a critical section: raise when it ends
        pending.append(signum)
        return
    _stopping()
    raise Interrupted(signum)


def _stopping() -> None:
    """One interruption: the clean-up that follows is not interrupted again, and the libraries cut short
    (nbclient: "Kernel died while waiting for execute reply") log nothing: the run says it in one line."""
    import logging

    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    logging.disable(logging.CRITICAL)


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """Within the block, the signals raise :class:`Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    old_hook = sys.unraisablehook
    _pending().clear()
    _received.clear()
    for s in SIGNALS:
        signal.signal(s, _handler)
    sys.unraisablehook = _quiet_unraisable(old_hook)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        sys.unraisablehook = old_hook
        _received.clear()


def check() -> None:
    """Raise :class:`Interrupted` if a signal was received whose exception never reached the run.

    The handler raises where the main thread happens to be; when that is a ``__del__`` method or another
    place whose exceptions Python only reports ("Exception ignored in ..."), the exception is lost and the
    run would go on to finish as if no signal had come. The run calls this between steps and before it
    records itself as done, so a signal always ends in the clean stop.
    """
    if _received:
        raise Interrupted(_received[0])


def _quiet_unraisable(default):
    """An unraisable hook that says nothing of our own :class:`Interrupted` (``check()`` raises it again)."""

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            return
        default(unraisable)

    return hook


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A critical section: a signal received inside is raised at its end (if signals are handled)."""
    pending = _pending()
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth and pending:
            signum = pending.pop(0)
            pending.clear()
            _stopping()
            raise Interrupted(signum)


def ignore() -> None:
    """Ignore the signals from now on (the clean-up after an interruption)."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
