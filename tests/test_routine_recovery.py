"""The unattended routine never loses a dekad (issue 13): auto mode converges on a complete archive,
signals stop a run cleanly, no run commits a dead run's staged files, and a notebook run by hand never
races a scheduled run. End to end with run_all.py on copies of the reduced demo (tests/reliability_base.py);
the plans themselves are unit-tested in tests/test_completeness.py."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from eo4dm_helpers import completeness as C
from eo4dm_helpers import reliability as RL
from eo4dm_helpers import routine as R
from eo4dm_helpers import runs
from eo4dm_helpers.archive import Archive
from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.storage import LockError

from .reliability_base import base_workspace

D1, D2 = Dekad(2024, 3, 1), Dekad(2024, 3, 2)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_workspace(tmp_path_factory)


def _set(ws, **over):
    data = yaml.safe_load(ws.params.read_text())
    data.update(over)
    ws.params.write_text(yaml.safe_dump(data))


def _processes_of(run_id: str) -> list[str]:
    """Live processes started by the run ``run_id`` (its kernels inherit EO4DM_RUN_ID)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                env = (d / "environ").read_bytes()
            except OSError:
                continue
            if f"{runs.RUN_ENV}={run_id}\0".encode() in env:
                out.append(d.name)
    return out


# -- auto mode converges -----------------------------------------------------------------------------
def test_auto_mode_takes_up_a_dekad_left_without_indicators_and_then_has_nothing_to_do(base, tmp_path):
    """Why #1, end to end: 2024-03-D1's indicator commit was cut short (VHI in; VAI, statistics and the
    bulletin not), and the routine's bulletins started with it. Auto mode reruns that dekad's indicators
    and bulletin (06, 07 only: its composites are whole) and processes 2024-03-D2; the next run has
    nothing to do."""
    ws = RL.clone(base, tmp_path / "ws")
    _set(ws, history_start="2024-03-01")
    cfg = load_config(ws.params)
    arch = Archive(ws.archive)
    arch.local_indicator("DEMO", "VAI", D1).unlink()
    arch.zone_stats(D1).unlink()
    (ws.output / "state").mkdir(parents=True, exist_ok=True)
    R.routine_state_path(cfg).write_text(json.dumps({"bulletins_from": D1.label}))
    res = RL.run(RL.command(ws.params))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "[2024-03-D1] 06_indicators ..." in res.stdout and "[2024-03-D1] 01_medium_resolution" not in res.stdout
    assert "[2024-03-D2] 01_medium_resolution ..." in res.stdout
    inv = C.Inventory.scan(cfg)
    for d in (D1, D2):
        assert C.missing(cfg, d, inv, bulletin=True) == [], d
    again = RL.run(RL.command(ws.params))
    assert again.returncode == 0 and "nothing to do: every dekad up to 2024-03-D2 is complete" in again.stdout
    assert RL.leftovers(ws) == []


def test_a_stray_file_is_reported_in_one_line_and_ignored(base, tmp_path):
    ws = RL.clone(base, tmp_path / "ws")
    _set(ws, history_start="2024-03-01")
    stray = ws.archive / "composites" / "global" / "dekad" / "MODIS_NDWI_203101_COMPD1.tif"
    stray.write_bytes(b"not a raster")
    res = RL.run(RL.command(ws.params, "--check-availability"))
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [f"warning: {stray}: named after 2031-01-D1, later than the latest complete "
                                       "dekad 2024-03-D2 (today is 2024-03-21); ignored (move or delete it)"]
    assert "2024-03-D2: process - all products available" in res.stdout


