"""The demo-archive generator: QA bits encode the clouds drawn, scales round-trip, time stamps are
local-date aware, the drought is where and when it should be, builds are resumable and deterministic.

QA bits are decoded here with plain numpy (independently of eo4dm_helpers.products), from the tables
of DOMAIN.md §4.1-§4.5.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely

from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.local.scenes import list_scenes, read_bands
from eo4dm_helpers.sample import (
    DEMO_DROUGHT,
    OUTLINE,
    SAMPLE_PRODUCTS,
    SPAN_END,
    SPAN_START,
    ZONES,
    acquisition_dates,
    build_demo_archive,
    in_drought,
    is_built,
    is_land,
    read_manifest,
    render_scene,
    truth,
)
from eo4dm_helpers.sample.world import REFERENCE_YEARS, anomaly, base_fields, grid_lonlat, heat, season

PARAMS = Path(__file__).resolve().parents[1] / "params" / "demo.yaml"
NOUMEA = ZoneInfo("Pacific/Noumea")


def bit(a: np.ndarray, k: int) -> np.ndarray:
    return ((a.astype(np.int64) >> k) & 1).astype(bool)


def field(a: np.ndarray, shift: int, width: int = 2) -> np.ndarray:
    return (a.astype(np.int64) >> shift) & ((1 << width) - 1)


def nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b) / (a + b)


# Dates with a partial cloud cover (and shadows) for each product.
S2_DAY = date(2024, 3, 11)
L8_DAY = date(2021, 4, 30)
L7_DAY = date(2021, 5, 24)
MODIS_DAY = date(2021, 1, 14)  # with a swath gap
VIIRS_DAY = date(2024, 1, 22)  # with thin cirrus


@pytest.fixture(scope="module")
def s2():
    return render_scene("S2", S2_DAY)


@pytest.fixture(scope="module")
def cfg():
    return load_config(PARAMS, check_layers=False)  # the demo may not be built


# --------------------------------------------------------------------------------------------
# QA bits = truth masks
# --------------------------------------------------------------------------------------------
def test_s2_scl_and_probability_encode_the_clouds(s2):
    t, scl = s2.truth, s2.bands["SCL"]
    assert 0.1 < t["cloud"].mean() < 0.9 and t["shadow"].any()
    # DOMAIN.md §4.1: SCL 8/9 clouds, 3 cloud shadow, 6 water
    np.testing.assert_array_equal(np.isin(scl, (8, 9)), t["cloud"])
    np.testing.assert_array_equal(scl == 3, t["shadow"])
    np.testing.assert_array_equal(scl == 6, t["sea"] & ~t["cloud"] & ~t["shadow"])
    np.testing.assert_array_equal(scl == 1, t["saturated"])
    assert set(np.unique(scl[~t["sea"] & ~t["cloud"] & ~t["shadow"]])) <= {1, 4, 5}
    assert not (t["cloud"] & t["shadow"]).any()
    # DOMAIN.md §4.2: probability > 50 exactly on clouds, same index and time as the SR scene
    prob = render_scene("S2_CLOUD_PROBABILITY", S2_DAY)
    assert prob.bands["probability"].dtype == np.uint8
    np.testing.assert_array_equal(prob.bands["probability"] > 50, t["cloud"])
    assert (prob.index, prob.time_start) == (s2.index, s2.time_start)
    # clouds are bright in every band (reflectance 0.4-0.6, × 1e-4)
    for b in ("B4", "B8", "B11"):
        r = s2.bands[b][t["cloud"]] * 1e-4
        assert s2.bands[b].dtype == np.uint16 and r.min() >= 0.35 and r.max() <= 0.61


def test_s2_shadows_are_displaced_away_from_the_sun(s2):
    """Shadows lie south-west of clouds (sun in the north-east), less than 1 km away, and are dark."""
    t = s2.truth
    az = np.radians(s2.properties["MEAN_SOLAR_AZIMUTH_ANGLE"])
    assert 50 <= s2.properties["MEAN_SOLAR_AZIMUTH_ANGLE"] <= 80
    rows, cols = np.nonzero(t["shadow"])
    best = None
    for d in range(20, 101, 5):  # metres / 10 m pixels: 200-1000 m
        dr, dc = -d * np.cos(az), d * np.sin(az)  # towards the sun: north (row -), east (col +)
        r2, c2 = np.rint(rows + dr).astype(int), np.rint(cols + dc).astype(int)
        ok = (r2 >= 0) & (r2 < t["cloud"].shape[0]) & (c2 >= 0) & (c2 < t["cloud"].shape[1])
        hit = t["cloud"][r2[ok], c2[ok]].mean()
        best = max(best or (0, 0), (hit, d))
    assert best[0] > 0.8 and best[1] * 10 < 1000
    land_shadow = t["shadow"] & ~t["sea"]
    assert (s2.bands["B8"][land_shadow] * 1e-4).max() < 0.15  # "dark" for the s2cloudless shadow test
    clear_land = ~t["sea"] & ~t["cloud"] & ~t["shadow"] & ~t["saturated"]
    assert (s2.bands["B8"][clear_land] * 1e-4).min() > 0.15


def test_s2_occasional_haze_and_saturation():
    seen = {"haze": False, "saturated": False}
    for day in acquisition_dates("S2", date(2023, 1, 1), date(2023, 12, 31)):
        s = render_scene("S2", day)
        np.testing.assert_array_equal(s.bands["AOT"] * 0.001 > 0.3, s.truth["haze"])  # DOMAIN.md §4.1 AOT × 0.001
        np.testing.assert_array_equal(s.bands["SCL"] == 1, s.truth["saturated"])
        seen["haze"] |= bool(s.truth["haze"].any())
        seen["saturated"] |= bool(s.truth["saturated"].any())
    assert all(seen.values()), seen


def test_landsat8_qa_pixel():
    s = render_scene("L8", L8_DAY)
    t, qa = s.truth, s.bands["QA_PIXEL"]
    assert 0.1 < t["cloud"].mean() < 0.9 and t["shadow"].any()
    # DOMAIN.md §4.3: bit 0 fill, 1 dilated cloud, 3 cloud, 4 shadow, 6 clear, 7 water
    np.testing.assert_array_equal(bit(qa, 3), t["cloud"])
    np.testing.assert_array_equal(bit(qa, 4), t["shadow"])
    np.testing.assert_array_equal(bit(qa, 7), t["sea"])
    np.testing.assert_array_equal(bit(qa, 1), t["ring"])
    assert not bit(qa, 0).any()
    np.testing.assert_array_equal(bit(qa, 6), ~t["cloud"] & ~t["ring"])
    np.testing.assert_array_equal(field(qa, 8) == 3, t["cloud"])  # cloud confidence high
    assert qa[~t["sea"] & ~t["cloud"] & ~t["ring"] & ~t["shadow"] & ~t["cirrus"]].max() == 21824  # CFMASK clear land
    assert s.properties["WRS_PATH"] == 81 and s.properties["WRS_ROW"] == 75
    assert 0 <= s.properties["CLOUD_COVER_LAND"] <= 100
    # terrain occlusion bit 11 on a few pixels
    assert 0 < bit(s.bands["QA_RADSAT"], 11).sum() < 20


def test_landsat_occasional_cirrus_aerosol_and_saturation():
    seen = {"cirrus": False, "aerosol": False, "saturated": False}
    for day in acquisition_dates("L8", date(2020, 1, 1), date(2022, 12, 31)):
        s = render_scene("L8", day)
        qa, aer, rad = s.bands["QA_PIXEL"], s.bands["SR_QA_AEROSOL"], s.bands["QA_RADSAT"]
        np.testing.assert_array_equal(bit(qa, 2), s.truth["cirrus"])
        np.testing.assert_array_equal(field(aer, 6) == 3, s.truth["haze"])
        np.testing.assert_array_equal(field(rad, 3, 3) == 0b111, s.truth["saturated"])
        seen["cirrus"] |= bool(s.truth["cirrus"].any())
        seen["aerosol"] |= bool(s.truth["haze"].any())
        seen["saturated"] |= bool(s.truth["saturated"].any())
    assert all(seen.values()), seen


def test_landsat7_slc_off_stripes_and_cloud_qa():
    s = render_scene("L7", L7_DAY)
    t, qa, cqa = s.truth, s.bands["QA_PIXEL"], s.bands["SR_CLOUD_QA"]
    fill = t["fill"]
    assert s.properties["SENSOR_MODE_SLC"] == "OFF"
    assert 0.15 < fill.mean() < 0.35
    np.testing.assert_array_equal(bit(qa, 0), fill)
    assert (qa[fill] == 1).all()
    for b in ("SR_B3", "SR_B4", "SR_B5"):
        np.testing.assert_array_equal(s.bands[b] == 0, fill)
    np.testing.assert_array_equal(bit(qa, 3), t["cloud"] & ~fill)
    np.testing.assert_array_equal(bit(qa, 4), t["shadow"] & ~fill)
    np.testing.assert_array_equal(bit(qa, 7), t["sea"] & ~fill)
    # DOMAIN.md §4.3 SR_CLOUD_QA: bit 1 cloud, 2 shadow, 3 adjacent, 5 water
    np.testing.assert_array_equal(bit(cqa, 1), t["cloud"] & ~fill)
    np.testing.assert_array_equal(bit(cqa, 2), t["shadow"] & ~fill)
    np.testing.assert_array_equal(bit(cqa, 3), t["ring"] & ~fill)
    np.testing.assert_array_equal(bit(cqa, 5), t["sea"] & ~fill)
    # stripes are a few pixels wide and repeat every 10-15 pixels down each column
    col = fill[:, 50].astype(int)
    starts = np.flatnonzero(np.diff(col) == 1)
    assert 10 <= np.median(np.diff(starts)) <= 15
    assert 2 <= col.sum() / max(len(starts), 1) <= 5
    # opacity: int16 × 0.001 (DOMAIN.md §4.3)
    opa = s.bands["SR_ATMOS_OPACITY"]
    assert opa.dtype == np.int16 and (opa[~fill & ~t["cloud"] & ~t["haze"]] * 0.001).max() < 0.3


def test_mod09ga_state_and_qc():
    s = render_scene("MOD09GA", MODIS_DAY)
    t, st, qc = s.truth, s.bands["state_1km"], s.bands["QC_500m"]
    assert t["fill"].any() and 0.1 < t["cloud"].mean() < 0.9
    assert st.dtype == np.uint16 and qc.dtype == np.uint32 and s.bands["sur_refl_b02"].dtype == np.int16
    # DOMAIN.md §4.4 state_1km: bits 0-1 cloud state (1 cloudy, 2 mixed), 2 shadow, 3-5 land/water
    np.testing.assert_array_equal(field(st, 0) != 0, t["cloud"])
    np.testing.assert_array_equal(field(st, 0) == 2, t["edge"])
    np.testing.assert_array_equal(bit(st, 2), t["shadow"])
    np.testing.assert_array_equal(field(st, 3, 3) == 7, t["sea"])
    np.testing.assert_array_equal(field(st, 3, 3) == 1, ~t["sea"])
    np.testing.assert_array_equal(field(st, 8) != 0, t["cirrus"])
    # QC_500m bits 0-1 MODLAND: 0 ideal on good pixels, 2 under clouds
    modland = field(qc, 0)
    np.testing.assert_array_equal(modland == 2, t["cloud"])
    assert (modland[~t["cloud"] & ~t["fill"]] == 0).all()
    # fill −28672 off-swath
    for b in ("sur_refl_b02", "sur_refl_b06"):
        np.testing.assert_array_equal(s.bands[b] == -28672, t["fill"])


def test_mod11a1_qc_and_terra_consistency():
    s = render_scene("MOD11A1", MODIS_DAY)
    t, qc, lst = s.truth, s.bands["QC_Day"], s.bands["LST_Day_1km"]
    assert lst.dtype == np.uint16 and qc.dtype == np.uint8
    np.testing.assert_array_equal(field(qc, 0) == 2, t["cloud"])  # DOMAIN.md §4.4
    assert (lst[t["cloud"]] == 0).all()
    np.testing.assert_array_equal(field(qc, 6) == 3, t["lst_error"])
    # same Terra sky as MOD09GA: a 1/16° pixel is cloudy when any of its four 1/32° pixels is
    m = render_scene("MOD09GA", MODIS_DAY)
    h, w = t["cloud"].shape
    any4 = m.truth["cloud"][: 2 * h, : 2 * w].reshape(h, 2, w, 2).any(axis=(1, 3))
    np.testing.assert_array_equal(any4, t["cloud"])


def test_viirs_qf1_and_vnp21_qc():
    day = VIIRS_DAY
    s = render_scene("VNP09GA", day)
    t = s.truth
    assert t["cloud"].any() and t["cirrus"].any()
    assert s.bands["I2"].dtype == np.float32
    # DOMAIN.md §4.5 QF1 bits 2-3 cloud confidence (3 confident cloudy), QF2 bit 3 shadow
    np.testing.assert_array_equal(field(s.bands["QF1"], 2) == 3, t["cloud"])
    assert (field(s.bands["QF1"], 2)[~t["cloud"]] == 0).all()
    np.testing.assert_array_equal(bit(s.bands["QF2"], 3), t["shadow"])
    np.testing.assert_array_equal(bit(s.bands["QF7"], 4), t["cirrus"])
    v = render_scene("VNP21A1D", day)
    qc = v.bands["QC"]
    np.testing.assert_array_equal(field(qc, 0) == 2, v.truth["cloud"])
    np.testing.assert_array_equal(field(qc, 4) == 3, v.truth["cloud"])
    assert (v.bands["LST_1KM"][v.truth["cloud"]] == 0).all()


# --------------------------------------------------------------------------------------------
# Scales
# --------------------------------------------------------------------------------------------
def _check_close(measured: np.ndarray, expected: np.ndarray, noise: float) -> None:
    err = measured - expected
    assert np.isfinite(err).all() and err.size > 100
    assert abs(err.mean()) < noise / 3
    assert err.std() < 1.5 * noise
    assert np.abs(err).max() < 7 * noise


def test_s2_ndwi_round_trip_and_calibration(s2, cfg):
    t = s2.truth
    ok = ~t["sea"] & ~t["cloud"] & ~t["shadow"] & ~t["haze"] & ~t["saturated"]
    b8, b11 = s2.bands["B8"][ok] * 1e-4, s2.bands["B11"][ok] * 1e-4  # DOMAIN.md §4.1
    b4 = s2.bands["B4"][ok] * 1e-4
    _check_close(nd(b8, b11), t["ndwi_sensor"][ok], 0.01)
    _check_close(nd(b8, b4), t["ndvi_sensor"][ok], 0.01)
    # calibrated to Landsat-8 with the demo coefficients, S2 gives back the world's truth
    a, b = cfg.local_chain.calibration["S2"].ndwi
    _check_close(a * nd(b8, b11) + b, t["ndwi"][ok], 0.01)
    assert 0.1 < s2.properties["CLOUDY_PIXEL_PERCENTAGE"] < 90


def test_landsat_and_modis_ndwi_round_trip():
    s = render_scene("L8", L8_DAY)
    t = s.truth
    ok = ~t["sea"] & ~t["cloud"] & ~t["shadow"] & ~t["cirrus"] & ~t["saturated"] & ~t["occluded"]

    def sr(b):  # DOMAIN.md §4.3: DN × 2.75e-05 − 0.2
        return s.bands[b][ok] * 2.75e-05 - 0.2

    _check_close(nd(sr("SR_B5"), sr("SR_B6")), t["ndwi"][ok], 0.01)  # L8 = the world's reference
    _check_close(nd(sr("SR_B5"), sr("SR_B4")), t["ndvi"][ok], 0.01)

    m = render_scene("MOD09GA", MODIS_DAY)
    t = m.truth
    ok = ~t["sea"] & ~t["cloud"] & ~t["shadow"] & ~t["fill"]
    b2, b6 = m.bands["sur_refl_b02"][ok] * 1e-4, m.bands["sur_refl_b06"][ok] * 1e-4  # DOMAIN.md §4.4
    _check_close(nd(b2, b6), t["ndwi"][ok], 0.01)

    lst = render_scene("MOD11A1", MODIS_DAY)
    t = lst.truth
    ok = (lst.bands["LST_Day_1km"] > 0) & ~t["lst_error"]
    celsius = lst.bands["LST_Day_1km"][ok] * 0.02 - 273.15  # DOMAIN.md §4.4
    _check_close(celsius, t["lst"][ok], 0.3)

    v = render_scene("VNP21A1D", date(2024, 3, 5))
    ok = v.bands["LST_1KM"] > 0
    _check_close(v.bands["LST_1KM"][ok] - 273.15, v.truth["lst"][ok], 0.3)  # DOMAIN.md §4.5 Kelvin


# --------------------------------------------------------------------------------------------
# Determinism and time stamps
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["S2", "L7", "MOD09GA", "VNP21A1D"])
def test_rendering_is_deterministic(key):
    day = acquisition_dates(key, date(2021, 5, 1), date(2024, 3, 20))[0] if key != "VNP21A1D" else date(2024, 1, 9)
    a, b = render_scene(key, day), render_scene(key, day)
    assert a.index == b.index and a.time_start == b.time_start and a.properties == b.properties
    for name in a.bands:
        np.testing.assert_array_equal(a.bands[name], b.bands[name])
    for name in a.truth:
        np.testing.assert_array_equal(a.truth[name], b.truth[name])
    other = render_scene(key, day + timedelta(days=SAMPLE_PRODUCTS[key].every_days))
    assert not np.array_equal(a.truth["cloud"], other.truth["cloud"]) or not a.truth["cloud"].any()


def test_timestamps_follow_the_local_date():
    for key, hour, minutes in (("S2", 23, (19, 22)), ("L8", 23, (4, 6)), ("L7", 23, (4, 6))):
        for day in acquisition_dates(key, date(2022, 1, 1), date(2022, 4, 6)):
            s = render_scene(key, day)
            assert s.time_start.tzinfo is not None
            utc = s.time_start.astimezone(UTC)
            assert utc.date() == day - timedelta(days=1)
            assert utc.hour == hour and minutes[0] <= utc.minute <= minutes[1]
            assert s.time_start.astimezone(NOUMEA).date() == day
            assert f"{utc:%Y%m%d}" in s.index
    assert render_scene("S2", S2_DAY).index.startswith("20240310T23")
    assert render_scene("S2", S2_DAY).index.endswith("_T58KEB")
    assert render_scene("L8", date(2024, 3, 5)).index == "LC08_081075_20240304"
    m = render_scene("MOD09GA", date(2024, 3, 11))
    assert m.time_start == datetime(2024, 3, 11, tzinfo=UTC) and m.index == "2024_03_11"
    assert m.time_start.astimezone(NOUMEA).date() == date(2024, 3, 11)


def test_acquisition_calendars():
    s2 = acquisition_dates("S2")
    assert s2[0] >= SPAN_START and s2[-1] <= SPAN_END
    assert {(b - a).days for a, b in zip(s2[:-1], s2[1:], strict=True)} == {5}
    l8, l9 = set(acquisition_dates("L8")), acquisition_dates("L9")
    assert l9[0] >= date(2021, 11, 1) and all(d - timedelta(days=8) in l8 for d in l9)
    assert acquisition_dates("L7")[-1] <= date(2022, 4, 6)
    assert acquisition_dates("VNP09GA")[0] == date(2024, 1, 1)
    assert len(acquisition_dates("MOD09GA")) == (SPAN_END - SPAN_START).days + 1


# --------------------------------------------------------------------------------------------
# The world: drought, sea, anomalies, zones
# --------------------------------------------------------------------------------------------
def _drought_points() -> tuple[np.ndarray, np.ndarray]:
    c = DEMO_DROUGHT.region.intersection(OUTLINE).representative_point()
    lon = np.array([c.x, 165.30, 165.44, 166.5, 165.9])
    lat = np.array([c.y, -21.25, -21.585, -21.9, -21.40])
    return lon, lat


def test_drought_in_region_and_dekads_only():
    lon, lat = _drought_points()
    inside = in_drought(lon, lat)
    assert inside.tolist() == [True, True, True, False, False]
    assert is_land(lon, lat).all()
    assert DEMO_DROUGHT.first == Dekad(2024, 2, 2) and DEMO_DROUGHT.last == Dekad(2024, 3, 2)

    b_ndwi, b_ndvi, b_lst = base_fields(lon, lat)

    def effect(day: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(NDWI drop, NDVI drop, LST rise) against the same date without the drought."""
        t = truth(lon, lat, day)
        a_ndwi, a_ndvi, a_lst = anomaly(day)
        return (b_ndwi + 0.08 * season(day) + a_ndwi - t.ndwi, b_ndvi + 0.08 * season(day) + a_ndvi - t.ndvi,
                t.lst - (b_lst + 4.0 * heat(day) + a_lst))

    for day, k in ((date(2024, 3, 5), 1.0), (date(2024, 3, 20), 1.0), (date(2024, 2, 10), 0.0),
                   (date(2024, 2, 11), 0.1), (date(2024, 2, 20), 1.0), (date(2023, 3, 5), 0.0),
                   (date(2022, 2, 25), 0.0), (date(2024, 1, 15), 0.0)):
        dn, dv, dl = effect(day)
        np.testing.assert_allclose(dn, 0.15 * k * inside, atol=1e-12, err_msg=str(day))
        np.testing.assert_allclose(dv, 0.15 * k * inside, atol=1e-12, err_msg=str(day))
        np.testing.assert_allclose(dl, 7.0 * k * inside, atol=1e-9, err_msg=str(day))


