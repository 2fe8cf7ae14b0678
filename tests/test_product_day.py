"""Issue 15 point 4: daily MODIS/VIIRS products binned by their product day in every time zone, scenes
(Sentinel-2, Landsat, SLSTR swaths) by their local acquisition date (DOMAIN.md §3.4).

Expected values come from the time-zone offsets alone (tz database): Pacific/Tahiti UTC−10 (no DST),
Pacific/Noumea UTC+11 (no DST since 1979), Pacific/Fiji UTC+12, UTC+13 in its last DST season
2020-12-20 .. 2021-01-17.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from eo4dm_helpers import products as P
from eo4dm_helpers.config import Grid, SensorPeriod, load_config
from eo4dm_helpers.dekads import (
    Dekad,
    DekadError,
    acquisition_day,
    acquisition_window,
    dekad_of,
    local_date,
)

from .conftest import demo_params

ROOT = Path(__file__).resolve().parents[1]
ZONES = ("Pacific/Tahiti", "Pacific/Fiji", "Pacific/Noumea")
# days around dekad boundaries and month/year ends (a leap February included)
DAYS = (date(2024, 3, 10), date(2024, 3, 11), date(2024, 3, 20), date(2024, 3, 21), date(2024, 2, 29),
        date(2024, 3, 31), date(2024, 4, 30), date(2020, 12, 31), date(2021, 1, 1), date(2021, 1, 10))


def _utc(y, m, d, h=0, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# The one rule (dekads.acquisition_day / acquisition_window)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("day", DAYS)
def test_daily_product_stamped_midnight_utc_is_binned_on_its_product_day(tz, day):
    stamp = datetime.combine(day, datetime.min.time(), UTC)  # system:time_start of product day ``day``
    assert acquisition_day(stamp, tz, dating="product_day") == day
    assert dekad_of(stamp, tz, "product_day") == Dekad.containing(day)


def test_the_old_local_date_put_tahiti_daily_products_one_day_early():
    # what the issue reports: 00:00 UTC of the 11th is 14:00 on the 10th in Tahiti (UTC−10)
    assert local_date(_utc(2024, 3, 11), "Pacific/Tahiti") == date(2024, 3, 10)
    assert dekad_of(_utc(2024, 3, 11), "Pacific/Tahiti").label == "2024-03-D1"
    assert dekad_of(_utc(2024, 3, 11), "Pacific/Tahiti", "product_day").label == "2024-03-D2"


@pytest.mark.parametrize("stamp, tz, expected", [
    # 20:30 UTC: Tahiti 10:30 the same day, Noumea 07:30 and Fiji 08:30 (09:30 in DST) the next day
    (_utc(2024, 3, 10, 20, 30), "Pacific/Tahiti", date(2024, 3, 10)),
    (_utc(2024, 3, 10, 20, 30), "Pacific/Noumea", date(2024, 3, 11)),
    (_utc(2024, 3, 10, 20, 30), "Pacific/Fiji", date(2024, 3, 11)),
    (_utc(2024, 2, 29, 20, 30), "Pacific/Noumea", date(2024, 3, 1)),  # leap day -> next month
    (_utc(2024, 3, 31, 20, 30), "Pacific/Tahiti", date(2024, 3, 31)),
    (_utc(2024, 3, 31, 20, 30), "Pacific/Fiji", date(2024, 4, 1)),
    # Fiji DST: 11:30 UTC is 00:30 the next day at UTC+13 (2020-12-31) but 23:30 the same day at UTC+12
    (_utc(2020, 12, 31, 11, 30), "Pacific/Fiji", date(2021, 1, 1)),
    (_utc(2022, 12, 31, 11, 30), "Pacific/Fiji", date(2022, 12, 31)),
])
def test_scene_is_binned_on_its_local_acquisition_date(stamp, tz, expected):
    assert acquisition_day(stamp, tz, dating="scene") == expected
    assert dekad_of(stamp, tz) == Dekad.containing(expected)
    assert acquisition_day(stamp, tz, dating="product_day") == stamp.date()  # a daily product: its UTC day


@pytest.mark.parametrize("dekad, tz, scene_window", [
    ("2024-03-D2", "Pacific/Tahiti", (_utc(2024, 3, 11, 10), _utc(2024, 3, 21, 10))),
    ("2024-03-D2", "Pacific/Noumea", (_utc(2024, 3, 10, 13), _utc(2024, 3, 20, 13))),
    ("2024-03-D2", "Pacific/Fiji", (_utc(2024, 3, 10, 12), _utc(2024, 3, 20, 12))),
    ("2021-01-D1", "Pacific/Fiji", (_utc(2020, 12, 31, 11), _utc(2021, 1, 10, 11))),  # UTC+13 (DST)
    ("2021-01-D2", "Pacific/Fiji", (_utc(2021, 1, 10, 11), _utc(2021, 1, 20, 12))),  # DST ends 01-17
    ("2024-02-D3", "Pacific/Tahiti", (_utc(2024, 2, 21, 10), _utc(2024, 3, 1, 10))),
])
def test_windows_daily_products_at_utc_midnights_scenes_at_local_midnights(dekad, tz, scene_window):
    d = Dekad.parse(dekad)
    assert d.utc_bounds(tz) == scene_window
    assert acquisition_window(d.start, d.end, tz, dating="scene") == scene_window
    daily = (datetime.combine(d.start, datetime.min.time(), UTC),
             datetime.combine(d.end + timedelta(days=1), datetime.min.time(), UTC))
    assert acquisition_window(d.start, d.end, tz, dating="product_day") == daily == d.utc_bounds(tz, "product_day")


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("dating", ["scene", "product_day"])
def test_window_holds_exactly_the_acquisitions_of_its_days(tz, dating):
    """Every half hour of Dec 2020 - Jan 2021 (Fiji's DST season): inside the window iff its day is."""
    first, last = date(2021, 1, 1), date(2021, 1, 10)
    lo, hi = acquisition_window(first, last, tz, dating=dating)
    t = _utc(2020, 12, 25)
    while t < _utc(2021, 1, 20):
        assert (lo <= t < hi) == (first <= acquisition_day(t, tz, dating=dating) <= last), t
        t += timedelta(minutes=30)


def test_unknown_dating_is_one_clear_error():
    with pytest.raises(DekadError, match="unknown dating 'weekly'"):
        acquisition_day(_utc(2024, 3, 1), "UTC", dating="weekly")


def test_the_products_spec_says_which_products_are_daily():
    daily = {p.key for ps in (*P.MEDIUM_RES_NDWI.values(), *P.MEDIUM_RES_LST.values()) for p in ps}
    assert daily == {"MOD09GA", "MOD11A1", "MYD11A1", "VNP09GA", "VNP21A1D"}
    assert all(P.PRODUCTS[k].dating == "product_day" for k in daily)
    assert all(p.dating == "scene" for ps in P.HIGH_RES.values() for p in ps)  # S2, L7, L8, L9
    assert P.SL_2_LST.dating == "scene"  # per-acquisition swaths (see products.py)


# --------------------------------------------------------------------------------------------
# Earth Engine graphs (built offline and inspected, tests/test_ee_graphs.py)
# --------------------------------------------------------------------------------------------
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _date_windows(t) -> dict[str, set[tuple[str, str]]]:
    """collection id -> the filterDate windows applied to it in the graph."""
    from . import ee_graph as G

    out: dict[str, set[tuple[str, str]]] = {}
    for n in G.calls(t, "Collection.filter"):
        f = n["args"]["filter"]
        if not (isinstance(f, dict) and f.get("fn") == "Filter.dateRangeContains"):
            continue
        dates = tuple(sorted(c for c in G.constants(f) if isinstance(c, str) and _ISO.match(c)))
        for load in G.calls(n["args"]["collection"], "ImageCollection.load"):
            out.setdefault(load["args"]["id"], set()).add(dates)
    return out


def _cfg_tz(tz: str):
    cfg = load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)
    return replace(cfg, territory=replace(cfg.territory, timezone=tz))


