"""Science of the classes (issue 15 point 5): Kogan / FAO ASIS classes under `standard`, the "beyond the
record" layer, and what the VAI vegetation filter removes. Expected values are worked out by hand on
hand-built grids (a few pixels), not from the code's own formulas."""

import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio

from eo4dm_helpers import drought, runs
from eo4dm_helpers import indicators as I
from eo4dm_helpers.archive import Archive, write_raster
from eo4dm_helpers.config import Grid, Indicators, LocalTile, Reference, load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.report import class_labels
from eo4dm_helpers.workflow import Context
from eo4dm_helpers.zones import ZoneStats

from .conftest import demo_params

# --- class boundaries -----------------------------------------------------------------------------------

STANDARD = I.CONVENTIONS["standard"].vhi_breaks
EO4DM = I.CONVENTIONS["eo4dm"].vhi_breaks


@pytest.mark.parametrize(("vhi", "code", "drought", "affected"), [
    (0.0, 1, True, True), (9.99, 1, True, True),
    (10.0, 2, True, True),  # Kogan: 10-20 severe, a value on 10 is no longer < 10 (extreme)
    (19.99, 2, True, True), (20.0, 3, True, True), (29.99, 3, True, True),
    (30.0, 4, True, True),  # mild 30-40
    (34.99, 4, True, True),
    (35.0, 4, True, False),  # FAO ASIS: affected when VHI < 35, strictly
    (39.99, 4, True, False),
    (40.0, 5, False, False),  # Kogan: drought is VHI < 40; 40 is not drought
    (60.0, 5, False, False), (100.0, 5, False, False),
])
def test_standard_classes_follow_kogan_and_fao_asis_at_every_boundary(vhi, code, drought, affected):
    v = np.array([vhi], np.float32)
    got = I.classify(v, STANDARD)
    assert got[0] == code and STANDARD.names[code - 1] == ("Extreme", "Severe", "Moderate", "Mild",
                                                          "No drought")[code - 1]
    assert bool(STANDARD.in_drought(got)[0]) is drought
    assert bool(STANDARD.affected_mask(v)[0]) is affected


@pytest.mark.parametrize(("vhi", "code"), [(0.0, 1), (0.1, 1), (0.1001, 2), (0.2, 2), (0.3, 3), (0.3001, 4),
                                           (0.4, 4), (0.41, 5), (1.0, 5)])
def test_eo4dm_convention_is_unchanged(vhi, code):
    """EO4DM's breaks closed on the right: VHI <= 0.3 (the ALERT stress rule, DOMAIN.md §1.7) is Moderate or worse."""
    assert EO4DM == (0.0, 0.1, 0.2, 0.3, 0.4, 1.0) and EO4DM.names == I.CLASS_NAMES
    assert I.classify(np.array([vhi]), EO4DM)[0] == code == I.classify(np.array([vhi]), I.VHI_BREAKS)[0]
    assert EO4DM.drought == 3 and EO4DM.affected is None and I.CONVENTIONS["eo4dm"].stress == 0.3
    assert EO4DM.rule() == "VHI ≤ 0.3"


def test_schemes_cite_their_sources_and_state_their_rule():
    assert STANDARD.rule() == "VHI < 40" and I.CONVENTIONS["standard"].stress == 40
    assert any("Kogan" in s and "15(11)" in s for s in STANDARD.sources)
    assert any("ASIS" in s and "35" in s for s in STANDARD.sources)
    assert any("§1.7" in s for s in EO4DM.sources)
    assert class_labels(STANDARD) == ["Extreme (< 10)", "Severe (< 20)", "Moderate (< 30)", "Mild (< 40)",
                                      "No drought (≥ 40)"]
    assert class_labels(EO4DM)[3] == "Near normal (≤ 0.4)" and class_labels(I.VAI_BREAKS)[4] == "No drought (> 0)"


