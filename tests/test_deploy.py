"""The scheduling examples deliver failures to someone (deploy/): cron mails what the wrapper prints, which
is nothing on success or "waiting for late products" and the failure otherwise; systemd mails on failure."""

from __future__ import annotations

import configparser
import re
import subprocess

import pytest

from .conftest import ROOT

DEPLOY = ROOT / "deploy"
WRAPPER = DEPLOY / "eo4dm-cron.sh"


def _wrap(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WRAPPER), "bash", "-c", script], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("code", [0, 5])
def test_the_cron_wrapper_is_silent_when_the_run_did_its_job_or_waits(code):
    res = _wrap(f"echo progress; echo warning >&2; exit {code}")
    assert (res.returncode, res.stdout, res.stderr) == (code, "", "")


@pytest.mark.parametrize("code", [1, 2, 4, 6])
def test_the_cron_wrapper_prints_a_failure_with_the_runs_last_lines(code):
    res = _wrap("for i in $(seq 1 100); do echo line $i; done; echo 'error: the last words' >&2; "
                f"exit {code}")
    assert res.returncode == code
    assert "failed on" in res.stdout and f"with exit {code}" in res.stdout
    assert "error: the last words" in res.stdout and "line 100" in res.stdout
    assert "line 50\n" not in res.stdout  # the tail, not the whole log


def test_the_cron_wrapper_without_a_command_is_a_usage_error():
    res = subprocess.run([str(WRAPPER)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "usage" in res.stderr


def test_the_crontab_mails_the_wrapper_output_and_runs_the_routine():
    lines = [ln for ln in (DEPLOY / "eo4dm.cron").read_text().splitlines() if ln and not ln.startswith("#")]
    assert any(re.fullmatch(r"MAILTO=\S+@\S+", ln) for ln in lines)
    job = next(ln for ln in lines if re.match(r"[\d*]", ln))
    assert "deploy/eo4dm-cron.sh .venv/bin/python run_all.py" in job
    assert "/dev/null" not in job  # output is what cron mails


def test_the_systemd_service_mails_on_failure_and_treats_exit_5_as_success():
    service = configparser.ConfigParser(interpolation=None, strict=False)
    service.read_string((DEPLOY / "eo4dm.service").read_text())
    assert service["Unit"]["OnFailure"] == "eo4dm-notify@%n.service"
    assert service["Service"]["SuccessExitStatus"] == "5"
    notify = configparser.ConfigParser(interpolation=None)
    notify.read_string((DEPLOY / "eo4dm-notify@.service").read_text())
    cmd = notify["Service"]["ExecStart"]
    assert "journalctl -u %i" in cmd and "| mail " in cmd