@pytest.mark.parametrize("tz, scene_lo, scene_hi", [
    ("Pacific/Tahiti", "2024-03-11T10:00:00Z", "2024-03-21T10:00:00Z"),
    ("Pacific/Fiji", "2024-03-10T12:00:00Z", "2024-03-20T12:00:00Z"),
])
def test_ee_graph_daily_products_filter_product_days_scenes_local_midnights(ee_offline, tz, scene_lo, scene_hi):
    from eo4dm_helpers.ee import graphs

    from . import ee_graph as G

    cfg = _cfg_tz(tz)
    w = _date_windows(G.tree(graphs.global_composite(cfg, date(2024, 3, 11), date(2024, 3, 20))))
    for c in ("MODIS/061/MOD09GA", "MODIS/061/MOD11A1", "MODIS/061/MYD11A1"):
        assert w[c] == {("2024-03-11T00:00:00Z", "2024-03-21T00:00:00Z")}, c
    w = _date_windows(G.tree(graphs.global_composite(cfg, date(2026, 2, 21), date(2026, 2, 28))))  # VIIRS
    for c in ("NASA/VIIRS/002/VNP09GA", "NASA/VIIRS/002/VNP21A1D"):
        assert w[c] == {("2026-02-21T00:00:00Z", "2026-03-01T00:00:00Z")}, c
    tile = cfg.local_chain.tiles[0]
    hc = replace(cfg, local_chain=replace(cfg.local_chain, sensors=(SensorPeriod("S2", date(2017, 3, 28)),
                                                                    SensorPeriod("L8", date(2013, 3, 18)))))
    w = _date_windows(G.tree(graphs.highres_collection(hc, tile, date(2024, 3, 11), date(2024, 3, 20))))
    for c in ("COPERNICUS/S2_SR_HARMONIZED", "LANDSAT/LC08/C02/T1_L2"):
        assert w[c] == {(scene_lo, scene_hi)}, c


