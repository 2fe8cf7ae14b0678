"""The campaign of issue 13: auto-mode runs, a multi-dekad range and ``--backfill`` are killed (SIGKILL of
the whole tree) or stopped (SIGTERM, SIGINT to run_all.py alone) and recovered; afterwards every dekad of
the run's span is complete, the archive equals an uninterrupted run's byte for byte, nothing is left
behind and no piece of the secrets (a service-account key file, a Copernicus password) is anywhere in the
output or on the terminal.

``EO4DM_CAMPAIGN_TRIALS`` trials per kind (3 by default: one per kill method); ``make reliability``
(bench/reliability.py) runs 20 per kind and prints the figures. Engine: eo4dm_helpers/reliability.py
(``TEST_RUN_KINDS``: its auto-mode run is a dekad earlier than make reliability's, whose latest dekad goes
through every notebook; ``run_kind_campaign``).
"""

import os
import signal
import subprocess
import time

import pytest

from eo4dm_helpers import reliability as RL

from .reliability_base import base_workspace

TRIALS = int(os.environ.get("EO4DM_CAMPAIGN_TRIALS", "3"))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_workspace(tmp_path_factory)


class Campaign:
    """One run kind's campaign: its reference run, then TRIALS trials (built once per class; one class per
    kind so that parallel test runs give each kind to a worker of its own)."""

    KIND = ""

    @pytest.fixture(scope="class")
    def campaign(self, request, base, tmp_path_factory):
        kind = RL.TEST_RUN_KINDS[request.cls.KIND]  # auto mode a dekad earlier than make reliability's
        return RL.run_kind_campaign(base, tmp_path_factory.mktemp(f"campaign-{kind.name}"), kind, TRIALS,
                                    log=print)

    def test_the_uninterrupted_run_completes_its_span_and_shows_no_secret(self, campaign):
        kind = campaign.kind
        left = RL.incomplete(campaign.prepared, kind)
        assert left, f"{kind.name}: the prepared workspace must lack products for the run to do real work"
        assert campaign.reference.changed >= 5, campaign.reference  # archive files created or replaced
        assert campaign.reference_incomplete == []
        assert campaign.reference_secrets == []

    def test_every_trial_is_recovered_to_the_uninterrupted_archive_with_every_dekad_complete(self, campaign):
        assert len(campaign.trials) == TRIALS
        for t in campaign.trials:
            where = f"{t.kind} trial {t.index}: {t.method} {t.point}"
            assert t.killed, f"{where}: the run ended before the kill point"
            assert t.rerun_exit == 0, (where, t.output)
            assert t.incomplete == [], where
            assert t.mismatches == [], where
            assert t.leftovers == [], where
            assert t.secrets == [], where
        assert campaign.recovered == TRIALS and campaign.incomplete_dekads == 0 and campaign.secrets_found == 0

    def test_each_kill_method_is_used_and_signals_stop_the_run_cleanly(self, campaign):
        if TRIALS >= 3:
            assert set(campaign.methods) == set(RL.KILL_METHODS)
            assert {"time", "commit", "write"} <= set(campaign.points)
        for t in campaign.trials:
            if t.method == "SIGKILL":
                assert t.stop_exit == -signal.SIGKILL
                continue
            # exit 6, one line, no traceback, no lock, state "interrupted", no kernel left
            assert t.stop_exit == 6 and t.stop_problems == [], (t.method, t.point, t.stop_problems)
            assert not t.stale_lock


class TestAutoMode(Campaign):
    KIND = "auto"


class TestBackfill(Campaign):
    KIND = "backfill"


class TestRange(Campaign):
    KIND = "range"

    def test_a_range_cut_short_is_resumed_with_since_failure(self, campaign):
        assert any(t.recovery == "--since-failure" for t in campaign.trials)


def test_every_run_kind_has_its_campaign():
    assert {c.KIND for c in Campaign.__subclasses__()} == set(RL.RUN_KINDS)


