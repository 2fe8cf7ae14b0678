"""Crash safety of the routine (issue #9): SIGKILL at many points then a rerun ends with the archive of an
uninterrupted run, byte for byte, and nothing left behind; a full disk, a read-only folder and a stale
lock are each reported in one line and lose nothing.

The campaign here runs ``EO4DM_CRASH_TRIALS`` trials (3 by default) of ``run_all.py --dekad 2024-03-D1``
on the reduced demo without that dekad's indicators: every notebook runs once, 5 archive files are
replaced (the dekad's composites) and 5 created (indicators, zone statistics), in about 17 s.
``make reliability`` (bench/reliability.py) runs 20 trials of the two-dekad ``--dekad 2024-03-D2`` run and
prints the figures. Engine: eo4dm_helpers/reliability.py. Earth Engine faults:
tests/test_reliability_ee.py; bad inputs: tests/test_reliability_inputs.py; secrets:
tests/test_reliability_secrets.py.
"""

import errno
import os
import shutil
import socket
from pathlib import Path

import pytest

from eo4dm_helpers import reliability as RL
from eo4dm_helpers import runs
from eo4dm_helpers.storage import LockError, atomic_path, run_lock, write_text_atomic

from .reliability_base import base_workspace

TRIALS = int(os.environ.get("EO4DM_CRASH_TRIALS", "3"))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_workspace(tmp_path_factory)


# -- the crash campaign (a class of its own: the longest part of this module, it runs on one xdist worker
# while another runs the rest; tests/conftest.py SLOW_FIRST) ------------------------------------------
class TestCrashCampaign:
    @pytest.fixture(scope="class")
    def short(self, base, tmp_path_factory):
        return RL.short_base(base, tmp_path_factory.mktemp("short") / "base")

    @pytest.fixture(scope="class")
    def campaign(self, short, tmp_path_factory):
        """The reference run of ``run_all.py --dekad 2024-03-D1``, then TRIALS killed-and-rerun trials."""
        return RL.run_campaign(short, tmp_path_factory.mktemp("crash"), TRIALS, args=RL.SHORT_ARGS, log=print)

    def test_the_reference_run_writes_and_replaces_archive_files(self, campaign, short):
        ref = campaign.reference
        before = RL.digest(short.archive)
        # composites, indicators, statistics and their record of the zone layer; notes, reports
        assert ref.changed == 11 and ref.temporaries > ref.changed
        created = ref.digest.keys() - before.keys()
        assert before.keys() < ref.digest.keys() and len(created) == 6  # nothing lost
        assert {"indicators/global/dekad/VHI_202403D1.tif", "stats/2024-03-D1/zones.csv",
                "stats/2024-03-D1/zones.json"} <= created

    def test_every_killed_run_is_rerun_to_the_uninterrupted_archive_byte_for_byte(self, campaign):
        assert len(campaign.trials) == TRIALS
        for t in campaign.trials:
            assert t.killed, f"trial {t.index}: the run ended before {t.point}"
            assert t.rerun_exit == 0, t.rerun_output
            assert t.mismatches == [], f"trial {t.index} killed {t.point}: {t.mismatches}"
            assert t.leftovers == [], f"trial {t.index} killed {t.point}: {t.leftovers}"
        assert campaign.recovered == TRIALS and campaign.mismatched == 0

    def test_kills_hit_the_run_at_different_points_and_take_the_kernels_down(self, campaign):
        trials = campaign.trials
        if TRIALS >= 3:
            assert {"time", "commit", "write"} <= {t.point.kind for t in trials}
        commit = [t for t in trials if t.point.kind == "commit"]
        assert all(0 < t.changed_before_kill < campaign.reference.changed for t in commit)  # between two renames
        assert all(t.writing for t in trials if t.point.kind == "write")  # a file was being written
        # run_all.py and the papermill kernel, which runs in a session of its own (killpg alone misses it)
        assert any(t.processes_killed >= 2 for t in trials)

    def test_a_killed_run_leaves_a_stale_lock_that_the_rerun_takes_over(self, campaign):
        # killed while writing the archive: the lock was held (a time kill may come before it is taken)
        assert all(t.stale_lock for t in campaign.trials if t.point.kind in ("commit", "write"))
        assert any(t.stale_lock for t in campaign.trials)
        assert all(t.rerun_exit == 0 and "locked by another run" not in t.rerun_output for t in campaign.trials)

    # the disk fills up during a run of the campaign's command (its reference: what must be whole)
    def test_disk_full_during_a_run_is_one_line_loses_nothing_and_the_rerun_completes(self, campaign, short, tmp_path):
        t = RL.disk_full_trial(short, tmp_path / "enospc", campaign.reference, after=3, args=RL.SHORT_ARGS)
        assert t.exit == 1 and t.problems == [], (t.problems, t.stderr)
        assert "notebook 05_download.ipynb failed at cell" in t.stderr and "No space left on device: '" in t.stderr
        assert t.rerun_exit == 0 and t.mismatches == [] and t.leftovers == []


def test_kill_points_are_spread_deterministically():
    ref = RL.Reference({}, duration=40.0, changed=20, temporaries=60)
    points = RL.schedule(20, ref)
    assert points == RL.schedule(20, ref) and len(points) == 20
    kinds = [p.kind for p in points]
    assert (kinds.count("time"), kinds.count("commit"), kinds.count("write"), kinds.count("report")) == (11, 5, 3, 1)
    times = [p.at for p in points if p.kind == "time"]
    assert times == sorted(times) and times[0] < 4 and times[-1] > 34
    assert len(set(times)) == 11 and max(b - a for a, b in zip(times, times[1:], strict=False)) < 3.3
    assert [p.at for p in points if p.kind == "commit"] == [3, 7, 10, 13, 17]
    assert [p.kind for p in RL.schedule(3, ref)] == ["time", "commit", "write"]