# --------------------------------------------------------------------------------------------
# Local engine, routine and calibration on a tiny scene store in a UTC− territory
# --------------------------------------------------------------------------------------------
GRID = Grid("EPSG:4326", 165.0, -21.0, 0.01, 4, 4)


def _tahiti_cfg(tmp_path, tz="Pacific/Tahiti"):
    cfg = load_config(demo_params(tmp_path))
    gc = replace(cfg.global_chain, grid=GRID, ndwi_sensors=(SensorPeriod("MODIS", date(2000, 2, 24)),),
                 lst_sensors=(SensorPeriod("MODIS", date(2000, 2, 24)),))
    return replace(cfg, territory=replace(cfg.territory, timezone=tz), global_chain=gc)


def _daily(cfg, day: date, value: int) -> None:
    """MOD09GA + MOD11A1 of product day ``day``, stamped 00:00 UTC of it; clear, NDWI tagged by ``value``."""
    from eo4dm_helpers.local.scenes import write_scene

    t = datetime.combine(day, datetime.min.time(), UTC)
    z = np.zeros((4, 4), np.int16)
    b02 = np.full((4, 4), 3000, np.int16)
    b06 = np.full((4, 4), value, np.int16)  # NDWI = (3000 - value) / (3000 + value)
    write_scene(cfg.paths.scenes, P.MOD09GA.collection, f"{t:%Y_%m_%d}", t, {},
                {"": {"sur_refl_b01": np.full((4, 4), 500, np.int16), "sur_refl_b02": b02, "sur_refl_b06": b06,
                      "state_1km": z, "QC_500m": z}}, GRID)
    write_scene(cfg.paths.scenes, P.MOD11A1.collection, f"{t:%Y_%m_%d}", t, {},
                {"": {"LST_Day_1km": np.full((4, 4), 15000, np.uint16), "QC_Day": np.zeros((4, 4), np.uint16)}},
                GRID)


def test_local_engine_bins_tahiti_daily_products_on_their_product_day(tmp_path):
    from eo4dm_helpers.chains import global_days

    cfg = _tahiti_cfg(tmp_path)
    values = {date(2024, 3, 10): 1000, date(2024, 3, 11): 1100, date(2024, 3, 20): 1200, date(2024, 3, 21): 1300}
    for day, v in values.items():
        _daily(cfg, day, v)
    days, avail = global_days(cfg, date(2024, 3, 11), date(2024, 3, 20), np.ones((4, 4), bool))
    assert [d.day for d in days] == [date(2024, 3, 11), date(2024, 3, 20)]
    for d in days:  # the product of that very day, not the one stamped the next UTC day
        v = values[d.day]
        assert np.allclose(d.values["NDWI"], (3000 - v) / (3000 + v), atol=1e-6)
        assert d.scene_id == f"{d.day:%Y_%m_%d}"
    assert avail.found["MOD09GA"] == 2 and avail.found["MOD11A1"] == 2
    # the last dekad of February 2024 (leap year, 9 days) takes neither March product
    assert global_days(cfg, date(2024, 2, 21), date(2024, 2, 29), np.ones((4, 4), bool))[0] == []


