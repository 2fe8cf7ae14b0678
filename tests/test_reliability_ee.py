"""Earth Engine failures end to end through run_all.py (issue #9). Earth Engine is initialised offline and
``computePixels`` answered by a fake in run_all.py and in the notebook kernels (the injector of
eo4dm_helpers.reliability), so the real notebooks, download step and exit codes run.

Already covered at the I/O Protocol (not repeated here): transient errors retried with bounded backoff and
deterministic ones failing at once with what to do (tests/test_download_direct.py:
test_transient_faults_are_retried_with_backoff, test_retries_are_bounded,
test_deterministic_errors_fail_at_once_with_what_to_do, test_only_network_429_and_5xx_are_transient),
Drive export faults (tests/test_export_drive.py), credentials and their messages
(tests/test_ee_session.py; missing credentials exit 4 in tests/test_run_all.py; unreadable key files in
tests/bad_inputs/cases.yaml).
"""

import pytest
import yaml

from eo4dm_helpers import reliability as RL

from .reliability_base import base_workspace

ARGS = ("--dekad", "2024-03-D2", "--no-wait")  # no composite of 2024-03-D2 in the archive yet: all 5 downloaded


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_workspace(tmp_path_factory)


def _ee_workspace(base, dest):
    ws = RL.clone(base, dest)
    data = yaml.safe_load(ws.params.read_text())
    data["backend"] = "earthengine"
    data["indicators"]["provisional_dekads"] = 0  # this dekad only
    ws.params.write_text(yaml.safe_dump(data))
    return ws


def _requests(ws):
    log = ws.root / "inject" / "faults.log"
    return [x for x in log.read_text().splitlines() if x.startswith("computePixels")] if log.exists() else []


def test_deterministic_earth_engine_error_exits_4_with_what_to_do_and_no_retry(base, tmp_path):
    # the other deterministic errors (time-out, asset not found, permission, quota) and their advice:
    # tests/test_download_direct.py::test_deterministic_errors_fail_at_once_with_what_to_do
    ws = _ee_workspace(base, tmp_path / "ws")
    before = RL.digest(ws.archive)
    advice = "fetch smaller tiles (lower the request size) or export it as a batch task"
    res = RL.run(RL.command(ws.params, *ARGS), env=RL.fault_env(ws.root / "inject", "ee",
                                                                  message="User memory limit exceeded."))
    assert res.returncode == 4, res.stderr[-3000:]
    first = res.stderr.splitlines()[0]
    assert first.startswith("error: notebook 05_download.ipynb failed at cell ") and \
        "TransferError: 5 of 5 product(s) not downloaded (rerun to resume" in first
    assert advice in res.stderr and "Traceback" not in res.stderr
    assert len(_requests(ws)) == 3  # global NDWI + NDVI + LST in one request, local NDWI, NDVI: none retried
    assert RL.digest(ws.archive) == before and "06_indicators" not in res.stdout


def test_transient_earth_engine_errors_are_retried_and_the_run_completes(base, tmp_path):
    ws = _ee_workspace(base, tmp_path / "ws")
    res = RL.run(RL.command(ws.params, *ARGS, "--mode", "indices"),
                 env=RL.fault_env(ws.root / "inject", "ee", transient="2"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr == "" and "2024-03-D2: composites done" in res.stdout
    assert len(_requests(ws)) == 3 + 2  # two 503s, each retried (backoff ~1 s then ~2 s, up to 4 retries)
    executed = (ws.output / "runs" / "2024-03-D2" / "05_download.ipynb").read_text()
    assert executed.count("Service Unavailable (HTTP 503)") == 2 and executed.count("/4 in ") == 2
    for name in ("MODIS_NDWI", "MODIS_NDVI", "MODIS_LST"):
        assert (ws.archive / "composites" / "global" / "dekad" / f"{name}_202403_COMPD2.tif").exists(), name
    assert (ws.archive / "composites" / "local" / "DEMO" / "dekad" / "LS2_NDWI_202403_COMPD2.tif").exists()
    assert RL.leftovers(ws) == []


def test_backfill_on_earth_engine_builds_the_history_in_batches(base, tmp_path):
    # issue 14: --backfill with backend earthengine used to stop on a bare AssertionError
    ws = _ee_workspace(base, tmp_path / "ws")
    data = yaml.safe_load(ws.params.read_text())
    data["history_start"] = "2023-12-01"
    ws.params.write_text(yaml.safe_dump(data))
    res = RL.run(RL.command(ws.params, "--backfill", "--dekad", "2024-03-D1", "--mode", "drought"),
                 env=RL.fault_env(ws.root / "inject", "ee"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "8 dekad(s), 33 file(s)) committed" in res.stdout  # the global chain, with the months of D3
    assert len(_requests(ws)) == 2  # 8 dekads x (global + 1 tile): one request per batch, not per product
    assert "Traceback" not in res.stderr and "AssertionError" not in res.stderr
    arch = ws.archive / "composites" / "global" / "dekad"
    assert (arch / "MODIS_LST_202401_COMPD2.tif").exists() and RL.leftovers(ws) == []
