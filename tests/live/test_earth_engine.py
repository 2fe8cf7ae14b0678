"""Live Earth Engine checks (issue 14, point 8): skipped unless ``EO4DM_EE_KEY`` is set (tests/live/conftest.py).

1. The catalogue against the production entries of ``products.py``: every band the chains read exists,
   with the type its rules need (integers for bit tests, the spec's scale), and its values fall in the
   documented range (DOMAIN.md §4) over the tiny region.
2. One dekad of the tiny region through the project's own code: ``plan_dekad`` → ``describe`` (one
   request) → ``download_dekad`` by ``computePixels`` (one tile per product) → the archive COGs.
3. One small Drive export (``download_dekad(method="drive")``) when Drive is configured, identical to the
   direct download of the same product.
4. Real error payloads through ``ee/errors.py classify``: deterministic ones are never retried and get the
   right hint; the scrubbed payloads are written to ``EO4DM_LIVE_OUT`` for offline fixtures.
5. The dry-run graphs against the server's own algorithm signatures (the offline test uses the copy
   bundled with earthengine-api, which may lag behind).
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest
import rasterio

from eo4dm_helpers import products as P
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.ee import errors as E
from eo4dm_helpers.ee.graphs import grid_region
from eo4dm_helpers.ee.io import LiveIO, PyDrive2Drive, describe
from eo4dm_helpers.ee.plan import plan_dekad
from eo4dm_helpers.ee.transfer import download_dekad

from ..test_ee_algorithms import check_graph
from .conftest import DEKAD, init_live


def _dekad() -> Dekad:
    y, m, d = DEKAD.split("-")
    return Dekad(int(y), int(m), int(d[1]))


# --------------------------------------------------------------------------------------------
# 1. Catalogue: bands, types and value ranges of the production entries
# --------------------------------------------------------------------------------------------
# (product, window with data over New Caledonia, scale of the check in metres, range of each band's
# values after the entry's own scaling, where DOMAIN.md §4 documents one)
CATALOGUE = [
    (P.S2, ("2023-09-01", "2023-09-30"), 20, {"B4": (0, 2.0), "B8": (0, 2.0), "B11": (0, 2.0)}),
    (P.L8, ("2023-09-01", "2023-09-30"), 30, {"SR_B4": (-0.2, 1.61), "SR_B5": (-0.2, 1.61), "SR_B6": (-0.2, 1.61)}),
    (P.L9, ("2023-09-01", "2023-09-30"), 30, {"SR_B4": (-0.2, 1.61), "SR_B5": (-0.2, 1.61)}),
    (P.L7, ("2021-06-01", "2021-06-30"), 30, {"SR_B3": (-0.2, 1.61), "SR_B4": (-0.2, 1.61)}),
    (P.MOD09GA, ("2023-09-11", "2023-09-21"), 463, {"sur_refl_b02": (-0.01, 1.6), "sur_refl_b06": (-0.01, 1.6)}),
    (P.MOD11A1, ("2023-09-11", "2023-09-21"), 927, {"LST_Day_1km": (-20.0, 75.0)}),
    (P.MYD11A1, ("2023-09-11", "2023-09-21"), 927, {"LST_Day_1km": (-20.0, 75.0)}),
    (P.VNP09GA, ("2023-09-11", "2023-09-21"), 463, {"I1": (-0.01, 1.6), "I2": (-0.01, 1.6), "I3": (-0.01, 1.6)}),
    (P.VNP21A1D, ("2023-09-11", "2023-09-21"), 927, {"LST_1KM": (-20.0, 75.0)}),
]
LST_BANDS = {"LST_Day_1km": P.MOD11A1, "LST_1KM": P.VNP21A1D}


def _region(cfg, product: P.Product) -> ee.Geometry:
    grid = cfg.local_chain.tiles[0].grid if product in P.HIGH_RES.get(product.key, ()) else cfg.global_chain.grid
    return grid_region(grid)


def _highest_bit(rule: P.Rule) -> int:
    if isinstance(rule, P.BitsClear):
        return max(rule.bits)
    if isinstance(rule, P.FieldNotIn):
        return rule.shift + rule.width - 1
    return -1


def catalogue_request(cfg, product: P.Product, window: tuple[str, str], scale: float,
                      ranges: dict[str, tuple[float, float]]) -> ee.Dictionary:
    """Image count, band names, band types and min/max of ``ranges``' bands: one request per product."""
    region = _region(cfg, product)
    col = ee.ImageCollection(product.collection).filterDate(*window).filterBounds(region)
    img = col.first()
    return ee.Dictionary({
        "n": col.size(), "bands": img.bandNames(), "types": img.select(list(product.bands)).bandTypes(),
        "stats": img.select(list(ranges)).reduceRegion(ee.Reducer.minMax(), region, scale, bestEffort=True),
    })


