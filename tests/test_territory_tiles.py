"""Every tile over the territory: WRS-2 / MGRS geometry, per-tile 10 m grids, discovery (one Earth Engine
request, serialized offline), its cache in the archive and the parameters' override."""

import json
from datetime import date

import ee
import pytest
import yaml
from odc.geo import geom

from eo4dm_helpers import territory_tiles as T
from eo4dm_helpers.config import ConfigError, load_config
from eo4dm_helpers.ee import discovery as D

from .conftest import ROOT, production_params

EO4DM_WRS2 = ["82075", "81075", "83074", "82074", "81074", "80075", "81076"]  # DOMAIN.md §1.2
EO4DM_MGRS = ["58KCC", "58KCD", "58KDB", "58KDC", "58KEA", "58KEB", "58KEC", "58KFA", "58KFB", "58KFC", "58KGA",
              "58KGB", "58KGC", "58KGV", "58KHB"]


def test_wrs2_scene_centres_fall_on_the_territory():
    lon, lat = T.wrs2_center(82, 75)
    assert 165.3 < lon < 165.7 and -21.8 < lat < -21.5  # central Grande Terre
    lon80, _ = T.wrs2_center(80, 75)
    lon81, _ = T.wrs2_center(81, 75)
    assert lon80 - lon81 == pytest.approx(360 / 233, abs=0.01)  # paths 1.545° apart, numbered westwards
    assert T.wrs2_path_row("82075") == T.wrs2_path_row("082075") == (82, 75)
    with pytest.raises(T.TileError):
        T.wrs2_path_row("58KEB")


def test_mgrs_tiles_from_their_letters():
    assert T.mgrs_footprint("58KEB").boundingbox[:4] == (500000.0, 7590200.0, 609800.0, 7700000.0)
    noumea = geom.point(166.45, -22.27, "EPSG:4326")
    assert T.mgrs_footprint("58KFA").to_crs("EPSG:4326").contains(noumea)
    assert not T.mgrs_footprint("58KEB").to_crs("EPSG:4326").contains(noumea)
    with pytest.raises(T.TileError):
        T.mgrs_footprint("58KJB")  # zone 58 uses columns A-H; J-R are those of zones 2, 5, ... 59


def test_neighbouring_wrs2_tiles_share_the_10m_lattice():
    a, b = (T.tile_grid(T.wrs2_footprint(t)) for t in ("82075", "81075"))
    assert a.crs == b.crs == "EPSG:32758"
    for g in (a, b):
        assert g.resolution == 10.0 and g.y_resolution is None and g.rotation == (0.0, 0.0)
        assert g.x0 % 10 == 0 and g.y0 % 10 == 0
    assert a.bounds[2] > b.bounds[0]  # they overlap, and their pixels coincide where they do
    assert ((a.x0 - b.x0) / 10).is_integer() and ((a.y0 - b.y0) / 10).is_integer()
    fp = T.wrs2_footprint("82075")
    x0, y0, x1, y1 = a.bounds
    assert geom.box(x0, y0, x1, y1, a.crs).contains(fp)  # the grid covers the scene
    assert (x1 - x0) - (fp.boundingbox[2] - fp.boundingbox[0]) < 20  # and no more than a pixel around it
    assert T.tile_grid(T.wrs2_footprint("80075")).crs == "EPSG:32759"  # New Caledonia spans UTM 58S and 59S


def test_production_parameters_list_every_tile_on_its_derived_grid(tmp_path):
    cfg = load_config(production_params(tmp_path))
    tiles = {t.id: t for t in cfg.local_chain.tiles}
    assert sorted(tiles) == sorted(EO4DM_WRS2)
    assert sorted({m for t in tiles.values() for m in t.s2_tiles}) == EO4DM_MGRS
    for t in T.local_tiles(EO4DM_WRS2, EO4DM_MGRS):
        assert tiles[t.id].grid == t.grid and tiles[t.id].s2_tiles == t.s2_tiles
    assert "s2_tiles" not in yaml.safe_load((ROOT / "params" / "new_caledonia.yaml").read_text())["local_chain"]


