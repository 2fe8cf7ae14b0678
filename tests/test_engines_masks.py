"""Issue 14: the same masks, fill and bounds on both engines, read from one specification.

- L7 SLC-off gap fill: only fully valid pixels (data, quality, clouds, haze, saturation, land, outliers)
  enter the focal mean, only gaps are filled (DOMAIN.md §1.4 gapfillingL7, §5.3);
- outlier bounds again after the calibration to Landsat-8 (DOMAIN.md §1.4);
- VNP21A1D silicate-rock (MMD) QC mask (DOMAIN.md §1.3, §4.4 layout);
- the run parameters ``aot_max`` and ``l7_opacity_max`` change the masks of both engines.

Expected values are hand-computed from the reflectances given here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eo4dm_helpers import products as P
from eo4dm_helpers.config import Calibration, Grid, LocalChain, LocalThresholds, SensorPeriod, load_config
from eo4dm_helpers.ee import graphs
from eo4dm_helpers.local import ops
from eo4dm_helpers.local.highres import plan_scene, scene_window
from eo4dm_helpers.local.preprocess import calibrate, remove_outliers
from eo4dm_helpers.local.scenes import Scene
from eo4dm_helpers.local.windows import Window

from . import ee_graph as G

ROOT = Path(__file__).resolve().parents[1]
GRID = Grid("EPSG:32758", 500000.0, 7600000.0, 30.0, 12, 12)
WIN = Window(0, 0, 12, 12)


def _dn(reflectance: float) -> int:
    """Landsat C2 L2 DN of a reflectance (DOMAIN.md §4.3: SR = DN × 2.75e-05 − 0.2)."""
    return round((reflectance + 0.2) / 2.75e-05)


def _chain(**thresholds) -> LocalChain:
    return LocalChain(True, (), (SensorPeriod("L7", date(1999, 5, 28)),),
                      thresholds=replace(LocalThresholds(), **thresholds))


# --------------------------------------------------------------------------------------------
# Local engine: L7 gap fill on a constructed scene
# --------------------------------------------------------------------------------------------
# Clear land: red 0.075, NIR 0.4875, SWIR1 0.35 (DNs exact: 10000, 25000, 20000)
NDVI_CLEAR = (0.4875 - 0.075) / (0.4875 + 0.075)  # 0.73333
NDWI_CLEAR = (0.4875 - 0.35) / (0.4875 + 0.35)  # 0.16418
STRIPE = slice(5, 7)  # columns 5-6: the SLC-off gap (SR 0, QA_PIXEL fill bit)


def _l7_scene() -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, tuple[int, int]]]:
    """Bands of a 12 x 12 L7 scene: clear land, a gap stripe, and next to it pixels with data but masked
    for one reason each, with reflectances far from the clear ones (a leak would show)."""
    shape = (12, 12)
    b = {"SR_B3": np.full(shape, _dn(0.075)), "SR_B4": np.full(shape, _dn(0.4875)),
         "SR_B5": np.full(shape, _dn(0.35)), "QA_PIXEL": np.zeros(shape), "QA_RADSAT": np.zeros(shape),
         "SR_CLOUD_QA": np.zeros(shape), "SR_ATMOS_OPACITY": np.full(shape, 50)}
    b = {k: v.astype(np.int32) for k, v in b.items()}
    for k in ("SR_B3", "SR_B4", "SR_B5"):
        b[k][:, STRIPE] = 0  # DOMAIN.md §4.3 fill DN
    b["QA_PIXEL"][:, STRIPE] = 1  # bit 0 fill
    land = np.ones(shape, dtype=bool)
    masked = {"cloud": (5, 7), "water": (2, 4), "haze": (9, 7), "saturated": (10, 4), "sea": (0, 7)}

    def bright(rc, red, nir, swir):
        for k, v in (("SR_B3", red), ("SR_B4", nir), ("SR_B5", swir)):
            b[k][rc] = _dn(v)

    bright(masked["cloud"], 0.5, 0.55, 0.6)  # NDVI 0.048, NDWI -0.043
    b["SR_CLOUD_QA"][masked["cloud"]] = 1 << 1  # SR_CLOUD_QA bit 1 cloud (§1.4)
    bright(masked["water"], 0.1, 0.15, 0.02)
    b["QA_PIXEL"][masked["water"]] = 1 << 7  # QA_PIXEL bit 7 water (§1.4)
    bright(masked["haze"], 0.3, 0.35, 0.4)
    b["SR_ATMOS_OPACITY"][masked["haze"]] = 450  # 0.45 > 0.3 (§1.4)
    bright(masked["saturated"], 0.05, 0.9, 0.9)
    b["QA_RADSAT"][masked["saturated"]] = (1 << 3)  # B4 saturated: both indices (§1.4)
    bright(masked["sea"], 0.02, 0.01, 0.005)
    land[masked["sea"]] = False
    return b, land, masked


def _slc_off_plan(chain: LocalChain):
    scene = Scene(P.L7.collection, "LE07_test", datetime(2011, 3, 6, tzinfo=UTC), {"SENSOR_MODE_SLC": "OFF",
                  "CLOUD_COVER_LAND": 10.0}, {}, Path("."))
    plan, aux = plan_scene(scene, P.L7, GRID, chain, Path("."))
    assert plan.gap_fill and aux is None
    return plan


def test_l7_gap_fill_averages_fully_valid_neighbours_only():
    bands, land, masked = _l7_scene()
    out, data = scene_window(bands, None, _slc_off_plan(_chain()), WIN, WIN, land)
    assert not data[:, STRIPE].any() and data[:, :5].all()
    for name, clear in (("NDVI", NDVI_CLEAR), ("NDWI", NDWI_CLEAR)):
        v = out[name]
        for why, rc in masked.items():  # masked for quality or land: never filled, never a neighbour
            assert np.isnan(v[rc]), (name, why)
        stripe = v[:, STRIPE]
        assert not np.isnan(stripe).any()  # every gap pixel filled (all on land, good quality around)
        # only clear pixels entered the mean: the fill is the clear value (a cloud value would pull
        # the pixels next to it towards 0.05)
        np.testing.assert_allclose(stripe, clear, rtol=1e-5)
        keep = np.ones(v.shape, dtype=bool)
        keep[:, STRIPE] = False
        for rc in masked.values():
            keep[rc] = False
        np.testing.assert_allclose(v[keep], clear, rtol=1e-6)


def test_l7_gap_at_sea_or_in_a_cloudy_neighbourhood_is_not_filled():
    bands, land, _ = _l7_scene()
    land[:3, STRIPE] = False  # gap pixels at sea: the land mask of the pixel itself holds
    bands["SR_CLOUD_QA"][7:, :] = 1 << 1  # the lower rows are all cloud: the neighbours' quality says bad
    bands["SR_CLOUD_QA"][7:, STRIPE] = 0
    out, _ = scene_window(bands, None, _slc_off_plan(_chain()), WIN, WIN, land)
    v = out["NDVI"]
    assert np.isnan(v[:3, STRIPE]).all()
    assert np.isnan(v[8:, STRIPE]).all()  # focal_mode of the cloudy neighbourhood: not filled
    np.testing.assert_allclose(v[4:6, STRIPE], NDVI_CLEAR, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Parameters read by both engines
# --------------------------------------------------------------------------------------------
def test_l7_opacity_max_changes_the_local_mask():
    bands, land, _ = _l7_scene()
    bands["SR_ATMOS_OPACITY"][:, :3] = 250  # 0.25: kept at 0.3, masked at 0.2
    plan_default = replace(_slc_off_plan(_chain()), gap_fill=False)
    plan_strict = replace(_slc_off_plan(_chain(l7_opacity_max=0.2)), gap_fill=False)
    loose, _ = scene_window(bands, None, plan_default, WIN, WIN, land)
    strict, _ = scene_window(bands, None, plan_strict, WIN, WIN, land)
    assert not np.isnan(loose["NDWI"][:, :3]).any()
    assert np.isnan(strict["NDWI"][:, :3]).all()
    np.testing.assert_array_equal(loose["NDWI"][:, 3:5], strict["NDWI"][:, 3:5])


def test_aot_max_changes_the_local_s2_mask():
    shape = (4, 4)
    bands = {"B4": np.full(shape, 500), "B8": np.full(shape, 3000), "B11": np.full(shape, 2000),
             "SCL": np.full(shape, 4), "AOT": np.full(shape, 400)}  # AOT 0.4 (scale 0.001, §4.1)
    scene = SimpleNamespace(properties={"CLOUDY_PIXEL_PERCENTAGE": 5.0}, index="S2_test",
                            auxiliary=lambda collection: object())  # a STAC item carries its cloud layer
    grid = replace(GRID, width=4, height=4, resolution=10.0)
    win, land, clear = Window(0, 0, 4, 4), np.ones(shape, dtype=bool), np.ones(shape)
    out = {}
    for aot_max in (0.3, 0.5):
        chain = replace(_chain(aot_max=aot_max), sensors=(SensorPeriod("S2", date(2017, 3, 28)),))
        plan, _ = plan_scene(scene, P.S2, grid, chain, Path("."))
        out[aot_max], _ = scene_window(bands, clear, plan, win, win, land)
    assert np.isnan(out[0.3]["NDVI"]).all()
    np.testing.assert_allclose(out[0.5]["NDVI"], (3000 - 500) / 3500, rtol=1e-6)


@pytest.fixture
def cfg():
    return load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)


def _val(x):
    """A constant argument, plain or as ``Image.constant``."""
    return x["args"]["value"] if isinstance(x, dict) and x.get("fn") == "Image.constant" else x


def _limits(t, band):
    """Limits ``c`` of ``<band>.multiply(scale).add(offset).lte(c)`` in the graph."""
    out = set()
    for n in G.calls(t, "Image.lte"):
        scaled = n["args"]["image1"]
        if scaled["fn"] == "Image.add" and scaled["args"]["image1"]["fn"] == "Image.multiply" \
                and G.selects(scaled["args"]["image1"]["args"]["image1"]) == [band]:
            out.add(_val(n["args"]["image2"]))
    return out


@pytest.mark.parametrize("sensor,band,param", [("S2", "AOT", "aot_max"), ("L7", "SR_ATMOS_OPACITY", "l7_opacity_max")])
def test_haze_parameters_change_the_earth_engine_graph(ee_offline, cfg, sensor, band, param):
    periods = (SensorPeriod(sensor, date(1999, 5, 28)),)
    found = {}
    for value in (0.3, 0.17):
        th = replace(cfg.local_chain.thresholds, **{param: value})
        c = replace(cfg, local_chain=replace(cfg.local_chain, sensors=periods, thresholds=th))
        t = G.tree(graphs.highres_collection(c, c.local_chain.tiles[0], date(2011, 3, 1), date(2011, 3, 10)))
        found[value] = _limits(t, band)
    assert found == {0.3: {0.3}, 0.17: {0.17}}


# --------------------------------------------------------------------------------------------
# Earth Engine: what the L7 focal mean averages, what it fills
# --------------------------------------------------------------------------------------------
def test_earth_engine_l7_focal_mean_input_is_fully_masked(ee_offline, cfg):
    c = replace(cfg, local_chain=replace(cfg.local_chain, sensors=(SensorPeriod("L7", date(1999, 5, 28)),)))
    t = G.tree(graphs.highres_collection(c, c.local_chain.tiles[0], date(2011, 3, 1), date(2011, 3, 10)))
    means = G.calls(t, "Image.focalMean")
    assert len(means) == 2  # NDVI and NDWI
    for fm in means:
        src = fm["args"]["image"]
        bits = G.bit_tests(src)
        assert {1, (1 << 1) | (1 << 3) | (1 << 4), 1 << 7} <= bits["QA_PIXEL"]  # data, cloud/shadow, water
        assert bits["SR_CLOUD_QA"] == {(1 << 1) | (1 << 2) | (1 << 3), 1 << 5}  # cloud, shadow, adjacent; water
        assert bits["QA_RADSAT"] & {(1 << 2) | (1 << 3), (1 << 3) | (1 << 4)}  # saturation of the index's bands
        assert _limits(src, "SR_ATMOS_OPACITY") == {0.3}  # haze
        assert {"ESA/WorldCover/v100", "ESA/WorldCover/v200"} <= {
            n["args"]["id"] for n in G.calls(src, "ImageCollection.load")}  # land
        assert 0.03 in G.constants(src)  # NDVI water outlier (§1.4 removeOutliers)
    # the filled values are kept only in the gaps: updateMask(gap AND good quality) of each focal mean
    for fm in means:
        users = [n for n in G.calls(t, "Image.updateMask") if n["args"]["image"] is fm]
        assert len(users) == 1
        mask = users[0]["args"]["mask"]
        assert G.calls(mask, "Image.not") and G.calls(mask, "Image.focalMode")


# --------------------------------------------------------------------------------------------
# Outlier bounds after calibration
# --------------------------------------------------------------------------------------------
def test_local_calibration_is_followed_by_the_bounds():
    chain = replace(_chain(), calibration={"S2": Calibration(ndwi=(0.98, 0.07), ndvi=(0.91, 0.11))})
    out = {"NDWI": np.array([0.97, 0.5, -1.0], dtype=np.float32),
           "NDVI": np.array([0.95, 0.2, 0.0], dtype=np.float32)}
    calibrate(out, "S2", chain)
    # 0.98 x 0.97 + 0.07 = 1.0206 > 1: masked; 0.98 x 0.5 + 0.07 = 0.56; 0.98 x -1 + 0.07 = -0.91
    np.testing.assert_allclose(out["NDWI"], [np.nan, 0.56, -0.91], rtol=1e-6)
    np.testing.assert_allclose(out["NDVI"], [0.9745, 0.292, 0.11], rtol=1e-6)


def test_local_outliers_mask_every_index_where_ndvi_is_water_or_masked():
    """EO4DM's removeOutliers is ``updateMask(ndvi.gte(0.03))``: on Earth Engine a masked NDVI masks the
    pixel (``_outliers``), so the local engine masks NDWI where NDVI is NaN too (the engines agree)."""
    out = {"NDVI": np.array([0.5, 0.01, np.nan, 0.5], dtype=np.float32),
           "NDWI": np.array([0.2, 0.3, 0.4, 1.2], dtype=np.float32)}
    remove_outliers(out, 0.03)
    np.testing.assert_array_equal(np.isnan(out["NDWI"]), [False, True, True, True])
    np.testing.assert_array_equal(np.isnan(out["NDVI"]), [False, True, True, False])
    assert out["NDWI"][0] == np.float32(0.2)


def test_earth_engine_calibration_is_followed_by_the_bounds(ee_offline, cfg):
    cal = {"S2": Calibration(ndwi=(0.98, 0.07), ndvi=(0.91, 0.11))}
    c = replace(cfg, local_chain=replace(cfg.local_chain, sensors=(SensorPeriod("S2", date(2017, 3, 28)),),
                                         calibration=cal))
    t = G.tree(graphs.highres_collection(c, c.local_chain.tiles[0], date(2024, 3, 11), date(2024, 3, 20)))
    calibrated = [n for n in G.calls(t, "Image.add") if _val(n["args"]["image2"]) in (0.07, 0.11)
                  and n["args"]["image1"]["fn"] == "Image.multiply"]
    assert len(calibrated) == 2
    for y in calibrated:
        users = [n for n in G.calls(t, "Image.updateMask") if n["args"]["image"] is y]
        assert len(users) == 1
        bound = users[0]["args"]["mask"]
        assert bound["fn"] == "Image.lte" and _val(bound["args"]["image2"]) == P.OUTLIER_INDEX_MAX
        assert bound["args"]["image1"]["fn"] == "Image.abs" and y in bound["args"]["image1"]["args"].values()


# --------------------------------------------------------------------------------------------
# VNP21A1D silicate-rock (MMD) mask
# --------------------------------------------------------------------------------------------
def test_vnp21a1d_mmd_zero_is_masked_on_the_local_engine():
    # QC bits 10-11 MMD: 0 "> 0.15 most silicate rocks" masked; 1-3 kept (DOMAIN.md §1.3, §4.4 layout)
    qc = np.array([[0, 1 << 10, 2 << 10, 3 << 10, (1 << 10) | 1, 1 << 4]])
    keep = ops.all_rules({"QC": qc, "LST_1KM": np.full(qc.shape, 300)}, P.VNP21A1D.rules, qc.shape)
    np.testing.assert_array_equal(keep, [[False, True, True, True, True, False]])  # last: MMD 0 too


def test_vnp21a1d_mmd_mask_on_earth_engine(ee_offline, cfg):
    t = G.tree(graphs.global_composite(cfg, date(2026, 1, 1), date(2026, 1, 10)))  # VIIRS from 2026
    fields = [n for n in G.calls(t, "Image.bitwiseAnd")
              if n["args"]["image1"].get("fn") == "Image.rightShift"
              and _val(n["args"]["image1"]["args"]["image2"]) == 10 and "QC" in G.selects(n["args"]["image1"])]
    assert len(fields) == 1 and _val(fields[0]["args"]["image2"]) == 3
    tests = [n for n in G.calls(t, "Image.neq") if n["args"]["image1"] is fields[0]]
    assert [_val(n["args"]["image2"]) for n in tests] == [0]
