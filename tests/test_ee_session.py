"""Earth Engine authentication and offline initialisation: clear messages, no secret leaked."""

import json
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from eo4dm_helpers.config import Credentials, load_config
from eo4dm_helpers.ee import session
from eo4dm_helpers.ee.session import AuthError, OfflineError

from .conftest import production_params

ROOT = Path(__file__).resolve().parents[1]
EMAIL = "drought-bot@secret-project.iam.gserviceaccount.com"
PRIVATE = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


def _cfg(key=None):
    cfg = load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)
    return replace(cfg, credentials=Credentials(ee_key_file=key, ee_project="proj"))


def _key(tmp_path, **over):
    data = {"type": "service_account", "client_email": EMAIL, "private_key": PRIVATE, "private_key_id": "abc123",
            "project_id": "proj", **over}
    p = tmp_path / "key.json"
    p.write_text(json.dumps(data))
    p.chmod(0o600)
    return p


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t / "missing.json", "does not exist"),
        (lambda t: t, "cannot be read"),  # a directory
        (lambda t: (t / "k.json").write_text("not json") and t / "k.json", "is not JSON"),
        (lambda t: _key(t, type="authorized_user"), "is not a service-account key"),
        (lambda t: _key(t, private_key=""), "is not a service-account key"),
    ],
)
def test_bad_key_files_name_the_file_and_the_fix(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(AuthError, match=message) as info:
        session.initialize(_cfg(path))
    assert str(path) in str(info.value) and "ee_key_file" in str(info.value)
    assert EMAIL not in str(info.value) and "PRIVATE KEY" not in str(info.value)


def test_rejected_key_message_is_scrubbed(tmp_path, monkeypatch):
    path = _key(tmp_path)

    def reject(*_a, **_k):
        raise RuntimeError(f"invalid_grant: account {EMAIL} not registered; key {PRIVATE} id abc123")

    monkeypatch.setattr(session.ee, "Initialize", reject)
    with pytest.raises(AuthError, match="rejected the service-account key") as info:
        session.initialize(_cfg(path))
    text = str(info.value)
    assert EMAIL not in text and "MIIEvQ" not in text and "abc123" not in text and "<redacted>" in text


def test_key_from_environment_and_world_readable_warning(tmp_path, monkeypatch):
    path = _key(tmp_path)
    path.chmod(0o644)
    monkeypatch.setenv(session.KEY_ENV, str(path))
    calls = []
    monkeypatch.setattr(session.ee, "ServiceAccountCredentials", lambda email, key_data: ("creds", email))
    monkeypatch.setattr(session.ee, "Initialize", lambda creds, project=None: calls.append(project))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert session.initialize(_cfg(None)) == "service account"
    assert calls == ["proj"]
    assert any("readable by other users" in str(x.message) for x in w)
    assert all(EMAIL not in str(x.message) for x in w)


def test_no_credentials_at_all(monkeypatch):
    monkeypatch.delenv(session.KEY_ENV, raising=False)

    def no_creds(*_a, **_k):
        raise Exception("Please authorize access to your Earth Engine account")

    monkeypatch.setattr(session.ee, "Initialize", no_creds)
    with pytest.raises(AuthError, match="no Earth Engine credentials: set credentials.ee_key_file"):
        session.initialize(_cfg(None))


def test_offline_initialisation_builds_graphs_and_refuses_requests(ee_offline):
    img = ee_offline.Image("MODIS/061/MOD09GA/2024_03_12").select("sur_refl_b02")
    assert "sur_refl_b02" in img.serialize()
    with pytest.raises(OfflineError, match="offline"):
        img.getInfo()


def test_google_harness_still_has_the_private_names_we_use():
    # initialize_offline relies on these names of earthengine-api (ARCHITECTURE.md §5)
    import ee
    from ee import apitestcase

    assert callable(apitestcase.GetAlgorithms) and "Image.select" in apitestcase.GetAlgorithms()
    assert hasattr(ee.data, "_install_cloud_api_resource") and hasattr(ee.data, "computeValue")
    case = apitestcase.ApiTestCase()
    case.setUp()
    case.tearDown()


def test_dry_run_writes_graphs_and_summaries_without_credentials(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_GCE_CHECK": "true"}  # no key, no user creds
    params = production_params(tmp_path)
    res = subprocess.run([sys.executable, str(ROOT / "run_all.py"), "--params", str(params), "--dekad", "2024-03-D2",
                          "--dry-run", "--plan-dir", str(tmp_path / "p")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    names = sorted(p.stem for p in (tmp_path / "p").glob("*.json"))
    wrs2 = ["80075", "81074", "81075", "81076", "82074", "82075", "83074"]  # EO4DM's, DOMAIN.md §1.2
    assert names == ["global_MODIS_LST_202403_COMPD2", "global_MODIS_NDVI_202403_COMPD2",
                     "global_MODIS_NDWI_202403_COMPD2"] + [f"local_{t}_LS2_{i}_202403_COMPD2" for t in wrs2
                                                           for i in ("NDVI", "NDWI")]
    graph = json.loads((tmp_path / "p" / "global_MODIS_NDWI_202403_COMPD2.json").read_text())
    # MOD09GA daily products by product day (UTC days 11-20 March), not by Noumea's local midnights (13:00Z)
    assert "values" in graph and "2024-03-11T00:00:00Z" in json.dumps(graph)
    assert "2024-03-10T13:00:00Z" not in json.dumps(graph)
    summary = (tmp_path / "p" / "local_82075_LS2_NDWI_202403_COMPD2.txt").read_text()
    assert "EPSG:32758" in summary and "21979 x 21600" in summary and "NDWI_count" in summary
    assert "EPSG:32759" in (tmp_path / "p" / "local_80075_LS2_NDWI_202403_COMPD2.txt").read_text()  # UTM 59S
    mgrs = set()
    for t in wrs2:  # every tile reads the Sentinel-2 scenes of its own MGRS tiles
        text = (tmp_path / "p" / f"local_{t}_LS2_NDWI_202403_COMPD2.json").read_text()
        mgrs |= set(re.findall(r'"(58K[A-Z]{2})"', text))
    assert mgrs == {"58KCC", "58KCD", "58KDB", "58KDC", "58KEA", "58KEB", "58KEC", "58KFA", "58KFB", "58KFC", "58KGA",
                    "58KGB", "58KGC", "58KGV", "58KHB"}


KEY_ID = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("whole", [False, True])  # part of a key (shorter than a file name may be), a whole key
def test_a_key_pasted_into_the_variable_is_refused_without_being_shown(monkeypatch, whole):
    """Before: the variable's value was taken for a path and printed in "... does not exist" (or, longer than
    255 bytes, raised OSError "File name too long" with the whole key in a traceback)."""
    key = {"client_email": EMAIL, "private_key_id": KEY_ID}
    if whole:
        key.update(type="service_account", private_key=PRIVATE, project_id="proj")
    monkeypatch.setenv(session.KEY_ENV, json.dumps(key))
    with pytest.raises(AuthError, match=r"\$EO4DM_EE_KEY holds the key itself \(its JSON\), not the path") as info:
        session.initialize(_cfg(None))
    assert EMAIL not in str(info.value) and KEY_ID not in str(info.value) and "MIIEvQ" not in str(info.value)


def test_a_key_with_a_numeric_field_is_rejected_without_being_shown(tmp_path):
    """Before: the scrubber failed on the number (TypeError) and the traceback showed the library's error,
    which quotes the whole key (google-auth's ``InvalidValue: {...} could not be converted to bytes``)."""
    path = _key(tmp_path, private_key_id=9876543210123)
    with pytest.raises(AuthError, match="Earth Engine rejected the service-account key") as info:
        session.initialize(_cfg(path))
    text = str(info.value)
    assert EMAIL not in text and "9876543210123" not in text and "MIIEvQ" not in text and "<redacted>" in text
