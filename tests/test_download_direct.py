"""Direct tiled download against a fake computePixels with Earth Engine's size check and injected faults:
the reassembled COG equals the source and a single-request file; transient faults are retried with
backoff, deterministic ones fail at once with what to do; an interruption leaves nothing in the archive
and the rerun completes it; no secret reaches a message or a log."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eo4dm_helpers.config import Grid
from eo4dm_helpers.ee import cog
from eo4dm_helpers.ee.errors import RETRY, RetryPolicy, TransferError
from eo4dm_helpers.ee.fakes import FakeEarthEngine, sample_plan
from eo4dm_helpers.ee.pixels import run_bounded
from eo4dm_helpers.ee.tiles import Limits, plan_tiles
from eo4dm_helpers.ee.transfer import download_dekad

GRID = Grid("EPSG:32758", 499980.0, 7700020.0, 10.0, 300, 200)
SMALL = Limits(request_bytes=50_000)  # 15 tiles of ~70 x 71 px for this grid
EMAIL = "drought-bot@secret-project.iam.gserviceaccount.com"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def setup(ee_offline, tmp_path):
    plan, arr = sample_plan("global_VIIRS_NDWI_202403_COMPD2", tmp_path / "archive" / "composites" / "x.tif", GRID)
    fake = FakeEarthEngine(limits=SMALL)
    fake.add(plan, arr)
    return plan, arr, fake, tmp_path


def _run(plan, fake, tmp, *, limits=SMALL, concurrency=3, logs=None, sleeps=None, retry=RETRY, **kw):
    return download_dekad([plan], tmp / "work", tmp / "archive", fake, method="direct", concurrency=concurrency,
                          limits=limits, retry=retry, log=(logs.append if logs is not None else lambda m: None),
                          sleep=sleeps if sleeps is not None else Sleeps(), **kw)


def _archive_files(tmp):
    return sorted(p.name for p in (tmp / "archive").rglob("*") if p.is_file())


def test_reassembled_cog_equals_the_source_and_a_single_request_file(setup, ee_offline):
    plan, arr, fake, tmp = setup
    [out] = _run(plan, fake, tmp)
    assert len(fake.pixel_requests) == len(plan_tiles(GRID.width, GRID.height, ["float32"] * 2, SMALL)) == 15
    single, _ = sample_plan(plan.product, tmp / "single" / "x.tif", GRID)  # same graph, fetched in one request
    fake.limits = Limits()
    [one] = download_dekad([single], tmp / "work1", tmp / "single", fake, method="direct", log=lambda m: None)
    assert len(fake.pixel_requests) == 16
    with rasterio.open(out) as a, rasterio.open(one) as b:
        assert a.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert (a.crs, a.transform, a.shape, a.dtypes) == (b.crs, b.transform, b.shape, b.dtypes)
        assert a.crs == rasterio.crs.CRS.from_user_input(GRID.crs) and list(a.transform)[:6] == list(GRID.transform)
        assert np.isnan(a.nodata) and np.isnan(b.nodata)
        assert a.descriptions == b.descriptions == ("NDWI", "NDWI_count")
        data = a.read()
        assert np.array_equal(data, arr, equal_nan=True) and np.array_equal(data, b.read(), equal_nan=True)
        assert np.isnan(data).any()  # masked pixels are NaN, not the fill value
    assert out.read_bytes() == one.read_bytes()
    assert not list((tmp / "work" / "download").rglob("*.npy"))  # tiles removed once archived


def test_requests_carry_the_grid_crs_transform_and_bands(setup):
    plan, _, fake, tmp = setup
    _run(plan, fake, tmp)
    for req in fake.pixel_requests:  # every piece: same format, bands, CRS and pixel size
        assert req["fileFormat"] == "NUMPY_NDARRAY" and req["bandIds"] == ["NDWI", "NDWI_count"]
        assert req["grid"]["crsCode"] == "EPSG:32758"
        t = req["grid"]["affineTransform"]
        assert (t["scaleX"], t["scaleY"]) == (10.0, -10.0)
    # the pieces are requested by concurrent threads, in any order: the upper-left one starts at the grid's origin
    first = min((r["grid"]["affineTransform"] for r in fake.pixel_requests),
                key=lambda t: (-t["translateY"], t["translateX"]))
    assert (first["translateX"], first["translateY"]) == (499980.0, 7700020.0)


def test_concurrency_is_bounded(setup):
    plan, _, fake, tmp = setup
    inner, lock, gauge = fake.compute_pixels, threading.Lock(), {"now": 0, "max": 0}

    def slow(request):
        with lock:
            gauge["now"] += 1
            gauge["max"] = max(gauge["max"], gauge["now"])
        time.sleep(0.01)
        with lock:
            gauge["now"] -= 1
        return inner(request)

    fake.compute_pixels = slow
    _run(plan, fake, tmp, concurrency=3)
    assert gauge["max"] == 3


@pytest.mark.parametrize("fault", [
    "Too many concurrent aggregations.",  # 429
    "Quota exceeded for quota metric 'Compute requests' and limit 'Compute requests per minute per user'",  # 429
    "An internal error has occurred (request: 8d2f).",  # 500
    "The service is currently unavailable.",  # 503
    TimeoutError("The read operation timed out"),
    ConnectionResetError(104, "Connection reset by peer"),
])
def test_transient_faults_are_retried_with_backoff(setup, ee_offline, fault):
    plan, arr, fake, tmp = setup
    exc = ee_offline.EEException(fault) if isinstance(fault, str) else fault
    fake.faults = [exc, exc]
    sleeps = Sleeps()
    [out] = _run(plan, fake, tmp, concurrency=1, sleeps=sleeps, retry=RetryPolicy(attempts=4, base=2.0))
    assert len(fake.pixel_requests) == 15 + 2
    assert len(sleeps) == 2 and 1.5 <= sleeps[0] <= 2.0 and 3.0 <= sleeps[1] <= 4.0  # exponential, jittered
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(), arr, equal_nan=True)


def test_retries_are_bounded(setup, ee_offline):
    plan, _, fake, tmp = setup
    fake.faults = [ee_offline.EEException("Too many concurrent aggregations.")] * 10
    with pytest.raises(TransferError, match="gave up after 3 tries; rerun later"):
        _run(plan, fake, tmp, concurrency=1, retry=RetryPolicy(attempts=3))
    assert len(fake.pixel_requests) == 3 and _archive_files(tmp) == []


@pytest.mark.parametrize(("fault", "advice"), [
    ("User memory limit exceeded.", "fetch smaller tiles"),
    ("Computation timed out.", "export it as a batch task"),
    ("Image.load: Image asset 'NASA/VIIRS/002/VNP09GAX' not found (does not exist or caller does not have "
     "access).", "check the collection or asset ID"),
    ("Permission denied: caller does not have permission to use project eo4dm.", "Resource Viewer"),
    ("Earth Engine quota exhausted for this project.", "Quotas"),
])
def test_deterministic_errors_fail_at_once_with_what_to_do(setup, ee_offline, fault, advice):
    plan, _, fake, tmp = setup
    fake.faults = [ee_offline.EEException(fault)]
    sleeps = Sleeps()
    with pytest.raises(TransferError) as info:
        _run(plan, fake, tmp, concurrency=1, sleeps=sleeps)
    msg = str(info.value)
    assert len(fake.pixel_requests) == 1 and sleeps == []  # no retry, nothing else started
    assert plan.product in msg and fault.split(":")[0] in msg and "What to do:" in msg and advice in msg
    assert _archive_files(tmp) == []


def test_an_interrupted_download_leaves_no_partial_file_and_the_rerun_completes_it(setup, ee_offline):
    plan, arr, fake, tmp = setup
    tiles = plan_tiles(GRID.width, GRID.height, ["float32"] * 2, SMALL)
    fake.tile_faults[(tiles[6].row, tiles[6].col)] = [ee_offline.EEException("Computation timed out.")]
    with pytest.raises(TransferError, match="Computation timed out"):
        _run(plan, fake, tmp, concurrency=1)
    assert _archive_files(tmp) == [] and len(fake.pixel_requests) == 7
    state = (tmp / "work" / "download" / "state.json").read_text()
    assert '"status": "failed"' in state
    [out] = _run(plan, fake, tmp, concurrency=1)  # rerun: only the missing tiles
    assert len(fake.pixel_requests) == 7 + 9
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(), arr, equal_nan=True)
    assert _archive_files(tmp) == ["x.tif"]


def test_an_interruption_while_writing_the_cog_leaves_nothing_in_the_archive(setup, monkeypatch):
    plan, arr, fake, tmp = setup
    real_copy = cog.rasterio.shutil.copy

    def crash(src, dst, **kw):
        Path(dst).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(cog.rasterio.shutil, "copy", crash)
    with pytest.raises(KeyboardInterrupt):
        _run(plan, fake, tmp)
    assert _archive_files(tmp) == []  # not even a temporary file
    monkeypatch.setattr(cog.rasterio.shutil, "copy", real_copy)
    [out] = _run(plan, fake, tmp)
    assert len(fake.pixel_requests) == 15  # every tile was kept: nothing fetched twice
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(), arr, equal_nan=True)


def test_a_rerun_of_a_complete_dekad_requests_nothing(setup):
    plan, _, fake, tmp = setup
    _run(plan, fake, tmp)
    logs = []
    assert _run(plan, fake, tmp, logs=logs) == [plan.archive_path]
    assert len(fake.pixel_requests) == 15 and any("already in the archive" in m for m in logs)


def test_secrets_never_reach_messages_or_logs(setup, ee_offline):
    plan, _, fake, tmp = setup
    fake.faults = [ee_offline.EEException(f"Too many concurrent aggregations for {EMAIL}"),
                   ee_offline.EEException(f"Permission denied for {EMAIL}: key {KEY} access_token=ya29.abcdef")]
    logs = []
    with pytest.raises(TransferError) as info:
        _run(plan, fake, tmp, concurrency=1, logs=logs)
    text = str(info.value) + "\n".join(logs)
    assert "Permission denied" in text and "Too many concurrent" in text
    for secret in (EMAIL, "PRIVATE KEY", "MIIEvQ", "ya29"):
        assert secret not in text


def test_run_bounded_stops_starting_work_after_an_error():
    started = []

    def work(i):
        started.append(i)
        if i == 2:
            raise ValueError("boom")
        time.sleep(0.005)

    with pytest.raises(ValueError, match="boom"):
        run_bounded(work, range(100), 2)
    assert len(started) <= 5


@pytest.mark.parametrize(("message", "transient"), [
    ("Too many concurrent aggregations.", True),
    ("Resource has been exhausted (e.g. check quota).", True),  # Google's generic HTTP 429 text
    ("<HttpError 503 when requesting https://earthengine.googleapis.com/v1/x returned \"unavailable\">", True),
    ("Internal error.", True),
    ("User memory limit exceeded.", False),
    ("Computation timed out.", False),
    ("Earth Engine quota exhausted.", False),
    ("Collection.reduce: 500 images and one failed to load.", False),  # a count, not an HTTP status
    ("Something new and unknown.", False),  # unknown errors are not retried
])
def test_only_network_429_and_5xx_are_transient(ee_offline, message, transient):
    from eo4dm_helpers.ee.errors import TransientError, classify

    assert isinstance(classify(ee_offline.EEException(message), "p"), TransientError) is transient
