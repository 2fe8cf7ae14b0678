"""The indicators step, streamed window by window, against a plain whole-array computation."""

import warnings
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
import rasterio

from eo4dm_helpers import blocks, drought
from eo4dm_helpers import indicators as I
from eo4dm_helpers.archive import Archive, write_raster
from eo4dm_helpers.config import Grid, Indicators, Reference, load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.workflow import Context
from eo4dm_helpers.zones import ZoneStats, load_zones, zone_masks

from .conftest import demo_params

GRID = Grid("EPSG:4326", 164.0, -20.0, 0.01, 150, 110)  # not a multiple of the window size
YEARS = range(2018, 2025)
D = Dekad(2024, 3, 2)


def _fields(rng, year):
    ndwi = rng.normal(0.25, 0.05, (GRID.height, GRID.width)).astype(np.float32)
    ndvi = rng.normal(0.6, 0.05, ndwi.shape).astype(np.float32)
    lst = rng.normal(28, 2, ndwi.shape).astype(np.float32)
    for a in (ndwi, ndvi, lst):
        a[:5, :7] = np.nan  # sea
    ndwi[50, 50] = 0.3  # a flat reference pixel (same value every year)
    if year % 3 == 0:
        ndwi[60:70, 60:70] = np.nan  # a cloudy year for part of the grid
    count = rng.integers(0, 11, ndwi.shape).astype(np.float32)
    return {"NDWI": ndwi, "NDVI": ndvi, "LST": lst}, count


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(drought, "block_windows", lambda grid: blocks.block_windows(grid, 64))
    cfg = load_config(demo_params(tmp_path))
    cfg = replace(cfg, global_chain=replace(cfg.global_chain, grid=GRID), local_chain=replace(cfg.local_chain,
                  enabled=False), territory=replace(cfg.territory, zones=None))
    arch = Archive(cfg.paths.archive)
    rng = np.random.default_rng(7)
    data = {}
    for y in YEARS:
        fields, count = _fields(rng, y)
        data[y] = (fields, count)
        for index, v in fields.items():
            write_raster(arch.global_composite("MODIS", index, D.same_dekad_in(y)), [v, count], [index, "count"], GRID)
    return cfg, data


