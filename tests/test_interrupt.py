"""A signal always ends in the clean stop, even when its exception lands where Python only reports it."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys

import pytest

from eo4dm_helpers import interrupt
from eo4dm_helpers.interrupt import Interrupted


@pytest.fixture(autouse=True)
def _logging_back():
    yield
    logging.disable(logging.NOTSET)  # the handler silences logging for the clean-up that follows a signal


class _SignalledWhileFinalised:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here: its exception is "ignored" by Python


def test_a_signal_lost_in_a_finaliser_is_raised_by_check_and_prints_nothing(capfd):
    with interrupt.raising():
        _SignalledWhileFinalised()
        gc.collect()
        with pytest.raises(Interrupted) as caught:
            interrupt.check()
    assert caught.value.signame == "SIGTERM"
    assert capfd.readouterr().err == ""  # no "Exception ignored in ..." traceback


def test_check_is_silent_without_a_signal_and_the_latch_ends_with_the_block():
    with interrupt.raising():
        interrupt.check()
    with interrupt.raising(), pytest.raises(Interrupted):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
    interrupt.check()  # outside raising(): the signal of the earlier block is forgotten


def test_other_unraisable_exceptions_are_still_reported(monkeypatch):
    class Broken:
        def __del__(self):
            raise RuntimeError("a real bug in a finaliser")

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    with interrupt.raising():
        Broken()
        gc.collect()
    assert [str(e) for e in reported] == ["a real bug in a finaliser"]