def layers_request(cfg) -> ee.Dictionary:
    """WorldCover class histograms and Cloud Score+ bands and range over the tiny tile, in one request."""
    region = grid_region(cfg.local_chain.tiles[0].grid)
    wc = {c: ee.ImageCollection(c).first().select("Map").reduceRegion(
        ee.Reducer.frequencyHistogram(), region, 10, bestEffort=True) for c in P.WORLDCOVER}
    csp = ee.ImageCollection(P.S2_CLOUD_SCORE_PLUS).filterDate("2023-09-01", "2023-09-30").filterBounds(region)
    return ee.Dictionary({"wc": ee.Dictionary(wc), "csp_bands": csp.first().bandNames(),
                          "csp": csp.first().select(["cs", "cs_cdf"]).reduceRegion(
                              ee.Reducer.minMax(), region, 10, bestEffort=True)})


@pytest.mark.parametrize(("product", "window", "scale", "ranges"), CATALOGUE, ids=[c[0].key for c in CATALOGUE])
def test_catalogue_has_the_production_bands_types_and_ranges(live_cfg, product, window, scale, ranges):
    info: dict[str, Any] = catalogue_request(live_cfg, product, window, scale, ranges).getInfo()
    assert info["n"] > 0, f"{product.collection}: no image over the tiny region in {window}"
    assert set(product.bands) <= set(info["bands"]), set(product.bands) - set(info["bands"])
    types = info["types"]
    for rule in product.rules:  # bit tests need integer bands wide enough for the bits they read
        t = types[rule.band]
        if _highest_bit(rule) >= 0:
            assert t["precision"] == "int" and t["min"] >= 0, (rule.band, t)
            assert t["max"] >= 2 ** (_highest_bit(rule) + 1) - 1, (rule.band, t)
        if isinstance(rule, P.ValueNotIn) and t["precision"] == "int":
            assert all(t["min"] <= v <= t["max"] for v in rule.values), (rule, t)  # fill values are representable
    for b in product.reflectance_bands:  # scaled DN (int) unless the catalogue already applied the scale
        assert types[b]["precision"] == ("int" if product.scale != 1.0 else "float"), (b, types[b])
    for band, (lo, hi) in ranges.items():
        raw_min, raw_max = info["stats"][f"{band}_min"], info["stats"][f"{band}_max"]
        assert raw_min is not None, f"{band}: no valid pixel over the tiny region"
        if band in LST_BANDS:
            (idx,) = LST_BANDS[band].indices
            got = [v * idx.scale + idx.offset for v in (raw_min, raw_max) if v]  # 0 = fill
        elif band in product.reflectance_bands:
            got = [v * product.scale + product.offset for v in (raw_min, raw_max)]
        else:
            got = [raw_min, raw_max]
        assert all(lo <= v <= hi for v in got), (band, got, (lo, hi))


