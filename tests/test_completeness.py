"""Done means complete (issue 13): what a dekad must have, strays, and the plans of auto mode, --backfill
and --since-failure built on it. Each scenario of the issue's "Why" has a test here that failed on the
previous code (auto mode resumed "after the newest NDWI file", backfill treated "VHI or VAI exists" as
done, a composite named after a future dekad was counted as progress)."""

import json
import shutil
from dataclasses import replace
from datetime import date

import pytest

from eo4dm_helpers import completeness as C
from eo4dm_helpers import routine as R
from eo4dm_helpers.archive import Archive, Month
from eo4dm_helpers.config import ConfigError, Reference, load_config
from eo4dm_helpers.dekads import Dekad, dekad_range

from . import archives
from .conftest import demo_params

TODAY = date(2024, 3, 21)  # the demo's: latest complete dekad 2024-03-D2


def _cfg(tmp_path, history_start=date(2024, 1, 1), **over):
    zones = tmp_path / "scenes" / "zones.geojson"
    zones.parent.mkdir(parents=True, exist_ok=True)
    zones.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Nord"},
         "geometry": {"type": "Polygon", "coordinates": [[[164, -21], [165, -21], [165, -20], [164, -20], [164, -21]]]}}
    ]}))
    cfg = load_config(demo_params(tmp_path, history_start=history_start.isoformat() if history_start else None))
    return replace(cfg, **over)


def _reference_years(cfg, dekads, years=(2021, 2022, 2023)):
    """Composites of the same calendar dekads in earlier years (the reference, outside the span)."""
    archives.complete(cfg, [d.same_dekad_in(y) for d in dekads for y in years], kinds=(C.COMPOSITE,
                                                                                        C.MONTH_COMPOSITE))


def _kinds(products):
    return sorted((p.kind, p.name) for p in products)


# -- what a dekad must have -------------------------------------------------------------------------
def test_a_third_dekad_must_have_composites_month_composites_indicators_statistics_and_bulletin(tmp_path):
    cfg = _cfg(tmp_path, as_of=date(2024, 4, 5))
    d = Dekad(2024, 3, 3)
    _reference_years(cfg, [d])
    got = _kinds(C.expected(cfg, d, C.Inventory.scan(cfg), bulletin=True))
    assert got == sorted([
        (C.COMPOSITE, "MODIS NDWI"), (C.COMPOSITE, "MODIS LST"), (C.COMPOSITE, "DEMO NDWI"), (C.COMPOSITE, "DEMO NDVI"),
        (C.MONTH_COMPOSITE, "MODIS NDWI"), (C.MONTH_COMPOSITE, "MODIS LST"),
        (C.INDICATOR, "VCI"), (C.INDICATOR, "TCI"), (C.INDICATOR, "VHI"), (C.INDICATOR, "VAI DEMO"),
        (C.MONTH_INDICATOR, "VCI"), (C.MONTH_INDICATOR, "TCI"), (C.MONTH_INDICATOR, "VHI"),
        (C.ZONE_STATS, "zones"), (C.BULLETIN, "bulletin")])


def test_indicators_are_expected_only_when_the_reference_has_enough_years(tmp_path):
    cfg = _cfg(tmp_path)
    d = Dekad(2024, 3, 1)
    _reference_years(cfg, [d], years=(2022, 2023))  # 2 years, min_years = 3
    got = {p.kind for p in C.expected(cfg, d, C.Inventory.scan(cfg), bulletin=False)}
    assert got == {C.COMPOSITE}  # no indicator, hence no zone statistics either
    fixed = replace(cfg, indicators=replace(cfg.indicators, reference=Reference("fixed", 2022, 2023, 2)))
    got = _kinds(C.expected(fixed, d, C.Inventory.scan(fixed), bulletin=False))
    assert (C.INDICATOR, "VHI") in got and (C.INDICATOR, "VAI DEMO") in got and (C.ZONE_STATS, "zones") in got