def test_drought_geometry_on_the_tile_and_the_coast(s2):
    t = s2.truth
    lon, lat = grid_lonlat(s2.grid)
    land = ~t["sea"]
    frac = in_drought(lon, lat)[land].mean()
    assert 0.4 < frac < 0.6
    # on 2024-03-11 (drought at full strength) the drought mask is the region's land
    np.testing.assert_array_equal(t["drought"], in_drought(lon, lat) & land)
    km2 = DEMO_DROUGHT.region.intersection(OUTLINE).area * 103.8 * 110.6
    assert 1500 < km2 < 3500
    # inside one zone (Centre-Ouest) for the most part
    share = {n: DEMO_DROUGHT.region.intersection(z).area / DEMO_DROUGHT.region.intersection(OUTLINE).area
             for n, z in ZONES.items()}
    assert share["Centre-Ouest"] > 0.95


def test_sea_where_the_outline_says_sea(s2):
    lon, lat = grid_lonlat(s2.grid)
    np.testing.assert_array_equal(s2.truth["sea"], ~shapely.contains_xy(OUTLINE, lon, lat))
    assert 0.25 <= s2.truth["sea"].mean() <= 0.40
    assert s2.truth["sea"][-1, 0] and not s2.truth["sea"][0, -1]  # south-west corner at sea
    m = render_scene("MOD09GA", MODIS_DAY)
    assert m.truth["sea"].mean() > 0.8  # the global grid is mostly ocean
    assert not is_land(np.array([164.0, 168.2]), np.array([-22.5, -19.6])).any()
    assert is_land(np.array([165.8, 167.25, 167.95, 167.48]), np.array([-21.4, -20.9, -21.5, -22.62])).all()
    assert np.isnan(s2.truth["ndwi"][s2.truth["sea"]]).all()