def test_routine_counts_and_latency_use_product_days_in_tahiti(tmp_path):
    from eo4dm_helpers import routine as R

    cfg = _tahiti_cfg(tmp_path)
    cfg = replace(cfg, local_chain=replace(cfg.local_chain, enabled=False))
    for k in range(11, 21):  # one product per day of 2024-03-D2, stamped 00:00 UTC
        _daily(cfg, date(2024, 3, k), 1000)
    counts = {c.product: c.found for c in R.count_products(cfg, Dekad(2024, 3, 2))}
    assert counts["MOD09GA"] == 10 and counts["MOD11A1"] == 10  # local midnights would have found 9
    rows = {r["product"]: r for r in R.latency_table(cfg, date(2024, 3, 21), lookback_days=15)}
    assert rows["MOD09GA"]["latency (days)"] == 1  # product day 03-20 seen on 03-21 (not 03-19: 2 days)


def test_scene_dates_are_local_in_tahiti_and_noumea(tmp_path):
    """A Sentinel-2 scene stamped 20:30 UTC on 03-10 is the 10th in Tahiti and the 11th in Noumea."""
    from eo4dm_helpers.calibration import scene_dates
    from eo4dm_helpers.local.scenes import write_scene

    cfg = _tahiti_cfg(tmp_path)
    t = _utc(2024, 3, 10, 20, 30)
    write_scene(cfg.paths.scenes, P.S2.collection, f"{t:%Y%m%dT%H%M%S}_T58KEB", t, {"MGRS_TILE": "58KEB"},
                {"": {"B4": np.ones((4, 4), np.uint16)}}, GRID)
    assert scene_dates(cfg, "S2", date(2024, 3, 1), date(2024, 3, 20)) == [date(2024, 3, 10)]
    noumea = replace(cfg, territory=replace(cfg.territory, timezone="Pacific/Noumea"))
    assert scene_dates(noumea, "S2", date(2024, 3, 1), date(2024, 3, 10)) == []
    assert scene_dates(noumea, "S2", date(2024, 3, 11), date(2024, 3, 20)) == [date(2024, 3, 11)]


# --------------------------------------------------------------------------------------------
# Real MODIS files: their ECS metadata say which UTC days a gridded product holds
# --------------------------------------------------------------------------------------------
from .conftest import REALDATA, realdata  # noqa: E402

_MODIS_FILES = [pytest.param(key, REALDATA / rel, marks=realdata(REALDATA / rel), id=key) for key, rel in (
    ("MOD09A1", "MODIStsp/inst/testdata/MOD09A1.A2017193.h18v04.006.2017202035302.hdf"),
    ("MOD11B2", "MODIStsp/inst/testdata/MOD11B2.A2017001.h14v04.006.2017013155631.hdf"),
    ("MOD13A2", "modape/tests/data/init/MOD13A2.A2025001.h18v09.061.2025022080611.hdf"),
)]


def _ecs_range(path: Path) -> tuple[datetime, datetime]:
    """RANGEBEGINNING/ENDING DATE and TIME of the file's ECS core metadata (UTC)."""
    sd_mod = pytest.importorskip("pyhdf.SD", reason="pyhdf (HDF4) is not installed: pip install pyhdf")
    sd = sd_mod.SD(str(path))
    try:
        core = " ".join(str(v) for k, v in sd.attributes().items() if k.endswith("CoreMetadata.0"))
    finally:
        sd.end()

    def value(key: str) -> str:
        return re.search(key + r'.*?VALUE\s*=\s*"([^"]+)"', core, re.S).group(1)

    return tuple(datetime.fromisoformat(f"{value(f'RANGE{e}DATE')}T{value(f'RANGE{e}TIME')}").replace(tzinfo=UTC)
                 for e in ("BEGINNING", "ENDING"))


@pytest.mark.parametrize("key, path", _MODIS_FILES)
def test_real_modis_product_period_is_whole_utc_days_as_product_day_dating_says(key, path):
    begin, end = _ecs_range(path)
    spec = P.VALIDATION_PRODUCTS[key]
    year, doy = (int(x) for x in re.search(r"\.A(\d{4})(\d{3})\.", path.name).groups())
    product_day = date(year, 1, 1) + timedelta(days=doy - 1)  # the file name's A<YYYYDDD>
    assert spec.dating == "product_day"
    for tz in ZONES:
        assert acquisition_day(begin, tz, dating=spec.dating) == product_day
        lo, hi = acquisition_window(begin.date(), end.date(), tz, dating=spec.dating)
        assert (lo, hi) == (begin, end + timedelta(seconds=1)), tz  # [first 00:00 UTC, last 23:59:59 UTC]
    # a local-midnight (scene) window in Tahiti would miss the product's first 10 hours
    assert acquisition_window(begin.date(), end.date(), "Pacific/Tahiti", dating="scene")[0] > begin