def test_the_standard_convention_needs_the_ndvi_composite(tmp_path):
    cfg = _cfg(tmp_path)
    std = replace(cfg, indicators=replace(cfg.indicators, convention="standard"))
    names = {p.name for p in C.expected(std, Dekad(2024, 3, 1), C.Inventory.scan(std), bulletin=False)}
    assert {"MODIS NDWI", "MODIS NDVI", "MODIS LST"} <= names


def test_a_no_data_record_stands_for_the_chains_composites_and_indicators(tmp_path):
    cfg = _cfg(tmp_path)
    d = Dekad(2024, 3, 1)
    _reference_years(cfg, [d])
    p = C.nodata_path(cfg.paths.archive, "global", d)
    p.parent.mkdir(parents=True)
    p.write_text(C.nodata_record("no usable MODIS/VIIRS day (10 found, 10 dropped: cloud)"))
    names = {x.name for x in C.expected(cfg, d, C.Inventory.scan(cfg), bulletin=False)}
    assert names == {"DEMO NDWI", "DEMO NDVI", "VAI DEMO", "zones"}


def test_zone_statistics_of_another_zone_layer_or_without_their_record_are_missing(tmp_path):
    cfg = _cfg(tmp_path)
    d = Dekad(2024, 3, 1)
    _reference_years(cfg, [d])
    archives.complete(cfg, [d])
    inv = C.Inventory.scan(cfg)
    assert C.missing(cfg, d, inv, bulletin=False) == []
    layer = cfg.territory.zones
    layer.write_text(layer.read_text().replace("Nord", "Province Nord"))  # the analyst edits the zones
    assert _kinds(C.missing(cfg, d, inv, bulletin=False)) == [(C.ZONE_STATS, "zones")]
    archives.complete(cfg, [d])
    assert C.missing(cfg, d, C.Inventory.scan(cfg), bulletin=False) == []
    C.stats_sidecar(Archive(cfg.paths.archive).zone_stats(d)).unlink()
    assert _kinds(C.missing(cfg, d, C.Inventory.scan(cfg), bulletin=False)) == [(C.ZONE_STATS, "zones")]


# -- strays ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rel", "reason"), [
    ("composites/global/dekad/MODIS_NDWI_203001_COMPD1.tif", "named after 2030-01-D1, later than the latest complete "
                                                             "dekad 2024-03-D2"),
    ("composites/global/dekad/MODIS_NDWI_202403_COMPD3.tif", "named after 2024-03-D3"),  # in progress
    ("indicators/global/month/VHI_202403M.tif", "named after 2024-03, later than"),
    ("composites/global/dekad/MODIS_NDWI_202413_COMPD1.tif", "malformed name (month must be 1-12, got 13)"),
    ("composites/global/dekad/MODIS_NDWI_202401_COMPD4.tif", "malformed name (dekad number must be 1, 2 or 3"),
    ("composites/global/dekad/MODIS_NDWI_202401_COMPD1 (copy).tif", "malformed name"),
    ("composites/local/DEMO/dekad/LS2_NDWI_2024-01_COMPD1.tif", "malformed name"),
    ("indicators/local/DEMO/dekad/VAI_OTHER_202401D1.tif", "tile OTHER in the folder of tile DEMO"),
    ("stats/2024-13-D1/zones.csv", "is not a dekad label"),
    ("stats/2030-01-D1/zones.csv", "named after 2030-01-D1"),
    ("composites/global/MODIS_NDWI_202401_COMPD1.tif", "not in a product folder"),
    ("nodata/global/2024-01-D9.json", "malformed name"),
])
def test_future_and_malformed_names_are_strays_never_counted(tmp_path, rel, reason):
    cfg = _cfg(tmp_path)
    f = cfg.paths.archive / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"x")
    inv = C.Inventory.scan(cfg, TODAY)
    assert [s.path for s in inv.strays] == [f]
    assert reason in inv.strays[0].reason and str(f) in inv.strays[0].message()
    assert not inv.files and not inv.dekads  # never progress