# -- the disk fills up -----------------------------------------------------------------------------
def test_disk_full_while_writing_keeps_the_previous_file_and_names_the_file(tmp_path):
    dest = tmp_path / "archive" / "VHI_202403D1.tif"
    write_text_atomic(dest, "previous")

    with pytest.raises(OSError) as info, atomic_path(dest) as tmp:
        with open(tmp, "w") as fh:
            fh.write("half of a fi")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write() raises: no file name
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == f"[Errno 28] No space left on device: '{dest}'"  # one sentence naming the file
    assert dest.read_text() == "previous"
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temporary file left


def test_disk_full_in_the_middle_of_a_commit_leaves_whole_files_only(tmp_path, monkeypatch):
    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.dekads import Dekad
    from eo4dm_helpers.workflow import Context, commit

    from .conftest import demo_params

    cfg = load_config(demo_params(tmp_path))
    ctx = Context(cfg, Dekad(2024, 3, 1), runs.make_work(tmp_path / "work", "run-test"), "run-test")
    names = [f"stats/2024-03-D1/f{i}.csv" for i in range(3)]
    for n in names:
        write_text_atomic(cfg.paths.archive / n, f"previous {n}")
        write_text_atomic(ctx.staged.root / n, f"new {n}")
    real = shutil.copyfile
    calls = []

    def copyfile(src, dst):  # the second file meets a full disk after half of it
        calls.append(dst)
        if len(calls) == 2:
            with open(dst, "wb") as fh:
                fh.write(Path(src).read_bytes()[:4])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    with pytest.raises(OSError, match=r"No space left on device: .*f1\.csv"):
        commit(ctx)
    got = {n: (cfg.paths.archive / n).read_text() for n in names}
    assert got == {names[0]: f"new {names[0]}", names[1]: f"previous {names[1]}", names[2]: f"previous {names[2]}"}
    assert not list(cfg.paths.archive.rglob(".tmp-*"))


# -- read-only folders -----------------------------------------------------------------------------
@pytest.mark.parametrize("folder", ["archive", "output"])
def test_read_only_folder_stops_the_run_in_one_line_naming_the_parameter(base, tmp_path, folder):
    # injected (EROFS on every write below the folder): works as root too, where chmod does not stop writes
    t = RL.read_only_trial(base, tmp_path / folder, folder)
    assert t.exit == 2 and t.problems == [], (t.problems, t.stderr)
    assert t.recovered


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a folder without write permission: chmod cannot "
                                              "make it read-only (the injected EROFS test covers root)")
def test_read_only_output_folder_with_chmod(base, tmp_path):
    ws = RL.clone(base, tmp_path / "ro")
    before = RL.digest(ws.archive)
    ws.output.chmod(0o555)
    try:
        res = RL.run(RL.command(ws.params, *RL.ROUTINE_ARGS))
    finally:
        ws.output.chmod(0o755)
    assert res.returncode == 2 and RL.one_error_line(res.stderr, "paths.output: cannot write",
                                                     "Permission denied") == [], res.stderr
    assert RL.digest(ws.archive) == before


# -- the run lock ----------------------------------------------------------------------------------
def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_stale_lock_and_temporaries_of_a_dead_run_are_taken_over_and_cleaned_by_run_all(base, tmp_path):
    ws = RL.clone(base, tmp_path / "stale")
    (ws.archive / RL.LOCK_NAME).write_text(f"{socket.gethostname()}:{_dead_pid()}")
    left = [ws.archive / "composites" / "global" / "dekad" / ".tmp-0123456789ab-MODIS_NDWI_202403_COMPD1.tif",
            ws.output / "reports" / "2024-03-D1" / ".tmp-0123456789ab-index.html",  # a bulletin being written
            ws.output / "state" / ".tmp-0123456789ab-last_run.json"]
    for f in left:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("half of a fi")
    res = RL.run(RL.command(ws.params, "--mode", "drought", "--dekad", "2024-03-D1"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert not (ws.archive / RL.LOCK_NAME).exists() and RL.leftovers(ws) == []


@pytest.mark.parametrize("holder", ["another-host.example:12345", "garbage without a pid", ""])
def test_a_lock_that_may_be_alive_is_never_taken_over(base, tmp_path, holder):
    ws = RL.clone(base, tmp_path / "held")
    (ws.archive / RL.LOCK_NAME).write_text(holder)
    before = RL.digest(ws.archive)
    res = RL.run(RL.command(ws.params, "--mode", "drought", "--dekad", "2024-03-D1"))
    assert res.returncode == 3 and RL.one_error_line(res.stderr, "is locked by another run") == [], res.stderr
    assert (ws.archive / RL.LOCK_NAME).read_text() == holder  # still there: not ours to remove
    assert RL.digest(ws.archive) == before


def test_lock_is_released_when_the_holder_fails(tmp_path):
    with pytest.raises(RuntimeError), run_lock(tmp_path):
        raise RuntimeError("a notebook failed")
    with run_lock(tmp_path), pytest.raises(LockError), run_lock(tmp_path):  # free again, and exclusive
        pass