# -- signals -------------------------------------------------------------------------------------------
def _start(ws, *args):
    return subprocess.Popen(RL.command(ws.params, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=RL.ROOT, env=RL.environment(), start_new_session=True)


def _wait_for(path: Path, proc, timeout=120.0):
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_stops_the_run_cleanly_and_since_failure_resumes(base, tmp_path, sig):
    ws = RL.clone(base, tmp_path / "ws")
    before = RL.digest(ws.archive)
    proc = _start(ws, "--mode", "drought", "--start", "2024-03-D1", "--end", "2024-03-D2")
    _wait_for(ws.output / "runs" / "2024-03-D1" / "kernel.log", proc)  # a kernel is running 06_indicators
    time.sleep(1.0)
    os.kill(proc.pid, getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == R.EXIT_INTERRUPTED == 6, err
    assert err.splitlines() == [f"error: interrupted by {sig} while processing 2024-03-D1; the archive is consistent "
                                "and the lock released: run again (or --since-failure) to resume"]
    assert "Traceback" not in out + err
    assert RL.leftovers(ws) == []  # lock released, no temporary file, no work folder
    st = json.loads(R.state_path(load_config(ws.params)).read_text())
    assert _processes_of(st["run_id"]) == []  # its kernel did not outlive it
    assert (st["status"], st["exit_code"], st["current"], st["done"]) == ("interrupted", 6, "2024-03-D1", [])
    for f in RL.mismatches(before, RL.digest(ws.archive)):  # whole files only, never a stale statistic
        assert f.startswith(("extra ", "differs ", "missing ")), f
    if sig == "SIGTERM":
        res = RL.run(RL.command(ws.params, "--since-failure"))
        assert res.returncode == 0, res.stderr[-2000:]
        assert "2024-03-D1: report" in res.stdout and "2024-03-D2: report" in res.stdout
        cfg = load_config(ws.params)
        inv = C.Inventory.scan(cfg)
        assert C.missing(cfg, D1, inv, bulletin=True) == []  # (2024-03-D2 has no composites in this archive)


def test_since_failure_with_a_dekad_is_a_usage_error(base, tmp_path):
    ws = RL.clone(base, tmp_path / "ws")
    for extra in (["--dekad", "2024-03-D1"], ["--start", "2024-03-D1", "--end", "2024-03-D2"]):
        res = RL.run(RL.command(ws.params, "--since-failure", *extra))
        assert res.returncode == 2 and RL.one_error_line(res.stderr, "--since-failure: resumes the last run's own "
                                                                     "dekads; do not give --dekad/--start/--end") == []


# -- no reuse of a dead run's work ---------------------------------------------------------------------
def test_a_dead_runs_staged_files_are_never_committed(base, tmp_path):
    ws = RL.clone(base, tmp_path / "ws")
    arch = Archive(ws.archive)
    dead = ws.output / "work" / "run-20240101T000000000000Z-99999"
    staged = dead / "2024-03-D1" / "archive" / arch.global_indicator("VHI", D1).relative_to(ws.archive)
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"half of a raster from a run that was killed")
    (dead / runs.MARKER).write_text(dead.name)
    old_backfill = ws.output / "work" / "backfill-2024-03-D1" / "archive" / "stats" / "2024-03-D1" / "zones.csv"
    old_backfill.parent.mkdir(parents=True)
    old_backfill.write_text("stale")
    res = RL.run(RL.command(ws.params, "--mode", "drought", "--dekad", "2024-03-D1"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert not dead.exists() and not old_backfill.exists() and RL.leftovers(ws) == []
    assert arch.global_indicator("VHI", D1).read_bytes()[:4] in (b"II*\x00", b"MM\x00*")  # a GeoTIFF, recomputed


def test_commit_refuses_files_staged_by_another_run(base, tmp_path, monkeypatch):
    from eo4dm_helpers.workflow import commit, open_context

    ws = RL.clone(base, tmp_path / "ws")
    monkeypatch.setenv(runs.RUN_ENV, "run-me")
    work = ws.output / "work" / "run-other" / D1.label
    work.mkdir(parents=True)
    (work.parent / runs.MARKER).write_text("run-other")
    with pytest.raises(runs.WorkFolderError, match="belongs to run-other"):
        open_context(ws.params, D1.label, work)
    ctx = open_context(ws.params, D1.label, ws.output / "work" / "run-me" / D1.label)
    ctx.work = work  # as if a step handed over another run's folder
    (work / "archive" / "stats" / D1.label).mkdir(parents=True)
    (work / "archive" / "stats" / D1.label / "zones.csv").write_text("x")
    before = RL.digest(ws.archive)
    with pytest.raises(runs.WorkFolderError, match="staged by run-other, not by this run"):
        commit(ctx)
    assert RL.digest(ws.archive) == before


# -- interactive runs -------------------------------------------------------------------------------
def test_a_notebook_run_by_hand_never_writes_while_a_scheduled_run_holds_the_lock(base, tmp_path, monkeypatch):
    """Why: a notebook executed by hand wrote into the archive without the lock."""
    import socket

    from eo4dm_helpers.drought import run_indicators
    from eo4dm_helpers.workflow import open_context

    ws = RL.clone(base, tmp_path / "ws")
    for k in (runs.RUN_ENV, runs.HOLDER_ENV):
        monkeypatch.delenv(k, raising=False)
    Archive(ws.archive).global_indicator("VHI", D1).unlink()  # the analyst recomputes a dekad
    scheduled = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (ws.archive / ".eo4dm.lock").write_text(f"{socket.gethostname()}:{scheduled.pid}")
        before = RL.digest(ws.archive)
        ctx = open_context(ws.params, D1.label)  # no work_dir: the analyst's own folder
        assert ctx.work == ws.output / "work" / runs.interactive_id() / D1.label and ctx.holder is None
        with pytest.raises(LockError, match=f"locked by another run .*:{scheduled.pid}"):
            run_indicators(ctx)
        assert RL.digest(ws.archive) == before  # nothing written
        assert (ctx.staged.global_indicator("VHI", D1)).exists()  # the work stays in its own folder
    finally:
        scheduled.kill()
        scheduled.wait()
    run_indicators(ctx)  # the scheduled run is over (its lock is stale now): the notebook takes the lock
    assert Archive(ws.archive).global_indicator("VHI", D1).exists()
    assert not (ws.archive / ".eo4dm.lock").exists()  # released after the write


def test_an_all_cloud_dekad_is_recorded_as_without_data_said_in_the_bulletin_and_complete(base, tmp_path):
    """Every MODIS day of the dekad flagged cloudy: not a failure that would stop every later run, but a
    dekad without global data (a no-data record), said in the bulletin; auto mode counts it complete."""
    ws = RL.clone(base, tmp_path / "ws", own_scenes=True)
    RL.damage_scene_fill(ws, "MODIS/061/MOD09GA", "2024-03-D1", "state_1km", 1)
    res = RL.run(RL.command(ws.params, "--dekad", "2024-03-D1"))
    assert res.returncode == 0 and res.stderr == "", res.stderr[-2000:]
    cfg = load_config(ws.params)
    record = C.nodata_path(ws.archive, "global", D1)
    why = json.loads(record.read_text())["no_data"]
    assert "no usable MODIS/VIIRS day (20 product(s) found, 10 dropped: 100% of land masked" in why
    arch = Archive(ws.archive)
    assert not arch.global_composite("MODIS", "NDWI", D1).exists() and not arch.global_indicator("VHI", D1).exists()
    assert arch.local_indicator("DEMO", "VAI", D1).exists()  # the local chain had data
    html = (ws.output / "reports" / D1.label / "index.html").read_text()
    assert "No global chain data for this dekad: no usable MODIS/VIIRS day" in html
    assert C.missing(cfg, D1, C.Inventory.scan(cfg), bulletin=True) == []