def test_anomalies_reference_years_and_2024():
    assert anomaly(date(2024, 3, 5)) == (0.0, 0.0, 0.0)
    per_year = np.array([[anomaly(Dekad(y, m, i).start) for m in range(1, 13) for i in (1, 2, 3)]
                         for y in REFERENCE_YEARS])  # (years, 36, 3)
    np.testing.assert_allclose(per_year.mean(axis=0), 0.0, atol=1e-12)  # 2024 sits mid-reference
    assert 0.012 < per_year[..., 0].std() < 0.03
    assert 0.5 < per_year[..., 2].std() < 1.1


def test_zones_partition_the_outline():
    assert set(ZONES) == {"Nord-Ouest", "Nord-Est", "Centre-Ouest", "Centre-Est", "Sud", "Îles Loyauté"}
    total = sum(z.area for z in ZONES.values())
    assert total == pytest.approx(OUTLINE.area, rel=1e-6)
    names = list(ZONES)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert ZONES[a].intersection(ZONES[b]).area < 1e-9


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------
def _tmp_cfg(cfg, root: Path):
    return dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths, scenes=root))


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_small_build_is_readable_resumable_and_deterministic(cfg, tmp_path):
    start, end = date(2024, 3, 11), date(2024, 3, 13)
    c1 = _tmp_cfg(cfg, tmp_path / "a")
    root = build_demo_archive(c1, start=start, end=end, workers=1)
    manifest = read_manifest(c1)
    assert manifest and manifest["span"] == {"start": "2024-03-11", "end": "2024-03-13"}
    assert manifest["counts"]["COPERNICUS/S2_SR_HARMONIZED"] == 1
    assert manifest["counts"]["MODIS/061/MOD09GA"] == 3
    assert manifest["counts"]["LANDSAT/LC09/C02/T1_L2"] == 1
    assert not is_built(c1)  # partial span
    for name in ("zones.geojson", "outline.geojson", "manifest.json"):
        assert (root / name).is_file()

    lo = datetime(2024, 3, 11, tzinfo=NOUMEA).astimezone(UTC)
    hi = datetime(2024, 3, 14, tzinfo=NOUMEA).astimezone(UTC)
    tile = cfg.local_chain.tiles[0].grid
    s2 = list_scenes(root, "COPERNICUS/S2_SR_HARMONIZED", lo, hi)
    cp = list_scenes(root, "COPERNICUS/S2_CLOUD_PROBABILITY", lo, hi)
    assert len(s2) == 1 and [c.index for c in cp] == [s2[0].index]
    data = read_bands(s2[0], ["B4", "B8", "B11", "SCL", "AOT"], tile)
    ref = render_scene("S2", date(2024, 3, 11), tile)
    for name, arr in data.items():
        assert arr.dtype == ref.bands[name].dtype
        np.testing.assert_array_equal(arr, ref.bands[name])
    assert s2[0].properties["MGRS_TILE"] == "58KEB"
    mod = list_scenes(root, "MODIS/061/MOD09GA", lo, hi)
    assert len(mod) == 3
    bands = read_bands(mod[0], ["sur_refl_b02", "state_1km", "QC_500m"], cfg.global_chain.grid)
    assert {k: v.dtype.name for k, v in bands.items()} == {"sur_refl_b02": "int16", "state_1km": "uint16",
                                                           "QC_500m": "uint32"}
    y2020, y2022 = datetime(2020, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)
    wc = {v: {s.properties["DEMO_GRID"]: s for s in list_scenes(root, f"ESA/WorldCover/{v}", y2020, y2022)}
          for v in ("v100", "v200")}
    assert set(wc["v100"]) == set(wc["v200"]) == {"DEMO", "global"}
    maps = {v: read_bands(wc[v]["DEMO"], ["Map"], tile)["Map"] for v in wc}
    np.testing.assert_array_equal(maps["v100"] == 80, ref.truth["sea"])  # DOMAIN.md §4.8: 80 water
    assert set(np.unique(maps["v100"])) <= {10, 20, 30, 80, 95}
    assert 0 < (maps["v100"] != maps["v200"]).sum() < 0.01 * tile.width * tile.height
    zones = json.loads((root / "zones.geojson").read_text(encoding="utf-8"))
    assert len(zones["features"]) == 6
    assert {f["geometry"]["type"] for f in zones["features"]} == {"MultiPolygon"}
    outline = json.loads((root / "outline.geojson").read_text(encoding="utf-8"))
    assert outline["features"][0]["geometry"]["type"] == "MultiPolygon"

    # rebuilding writes nothing
    before = _snapshot(root)
    build_demo_archive(c1, start=start, end=end, workers=1)
    assert _snapshot(root) == before

    # a second build elsewhere is byte-identical
    c2 = _tmp_cfg(cfg, tmp_path / "b")
    build_demo_archive(c2, start=start, end=end, workers=1)
    again = _snapshot(tmp_path / "b")
    assert {k: v[1] for k, v in again.items()} == {k: v[1] for k, v in before.items()}


