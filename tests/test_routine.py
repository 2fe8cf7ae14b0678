"""Routine operations: modes, the wait rule, latency, run state, lock, exit codes."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date

import numpy as np

from eo4dm_helpers import routine as R
from eo4dm_helpers.archive import Archive, write_raster
from eo4dm_helpers.config import AvailabilityRules, load_config
from eo4dm_helpers.dekads import Dekad

from .conftest import ROOT, demo_params


def _cfg(tmp_path, **over):
    return replace(load_config(demo_params(tmp_path)), **over)


def _composite(cfg, d):
    g = cfg.global_chain.grid
    write_raster(Archive(cfg.paths.archive).global_composite("MODIS", "NDWI", d), [np.zeros((g.height, g.width))] * 2,
                 ["NDWI", "count"], g)


def test_wait_rule(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, availability=AvailabilityRules(s2_min=5, landsat_min=2, max_wait_days=15))
    d = Dekad(2024, 3, 2)
    counts = [R.ProductCount("MOD09GA", "-", 10, 10), R.ProductCount("S2", "DEMO", 3, 5)]
    monkeypatch.setattr(R, "count_products", lambda c, dk: counts)
    a = R.check_availability(cfg, d, date(2024, 3, 22))
    assert a.decision == "wait" and "S2 (3/5)" in a.reason and "2024-04-04" in a.reason
    assert R.check_availability(cfg, d, date(2024, 4, 4)).decision == "wait"  # last day of the wait
    late = R.check_availability(cfg, d, date(2024, 4, 5))
    assert late.decision == "process-incomplete" and "S2 3/5" in late.reason
    counts[1] = R.ProductCount("S2", "DEMO", 5, 5)
    assert R.check_availability(cfg, d, date(2024, 3, 22)).decision == "process"


def test_counts_on_the_demo_archive(small_demo):
    cfg = load_config(small_demo)
    counts = {(c.product, c.tile): c for c in R.count_products(cfg, Dekad(2024, 3, 2))}
    assert counts[("MOD09GA", "-")].found == 10 and counts[("MOD11A1", "-")].found == 10
    assert counts[("S2", "DEMO")].found == 2  # every 5 days in the demo
    assert counts[("Landsat", "DEMO")].found >= 1


def test_latency_table_from_faked_earth_engine_metadata(ee_offline, monkeypatch):
    cfg = load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)
    sent = []

    def fake(obj):
        sent.append(obj)
        return {"MOD09GA": 1710028800000, "MOD11A1": 1709942400000, "MYD11A1": None, "VNP09GA": 1710460800000,
                "VNP21A1D": 1710460800000, "S2": 1710544800000, "L8": 1709856000000, "L9": 1710201600000}

    monkeypatch.setattr(ee_offline.data, "computeValue", fake)
    rows = {r["product"]: r for r in R.latency_table(cfg, date(2024, 3, 21))}
    assert len(sent) == 1  # one batched request for every product
    assert rows["MOD09GA"]["latency (days)"] == 11  # 2024-03-10 00:00 UTC = 11:00 local on the 10th
    assert rows["MYD11A1"]["latency (days)"] is None and "none in 60 d" in rows["MYD11A1"]["latest acquisition (UTC)"]
    assert rows["S2"]["latency (days)"] == 5  # 2024-03-15T23:20Z is the 16th in Noumea


def test_latency_table_on_the_local_store(small_demo):
    cfg = load_config(small_demo)
    rows = {r["product"]: r for r in R.latency_table(cfg, date(2024, 3, 21))}
    assert rows["MOD09GA"]["latency (days)"] == 1 and rows["S2"]["latency (days)"] >= 1


def test_run_state_and_since_failure(tmp_path):
    cfg = _cfg(tmp_path)
    req = [Dekad(2024, 2, 3), Dekad(2024, 3, 1), Dekad(2024, 3, 2)]
    R.save_state(cfg, req, req[:1], req[1], "indices", 1)
    resume = R.since_failure(cfg)
    assert [d.label for d in resume.routine] == ["2024-03-D1", "2024-03-D2"] and resume.mode == "indices"
    st = json.loads(R.state_path(cfg).read_text())
    assert st["failed"] == "2024-03-D1" and st["exit_code"] == 1 and st["status"] == "failed"


def _run(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "run_all.py"), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, env=env)


LAST = Dekad(2024, 3, 2)


def _complete_demo_archive(tmp_path, last=LAST):
    """A demo workspace whose archive is complete from history_start (2024-03-01) to ``last``, with the
    reference years' composites before it."""
    from . import archives
    from .test_completeness import _cfg as completeness_cfg
    from .test_completeness import _reference_years

    cfg = completeness_cfg(tmp_path, history_start=date(2024, 3, 1))
    p = cfg.source
    span = [d for d in (Dekad(2024, 3, 1), Dekad(2024, 3, 2)) if d <= last]
    _reference_years(cfg, [Dekad(2024, 3, 1), Dekad(2024, 3, 2)])
    archives.complete(cfg, span, bulletins=span)
    (cfg.paths.output / "state").mkdir(parents=True, exist_ok=True)
    R.routine_state_path(cfg).write_text(json.dumps({"bulletins_from": "2024-03-D1"}))
    return p, cfg