def test_kill_schedule_is_seeded_and_deterministic():
    ref = RL.Reference({}, duration=30.0, changed=20, temporaries=60)
    one = RL.kind_schedule(20, ref, "auto")
    assert one == RL.kind_schedule(20, ref, "auto") and len(one) == 20
    assert one != RL.kind_schedule(20, ref, "auto", seed=RL.SEED + 1)
    assert [p for p, _ in one if p.kind != "time"] == [p for p in RL.schedule(20, ref) if p.kind != "time"]
    times = [p.at for p, _ in one if p.kind == "time"]
    assert len(times) == 11 and times == sorted(times) and times[0] >= 0.6 and times[-1] <= 27.0
    methods = [m for _, m in one]
    assert (methods.count("SIGKILL"), methods.count("SIGTERM"), methods.count("SIGINT")) == (7, 7, 6)
    for kind in RL.RUN_KINDS:  # three trials: each method once, at another point for each kind
        assert sorted(m for _, m in RL.kind_schedule(3, ref, kind)) == sorted(RL.KILL_METHODS)
    assert len({tuple(m for _, m in RL.kind_schedule(3, ref, k)) for k in RL.RUN_KINDS}) == 3


def test_the_secret_scan_and_the_completeness_check_find_what_they_look_for(base, tmp_path):
    kind = RL.RUN_KINDS["backfill"]
    ws = RL.kind_clone(RL.kind_base(base, tmp_path / "prepared", kind), tmp_path / "ws", kind)
    assert RL.secrets_found(ws, {"stdout": "nothing here"}) == []
    (ws.output / "logs").mkdir(parents=True, exist_ok=True)
    (ws.output / "logs" / "run-x.log").write_text(f"token {RL.CDSE_PASSWORD}\n")
    assert RL.secrets_found(ws, {"stderr": f"by {RL.KEY_EMAIL}"}) == [f"output/logs/run-x.log: {RL.CDSE_PASSWORD}",
                                                                       f"stderr: {RL.KEY_EMAIL}"]
    lacking = RL.incomplete(ws, kind)
    assert lacking[0] == "2024-02-D1: indicator VCI, indicator TCI, indicator VHI, indicator VAI DEMO and 1 more"
    assert [x.split(":")[0] for x in lacking] == ["2024-02-D1", "2024-02-D2", "2024-02-D3", "2024-03-D1"]


# -- problems the campaign found, fixed: each stays tested on its own -------------------------------------
def test_a_sigterm_while_run_all_starts_is_a_clean_stop(base, tmp_path):
    ws = RL.clone(base, tmp_path / "ws")
    proc = subprocess.Popen(RL.command(ws.params, "--dekad", "2024-03-D1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=RL.ROOT, env=RL.environment(),
                            start_new_session=True)
    time.sleep(0.3)  # importing numpy, papermill...
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 6 and err.startswith("error: interrupted by SIGTERM"), (proc.returncode, err)


def test_since_failure_after_an_interrupted_backfill_completes_its_history(base, tmp_path):
    kind = RL.RUN_KINDS["backfill"]
    ws = RL.kind_clone(RL.kind_base(base, tmp_path / "prepared", kind), tmp_path / "ws", kind)
    watch = RL.Watch(ws)
    proc = RL.start(RL.command(ws.params, *kind.args), ws.root / "run.log")
    while proc.poll() is None and len(watch.changed) < 2:  # in-process history: 2024-02-D1's indicators
        watch.poll()
        time.sleep(0.003)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 6, (ws.root / "run.log").read_text()
    res = RL.run(RL.command(ws.params, "--since-failure"))
    assert res.returncode == 0, res.stderr
    assert RL.incomplete(ws, kind) == []
    assert sorted(p.name for p in (ws.output / "reports").iterdir() if p.is_dir()) == ["2024-03-D1"]


def test_rerunning_a_dekad_completes_the_provisional_dekad_a_cut_short_run_left_without_indicators(base, tmp_path):
    """Found by make reliability (SIGKILL after 4-5 archive files of ``--dekad 2024-03-D2``, and the disk-full
    fault): commit() removes 2024-03-D1's indicators and statistics before replacing its composites, the
    run is cut there, and the rerun of ``--dekad 2024-03-D2`` no longer recomputes 2024-03-D1."""
    from eo4dm_helpers import completeness as C
    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.dekads import Dekad

    ws = RL.clone(base, tmp_path / "ws")
    RL._drop_indicators(ws, "2024-03-D1")  # what the cut-short commit left: composites whole, derived removed
    res = RL.run(RL.command(ws.params, "--dekad", "2024-03-D2"))
    assert res.returncode == 0, res.stderr
    cfg = load_config(ws.params)
    assert C.missing(cfg, Dekad(2024, 3, 1), C.Inventory.scan(cfg), bulletin=False) == []