# --------------------------------------------------------------------------------------------
# Conformance with the engine's rules (eo4dm_helpers.products)
# --------------------------------------------------------------------------------------------
def _keep(product, bands: dict[str, np.ndarray]) -> np.ndarray:
    from eo4dm_helpers.products import BitsClear, FieldNotIn, ScaledAtMost, ValueNotIn

    keep = np.ones(next(iter(bands.values())).shape, bool)
    for r in product.rules:
        a = bands[r.band].astype(np.float64 if isinstance(r, ScaledAtMost) else np.int64)
        if isinstance(r, BitsClear):
            keep &= (a & sum(1 << b for b in r.bits)) == 0
        elif isinstance(r, FieldNotIn):
            keep &= ~np.isin((a >> r.shift) & ((1 << r.width) - 1), r.values)
        elif isinstance(r, ValueNotIn):
            keep &= ~np.isin(a, r.values)
        else:
            keep &= a * r.scale + r.offset <= r.limit
    for band, value in product.nodata.items():
        keep &= bands[band] != value
    return keep


@pytest.mark.parametrize(("key", "day", "sea_removed"), [
    ("L8", L8_DAY, True), ("L7", L7_DAY, True), ("MOD09GA", MODIS_DAY, False), ("MOD11A1", MODIS_DAY, True),
    ("VNP09GA", VIIRS_DAY, False), ("VNP21A1D", VIIRS_DAY, True),
])
def test_engine_rules_remove_what_was_drawn(key, day, sea_removed):
    from eo4dm_helpers.products import PRODUCTS

    s = render_scene(key, day)
    keep = _keep(PRODUCTS[key], s.bands)
    t = s.truth
    bad = t["cloud"] | t["shadow"] | t["fill"]
    for extra in ("cirrus", "saturated", "occluded", "lst_error", "ring"):
        if extra in t and not (key in ("MOD09GA", "VNP09GA") and extra == "ring"):  # adjacency flags are kept
            bad |= t[extra]
    if key in ("L8", "L9"):
        bad |= t["haze"]
    assert not (keep & bad).any()
    if sea_removed:
        assert not (keep & t["sea"]).any()
    assert (keep & ~t["sea"]).sum() > 0.3 * (~bad & ~t["sea"]).sum()  # clear land mostly kept
