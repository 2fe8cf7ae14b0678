"""Earth Engine graphs, built offline and inspected (ARCHITECTURE.md §5): collection IDs, QA bits,
scales, dekad bounds in local time, composite reducers, export grid, round-trip budget."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from eo4dm_helpers import products as P
from eo4dm_helpers.config import SensorPeriod, load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.ee import graphs
from eo4dm_helpers.ee.plan import ExportPlan, output_grid, plan_dekad

from . import ee_graph as G

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cfg():
    return load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)


def _with_local(cfg, **kw):
    return replace(cfg, local_chain=replace(cfg.local_chain, **kw))


def _collections(t):
    return {n["args"]["id"] for n in G.calls(t, "ImageCollection.load")}


def _scales(t, band):
    """Constants multiplied onto ``band`` (``img.select(band).multiply(c)``)."""
    out = set()
    for n in G.calls(t, "Image.multiply"):
        src = n["args"]["image1"]
        if isinstance(src, dict) and src.get("fn") == "Image.select" and band in G.selects(src)[:1]:
            c = n["args"]["image2"]
            out.add(c["args"]["value"] if isinstance(c, dict) and c.get("fn") == "Image.constant" else c)
    return out


def test_sentinel2_cloud_score_plus_default(ee_offline, cfg):
    tile = cfg.local_chain.tiles[0]
    t = G.tree(graphs.highres_collection(_with_local(cfg, sensors=(SensorPeriod("S2", date(2017, 3, 28)),)),
                                         tile, date(2024, 3, 11), date(2024, 3, 20)))
    assert _collections(t) == {"COPERNICUS/S2_SR_HARMONIZED", "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED",
                               "ESA/WorldCover/v100", "ESA/WorldCover/v200"}
    assert "cs_cdf" in G.constants(t) and 0.6 in G.constants(t)
    assert "QA60" not in str(t)  # never relied on (masked 2022-01-25..2024-02-28, DOMAIN.md §4.1)
    assert _scales(t, "AOT") == {0.001}  # not EO4DM's 1e-4 (DOMAIN.md §1.10 item 1)
    nd = G.calls(t, "Image.normalizedDifference")
    assert sorted(tuple(n["args"]["bandNames"]) for n in nd) == [("B8", "B11"), ("B8", "B4")]
    assert "CLOUDY_PIXEL_PERCENTAGE" in G.constants(t)


def test_sentinel2_s2cloudless_join_shadows_and_buffer(ee_offline, cfg):
    chain_cfg = _with_local(cfg, sensors=(SensorPeriod("S2", date(2017, 3, 28)),), s2_cloud_source="s2cloudless")
    t = G.tree(graphs.highres_collection(chain_cfg, chain_cfg.local_chain.tiles[0], date(2024, 3, 11),
                                         date(2024, 3, 20)))
    assert "COPERNICUS/S2_CLOUD_PROBABILITY" in _collections(t)
    join = G.calls(t, "Join.saveFirst") or G.calls(t, "Join.apply")
    assert join and "system:index" in G.constants(t) and "s2cloudless" in G.constants(t)
    ddt = G.calls(t, "Image.directionalDistanceTransform")
    assert ddt and ddt[0]["args"]["maxDistance"] == 10  # CLD_PRJ_DIST 1 km at 100 m
    assert "MEAN_SOLAR_AZIMUTH_ANGLE" in G.constants(t)
    assert G.calls(t, "Image.focalMin") and G.calls(t, "Image.focalMax")
    assert 50 in G.constants(t) and 1500.0 in G.constants(t)  # probability > 50, B8 < 0.15 x 1e4


def test_landsat_8_9_scale_offset_before_ratio_and_qa_bits(ee_offline, cfg):
    c = _with_local(cfg, sensors=(SensorPeriod("L8", date(2013, 3, 18)), SensorPeriod("L9", date(2021, 10, 31))))
    t = G.tree(graphs.highres_collection(c, c.local_chain.tiles[0], date(2024, 3, 11), date(2024, 3, 20)))
    assert {"LANDSAT/LC08/C02/T1_L2", "LANDSAT/LC09/C02/T1_L2"} <= _collections(t)
    for nd in G.calls(t, "Image.normalizedDifference"):
        below = G.calls(nd, "Image.multiply")
        assert any(n["args"]["image2"] in (2.75e-05,) or "2.75e-05" in str(n) for n in below)
        assert any("-0.2" in str(n) for n in G.calls(nd, "Image.add"))
    bits = G.bit_tests(t)
    assert bits["QA_PIXEL"] == {1, 0b11110, 1 << 7}  # fill; dilated cloud, cirrus, cloud, shadow; water
    assert bits["SR_QA_AEROSOL"] == {0b11 << 6}  # aerosol level field, level 3 rejected
    assert bits["QA_RADSAT"] == {1 << 11, (1 << 3) | (1 << 4), (1 << 4) | (1 << 5)}  # terrain; NDVI; NDWI
    assert "CLOUD_COVER_LAND" in G.constants(t)
    assert 0.95 in G.constants(t)  # NaN-score filter, server-side
    cal = G.constants(t)
    assert 0.95 in cal and 0.02 in cal and 0.97 in cal and 0.03 in cal  # L9 to L8 calibration


def test_landsat_7_masks_and_slc_off_gap_filling(ee_offline, cfg):
    c = _with_local(cfg, sensors=(SensorPeriod("L7", date(1999, 5, 28)),))
    t = G.tree(graphs.highres_collection(c, c.local_chain.tiles[0], date(2011, 3, 1), date(2011, 3, 10)))
    assert "LANDSAT/LE07/C02/T1_L2" in _collections(t)
    bits = G.bit_tests(t)
    assert bits["QA_PIXEL"] == {1, (1 << 1) | (1 << 3) | (1 << 4), 1 << 7}
    assert bits["SR_CLOUD_QA"] == {(1 << 1) | (1 << 2) | (1 << 3), 1 << 5}
    assert bits["QA_RADSAT"] == {(1 << 2) | (1 << 3), (1 << 3) | (1 << 4)}
    assert _scales(t, "SR_ATMOS_OPACITY") == {0.001}
    fm = G.calls(t, "Image.focalMean")
    assert fm and all((n["args"]["radius"], n["args"]["kernelType"], n["args"]["units"], n["args"]["iterations"])
                      == (1, "square", "pixels", 25) for n in fm)
    fmode = G.calls(t, "Image.focalMode")
    assert fmode and all((n["args"]["radius"], n["args"]["iterations"]) == (2, 11) for n in fmode)
    assert "SENSOR_MODE_SLC" in G.constants(t) and "OFF" in G.constants(t)
    assert G.calls(t, "Image.blend")


def test_land_mask_is_worldcover_not_lsib(ee_offline):
    t = G.tree(graphs.land_mask())
    assert _collections(t) == {"ESA/WorldCover/v100", "ESA/WorldCover/v200"}
    assert [n["args"]["image2"]["args"]["value"] if isinstance(n["args"]["image2"], dict) else n["args"]["image2"]
            for n in G.calls(t, "Image.neq")] == [80, 80]
    assert G.calls(t, "Image.and") and "LSIB" not in str(t)


def test_modis_ndwi_lst_with_qc_and_dekad_bounds_in_local_time(ee_offline, cfg):
    t = G.tree(graphs.global_composite(cfg, date(2024, 3, 11), date(2024, 3, 20)))
    assert {"MODIS/061/MOD09GA", "MODIS/061/MOD11A1", "MODIS/061/MYD11A1"} <= _collections(t)
    # daily products: their product days 03-11..20 at 00:00 UTC (not Noumea's local midnights, DOMAIN.md §3.4)
    assert "2024-03-11T00:00:00Z" in G.constants(t) and "2024-03-21T00:00:00Z" in G.constants(t)
    assert "2024-03-10T13:00:00Z" not in G.constants(t)
    bits = G.bit_tests(t)
    assert bits["state_1km"] == {0b11, 1 << 2, 0b11 << 8}  # cloud state, shadow, cirrus
    assert bits["QC_500m"] == {0b11}  # MODLAND
    assert bits["QC_Day"] == {0b11, 0b11 << 6}  # LST QC applied (EO4DM had none, DOMAIN.md §1.10 item 3)
    assert _scales(t, "LST_Day_1km") == {0.02} and -273.15 in G.constants(t)
    assert -28672 in G.constants(t)
    nd = G.calls(t, "Image.normalizedDifference")
    assert sorted(tuple(n["args"]["bandNames"]) for n in nd) == [("sur_refl_b02", "sur_refl_b01"),
                                                                  ("sur_refl_b02", "sur_refl_b06")]
    assert G.calls(t, "reduce.mean") and G.calls(t, "reduce.count") and G.calls(t, "Image.unmask")
    assert "system:time_start" in G.constants(t)  # daily LST joined to NDWI on the product day


def test_viirs_v002_and_sensor_switch_by_dates(ee_offline, cfg):
    t = G.tree(graphs.global_composite(cfg, date(2026, 1, 1), date(2026, 1, 10)))  # VIIRS from 2026-01-01
    ids = _collections(t)
    assert {"NASA/VIIRS/002/VNP09GA", "NASA/VIIRS/002/VNP21A1D"} <= ids
    assert not any(i.startswith(("MODIS/", "NOAA/VIIRS/001")) for i in ids)
    bits = G.bit_tests(t)
    assert bits["QF1"] == {0b11 << 2}
    assert bits["QF2"] == {(1 << 3) | (1 << 4) | (1 << 6) | (1 << 7)}
    assert bits["QF4"] == {(1 << 2) | (1 << 3), (1 << 1) | (1 << 2)}  # NDWI: bad I2/I3; NDVI: bad I1/I2
    assert bits["QF7"] == {1 << 4}
    assert bits["QC"] == {0b11, 0b11 << 4, 0b11 << 10}  # VNP21A1D: mandatory QA, cloud, MMD (DOMAIN.md §1.3)
    assert -28672 not in G.constants(t) and 60.0 in G.constants(t)  # v002 scale applied; LST > 60 °C masked
    both = _collections(G.tree(graphs.global_composite(cfg, date(2025, 12, 21), date(2026, 1, 10))))
    assert {"MODIS/061/MOD09GA", "NASA/VIIRS/002/VNP09GA"} <= both  # a window over the switch uses both


def test_local_composite_widens_window_and_records_it(ee_offline, cfg):
    t = G.tree(graphs.local_dekad_composite(cfg, cfg.local_chain.tiles[0], Dekad(2024, 3, 2)))
    consts = G.constants(t)
    for level in ("D", "e", "m", "M"):
        assert level in consts
    assert 0.5 in consts and "window_rank" in consts and "nan_score" in consts
    # the four windows' local-time bounds: dekad, ±5 d, ±10 d, month
    for s in ("2024-03-10T13:00:00Z", "2024-03-05T13:00:00Z", "2024-02-29T13:00:00Z", "2024-02-29T13:00:00Z"):
        assert s in consts


def test_month_composite_with_third_dekad(ee_offline, cfg):
    names = [p.product for p in plan_dekad(cfg, Dekad(2024, 3, 3))]
    assert "global_MODIS_NDWI_202403_COMPM" in names and "global_MODIS_LST_202403_COMPM" in names
    assert "global_MODIS_NDWI_202403_COMPM" not in [p.product for p in plan_dekad(cfg, Dekad(2024, 3, 2))]
    month = next(p for p in plan_dekad(cfg, Dekad(2024, 2, 3)) if p.product.endswith("COMPM"))
    t = G.tree(month.image)
    # the month's product days 02-01..29 (leap February) at 00:00 UTC (DOMAIN.md §3.4)
    assert "2024-02-01T00:00:00Z" in G.constants(t) and "2024-03-01T00:00:00Z" in G.constants(t)


def test_export_grid_is_the_parameters_grid(ee_offline, cfg):
    plans = plan_dekad(cfg, Dekad(2024, 3, 2))
    g = next(p for p in plans if p.product.startswith("global"))
    exp = g.export
    assert exp["crs"] == "EPSG:4326" and exp["crsTransform"] == list(cfg.global_chain.grid.transform)
    assert exp["maxPixels"] == 1e10
    assert g.bands == ("NDWI", "NDWI_count")
    local = next(p for p in plans if p.product.startswith("local"))
    assert local.export["crs"] == "EPSG:32758" and local.grid.width == 21979


def test_output_grid_follows_the_archive_and_refuses_a_change(tmp_path, cfg):
    import numpy as np

    from eo4dm_helpers.archive import write_raster

    g = cfg.global_chain.grid
    small = replace(g, width=4, height=3)
    f = write_raster(tmp_path / "x.tif", [np.zeros((3, 4))], ["a"], small)
    assert output_grid(small, f) == small
    with pytest.raises(ValueError, match="must not change"):
        output_grid(replace(small, x0=small.x0 + 0.01), f)


@pytest.mark.parametrize("dekad", ["2024-03-D2", "2024-03-D3", "2024-02-D3"])
def test_one_round_trip_per_dekad_whatever_the_images(ee_offline, cfg, dekad, monkeypatch):
    from eo4dm_helpers.ee.io import LiveIO, describe

    sent = []
    monkeypatch.setattr(ee_offline.data, "computeValue", lambda obj: sent.append(obj) or {})
    plans = plan_dekad(cfg, Dekad.parse(dekad))
    assert sent == []  # building graphs costs no request
    describe(plans, LiveIO())
    assert len(sent) == 1


def test_plan_summary_names_region_crs_transform_scale_bands(ee_offline, cfg):
    p = plan_dekad(cfg, Dekad(2024, 3, 2))[0]
    assert isinstance(p, ExportPlan)
    s = p.summary()
    for word in ("CRS:", "transform:", "scale:", "region:", "bands:", "NDWI_count", "1162 x 821"):
        assert word in s


def test_spec_drives_both_engines():
    # every rule band of every product is a band the product reads (one source of truth)
    for prod in P.PRODUCTS.values():
        for r in prod.rules:
            assert r.band in prod.bands, (prod.key, r.band)