def test_gdal_sidecars_temporaries_and_the_lock_are_not_strays(tmp_path):
    cfg = _cfg(tmp_path)
    folder = cfg.paths.archive / "composites" / "global" / "dekad"
    folder.mkdir(parents=True)
    for name in ("MODIS_NDWI_202401_COMPD1.tif.aux.xml", ".tmp-0123-MODIS_NDWI_202401_COMPD1.tif", ".eo4dm.lock"):
        (folder / name).write_bytes(b"x")
    assert C.Inventory.scan(cfg, TODAY).strays == []


def test_a_composite_named_after_a_future_dekad_does_not_stop_auto_mode(tmp_path):
    """Why #3: one stray composite named after a future date made auto mode say "nothing to do"."""
    cfg = _cfg(tmp_path)
    span = dekad_range(Dekad(2024, 1, 1), Dekad(2024, 3, 1))
    _reference_years(cfg, span)
    archives.complete(cfg, span)
    stray = Archive(cfg.paths.archive).global_composite("MODIS", "NDWI", Dekad(2031, 1, 1))
    archives.write_product(cfg, C.Product(C.COMPOSITE, "stray", stray))
    plan = R.auto_plan(cfg, TODAY)
    assert plan.history == [] and plan.routine == [Dekad(2024, 3, 2)] and plan.notebooks[Dekad(2024, 3, 2)] is None
    assert R.auto_period(cfg, TODAY) == [Dekad(2024, 3, 2)]  # was [] ("nothing to do")


# -- auto mode ----------------------------------------------------------------------------------------
def test_a_dekad_whose_indicators_are_missing_is_taken_up_again(tmp_path):
    """Why #1: a run killed after 05_download committed the composites (or whose 06_indicators failed) left
    the dekad without indicators, statistics or bulletin, and every later auto run said "nothing to do"."""
    cfg = _cfg(tmp_path)
    span = dekad_range(Dekad(2024, 1, 1), Dekad(2024, 3, 2))
    _reference_years(cfg, span)
    archives.complete(cfg, span, bulletins=[Dekad(2024, 3, 1), Dekad(2024, 3, 2)])
    (cfg.paths.output / "state").mkdir(parents=True)
    R.routine_state_path(cfg).write_text(json.dumps({"bulletins_from": "2024-03-D1"}))
    assert R.auto_plan(cfg, TODAY).empty
    gone = archives.remove(cfg, Dekad(2024, 3, 2), C.INDICATOR, C.ZONE_STATS, C.BULLETIN)
    assert len(gone) == 6
    plan = R.auto_plan(cfg, TODAY)
    assert plan.routine == [Dekad(2024, 3, 2)] and plan.notebooks[Dekad(2024, 3, 2)] == R.REPORT_NOTEBOOKS
    assert R.auto_period(cfg, TODAY) == [Dekad(2024, 3, 2)]  # was [] ("nothing to do")
    archives.remove(cfg, Dekad(2024, 3, 1), C.BULLETIN)  # killed while rendering the bulletin
    plan = R.auto_plan(cfg, TODAY)
    assert plan.routine == [Dekad(2024, 3, 1), Dekad(2024, 3, 2)]
    assert [str(p) for p in plan.missing[Dekad(2024, 3, 1)]] == ["bulletin bulletin"]


