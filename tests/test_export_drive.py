"""Drive route: the export request carries the plan's grid; the files are verified (size, md5) before
anything is deleted from Drive; a rerun resumes without exporting again; quota and permission errors
say what to do; secrets stay out of messages."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eo4dm_helpers.config import Grid, load_config
from eo4dm_helpers.ee import graphs
from eo4dm_helpers.ee.drive import PollPolicy, export_params
from eo4dm_helpers.ee.errors import DriveError, RetryPolicy, TransferError
from eo4dm_helpers.ee.fakes import FakeDrive, FakeEarthEngine, drive_http_error, sample_plan
from eo4dm_helpers.ee.io import LiveIO, PyDrive2Drive, task_status_of
from eo4dm_helpers.ee.pixels import FILL
from eo4dm_helpers.ee.plan import ExportPlan
from eo4dm_helpers.ee.transfer import download_dekad

from . import ee_graph as G

ROOT = Path(__file__).resolve().parents[1]
GRID = Grid("EPSG:32758", 499980.0, 7700020.0, 10.0, 300, 200)
EMAIL = "drought-bot@secret-project.iam.gserviceaccount.com"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


@pytest.fixture
def setup(ee_offline, tmp_path):
    plans, arrays = [], []
    for i, name in enumerate(("local_82075_LS2_NDWI_202403_COMPD2", "local_82075_LS2_NDVI_202403_COMPD2")):
        p, a = sample_plan(name, tmp_path / "archive" / "local" / f"{name}.tif", GRID, seed=i)
        plans.append(p)
        arrays.append(a)
    drive = FakeDrive()
    fake = FakeEarthEngine(drive=drive, polls_to_finish=3, file_rows=64)  # 4 files per export
    for p, a in zip(plans, arrays, strict=True):
        fake.add(p, a)
    return plans, arrays, fake, drive, tmp_path


POLL = PollPolicy(first=30, timeout=3600)


def _run(plans, fake, tmp, logs=None, clock=None, poll=POLL, **kw):
    clock = clock or Clock()
    return download_dekad(plans, tmp / "work", tmp / "archive", fake, method="drive", log=(
        logs.append if logs is not None else lambda m: None), sleep=clock.sleep, clock=clock, poll=poll,
        retry=RetryPolicy(attempts=3), **kw)


def _archive(tmp):
    return sorted(p.name for p in (tmp / "archive").rglob("*") if p.is_file())


def _state(tmp):
    return json.loads((tmp / "work" / "download" / "state.json").read_text())["products"]


def test_drive_export_receives_crs_transform_region_and_maxpixels_from_the_plan(ee_offline, monkeypatch):
    cfg = load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)
    tile = cfg.local_chain.tiles[0].grid
    image = ee_offline.Image.constant([0, 0]).rename(["NDWI", "NDWI_count"]).toFloat()
    plan = ExportPlan("local_82075_LS2_NDWI_202403_COMPD2", Path("/archive/x.tif"), image, tile, ("NDWI", "NDWI_count"))
    seen, sent = {}, {}
    real = ee_offline.batch.Export.image.toDrive

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(ee_offline.batch.Export.image, "toDrive", spy)
    monkeypatch.setattr(ee_offline.data, "exportImage",
                        lambda rid, params: sent.update(rid=rid, params=params) or {"name": "projects/p/operations/X"})
    name = LiveIO().start_export(export_params(plan, "eo4dm_exports", "prefix_1"), "request-123")
    assert name == "projects/p/operations/X" and sent["rid"] == "request-123"
    exp = plan.export  # graphs.export_params: the ExportPlan's explicit grid
    assert seen["crs"] == exp["crs"] == "EPSG:32758"
    assert seen["crsTransform"] == exp["crsTransform"] == list(tile.transform)
    assert seen["maxPixels"] == exp["maxPixels"] == 1e10
    assert ee_offline.serializer.toJSON(seen["region"]) == ee_offline.serializer.toJSON(graphs.grid_region(tile))
    assert (seen["folder"], seen["fileNamePrefix"], seen["fileFormat"]) == ("eo4dm_exports", "prefix_1", "GeoTIFF")
    # and in what goes to Google: maxPixels, reprojection on the transform, clip to the grid's rectangle
    req = sent["params"]
    assert req["maxPixels"] == {"value": "10000000000"}
    assert req["fileExportOptions"]["driveDestination"] == {"folder": "eo4dm_exports", "filenamePrefix": "prefix_1"}
    t = G.tree(req["expression"])
    [rep] = G.calls(t, "Image.reproject")
    assert rep["args"]["crsTransform"] == list(tile.transform) and rep["args"]["crs"]["args"]["crs"] == "EPSG:32758"
    [clip] = [c for c in G.calls(t, "Image.clip") if c["args"]["input"] is rep]
    assert clip["args"]["geometry"]["args"]["coordinates"] == list(tile.bounds)
    assert FILL in G.constants(t)  # the same filled image as the direct route


def test_export_download_verify_archive_then_delete(setup):
    plans, arrays, fake, drive, tmp = setup
    logs = []

    def on_delete(name):  # Drive files go only once the archive holds the verified copy
        product = name.rsplit("_", 1)[0].split("-")[0]
        assert (tmp / "archive" / "local" / f"{product}.tif").exists(), name

    drive.on_delete = on_delete
    out = _run(plans, fake, tmp, logs=logs)
    assert out == [p.archive_path for p in plans]
    for p, a in zip(plans, arrays, strict=True):
        with rasterio.open(p.archive_path) as src:
            assert np.array_equal(src.read(), a, equal_nan=True)
            assert src.descriptions == p.bands and np.isnan(src.nodata)
            assert list(src.transform)[:6] == list(GRID.transform)
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    assert drive.files == {}  # everything deleted from Drive
    downloads = [i for i, c in enumerate(drive.calls) if c[0] == "download"]
    deletes = [i for i, c in enumerate(drive.calls) if c[0] == "delete"]
    assert len(downloads) == len(deletes) == 8
    for product in (p.product for p in plans):
        mine = [i for i, c in enumerate(drive.calls) if c[1].startswith(product)]
        assert all(drive.calls[i][0] != "delete" for i in mine[:5])  # list + 4 downloads, then deletes
    assert len(fake.export_calls) == 2
    done = [m for m in logs if "export done in" in m]
    assert len(done) == 2 and all("42.0 EECU-seconds" in m and "min" in m for m in done)
    assert all(s["status"] == "done" and s["eecu_seconds"] == 42.0 for s in _state(tmp).values())
    assert not list((tmp / "work").rglob("*.tif"))


def test_md5_mismatch_is_detected_and_nothing_is_deleted(setup):
    plans, _, fake, drive, tmp = setup
    fake.file_rows = None
    real_put = drive.put

    def put(name, data):
        if name.startswith(plans[0].product):  # Drive's metadata md5 will not match the content
            drive.wrong_md5.add(name)
        return real_put(name, data)

    drive.put = put
    with pytest.raises(TransferError, match="does not match Drive's metadata .* md5") as info:
        _run(plans, fake, tmp)
    assert "after 2 downloads" in str(info.value) and "stays in Drive" in str(info.value)
    assert [c[0] for c in drive.calls if c[1].startswith(plans[0].product)] == ["list", "download", "download"]
    assert _archive(tmp) == [f"{plans[1].product}.tif"]  # the other product is fine
    assert any(f["name"].startswith(plans[0].product) for f in drive.files.values())
    assert not list((tmp / "work").rglob("*.part"))
    assert _state(tmp)[plans[0].product]["status"] == "exported"  # a rerun downloads it again


def test_resume_downloads_what_was_exported_and_exports_nothing_again(setup):
    plans, arrays, fake, drive, tmp = setup
    drive.download_faults = [ConnectionResetError(104, "reset")] * 3  # the first download gives up
    with pytest.raises(TransferError, match="gave up after 3 tries"):
        _run(plans, fake, tmp)
    first = list(fake.export_calls)
    assert len(first) == 2 and _archive(tmp) == [f"{plans[1].product}.tif"]
    assert _state(tmp)[plans[0].product]["status"] == "exported"
    logs = []
    _run(plans, fake, tmp, logs=logs)
    assert fake.export_calls == first  # nothing exported again
    assert any("resuming its Drive export (exported)" in m for m in logs)
    assert any("already in the archive" in m for m in logs)
    with rasterio.open(plans[0].archive_path) as src:
        assert np.array_equal(src.read(), arrays[0], equal_nan=True)
    assert drive.files == {}
    calls = len(drive.calls)
    _run(plans, fake, tmp)  # a third run has nothing to do
    assert fake.export_calls == first and len(drive.calls) == calls


def test_a_timed_out_wait_resumes_polling_the_same_tasks(setup):
    plans, _, fake, drive, tmp = setup
    fake.polls_to_finish = 50
    with pytest.raises(TransferError, match="still running after .* keep running on Earth Engine"):
        _run(plans, fake, tmp, poll=PollPolicy(first=60, timeout=600))
    assert _archive(tmp) == [] and all(s["status"] == "exporting" for s in _state(tmp).values())
    fake.polls_to_finish = 1
    _run(plans, fake, tmp)
    assert len(fake.export_calls) == 2 and len(fake.tasks) == 2 and len(_archive(tmp)) == 2


def test_polling_backs_off_up_to_a_maximum(setup):
    plans, _, fake, _, tmp = setup
    fake.polls_to_finish = 12
    clock = Clock()
    sleeps = []
    real = clock.sleep
    clock.sleep = lambda s: sleeps.append(s) or real(s)
    _run(plans[:1], fake, tmp, clock=clock, poll=PollPolicy(first=10, factor=2, max_delay=60, timeout=3600))
    assert sleeps[:4] == [10, 20, 40, 60] and max(sleeps) == 60


def test_a_failed_start_is_retried_with_the_same_request_id(setup, ee_offline):
    plans, _, fake, _, tmp = setup
    real = fake.start_export
    faults = [TimeoutError("timed out")] * 3

    def flaky(params, rid):
        real(params, rid)  # Earth Engine got it, but the answer was lost
        if faults:
            raise faults.pop()
        return f"projects/fake/operations/{rid}"

    fake.start_export = flaky
    with pytest.raises(TransferError, match="export start"):
        _run(plans[:1], fake, tmp)
    assert _state(tmp)[plans[0].product]["status"] == "starting"
    _run(plans[:1], fake, tmp)
    assert len(set(fake.export_calls)) == 1 and len(fake.tasks) == 1  # one task whatever the retries


def test_service_account_without_drive_storage_says_what_to_do(setup):
    plans, _, fake, _, tmp = setup
    fake.export_error = ("Service Accounts do not have storage quota. Leverage shared drives "
                         "(https://developers.google.com/workspace/drive/api/guides/about-shareddrives), or use "
                         "OAuth delegation instead.")
    with pytest.raises(TransferError) as info:
        _run(plans[:1], fake, tmp)
    msg = str(info.value)
    assert "no Drive storage of its own" in msg and "user credentials" in msg and "shared drive" in msg
    assert _state(tmp)[plans[0].product]["status"] == "failed"  # a rerun starts a new export


def test_full_drive_is_reported_before_and_when_the_export_fails(setup):
    plans, _, fake, drive, tmp = setup
    drive.quota_bytes = 1000
    logs = []
    with pytest.raises(TransferError, match="quota has been exceeded. What to do: .*15 GB.*free space in that Drive"):
        _run(plans, fake, tmp, logs=logs)
    assert any(m.startswith("warning: the Drive has") for m in logs)
    assert _archive(tmp) == []


def test_drive_permission_error_is_not_retried_and_says_what_to_do(setup):
    plans, _, fake, drive, tmp = setup
    drive.download_faults = [drive_http_error(403, "The user does not have sufficient permissions for this file.",
                                              "insufficientFilePermissions")]
    with pytest.raises(TransferError, match="share the export folder with the account used by pydrive2"):
        _run(plans[:1], fake, tmp)
    assert [c[0] for c in drive.calls] == ["list", "download"]


def test_drive_rate_limit_is_retried(setup):
    plans, arrays, fake, drive, tmp = setup
    drive.download_faults = [drive_http_error(403, "User Rate Limit Exceeded", "userRateLimitExceeded"),
                             drive_http_error(500, "Backend Error", "backendError")]
    _run(plans[:1], fake, tmp)
    with rasterio.open(plans[0].archive_path) as src:
        assert np.array_equal(src.read(), arrays[0], equal_nan=True)


def test_a_file_that_cannot_be_deleted_is_a_warning(setup):
    plans, _, fake, drive, tmp = setup
    drive.delete_faults = [drive_http_error(403, "Insufficient permissions", "insufficientFilePermissions")]
    logs = []
    _run(plans[:1], fake, tmp, logs=logs)
    assert any(m.startswith("warning:") and "delete it by hand" in m for m in logs)
    assert _state(tmp)[plans[0].product]["status"] == "done" and len(drive.files) == 1


def test_no_drive_configured_is_a_clear_error(setup):
    plans, _, fake, _, tmp = setup
    fake.drive = None
    with pytest.raises(TransferError, match="no Drive is configured.*method='direct'"):
        _run(plans[:1], fake, tmp)
    assert fake.export_calls == []


def test_export_grid_mismatch_and_region_check_in_the_fake(setup):
    """The fake refuses an export whose grid is not the plan's (guards the test above)."""
    plans, _, fake, _, tmp = setup
    assert fake.tasks == {}
    p = plans[0]
    params = export_params(p, "f", "x")
    params["crsTransform"] = [20.0, 0, 0, 0, -20.0, 0]
    name = fake.start_export(params, "r1")
    fake.polls_to_finish = 1
    st = fake.task_status(name)
    assert st.state == "FAILED" and "grid" in st.error


def test_operation_parsing():
    op = {"name": "projects/p/operations/ABC", "done": True, "metadata": {
        "state": "SUCCEEDED", "batchEecuUsageSeconds": 321.5, "startTime": "2024-03-21T00:00:00Z",
        "updateTime": "2024-03-21T00:09:30Z", "destinationUris": ["https://drive.google.com/#folders/1"]}}
    st = task_status_of(op)
    assert st.done and st.state == "SUCCEEDED" and st.eecu_seconds == 321.5 and st.update - st.start == 570
    failed = task_status_of({"done": True, "metadata": {"state": "FAILED"}, "error": {"message": "boom"}})
    assert failed.state == "FAILED" and failed.error == "boom"
    assert not task_status_of({"metadata": {"state": "CANCELLING"}}).done


def test_service_account_key_never_appears_in_drive_errors(tmp_path):
    key = {"type": "service_account", "client_email": EMAIL, "project_id": "p", "private_key_id": "abc",
           "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
           "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    path.chmod(0o600)
    with pytest.raises(DriveError) as info:
        PyDrive2Drive.service_account(path)
    msg = str(info.value)
    assert str(path) in msg and EMAIL not in msg and "PRIVATE KEY" not in msg and "MIIEvQ" not in msg