class _OneRequest:
    def __init__(self, answer):
        self.answer, self.sent = answer, []

    def compute_value(self, obj):
        self.sent.append(obj)
        return self.answer


def test_discovery_is_one_request_whose_graph_is_built_offline(ee_offline):
    graph = D.discovery_graph(ee.Geometry.Rectangle([163.46, -22.86, 168.30, -19.44]), date(2023, 3, 1),
                              date(2024, 3, 1))
    text = json.dumps(ee.serializer.encode(graph, for_cloud_api=True))
    for s in ("LANDSAT/LC08/C02/T1_L2", "COPERNICUS/S2_SR_HARMONIZED", "WRS_PATH", "WRS_ROW", "MGRS_TILE",
              "Collection.distinct", "AggregateFeatureCollection.array", "2023-03-01", "163.46"):
        assert s in text, s
    assert D.parse({"wrs_path": [82, 81, 82], "wrs_row": [75, 75, 75], "mgrs": ["58keb", "58KEB", "58KFA"]}) == \
        (["81075", "82075"], ["58KEB", "58KFA"])


def _without_tiles(tmp_path):
    data = yaml.safe_load(production_params(tmp_path).read_text())
    del data["local_chain"]["tiles"]
    p = tmp_path / "discover.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_discovered_tiles_are_cached_in_the_archive_and_the_parameters_override_them(tmp_path, ee_offline):
    params = _without_tiles(tmp_path)
    with pytest.raises(ConfigError, match="local_chain.tiles: none listed and no tile cache.*ee.discovery"):
        load_config(params)
    cfg = load_config(params, resolve_tiles=False)
    paths, rows = zip(*(divmod(int(t), 1000) for t in EO4DM_WRS2), strict=True)
    io = _OneRequest({"wrs_path": list(paths), "wrs_row": list(rows), "mgrs": EO4DM_MGRS})
    cache = D.discover(cfg, io, today=date(2024, 3, 21))
    assert len(io.sent) == 1 and cache == cfg.paths.archive / "tiles.json"
    doc = json.loads(cache.read_text())
    assert doc["query"]["start"] == "2023-03-22" and doc["query"]["landsat"] == "LANDSAT/LC08/C02/T1_L2"
    assert doc["created"] and sorted(doc["wrs2"]) == sorted(EO4DM_WRS2) and doc["mgrs"] == EO4DM_MGRS
    found = load_config(params).local_chain.tiles
    assert {t.id: t for t in found} == {t.id: t for t in load_config(production_params(tmp_path)).local_chain.tiles}

    data = yaml.safe_load(params.read_text())  # the parameters' list wins over the cache
    data["local_chain"]["tiles"] = [{"id": "DEMO", "grid": {"crs": "EPSG:32758", "x0": 544400.0, "y0": 7613300.0,
                                                           "resolution": 10.0, "width": 24, "height": 16}}]
    params.write_text(yaml.safe_dump(data))
    assert [t.id for t in load_config(params).local_chain.tiles] == ["DEMO"]


def test_a_bad_mgrs_id_in_the_parameters_is_refused(tmp_path):
    data = yaml.safe_load(production_params(tmp_path).read_text())
    data["local_chain"]["tiles"][0]["s2_tiles"] = ["58KEB", "T58KEC"]
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"tiles\[82075\].s2_tiles: not MGRS tile ids.*T58KEC"):
        load_config(p)


def test_discovery_searches_over_the_outline_when_there_is_one(tmp_path, ee_offline):
    from dataclasses import replace

    cfg = load_config(production_params(tmp_path), check_layers=False)
    assert D.territory_region(cfg)[1].startswith("bbox")
    outline = tmp_path / "outline.geojson"
    ring = [[164.1, -21.1], [165.2, -21.1], [165.2, -22.3], [164.1, -21.1]]
    outline.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    region, where = D.territory_region(replace(cfg, territory=replace(cfg.territory, outline=outline)))
    text = json.dumps(ee.serializer.encode(D.discovery_graph(region, date(2023, 1, 1), date(2024, 1, 1)),
                                           for_cloud_api=True))
    assert where == str(outline) and "164.1" in text and "163.4629" not in text