def test_zone_statistics_under_standard_count_mild_as_drought_and_report_the_fao_share():
    v = np.array([[5, 10, 30, 34.9, 35, 39.9, 40, 80]], np.float32)  # one zone, 8 pixels
    stats = ZoneStats()
    stats.add("VHI", {"z": np.ones(v.shape, bool)}, v, np.ones_like(v), STANDARD)
    (row,) = stats.rows("VHI", STANDARD)
    # Extreme 5; Severe 10; Mild 30, 34.9, 35, 39.9; No drought 40, 80
    assert (row["% Extreme"], row["% Severe"], row["% Moderate"], row["% Mild"], row["% No drought"]) == \
        (12.5, 12.5, 0.0, 50.0, 25.0)
    assert row["% in drought"] == 75.0  # < 40: six of eight
    assert row["% < 35 (FAO ASIS)"] == 50.0  # 5, 10, 30, 34.9
    eo = ZoneStats()
    eo.add("VHI", {"z": np.ones(v.shape, bool)}, v / 100, np.ones_like(v), EO4DM)
    (r,) = eo.rows("VHI", EO4DM)
    assert "% < 35 (FAO ASIS)" not in r and "% Near normal" in r and "% below record" not in r


# --- beyond the record ----------------------------------------------------------------------------------

GRID = Grid("EPSG:4326", 164.0, -20.0, 0.01, 6, 4)  # 6 x 4 pixels; west zone = columns 0-2, east = 3-5
REF_YEARS = (2021, 2022, 2023)
D = Dekad(2024, 3, 2)
WEST = {"type": "Polygon", "coordinates": [[[164.0, -20.0], [164.03, -20.0], [164.03, -20.04], [164.0, -20.04],
                                            [164.0, -20.0]]]}
EAST = {"type": "Polygon", "coordinates": [[[164.03, -20.0], [164.06, -20.0], [164.06, -20.04], [164.03, -20.04],
                                            [164.03, -20.0]]]}


def _ndwi(year):
    """Reference NDWI 0.2 / 0.3 / 0.4 everywhere; the current year 0.3 (within) except the hand-placed pixels."""
    a = np.full((GRID.height, GRID.width), {2021: 0.2, 2022: 0.3, 2023: 0.4, 2024: 0.3}[year], np.float32)
    if year == 2024:
        a[0, 0] = 0.1  # record low: below 0.2, VCI = (0.1 - 0.2) / 0.2 = -0.5 before clipping
        a[0, 1] = 0.15  # record low
        a[0, 2] = 0.2  # ties with the reference minimum: not beyond it (VCI exactly 0)
        a[1, 0] = np.nan  # no current value
        a[0, 3] = 0.5  # record high: VCI = 1.5 before clipping
        a[0, 4] = 0.1  # below a flat reference (0.3 every year): VCI undefined, the record still broken
    else:
        a[0, 4] = 0.3  # flat reference
        if year != 2022:
            a[0, 5] = np.nan  # one reference year only (< min_years 3): no reference, no mark
    return a