def test_nothing_to_do_exits_0_and_says_so(tmp_path):
    p, cfg = _complete_demo_archive(tmp_path)
    res = _run("--params", str(p))
    assert res.returncode == 0 and "nothing to do: every dekad up to 2024-03-D2 is complete" in res.stdout, res.stderr
    logs = list((cfg.paths.output / "logs").glob("run-*.log"))
    assert logs and "nothing to do" in logs[0].read_text()
    assert json.loads(R.state_path(cfg).read_text())["status"] == "done"


def test_waiting_exits_5_and_records_it(tmp_path):
    p, cfg = _complete_demo_archive(tmp_path, last=Dekad(2024, 3, 1))
    (tmp_path / "scenes" / "x").mkdir()  # an empty scene store: every product is missing (a missing one: exit 2)
    res = _run("--params", str(p))
    assert res.returncode == 5, res.stderr
    assert "2024-03-D2: waiting for MOD09GA (0/10)" in res.stdout
    st = json.loads(R.state_path(cfg).read_text())
    assert st["exit_code"] == 5 and st["done"] == [] and st["status"] == "waiting"


def test_second_run_on_a_locked_archive_exits_3(tmp_path):
    import socket

    p = demo_params(tmp_path)
    cfg = load_config(p)
    cfg.paths.archive.mkdir(parents=True)
    (cfg.paths.archive / ".eo4dm.lock").write_text(f"{socket.gethostname()}:{os.getpid()}")  # a live process
    res = _run("--params", str(p), "--dekad", "2024-03-D1")
    assert res.returncode == 3 and "locked by another run" in res.stderr


def test_check_availability_prints_latency_and_decision(small_demo):
    res = _run("--params", str(small_demo), "--check-availability", "--dekad", "2024-03-D2")
    assert res.returncode == 0, res.stderr
    assert "latency on 2024-03-21" in res.stdout and "2024-03-D2: process - all products available" in res.stdout


def test_scheduling_examples_use_the_documented_exit_codes():
    service = (ROOT / "deploy" / "eo4dm.service").read_text()
    assert "SuccessExitStatus=5" in service and "--mode auto" in service
    assert "run_all.py" in (ROOT / "deploy" / "eo4dm.cron").read_text()
    assert "OnCalendar=" in (ROOT / "deploy" / "eo4dm.timer").read_text()


def test_indices_then_drought_modes_split_the_routine(small_demo):
    cfg = load_config(small_demo)
    arch = Archive(cfg.paths.archive)
    d = Dekad(2024, 3, 1)
    for p in (arch.global_indicator("VHI", d), cfg.paths.output / "reports" / d.label / "index.html"):
        p.unlink(missing_ok=True)
    res = _run("--params", str(small_demo), "--mode", "indices", "--dekad", d.label)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "composites done" in res.stdout and "07_report" not in res.stdout
    assert arch.global_composite("MODIS", "NDWI", d).exists() and not arch.global_indicator("VHI", d).exists()
    res = _run("--params", str(small_demo), "--mode", "drought", "--dekad", d.label)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "01_medium_resolution" not in res.stdout and "06_indicators" in res.stdout
    assert arch.global_indicator("VHI", d).exists()
    assert (cfg.paths.output / "reports" / d.label / "index.html").exists()