def test_auto_mode_spans_the_archive_from_history_start_and_completes_old_dekads_in_process(tmp_path):
    cfg = _cfg(tmp_path)
    span = dekad_range(Dekad(2024, 1, 1), Dekad(2024, 3, 1))
    _reference_years(cfg, span)
    archives.complete(cfg, span)
    for d in (Dekad(2024, 1, 2), Dekad(2024, 2, 3)):  # composites of a month ago lost, a month composite
        archives.remove(cfg, d, C.COMPOSITE, C.MONTH_COMPOSITE)
    archives.remove(cfg, Dekad(2024, 2, 1), C.ZONE_STATS)
    plan = R.auto_plan(cfg, TODAY)
    assert plan.bulletins_from == Dekad(2024, 3, 2)  # first run: after the archive's last dekad
    assert plan.history == [Dekad(2024, 1, 2), Dekad(2024, 2, 1), Dekad(2024, 2, 3)]
    assert plan.routine == [Dekad(2024, 3, 2)]
    assert {p.kind for p in plan.missing[Dekad(2024, 2, 3)]} == {C.COMPOSITE, C.MONTH_COMPOSITE}
    # without history_start, the span starts at the archive's first dekad (here the reference years')
    no_start = replace(cfg, history_start=None)
    assert R.auto_plan(no_start, TODAY).history[0] == Dekad(2021, 3, 2)  # the first gap after 2021-01-D1


def test_an_empty_archive_plans_history_then_the_latest_dekad(tmp_path):
    cfg = _cfg(tmp_path, history_start=date(2024, 2, 15))
    plan = R.auto_plan(cfg, date(2024, 3, 12))
    assert plan.history == [Dekad(2024, 2, 2), Dekad(2024, 2, 3)] and plan.routine == [Dekad(2024, 3, 1)]
    plan = R.auto_plan(replace(cfg, history_start=None), date(2024, 3, 12))
    assert plan.history == [] and plan.routine == [Dekad(2024, 3, 1)]


def test_bulletins_are_expected_from_the_dekad_the_routine_started_with(tmp_path):
    cfg = _cfg(tmp_path)
    inv = C.Inventory.scan(cfg)
    assert R.bulletins_from(cfg, inv, TODAY, record=True) == Dekad(2024, 3, 2)
    assert json.loads(R.routine_state_path(cfg).read_text()) == {"bulletins_from": "2024-03-D2"}
    assert R.bulletins_from(cfg, inv, date(2025, 1, 1)) == Dekad(2024, 3, 2)  # recorded: it does not move
    R.routine_state_path(cfg).write_text("{not json")
    with pytest.raises(ConfigError, match=r"routine\.json: damaged routine state"):
        R.bulletins_from(cfg, inv, TODAY)


# -- --since-failure ----------------------------------------------------------------------------------
def test_since_failure_resumes_a_killed_range_from_the_state_written_as_it_went(tmp_path):
    cfg = _cfg(tmp_path)
    req = dekad_range(Dekad(2024, 2, 2), Dekad(2024, 3, 2))
    st = R.RunState(cfg, "manual", req, None, "run-x")
    st.save()  # what a run writes when it starts: a SIGKILL now leaves exactly this
    assert R.since_failure(cfg) == R.Resume("manual", req, [])
    _reference_years(cfg, req)
    archives.complete(cfg, req[:2], bulletins=req[:2])  # the first two dekads went through
    st.done += req[:2]
    st.save()
    assert R.since_failure(cfg) == R.Resume("manual", req[2:], [])
    archives.remove(cfg, req[0], C.INDICATOR)  # done, then made incomplete: taken up again
    assert R.since_failure(cfg).routine == [req[0], *req[2:]]
    st = R.RunState(cfg, "auto", req, None, "run-y")
    st.save()
    assert R.since_failure(cfg) == R.Resume("auto", None)  # an auto run re-plans from the archive
    # a --backfill run: its history dekads stay history (in-process, no bulletin) when resumed
    hist = dekad_range(Dekad(2024, 1, 1), Dekad(2024, 1, 3))
    archives.complete(cfg, hist[:1])
    st = R.RunState(cfg, "manual", [Dekad(2024, 3, 2)], None, "run-z", history=hist, done=[hist[0]])
    st.save()
    assert R.since_failure(cfg) == R.Resume("manual", [Dekad(2024, 3, 2)], hist[1:])


