"""The local engine on real Sentinel-2 data (project notes, realdata/MANIFEST.md §1).

- sen2r (Barbellino, Italian Alps, L2A BOA + SCL + sen2r's own NDVI, 2 dates): NDVI from B8/B4 through
  the engine's scale/ratio equals sen2r's file after its ×10000 rounding; SCL (20 m) read onto the
  10 m grid by nearest neighbour; the SCL rules remove exactly the configured classes.
- eo-learn (Slovenia, 68 dates of NDVI with s2cloudless probability): dekad composites (mean + count)
  after cloud masking, counts equal to an independent count of clear observations per dekad, and the
  window widening on real gaps.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pytest
import rasterio

from eo4dm_helpers import products as P
from eo4dm_helpers.archive import grid_of
from eo4dm_helpers.composites import choose_window, composite, local_dekad_composite, write_composite
from eo4dm_helpers.config import Grid, LocalThresholds
from eo4dm_helpers.dekads import WINDOW_LEVELS, Dekad, dekad_range, local_date, widened_window
from eo4dm_helpers.local import ops
from eo4dm_helpers.local.highres import s2cloudless_clouds
from eo4dm_helpers.local.land import LandMask
from eo4dm_helpers.local.preprocess import Processed, has_data, indices
from eo4dm_helpers.local.scenes import SceneReader, read_bands, scene_from_files
from eo4dm_helpers.local.windows import iter_windows

from .conftest import REALDATA, realdata

pytestmark = realdata()

SEN2R = REALDATA / "sen2r" / "inst" / "extdata" / "out"
SEN2R_DATES = ("20170703", "20190723")
BOA_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")  # MANIFEST §1b
EOLEARN = REALDATA / "eo-learn" / "example_data" / "TestEOPatch"


def _sen2r_scene(day: str):
    boa, scl = (SEN2R / f"S2A2A_{day}_022_Barbellino_{kind}_10.tif" for kind in ("BOA", "SCL"))
    files = {"B4": (boa, BOA_ORDER.index("B04") + 1), "B8": (boa, BOA_ORDER.index("B08") + 1),
             "B11": (boa, BOA_ORDER.index("B11") + 1), "SCL": (scl, 1)}
    t = datetime.strptime(day, "%Y%m%d").replace(hour=10, tzinfo=UTC)
    return scene_from_files(P.S2.collection, f"S2A2A_{day}_022_Barbellino", t, files), grid_of(boa)


def _raw(path, band=1) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(band)


@pytest.mark.parametrize("day", SEN2R_DATES)
def test_sen2r_ndvi_matches_exactly_after_x10000_rounding(day):
    scene, grid = _sen2r_scene(day)
    bands = read_bands(scene, ("B4", "B8", "B11", "SCL"), grid)
    ndvi = indices(bands, P.S2)["NDVI"]  # B8/B4 scaled ×1e-4 then normalized difference (DOMAIN.md §1.4)
    ref = _raw(SEN2R / f"S2A2A_{day}_022_Barbellino_NDVI_10.tif")
    valid = (ref != -32768) & has_data(bands, P.S2)
    assert valid.sum() == ref.size  # the clips have no fill: every pixel is compared
    np.testing.assert_array_equal(np.round(ndvi[valid] * 10000).astype(np.int16), ref[valid])


@pytest.mark.parametrize("day", SEN2R_DATES)
def test_scl_is_resampled_by_nearest_and_masks_exactly_the_configured_classes(day):
    scene, grid = _sen2r_scene(day)
    scl20 = _raw(SEN2R / f"S2A2A_{day}_022_Barbellino_SCL_10.tif")
    assert scl20.shape == (21, 12) and grid.resolution == 10.0  # 20 m despite its name (MANIFEST §1b)
    scl10 = np.repeat(np.repeat(scl20, 2, axis=0), 2, axis=1)  # independent nearest 20 m -> 10 m
    bands = read_bands(scene, ("SCL",), grid)
    np.testing.assert_array_equal(bands["SCL"], scl10)
    with SceneReader(scene, grid) as r:  # window by window: the same pixels
        for win in iter_windows((grid.height, grid.width), 5):
            np.testing.assert_array_equal(r.read(["SCL"], win.rio)["SCL"], scl10[win.slices])

    scl_rules = tuple(r for r in P.S2.rules if r.band == "SCL")
    configured = {v for r in scl_rules for v in r.values}
    assert configured == {0, 1, 6}  # DOMAIN.md §1.4/§4.1: no data, saturated/defective, water
    present = set(np.unique(scl20).tolist())
    assert 6 in present and present - configured  # water to remove and other classes to keep
    keep = ops.all_rules(bands, scl_rules, grid_shape(grid))
    np.testing.assert_array_equal(keep, ~np.isin(scl10, sorted(configured)))
    # another configuration (clouds and shadows by SCL) removes exactly its own classes
    other = (P.ValueNotIn("SCL", (3, 8, 9, 10), "SCL shadows, clouds, cirrus"),)
    np.testing.assert_array_equal(ops.all_rules(bands, other, grid_shape(grid)), ~np.isin(scl10, [3, 8, 9, 10]))


def grid_shape(grid: Grid) -> tuple[int, int]:
    return (grid.height, grid.width)


# --------------------------------------------------------------------------------------------
# eo-learn: 68 dates, dekad composites after cloud masking
# --------------------------------------------------------------------------------------------
TZ = "Europe/Ljubljana"


@pytest.fixture(scope="module")
def series():
    ndvi = np.load(EOLEARN / "data" / "NDVI.npy")[..., 0]
    clp = np.load(EOLEARN / "data" / "CLP.npy")[..., 0]  # s2cloudless probability 0-1
    is_data = np.load(EOLEARN / "mask" / "IS_DATA.npy")[..., 0].astype(bool)
    times = [datetime.fromisoformat(t).replace(tzinfo=UTC)
             for t in json.loads((EOLEARN / "timestamps.json").read_text(encoding="utf-8"))]
    assert ndvi.shape == (68, 101, 100) and len(times) == 68
    th = LocalThresholds()
    images = []
    for k, t in enumerate(times):
        # Earth Engine's S2_CLOUD_PROBABILITY is 0-100 (DOMAIN.md §4.2): the same scale here.
        clouds = s2cloudless_clouds(clp[k] * 100.0, th)
        v = np.where(is_data[k] & ~clouds, ndvi[k], np.nan).astype(np.float32)
        images.append(Processed("S2", "S2", t.strftime("%Y%m%dT%H%M%S"), t, local_date(t, TZ), {"NDVI": v}))
    clear = is_data & (clp * 100.0 <= th.cloud_probability)  # independent: probability <= 50 % is clear
    return images, ndvi, clear, [local_date(t, TZ) for t in times]


def _independent(ndvi, clear, days, first: date, last: date):
    """Count of clear observations and their mean, per pixel, with plain numpy over the dates."""
    sel = np.array([first <= d <= last for d in days])
    n = clear[sel].sum(axis=0)
    total = np.where(clear[sel], ndvi[sel].astype(np.float64), 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return n, np.where(n > 0, total / n, np.nan)


def test_eolearn_dekad_counts_equal_an_independent_count_of_clear_observations(series):
    images, ndvi, clear, days = series
    dekads = dekad_range(Dekad.containing(min(days)), Dekad.containing(max(days)))
    with_images = 0
    for d in dekads:
        comp = composite([im for im in images if d.start <= im.day <= d.end], ("NDVI",), ndvi.shape[1:])
        n, mean = _independent(ndvi, clear, days, d.start, d.end)
        np.testing.assert_array_equal(comp.count["NDVI"], n.astype(np.float32))
        np.testing.assert_allclose(comp.mean["NDVI"], mean, rtol=1e-6, atol=1e-7, equal_nan=True)
        with_images += comp.n_images > 0
    assert len(dekads) > 80 and 40 < with_images <= 68  # a real, gappy series


def test_eolearn_window_widening_on_real_gaps(series, tmp_path):
    images, ndvi, clear, days = series
    shape = ndvi.shape[1:]
    grid = Grid("EPSG:32633", 465181.0, 5080255.0, 10.0, shape[1], shape[0])  # bbox.geojson, 10 m
    land = LandMask(grid, array=np.ones(shape, bool))
    levels = set()
    for d in dekad_range(Dekad(2016, 1, 1), Dekad(2017, 12, 3)):
        comp = local_dekad_composite(images, d, land, 0.5, ("NDVI",))
        # independent: the first window whose share of pixels without a clear observation is <= 0.5
        expected = "M"
        for lvl in WINDOW_LEVELS:
            n, _ = _independent(ndvi, clear, days, *widened_window(d, lvl))
            if np.mean(n == 0) <= 0.5:
                expected = lvl
                break
        assert comp.level == expected, d
        n, mean = _independent(ndvi, clear, days, *widened_window(d, comp.level))
        np.testing.assert_array_equal(comp.count["NDVI"], n.astype(np.float32))
        levels.add(comp.level)
    assert {"", "e", "m"} <= levels  # the widening really happens on this series

    # written window by window (7 px windows): the same composite
    d = Dekad(2017, 8, 2)
    choice = choose_window(images, d, land, 0.5, ("NDVI",), window=7)
    comp = write_composite(choice, d, grid, {"NDVI": tmp_path / "NDVI.tif"}, window=7)
    whole = local_dekad_composite(images, d, land, 0.5, ("NDVI",))
    assert comp.level == whole.level and comp.images == whole.images
    np.testing.assert_array_equal(np.asarray(comp.count["NDVI"]), whole.count["NDVI"])
    np.testing.assert_array_equal(np.asarray(comp.mean["NDVI"]), whole.mean["NDVI"])
