"""The bulletin and its index page on the reduced demo: content, interactive maps, no secrets or home paths."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from eo4dm_helpers.config import load_config

from .conftest import ROOT

EMAIL = "bulletin-bot@secret-project.iam.gserviceaccount.com"


def test_index_page_lists_dekads_with_a_vhi_timeline(small_demo):
    from eo4dm_helpers.report_index import render_index

    cfg = load_config(small_demo)
    page = render_index(cfg).read_text(encoding="utf-8")
    assert "data:image/png;base64," in page  # the timeline, embedded
    assert "2024-03-D1" in page  # backfilled indicators are listed
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")


def test_interactive_map_only_outside_headless_runs(small_demo, monkeypatch):
    from eo4dm_helpers import maps
    from eo4dm_helpers.workflow import open_context

    ctx = open_context(small_demo, "2024-03-D1")
    monkeypatch.setenv(maps.HEADLESS_ENV, "1")
    assert maps.indicator_map(ctx) is None
    monkeypatch.delenv(maps.HEADLESS_ENV)
    m = maps.indicator_map(ctx)  # geemap without Earth Engine initialisation: no prompt, no network
    names = [getattr(layer, "name", "") for layer in m.layers]
    assert "VHI 2024-03-D1" in names and "VAI DEMO 2024-03-D1" in names


@pytest.fixture(scope="module")
def run_with_key_under_home(small_demo, tmp_path_factory):
    """Run one dekad with HOME pointing at the folder that holds the demo and a key file (unused by the
    local backend, but named in the parameters)."""
    home = small_demo.parent
    key = home / "keys" / "ee-key.json"
    key.parent.mkdir(exist_ok=True)
    key.write_text(json.dumps({"type": "service_account", "client_email": EMAIL, "private_key_id": "k3y1d0042",
                               "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEsecret\n-----END PRIVATE KEY-----\n"}))
    data = yaml.safe_load(small_demo.read_text())
    data["credentials"] = {"ee_key_file": str(key)}
    params = home / "params-with-key.yaml"
    params.write_text(yaml.safe_dump(data))
    env = {**os.environ, "HOME": str(home)}
    res = subprocess.run([sys.executable, str(ROOT / "run_all.py"), "--params", str(params), "--dekad", "2024-03-D1"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return load_config(params), home, res


def test_no_secret_nor_home_path_in_notebooks_reports_or_output(run_with_key_under_home):
    cfg, home, res = run_with_key_under_home
    files = list((cfg.paths.output / "runs" / "2024-03-D1").glob("*.ipynb"))
    files += [cfg.paths.output / "reports" / "2024-03-D1" / "index.html", cfg.paths.output / "reports" / "index.html"]
    assert len(files) == 9
    for f in files:
        text = f.read_text(encoding="utf-8")
        for secret in (EMAIL, "MIIEsecret", "k3y1d0042", "ee-key.json", str(home)):
            assert secret not in text, (f.name, secret)
    assert EMAIL not in res.stdout + res.stderr


def test_bulletin_sections(run_with_key_under_home):
    cfg, _, _ = run_with_key_under_home
    html = (cfg.paths.output / "reports" / "2024-03-D1" / "index.html").read_text(encoding="utf-8")
    for text in ("Drought bulletin", "Headline", "previous dekad", "Maps", "Zones", "against the reference years",
                 "Data availability", "latency (days)", "Run", "Parameters", "Inputs", "provisional"):
        assert text in html, text
    assert html.count("data:image/png;base64") >= 7  # 4 class maps, QSCORE, NDWI and LST series
    assert len(html.encode()) < 5 * 2**20
    assert "<script src=" not in html.replace("<script src=\"data:", "")