def test_land_mask_and_cloud_score_plus_layers(live_cfg):
    """WorldCover v100 and v200 (band ``Map``, classes of DOMAIN.md §4.8) and Cloud Score+ (``cs``, ``cs_cdf``
    in [0, 1]) over the tiny tile."""
    info = layers_request(live_cfg).getInfo()
    classes = {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100}
    for coll, hist in info["wc"].items():
        found = {int(k) for k in hist["Map"]}
        assert found and found <= classes, (coll, found)
    assert {"cs", "cs_cdf"} <= set(info["csp_bands"])
    for b in ("cs", "cs_cdf"):
        assert 0.0 <= info["csp"][f"{b}_min"] <= info["csp"][f"{b}_max"] <= 1.0


# --------------------------------------------------------------------------------------------
# 2. One dekad of the tiny region, by computePixels
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def direct_download(live_cfg, tmp_path_factory):
    init_live(live_cfg)  # module fixtures are set up before the function-scoped ee_live
    plans = plan_dekad(live_cfg, _dekad())
    info = describe(plans, LiveIO())
    work = tmp_path_factory.mktemp("work")
    paths = download_dekad(plans, work, live_cfg.paths.archive, LiveIO(), method="direct", concurrency=2)
    return plans, info, paths


def test_one_dekad_is_described_in_one_request_and_downloaded_by_computepixels(live_cfg, direct_download):
    plans, info, paths = direct_download
    assert set(info) == {p.product for p in plans}
    for p in plans:
        assert info[p.product].get("images", 0) > 0, (p.product, info[p.product])  # a dekad of daily/10 m scenes
    assert [p.archive_path for p in plans] == paths
    for p, path in zip(plans, paths, strict=True):
        with rasterio.open(path) as src:
            assert src.count == 2 and src.dtypes == ("float32", "float32"), path.name
            assert (src.width, src.height) == (p.grid.width, p.grid.height)
            assert src.crs.to_string().upper() == p.grid.crs.upper()
            assert tuple(src.transform)[:6] == pytest.approx(p.grid.transform)
            value, count = src.read(1), src.read(2)
        index = p.bands[0]
        assert np.isfinite(value).any(), f"{p.product}: no valid pixel over the tiny region"
        v = value[np.isfinite(value)]
        if index == "LST":
            assert ((v > -20) & (v < 75)).all(), (p.product, v.min(), v.max())  # °C (DOMAIN.md §1.3)
        else:
            assert ((v >= -1) & (v <= 1)).all(), (p.product, v.min(), v.max())
        c = count[np.isfinite(count)]
        assert (c >= 0).all() and (c == np.round(c)).all()  # counts of valid observations
        assert (c <= info[p.product]["images"]).all()
        assert (np.isfinite(value) == (count > 0)).all()  # a mean exactly where something was counted


# --------------------------------------------------------------------------------------------
# 3. One small Drive export, when Drive is configured
# --------------------------------------------------------------------------------------------
def _drive() -> PyDrive2Drive | None:
    secrets, token = os.environ.get("EO4DM_DRIVE_CLIENT_SECRETS"), os.environ.get("EO4DM_DRIVE_TOKEN")
    if secrets and token:
        return PyDrive2Drive.user(Path(secrets), Path(token))
    if os.environ.get("EO4DM_DRIVE_AUTH") == "service_account" and os.environ.get("EO4DM_DRIVE_FOLDER"):
        return PyDrive2Drive.service_account(Path(os.environ["EO4DM_EE_KEY"]))
    return None


def test_a_small_drive_export_equals_the_direct_download(live_cfg, direct_download, tmp_path):
    drive = _drive()
    if drive is None:
        pytest.skip("Drive is not configured: set EO4DM_DRIVE_CLIENT_SECRETS and EO4DM_DRIVE_TOKEN (user route), "
                    "or EO4DM_DRIVE_AUTH=service_account with EO4DM_DRIVE_FOLDER in a shared drive")
    from dataclasses import replace

    from eo4dm_helpers.ee.drive import PollPolicy

    plans, _, paths = direct_download
    plan = replace(plans[0], archive_path=tmp_path / "archive" / plans[0].archive_path.name)
    folder = os.environ.get("EO4DM_DRIVE_FOLDER") or live_cfg.download.drive_folder
    (out,) = download_dekad([plan], tmp_path / "work", tmp_path / "archive", LiveIO(drive=drive), method="drive",
                            drive_folder=folder, poll=PollPolicy(first=10, max_delay=30, timeout=1800))
    with rasterio.open(out) as a, rasterio.open(paths[0]) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.transform == b.transform and a.crs == b.crs
    state = json.loads((tmp_path / "work" / "download" / "state.json").read_text(encoding="utf-8"))
    assert state[plan.product]["status"] == "done" and not state[plan.product].get("kept_in_drive")