def _lst(year):
    a = np.full((GRID.height, GRID.width), {2021: 25.0, 2022: 27.0, 2023: 29.0, 2024: 27.0}[year], np.float32)
    if year == 2024:
        a[1, 1] = 31.0  # hotter than every reference year: TCI < 0 before clipping, a record "low" of TCI
        a[1, 4] = 23.0  # cooler than every year: TCI > 1
    return a


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A hand-built archive: global NDWI/LST composites for 2021-2024 and one local tile whose NDWI reference
    varies (std > 0) and whose reference NDVI says bare soil in the west zone and dense canopy on 3 east pixels."""
    tmp = tmp_path_factory.mktemp("classes")
    (tmp / "zones.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "west"}, "geometry": WEST},
        {"type": "Feature", "properties": {"name": "east"}, "geometry": EAST}]}))
    cfg = load_config(demo_params(tmp))
    cfg = replace(cfg, global_chain=replace(cfg.global_chain, grid=GRID),
                  local_chain=replace(cfg.local_chain, enabled=True, tiles=(LocalTile("T1", GRID),)),
                  territory=replace(cfg.territory, zones=tmp / "zones.geojson"),
                  indicators=Indicators(reference=Reference(min_years=3)))
    arch = Archive(cfg.paths.archive)
    count = np.full((GRID.height, GRID.width), 5, np.float32)
    for y in (*REF_YEARS, 2024):
        d = D.same_dekad_in(y)
        write_raster(arch.global_composite("MODIS", "NDWI", d), [_ndwi(y), count], ["NDWI", "count"], GRID)
        write_raster(arch.global_composite("MODIS", "LST", d), [_lst(y), count], ["LST", "count"], GRID)
        write_raster(arch.local_composite("T1", "NDWI", d), [_ndwi(y), count], ["NDWI", "count"], GRID)
        ndvi = np.full((GRID.height, GRID.width), 0.5, np.float32)
        ndvi[:, :3] = 0.05  # the west zone is bare soil (a desert): mean reference NDVI < 0.2
        ndvi[2, 3:6] = 0.9  # three dense-canopy pixels in the east zone: > 0.8
        write_raster(arch.local_composite("T1", "NDVI", d), [ndvi, count], ["NDVI", "count"], GRID)
    ctx = Context(cfg, D, runs.make_work(tmp / "work", "run-classes"), "run-classes")
    sets = drought.run_indicators(ctx)
    return ctx, sets


def test_beyond_record_from_first_principles():
    ref = I.RefStats(min=np.array([0.2, 0.2, 0.2, 0.2, 0.3, np.nan], np.float32),
                     max=np.array([0.4, 0.4, 0.4, 0.4, 0.3, np.nan], np.float32),
                     mean=np.zeros(6, np.float32), std=np.zeros(6, np.float32), n=np.zeros(6, np.float32),
                     qscore=np.zeros(6, np.float32))
    cur = np.array([0.1, 0.4, 0.41, np.nan, 0.29, 0.3], np.float32)
    np.testing.assert_array_equal(I.beyond_record(cur, ref), [-1, 0, 1, np.nan, -1, np.nan])
    # TCI: LST above the reference maximum is the bad record (TCI < 0)
    np.testing.assert_array_equal(I.beyond_record(cur, ref, inverted=True), [1, 0, -1, np.nan, 1, np.nan])


def test_record_band_is_stored_next_to_vci_and_tci(archive):
    ctx, _ = archive
    with rasterio.open(ctx.archive.global_indicator("VCI", D)) as src:
        assert src.descriptions == ("VCI", "QSCORE", "RECORD") and "below every reference year" in src.tags()["RECORD"]
        vci, rec = src.read(1), src.read(3)
    expected = np.zeros((GRID.height, GRID.width), np.float32)
    expected[0, 0] = expected[0, 1] = expected[0, 4] = -1
    expected[0, 3] = 1
    expected[1, 0] = expected[0, 5] = np.nan
    np.testing.assert_array_equal(rec, expected)
    assert vci[0, 0] == 0 and vci[0, 3] == 1 and vci[0, 2] == 0 and np.isnan(vci[0, 4])  # clipped; flat: NaN
    with rasterio.open(ctx.archive.global_indicator("TCI", D)) as src:
        tci_rec = src.read(3)
    assert tci_rec[1, 1] == -1 and tci_rec[1, 4] == 1 and np.count_nonzero(tci_rec) == 2
    with rasterio.open(ctx.archive.global_indicator("VHI", D)) as src:
        assert src.count == 2  # VHI has no record of its own


def _rows(ctx):
    import csv

    with open(ctx.archive.zone_stats(D), encoding="utf-8") as fh:
        return {(r["indicator"], r["zone"]): r for r in csv.DictReader(fh)}


def test_record_shares_in_zone_statistics(archive):
    rows = _rows(archive[0])
    # west: 11 pixels with a mark (one has no current value), 2 below every year (0.1, 0.15), none above
    assert (rows["VCI", "west"]["% below record"], rows["VCI", "west"]["% above record"]) == ("18.2", "0.0")
    # east: 11 with a mark (one has a one-year reference), 1 below (under a flat reference), 1 above
    assert (rows["VCI", "east"]["% below record"], rows["VCI", "east"]["% above record"]) == ("9.1", "9.1")
    # TCI: 12 pixels each; the hot record (TCI < 0) in the west, the cold one in the east
    assert (rows["TCI", "west"]["% below record"], rows["TCI", "east"]["% above record"]) == ("8.3", "8.3")
    assert rows["VHI", "west"]["% below record"] == ""


def test_vai_filter_removes_a_whole_bare_zone_and_says_so(archive):
    ctx, sets = archive
    with rasterio.open(ctx.archive.local_indicator("T1", "VAI", D)) as src:
        assert src.descriptions == ("VAI", "QSCORE", "VEG_FILTER")
        assert src.tags()["VEG_FILTER"] == "bare soil: reference NDVI < 0.2; dense vegetation: > 0.8"
        vai, veg = src.read(1), src.read(3)
    assert np.isnan(vai[:, :3]).all() and (veg[:, :3] == I.VEG_BARE).all()  # the desert: no VAI at all
    assert np.isnan(vai[2, 3:]).all() and (veg[2, 3:] == I.VEG_DENSE).all()
    assert (veg[[0, 1, 3], 3:] == I.VEG_KEPT).all()
    rows = _rows(ctx)
    west, east = rows["VAI", "west"], rows["VAI", "east"]
    assert west["pixels"] == "0" and west["% VAI filtered (bare soil)"] == "100.0"  # the zone still has a row
    assert east["% VAI filtered (dense vegetation)"] == "25.0" and east["% VAI filtered (bare soil)"] == "0.0"


def test_bulletin_lines(archive):
    from eo4dm_helpers.bulletin import Bulletin

    ctx, _ = archive
    b = Bulletin(ctx)
    (line,) = b.record_lines()
    assert line.startswith("Beyond the record (against 3 reference years): ")
    # territory: VCI 22 marked pixels, 3 below (13.6 %), 1 above (4.5 %); TCI 24 pixels, 1 hot, 1 cold (4.2 %)
    assert "NDWI below every reference year on **13.6 %**" in line and "above on 4.5 % (VCI > 1)" in line
    assert "LST above every reference year on **4.2 %**" in line and "below on 4.2 % (TCI > 1)" in line
    vai = b.vai_filter_lines()
    # 24 land pixels: 12 bare (50 %) + 3 dense (12.5 %) = 62.5 % removed
    assert vai[0] == ("VAI (tile T1) not computed on **62.5 %** of land (bare soil: reference NDVI < 0.2; dense "
                      "vegetation: > 0.8); bare soil 50.0 %, dense vegetation 12.5 %.")
    assert any("62.5 % of tile T1" in x for x in vai)
    assert any("100.0 % of zone west" in x for x in vai) and not any("zone east" in x for x in vai)
    assert b.scheme_lines() == []  # eo4dm convention: no Kogan / FAO line
    assert b.class_notes() == b.scheme_lines() + b.record_lines() + vai


def test_bulletin_kogan_and_fao_line_under_standard(tmp_path):
    from eo4dm_helpers.bulletin import Bulletin

    cfg = load_config(demo_params(tmp_path))
    cfg = replace(cfg, global_chain=replace(cfg.global_chain, grid=GRID), local_chain=replace(cfg.local_chain,
                  enabled=False), indicators=Indicators(convention="standard"))
    ctx = Context(cfg, D, tmp_path / "work")
    v = np.full((GRID.height, GRID.width), np.nan, np.float32)
    v[0, :6] = [5, 30, 34.9, 35, 39.9, 40]  # 6 land pixels, sea elsewhere
    write_raster(ctx.archive.global_indicator("VHI", D), [v, np.ones_like(v)], ["VHI", "QSCORE"], GRID)
    (line,) = Bulletin(ctx).scheme_lines()
    # < 40: five of six (83.3 %); < 35: three of six (50.0 %)
    assert "Kogan drought (VHI < 40" in line and "**83.3 %**" in line and "(VHI < 35): **50.0 %**" in line
    assert Bulletin(ctx).record_lines() == []  # no VCI/TCI file: nothing said
    # a VCI file of an older archive (2 bands, no RECORD): the bulletin says it is not recorded
    write_raster(ctx.archive.global_indicator("VCI", D), [v, np.ones_like(v)], ["VCI", "QSCORE"], GRID)
    (old,) = Bulletin(ctx).record_lines()
    assert "not recorded in this dekad's VCI file" in old


def test_a_class_scheme_survives_pickling():
    import pickle

    got = pickle.loads(pickle.dumps(I.CONVENTIONS["standard"]))
    assert got == I.CONVENTIONS["standard"] and got.vhi_breaks.closed == "left" and got.vhi_breaks.affected == 35


def test_bulletin_zone_table_shows_the_new_columns(archive, monkeypatch):
    from eo4dm_helpers import bulletin

    shown = []
    monkeypatch.setattr(bulletin, "_show", lambda df: shown.append(df))
    monkeypatch.setattr(bulletin, "zone_series", lambda *a, **k: [])  # the NDWI/LST panels are not the point here
    bulletin.Bulletin(archive[0]).zones()
    cols = list(shown[0].columns)
    assert {"% below record", "% above record", "% VAI filtered (bare soil)"} <= set(cols)
    assert "% < 35 (FAO ASIS)" not in cols  # eo4dm convention