@pytest.mark.parametrize("text", ["{not json", "[]", '{"requested": ["2024-13-D1"], "mode": "manual"}',
                                  '{"requested": "2024-03-D1", "mode": "manual"}', '{"mode": "sideways"}', "\udcff"])
def test_a_damaged_state_file_is_a_clear_error_naming_it(tmp_path, text):
    cfg = _cfg(tmp_path)
    p = R.state_path(cfg)
    p.parent.mkdir(parents=True)
    p.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError, match=r"last_run\.json: .*delete it"):
        R.since_failure(cfg)


# -- backfill -----------------------------------------------------------------------------------------
@pytest.fixture
def demo_copy(small_demo, tmp_path):
    """A private copy of the reduced demo (archive and output; the scenes are shared, read only)."""
    cfg = load_config(small_demo)
    shutil.copytree(cfg.paths.archive, tmp_path / "archive")
    p = tmp_path / "params.yaml"
    p.write_text(small_demo.read_text().replace(str(cfg.paths.archive), str(tmp_path / "archive"))
                 .replace(str(cfg.paths.output), str(tmp_path / "output")))
    return load_config(p)


def test_backfill_completes_a_dekad_whose_indicator_commit_was_cut_short(demo_copy):
    """Why #2: --backfill killed while committing a dekad's indicators (VHI in, VAI and statistics not)
    left them missing for ever: the rerun treated "VHI or VAI exists" as done."""
    from eo4dm_helpers.drought import backfill_indicators

    cfg, d = demo_copy, Dekad(2024, 3, 1)
    arch = Archive(cfg.paths.archive)
    vai, stats = arch.local_indicator("DEMO", "VAI", d), arch.zone_stats(d)
    assert vai.exists() and stats.exists() and C.stats_sidecar(stats).exists()
    vai.unlink()
    stats.unlink()
    assert arch.global_indicator("VHI", d).exists()
    assert backfill_indicators(cfg, Dekad(2024, 2, 1), d, log=lambda m: None) == 1
    assert vai.exists() and stats.exists()
    assert C.missing(cfg, d, C.Inventory.scan(cfg), bulletin=False) == []


def test_composites_committed_again_remove_what_was_computed_from_the_old_ones_first(demo_copy):
    """Zone statistics and indicators are never left stale next to new inputs: committing a dekad's
    composites removes its indicators and statistics before anything moves in."""
    from eo4dm_helpers import history

    cfg, d = demo_copy, Dekad(2024, 3, 1)
    arch = Archive(cfg.paths.archive)
    comp = arch.global_composite("MODIS", "NDWI", d)
    comp.unlink()
    inv = C.Inventory.scan(cfg)
    assert _kinds(C.missing(cfg, d, inv, bulletin=False)) == [(C.COMPOSITE, "MODIS NDWI")]
    written = history.build_composites(cfg, d, inv, log=lambda m: None)
    assert comp in written and arch.global_composite("MODIS", "LST", d) in written
    assert not arch.global_indicator("VHI", d).exists() and not arch.zone_stats(d).exists()  # stale: gone
    assert arch.local_indicator("DEMO", "VAI", d).exists()  # the local chain was not touched
    inv = C.Inventory.scan(cfg)
    assert {p.kind for p in C.missing(cfg, d, inv, bulletin=False)} == {C.INDICATOR, C.ZONE_STATS}
    history.build_indicators(cfg, d)
    assert C.missing(cfg, d, C.Inventory.scan(cfg), bulletin=False) == []


def test_month_products_belong_to_the_third_dekad():
    assert C.product_of(Archive("/a").global_composite("MODIS", "LST", Month(2024, 2)).relative_to("/a")) == \
        (Dekad(2024, 2, 3), "global")
    assert C.product_of(Archive("/a").local_indicator("82075", "VAI", Dekad(2024, 2, 1)).relative_to("/a")) == \
        (Dekad(2024, 2, 1), "82075")