def _naive(data, index, min_years=3):
    ref = np.stack([data[y][0][index] for y in YEARS if y < 2024])
    n = np.sum(~np.isnan(ref), axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels (sea)
        mn, mx = np.nanmin(ref, 0), np.nanmax(ref, 0)
        mean, std = np.nanmean(ref, 0), np.nanstd(ref, 0)
    bad = n < min_years
    return [np.where(bad, np.nan, a) for a in (mn, mx, mean, std)]


@pytest.mark.parametrize("convention", ["eo4dm", "standard"])
def test_streamed_indicators_equal_the_whole_array_formulas(setup, tmp_path, convention):
    cfg, data = setup
    cfg = replace(cfg, indicators=Indicators(convention=convention, reference=Reference(min_years=3)))
    ctx = Context(cfg, D, tmp_path / "work")
    out = drought.global_indicators(ctx, D, ZoneStats(), [])
    conv = I.CONVENTIONS[convention]
    x = data[2024][0][conv.vci_index]
    mn, mx, _, _ = _naive(data, conv.vci_index)
    with np.errstate(all="ignore"):
        vci = np.clip((x - mn) / (mx - mn), 0, 1) * conv.scale
    vci[mx == mn] = np.nan
    lmn, lmx, _, _ = _naive(data, "LST")
    lst = data[2024][0]["LST"]
    with np.errstate(all="ignore"):
        tci = np.clip((lmx - lst) / (lmx - lmn), 0, 1) * conv.scale
    got = {n: rasterio.open(p).read() for n, p in out.produced.items()}
    np.testing.assert_allclose(got["VCI"][0], vci, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got["TCI"][0], tci, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got["VHI"][0], 0.5 * vci + 0.5 * tci, rtol=1e-5, atol=1e-5, equal_nan=True)
    # QSCORE: reference part from every reference year (EO4DM dropped the last), true days (10 for D2)
    counts = np.stack([data[y][1] for y in YEARS if y < 2024]) / 10
    q = np.where(data[2024][1] > 0, (counts.mean(0) + data[2024][1] / 10) / 2, 0)
    np.testing.assert_allclose(got["VCI"][1], q, rtol=1e-5)
    if convention == "eo4dm":
        assert "flat reference" in out.warnings["VCI"] and np.isnan(got["VCI"][0][50, 50])
    assert out.reference_years["VCI"] == [2018, 2019, 2020, 2021, 2022, 2023]
    tags = rasterio.open(out.produced["VHI"]).tags()
    assert tags["STATUS"] == "provisional" and tags["CONVENTION"] == convention  # as_of 2024-03-21


def test_fixed_baseline_and_too_few_years(setup, tmp_path):
    cfg, _ = setup
    fixed = replace(cfg, indicators=Indicators(reference=Reference(mode="fixed", start_year=2019, end_year=2021,
                                                                   min_years=3)))
    out = drought.global_indicators(Context(fixed, D, tmp_path / "w1"), D, ZoneStats(), [])
    assert out.reference_years["VCI"] == [2019, 2020, 2021]
    strict = replace(cfg, indicators=Indicators(reference=Reference(min_years=10)))
    out = drought.global_indicators(Context(strict, D, tmp_path / "w2"), D, ZoneStats(), [])
    assert not out.produced and "at least 10 needed" in out.missing["VCI"] and "VHI" in out.missing


def test_zone_statistics_streamed_equal_whole_array(tmp_path):
    from shapely.geometry import box

    from eo4dm_helpers.zones import Zone

    rng = np.random.default_rng(1)
    v = rng.uniform(0, 1, (GRID.height, GRID.width)).astype(np.float32)
    v[rng.uniform(size=v.shape) < 0.1] = np.nan
    q = rng.uniform(0, 1, v.shape).astype(np.float32)
    zones = [Zone("west", box(164.0, -21.1, 164.7, -20.0)), Zone("east", box(164.7, -21.1, 165.5, -20.0))]
    streamed = ZoneStats()
    for win in blocks.block_windows(GRID, 40):
        sl = win.toslices()
        streamed.add("VHI", zone_masks(zones, GRID, win), v[sl], q[sl], I.VHI_BREAKS)
    whole = ZoneStats()
    whole.add("VHI", zone_masks(zones, GRID), v, q, I.VHI_BREAKS)
    a, b = streamed.rows("VHI", I.VHI_BREAKS), whole.rows("VHI", I.VHI_BREAKS)
    assert a == b and {r["zone"] for r in a} == {"west", "east"}
    west = zone_masks(zones, GRID)["west"] & ~np.isnan(v)
    assert a[0]["pixels"] == west.sum() and a[0]["mean"] == round(float(v[west].astype(np.float64).mean()), 4)
    codes = I.classify(v[west], I.VHI_BREAKS)
    assert a[0]["% Extreme"] == round(100 * float(np.mean(codes == 1)), 1)


def test_zones_from_a_projected_shapefile(tmp_path):
    import shapefile
    from pyproj import CRS, Transformer

    t = Transformer.from_crs("EPSG:4326", "EPSG:3163", always_xy=True)
    ring = [t.transform(x, y) for x, y in [(165.0, -21.0), (165.5, -21.0), (165.5, -21.5), (165.0, -21.5),
                                           (165.0, -21.0)]]
    w = shapefile.Writer(str(tmp_path / "communes"), shapeType=shapefile.POLYGON)
    w.field("nom", "C")
    w.poly([ring[::-1]])
    w.record("Bourail")
    w.close()
    (tmp_path / "communes.prj").write_text(CRS.from_epsg(3163).to_wkt())
    (z,) = load_zones(tmp_path / "communes.shp", "nom")
    assert z.name == "Bourail"
    minx, miny, maxx, maxy = z.geometry.bounds
    assert abs(minx - 165.0) < 1e-6 and abs(maxy + 21.0) < 1e-6
    with pytest.raises(ValueError, match="no attribute 'name'"):
        load_zones(tmp_path / "communes.shp", "name")


def test_provisional_dekads_are_found_for_recomputation(setup, tmp_path):
    cfg, _ = setup
    arch = Archive(cfg.paths.archive)
    for d, st in ((Dekad(2024, 2, 3), "provisional"), (Dekad(2024, 3, 1), "provisional"), (Dekad(2024, 2, 2), "final")):
        write_raster(arch.global_indicator("VHI", d), [np.zeros((GRID.height, GRID.width))] * 2, ["VHI", "QSCORE"],
                     GRID, {"STATUS": st})
    assert drought.status(cfg, Dekad(2023, 12, 3)) == "final" and drought.status(cfg, D) == "provisional"
    assert drought.provisional_dekads(cfg, D) == [Dekad(2024, 2, 3), Dekad(2024, 3, 1)]  # 02-D2 tagged final
    # D has its composites (a run committed them) but no indicators although its reference holds enough
    # years (a run cut short after its commit removed them), and is still provisional by date: recomputed
    assert YEARS[-1] == D.year and drought.status(cfg, D) == "provisional"
    after = D.next()
    assert drought.provisional_dekads(cfg, after) == [Dekad(2024, 2, 3), Dekad(2024, 3, 1), D]
    # a dekad never started (no composite, no no-data record) is left to auto mode and --backfill
    for p in arch.root.glob(f"composites/global/dekad/*_{D.yyyymm}_COMP{D.label[-2:]}*.tif"):
        p.unlink()
    assert not list(arch.root.glob(f"composites/global/dekad/*_{D.yyyymm}_COMP{D.label[-2:]}*"))
    assert drought.provisional_dekads(cfg, after) == [Dekad(2024, 2, 3), Dekad(2024, 3, 1)]
    # once final by date, an incomplete dekad is no longer recomputed by every manual run
    for index in ("NDWI", "NDVI", "LST"):
        write_raster(arch.global_composite("MODIS", index, D), [np.zeros((GRID.height, GRID.width))] * 2,
                     [index, "count"], GRID)
    assert drought.provisional_dekads(cfg, after)[-1] == D
    later = replace(cfg, as_of=D.end + timedelta(days=10 * cfg.indicators.provisional_dekads + 1))
    assert drought.status(later, D) == "final"
    assert drought.provisional_dekads(later, after) == [Dekad(2024, 2, 3), Dekad(2024, 3, 1)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("one_band", r"1 band, expected 2 \(value, count\)"),
        ("three_bands", r"3 bands, expected 2 \(value, count\)"),
        ("int16", r"int16 data, expected floating point"),
        ("uint8", r"uint8 data, expected floating point"),
    ],
)
def test_a_reference_of_another_layout_is_refused_by_name(setup, tmp_path, damage, message):
    """Before: 1 band failed with an IndexError naming no file; integer data and a third band were read as if
    they were composites (silently wrong indicators)."""
    cfg, data = setup
    arch = Archive(cfg.paths.archive)
    bad = arch.global_composite("MODIS", "LST", D.same_dekad_in(2020))
    fields, count = data[2020]
    bands = {"one_band": [fields["LST"]], "three_bands": [fields["LST"], count, count],
             "int16": [np.nan_to_num(fields["LST"] * 100).astype(np.int16), count.astype(np.int16)],
             "uint8": [np.nan_to_num(fields["LST"]).astype(np.uint8), count.astype(np.uint8)]}[damage]
    with rasterio.open(bad, "w", driver="GTiff", width=GRID.width, height=GRID.height, count=len(bands),
                       dtype=bands[0].dtype, crs=GRID.crs, transform=rasterio.Affine(*GRID.transform)) as dst:
        dst.write(np.stack(bands))
    ctx = Context(cfg, D, tmp_path / "work")
    with pytest.raises(drought.ArchiveInputError, match=rf"^{bad}: {message}"):
        drought.global_indicators(ctx, D, ZoneStats(), [])
    assert not list((tmp_path / "work").rglob("*.tif"))  # nothing staged
    drought.check_grid([arch.global_composite("MODIS", "LST", D.same_dekad_in(2021))], GRID, "global_chain.grid")