# --------------------------------------------------------------------------------------------
# 4. Real error payloads through the classifier
# --------------------------------------------------------------------------------------------
def _too_large(cfg) -> Any:
    """A computePixels request far over the 48 MB limit (ee/tiles.py LIMITS)."""
    return ee.data.computePixels({
        "expression": ee.Image.constant([1.0, 2.0, 3.0]).toFloat(), "fileFormat": "NUMPY_NDARRAY",
        "grid": {"dimensions": {"width": 8000, "height": 8000}, "crsCode": "EPSG:4326",
                 "affineTransform": {"scaleX": 1e-4, "shearX": 0, "translateX": 165.0,
                                     "shearY": 0, "scaleY": -1e-4, "translateY": -21.0}}})


# (case, request, expected class, expected hint or None)
ERRORS = [
    ("missing image", lambda cfg: ee.Image("MODIS/061/MOD09GA/1999_01_01").getInfo(), E.EarthEngineError,
     E.HINT_NOT_FOUND),
    ("missing collection", lambda cfg: ee.ImageCollection("NASA/VIIRS/009/NOPE").size().getInfo(),
     E.EarthEngineError, E.HINT_NOT_FOUND),
    ("request too large", _too_large, E.EarthEngineError, E.HINT_SIZE),
    ("band not in image", lambda cfg: ee.ImageCollection(P.MOD09GA.collection).first().select("NOPE").getInfo(),
     E.EarthEngineError, None),
    ("too many elements", lambda cfg: ee.ImageCollection(P.S2.collection).filterDate("2020-01-01", "2020-03-01")
     .getInfo(), E.EarthEngineError, None),
]


@pytest.mark.parametrize(("case", "request_fn", "cls", "hint"), ERRORS, ids=[e[0] for e in ERRORS])
def test_real_error_payloads_are_classified(live_cfg, live_out, case, request_fn, cls, hint):
    with pytest.raises(Exception) as info:  # noqa: B017 - whatever earthengine-api raises is what we classify
        request_fn(live_cfg)
    exc = info.value
    err = E.classify(exc, f"live {case}")
    record = {"case": case, "type": f"{type(exc).__module__}.{type(exc).__name__}", "message": E.scrub(str(exc)),
              "classified": type(err).__name__, "text": str(err), "date": date.today().isoformat()}
    path = live_out / "error_payloads.jsonl"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    assert not isinstance(err, E.TransientError), record  # deterministic: never retried
    assert isinstance(err, cls), record
    if hint is not None:
        assert hint in str(err), record
    calls = []

    def once():
        calls.append(1)
        request_fn(live_cfg)

    with pytest.raises(E.TransferError):
        E.call_with_retry(once, f"live {case}", sleep=lambda s: None)
    assert len(calls) == 1  # raised at once, no retry


# --------------------------------------------------------------------------------------------
# 5. The dry-run graphs against the server's signatures
# --------------------------------------------------------------------------------------------
def test_dekad_graphs_use_only_algorithms_the_server_declares(live_cfg):
    server = ee.data.getAlgorithms()  # {name: {"args": [{"name", "optional", ...}], ...}}
    algorithms = {n: {a["name"]: not a.get("optional", False) for a in sig.get("args", [])} for n, sig in
                  server.items()}
    assert "Image.select" in algorithms
    for p in plan_dekad(live_cfg, _dekad()):
        assert check_graph(json.loads(p.image.serialize()), algorithms) == [], p.product
