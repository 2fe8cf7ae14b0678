"""No key material anywhere, even when a run fails (issue #9). A successful run is covered by
tests/test_report.py; here a notebook fails with an Earth Engine error that quotes the service account,
its key id, its private key and the key file's path (the injector of eo4dm_helpers.reliability), and
nothing of it may reach the terminal, the run log, the run state, the executed notebooks or the reports.
A key readable by others is warned about in one line."""

import json
import re

import pytest
import yaml

from eo4dm_helpers import reliability as RL

from .reliability_base import base_workspace

EMAIL = "drought-bot@secret-project.iam.gserviceaccount.com"
KEY_ID = "k3y1d0042secret"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCsecretKEYmaterial"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_workspace(tmp_path_factory)


def _key(path, mode=0o600, **over):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "service_account", "client_email": EMAIL, "private_key": PEM,
                                "private_key_id": KEY_ID, "project_id": "secret-project", **over}))
    path.chmod(mode)
    return path


def _params(ws, **over):
    data = yaml.safe_load(ws.params.read_text())
    data.update(over)
    ws.params.write_text(yaml.safe_dump(data))


@pytest.fixture(scope="module")
def failed_run(base, tmp_path_factory):
    """Indicators and bulletins of 2024-03-D1 then 2024-03-D2, with HOME at the workspace and a key file
    named in the parameters: the first dekad succeeds (its bulletin and the index page are written), the
    second fails when committing, with an Earth Engine permission error quoting the key (exit 4)."""
    ws = RL.clone(base, tmp_path_factory.mktemp("secrets") / "ws")
    key = _key(ws.root / "keys" / "ee-key.json")
    _params(ws, credentials={"ee_key_file": str(key)})
    env = {"HOME": str(ws.root), **RL.fault_env(ws.root / "inject", "leak", key=str(key), dekad="2024-03-D2")}
    res = RL.run(RL.command(ws.params, "--mode", "drought", "--start", "2024-03-D1", "--end", "2024-03-D2"), env=env)
    return ws, key, res


def _secrets(key):
    return (EMAIL, KEY_ID, PEM_BODY, "BEGIN PRIVATE KEY", str(key), key.name)


def test_the_failing_run_reports_the_error_without_the_key(failed_run):
    ws, key, res = failed_run
    assert res.returncode == 4, res.stderr[-2000:]  # an Earth Engine error
    assert "2024-03-D1: report " in res.stdout
    # a range shows "dekad k of N", with an estimate from the dekads done so far
    assert "[1/2] 2024-03-D1\n" in res.stdout and re.search(r"\[2/2\] 2024-03-D2 \(about \d", res.stdout)
    assert RL.one_error_line(res.stderr, "notebook 06_indicators.ipynb failed", "EEException: Permission denied",
                             "<redacted>") == [], res.stderr
    for s in _secrets(key):
        assert s not in res.stdout + res.stderr, s


def test_no_key_material_in_logs_state_notebooks_or_reports(failed_run):
    ws, key, _ = failed_run
    files = [p for p in ws.output.rglob("*") if p.is_file() and p.suffix in (".log", ".json", ".ipynb", ".html")]
    kinds = {p.suffix for p in files}
    assert kinds == {".log", ".json", ".ipynb", ".html"}  # run log, state, executed notebooks, bulletin and index
    executed = ws.output / "runs" / "2024-03-D2" / "06_indicators.ipynb"
    assert executed in files and "Permission denied" in executed.read_text()  # the error is there, scrubbed
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        for s in _secrets(key):
            assert s not in text, (f.relative_to(ws.root), s)
    for f in ws.output.glob("runs/*/*.ipynb"):  # no home path either (the home is the workspace here)
        assert str(ws.root) not in f.read_text(encoding="utf-8"), f
    state = json.loads((ws.output / "state" / "last_run.json").read_text())
    assert state["exit_code"] == 4 and state["failed"] == "2024-03-D2" and state["done"] == ["2024-03-D1"]


def test_a_key_readable_by_others_is_warned_about_in_one_line(base, tmp_path):
    ws = RL.clone(base, tmp_path / "ws")
    key = _key(ws.root / "ee-key.json", mode=0o644, type="authorized_user")  # rejected after the warning
    _params(ws, backend="earthengine", credentials={"ee_key_file": str(key)})
    res = RL.run(RL.command(ws.params, "--dekad", "2024-03-D1"))
    assert res.returncode == 4
    lines = res.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("warning: ") and lines[1].startswith("error: "), res.stderr
    assert "is readable by other users: restrict it with `chmod 600" in lines[0]
    assert "is not a service-account key" in lines[1]
    for s in (EMAIL, KEY_ID, PEM_BODY):
        assert s not in res.stderr + res.stdout
    log = next((ws.output / "logs").glob("run-*.log")).read_text()
    assert "readable by other users" in log and EMAIL not in log
