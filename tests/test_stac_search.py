"""STAC searches (eo4dm_helpers.stac.search) and the parameters of the STAC sources (config.py)."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from eo4dm_helpers.config import ConfigError, load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.stac import offline as O
from eo4dm_helpers.stac.assets import ASSET_MAPS, SPEC, check_complete
from eo4dm_helpers.stac.search import StacSearch, plan_searches, run_search

from .conftest import ROOT
from .stac_world import BBOX, build_world, stac_params


@pytest.fixture(scope="module")
def world(small_demo, tmp_path_factory):
    """S2/L8/L9 of 2024-03-01..20 and SLSTR of 2024-03-11..13 from the reduced demo store, served on 127.0.0.1."""
    store = load_config(small_demo).paths.scenes
    root = tmp_path_factory.mktemp("stac")
    cat = build_world(store, root / "cat", (2024,), ((3, 1), (3, 20)), ((3, 11), (3, 13)), ("S2", "L8", "L9"))
    with O.LoopbackStacApi(cat) as api:
        yield store, cat, api


def test_every_asset_map_covers_the_bands_the_specification_reads():
    for m in ASSET_MAPS.values():
        for product, pa in m.products.items():
            check_complete(pa, product)
            assert set(pa.dtypes) <= set(pa.bands)
    assert ASSET_MAPS["planetary-computer"].product("SLSTR").bands["LST"] == "lst-in"  # the PC collection template
    assert SPEC["S2"].bands == ("B4", "B8", "B11", "SCL", "AOT")


def test_dry_run_plan_lists_collection_bbox_and_utc_window_from_local_dates(tmp_path):
    cfg = load_config(stac_params(tmp_path, tmp_path / "scenes", "https://stac.example.invalid/v1"))
    plan = plan_searches(cfg, Dekad(2024, 3, 2))
    by = {s.product: s for s in plan.searches}
    assert set(by) == {"SLSTR", "S2", "L8", "L9"}  # L7 ends 2022-04-06 in params/demo.yaml
    s = by["SLSTR"]
    assert s.collection == "sentinel-3-sl-2-lst-ntc" and s.platforms == ("sentinel-3a", "sentinel-3b")
    # local dates 2024-03-11..20 in Pacific/Noumea (UTC+11) = [2024-03-10T13:00Z, 2024-03-20T13:00Z)
    assert s.datetime == "2024-03-10T13:00:00Z/2024-03-20T13:00:00Z"
    assert s.bbox == pytest.approx((163.4375, -22.875, 168.3125, -19.4375))
    assert by["S2"].collection == "sentinel-2-l2a" and by["L9"].platforms == ("landsat-9",)
    assert by["S2"].datetime == "2024-02-29T13:00:00Z/2024-03-31T13:00:00Z"  # widest widening window (§1.5)
    assert 165.4 < by["S2"].bbox[0] < by["S2"].bbox[2] < 165.5  # the 10 m demo tile
    text = plan.summary()
    assert "4 STAC search(es)" in text and "collection=sentinel-3-sl-2-lst-ntc" in text
    assert "local dates 2024-03-11 to 2024-03-20 (Pacific/Noumea)" in text
    # the third dekad searches SLSTR over the whole month (the monthly composite, §1.5)
    assert next(x for x in plan_searches(cfg, Dekad(2024, 3, 3)).searches if x.product == "SLSTR").datetime == \
        "2024-02-29T13:00:00Z/2024-03-31T13:00:00Z"
    # an LST sensor switch inside the dekad: SLSTR only searched for its own days
    data = yaml.safe_load((tmp_path / "params.yaml").read_text())
    data["global_chain"]["lst_sensors"] = [{"name": "MODIS", "start": date(2000, 2, 24), "end": date(2024, 3, 15)},
                                           {"name": "SLSTR", "start": date(2024, 3, 16)}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    s = next(x for x in plan_searches(load_config(tmp_path / "params.yaml"), Dekad(2024, 3, 2)).searches
             if x.product == "SLSTR")
    assert s.datetime == "2024-03-15T13:00:00Z/2024-03-20T13:00:00Z"


def test_api_and_static_catalogue_answer_the_same_items_in_the_exact_window(world):
    _, cat, api = world
    lo, hi = datetime(2024, 2, 29, 13, tzinfo=UTC), datetime(2024, 3, 20, 13, tzinfo=UTC)  # 2024-03-01..20 local
    tile = (165.42, -21.60, 165.46, -21.58)
    for product, coll in (("S2", "sentinel-2-l2a"), ("L8", "landsat-c2-l2"), ("SLSTR", "sentinel-3-sl-2-lst-ntc")):
        pa = ASSET_MAPS["cdse" if product == "SLSTR" else "earth-search"].product(product)
        by_api = run_search(StacSearch(product, api.url, coll, BBOX if product == "SLSTR" else tile, lo, hi,
                                       pa.platforms))
        by_file = run_search(StacSearch(product, str(cat), coll, BBOX if product == "SLSTR" else tile, lo, hi,
                                        pa.platforms))
        assert [i.id for i in by_api] == [i.id for i in by_file] and by_api
        assert all(lo <= i.datetime < hi for i in by_api)
    assert any(r[1] == "/search" for r in api.requests)  # pystac-client went through /search
    l8 = run_search(StacSearch("L8", api.url, "landsat-c2-l2", tile, lo, hi, ("landsat-8",)))
    l9 = run_search(StacSearch("L9", api.url, "landsat-c2-l2", tile, lo, hi, ("landsat-9",)))
    assert {i.properties["platform"] for i in l8} == {"landsat-8"} and {i.properties["platform"] for i in l9} == \
        {"landsat-9"}
    # an exclusive end: an item stamped exactly at ``end`` belongs to the next window
    first = run_search(StacSearch("S2", api.url, "sentinel-2-l2a", tile, lo, hi))[0]
    assert first.id not in [i.id for i in run_search(StacSearch("S2", api.url, "sentinel-2-l2a", tile, lo,
                                                                first.datetime))]


def test_s3b_before_its_operational_date_is_left_out(tmp_path):
    pa = ASSET_MAPS["cdse"].product("SLSTR")
    items = []
    for day, platform in ((date(2018, 11, 10), "sentinel-3b"), (date(2018, 11, 10), "sentinel-3a"),
                          (date(2018, 11, 20), "sentinel-3b")):
        files = O.write_slstr_product(tmp_path / f"{platform}{day}.SEN3", day, platform, BBOX, spacing_km=8.0)
        items.append(O.slstr_item(files, day, platform, pa))
    cat = O.write_catalogue(tmp_path / "cat", {pa.collection: items})
    found = run_search(StacSearch("SLSTR", str(cat), pa.collection, BBOX, datetime(2018, 11, 1, tzinfo=UTC),
                                  datetime(2018, 12, 1, tzinfo=UTC), pa.platforms))
    assert [(i.properties["platform"], i.datetime.date().isoformat()) for i in found] == \
        [("sentinel-3a", "2018-11-09"), ("sentinel-3b", "2018-11-19")]  # DOMAIN.md §4.6: S3B from 2018-11-17


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["stac"].pop("slstr"), "stac.slstr: needed by global_chain.lst_sensors SLSTR"),
    (lambda d: d["stac"].pop("highres"), "stac.highres: needed by local_chain.source: stac"),
    (lambda d: d.update(backend="earthengine"), "SLSTR is not in Earth Engine"),
    (lambda d: d["global_chain"].update(lst_sensors=[{"name": "SLSTR", "start": "2016-04-19"}]),
     "SL_2_LST is operational from 2017-07-05"),
    (lambda d: d["global_chain"].update(ndwi_sensors=[{"name": "SLSTR", "start": "2018-01-01"}]),
     "ndwi_sensors: unknown medium-resolution sensor 'SLSTR'"),
    (lambda d: d["local_chain"].update(s2_cloud_source="cloud_score_plus"), "carry no Cloud Score+"),
    (lambda d: d["local_chain"].update(source="drive"), "local_chain.source: must be one of 'scenes', 'stac'"),
    (lambda d: d["stac"]["slstr"].update(assets="sentinelhub"), "stac.slstr.assets: must be one of"),
    (lambda d: d["stac"]["highres"].update(collections={"S1": "x"}), "stac.highres.collections: unknown product"),
    (lambda d: d["stac"].update(chunk=8), "stac.chunk: must be at least 64 px"),
])
def test_stac_parameters_are_validated_with_one_line_naming_the_key(tmp_path, change, message):
    p = stac_params(tmp_path, tmp_path / "scenes", "http://127.0.0.1:9/")
    data = yaml.safe_load(p.read_text())
    change(data)
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(p)
    assert "\n" not in str(exc.value)


def test_shipped_parameter_files_still_load_with_their_defaults():
    for p in sorted((ROOT / "params").glob("*.yaml")):
        cfg = load_config(p, check_layers=False)
        assert cfg.local_chain.source == "scenes" and cfg.stac.slstr is None and cfg.stac.highres is None
    cfg = load_config(ROOT / "params" / "demo.yaml", check_layers=False)
    assert not plan_searches(cfg, Dekad(2024, 3, 2)).searches
    assert "no STAC search" in plan_searches(cfg, Dekad(2024, 3, 2)).summary()


def test_credentials_never_reach_the_public_view(tmp_path):
    from eo4dm_helpers.config import public_view
    from eo4dm_helpers.runner import secret_strings

    p = stac_params(tmp_path, Path("/x"), "http://127.0.0.1:9/")
    data = yaml.safe_load(p.read_text())
    data["credentials"] = {"cdse_user": "someone@example.org", "cdse_password": "hunter2-but-longer"}
    p.write_text(yaml.safe_dump(data))
    cfg = load_config(p)
    assert "hunter2-but-longer" not in repr(public_view(cfg))
    assert "hunter2-but-longer" in secret_strings(cfg)  # scrubbed from executed notebooks and messages
