"""Zone layers (territory.zones, issue #13): checked when the parameters load; every problem is one line
naming territory.zones, the file and the feature; a declared CRS is honoured; zones come back in EPSG:4326."""

import json

import pytest
import shapefile  # pyshp
import yaml
from pyproj import CRS
from shapely.geometry import Point

from eo4dm_helpers.config import ConfigError, load_config
from eo4dm_helpers.zones import load_zones

from .conftest import ROOT

# A commune-like polygon of Grande Terre in EPSG:3163 (RGNC91-93 / Lambert New Caledonia), around the
# projection's origin: false easting 400 000 m, false northing 300 000 m at 166° E, 21.5° S (EPSG registry).
ORIGIN_3163, ORIGIN_LONLAT = (400_000.0, 300_000.0), (166.0, -21.5)
COMMUNE_3163 = [(385_000.0, 290_000.0), (415_000.0, 288_000.0), (418_000.0, 312_000.0), (392_000.0, 316_000.0),
                (381_000.0, 305_000.0), (385_000.0, 290_000.0)]
LONLAT_SQUARE = [(165.0, -21.0), (165.5, -21.0), (165.5, -21.5), (165.0, -21.5), (165.0, -21.0)]
BOW_TIE = [(165.0, -21.0), (165.5, -21.5), (165.5, -21.0), (165.0, -21.5), (165.0, -21.0)]


def _feature(name, geometry, field="name"):
    return {"type": "Feature", "properties": {field: name}, "geometry": geometry}


def _poly(ring):
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


def _geojson(tmp_path, features, crs=None, name="zones.geojson"):
    doc = {"type": "FeatureCollection", "features": features, **({"crs": crs} if crs is not None else {})}
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def _urn(code):
    return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{code}"}}


def test_a_declared_crs_is_honoured(tmp_path):
    """Before: the EPSG:3163 metres were taken for degrees."""
    p = _geojson(tmp_path, [_feature("Bourail", _poly(COMMUNE_3163))], crs=_urn(3163))
    (z,) = load_zones(p)
    x0, y0, x1, y1 = z.geometry.bounds
    assert 165.8 < x0 < x1 < 166.2 and -21.7 < y0 < y1 < -21.3
    assert z.geometry.contains(Point(*ORIGIN_LONLAT).buffer(0.01))
    # the projection's origin (a point of the polygon) lands on its known longitude/latitude
    origin = _geojson(tmp_path, [_feature("o", _poly([ORIGIN_3163, (410_000, 300_000), (410_000, 310_000),
                                                     ORIGIN_3163]))], crs=_urn(3163), name="o.geojson")
    lon, lat = load_zones(origin)[0].geometry.exterior.coords[0]
    assert (lon, lat) == pytest.approx(ORIGIN_LONLAT, abs=1e-9)


def test_crs84_and_epsg4326_are_read_as_lon_lat(tmp_path):
    for crs in ({"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}, _urn(4326)):
        (z,) = load_zones(_geojson(tmp_path, [_feature("a", _poly(LONLAT_SQUARE))], crs=crs))
        assert z.geometry.bounds == pytest.approx((165.0, -21.5, 165.5, -21.0))


@pytest.mark.parametrize(
    ("features", "crs", "message"),
    [
        ([], None, r"no features: the layer is empty"),
        ([_feature("a", _poly(LONLAT_SQUARE)), _feature("Bourail", None)], None,
         r"feature 1 \('Bourail'\): no geometry \(null\)"),
        ([_feature("Bourail", {"type": "Polygon", "coordinates": []})], None,
         r"feature 0 \('Bourail'\): empty geometry"),
        ([_feature("Route", {"type": "LineString", "coordinates": LONLAT_SQUARE[:2]})], None,
         r"feature 0 \('Route'\): a LineString, not a polygon"),
        ([_feature("Phare", {"type": "Point", "coordinates": [165.0, -21.0]})], None,
         r"feature 0 \('Phare'\): a Point, not a polygon"),
        ([_feature("Noeud", _poly(BOW_TIE))], None,
         r"feature 0 \('Noeud'\): invalid geometry \(Self-intersection\[165\.25 -21\.25\]\)"),
        ([_feature("Trait", _poly(LONLAT_SQUARE[:2]))], None, r"feature 0 \('Trait'\): malformed geometry"),
        ([_feature("Bourail", _poly(LONLAT_SQUARE)), _feature("Bourail", _poly(BOW_TIE))], None,
         r"feature 1 \('Bourail'\): zone name already used by feature 0: zone names must be unique"),
        ([_feature("Bourail", _poly(COMMUNE_3163))], None,
         r"feature 0 \('Bourail'\): coordinates outside longitude/latitude ranges \(x 381000 to 418000, "
         r"y 288000 to 316000\); the layer declares no CRS"),
        ([_feature("Bourail", _poly(LONLAT_SQUARE))], _urn(999999), r"declares an unknown CRS "
                                                                    r"'urn:ogc:def:crs:EPSG::999999'"),
        ([_feature("Bourail", _poly(LONLAT_SQUARE))], {"type": "link", "properties": {"href": "x.prj"}},
         r'unsupported "crs" member'),
        ([_feature(None, _poly(LONLAT_SQUARE))], None, r"feature 0 has an empty zone name"),
        ([_feature("a", _poly(LONLAT_SQUARE), field="nom")], None, r"feature 0 has no property 'name'"),
    ],
)
def test_a_bad_geojson_layer_names_the_file_and_the_feature(tmp_path, features, crs, message):
    p = _geojson(tmp_path, features, crs)
    with pytest.raises(ConfigError, match=rf"^territory\.zones: {p}: {message}"):
        load_zones(p)


def test_not_a_feature_collection(tmp_path):
    p = tmp_path / "z.geojson"
    for text, message in (("{", "not JSON"), (json.dumps(_feature("a", _poly(LONLAT_SQUARE))),
                                               "not a GeoJSON FeatureCollection")):
        p.write_text(text)
        with pytest.raises(ConfigError, match=rf"territory\.zones: {p}: {message}"):
            load_zones(p)


def _shapefile(tmp_path, shapes, prj=None, kind=shapefile.POLYGON, field="nom"):
    base = tmp_path / "communes"
    w = shapefile.Writer(str(base), shapeType=kind)
    w.field(field, "C")
    for name, ring in shapes:
        if ring is None:
            w.null()
        elif kind == shapefile.POLYLINE:
            w.line([ring])
        else:
            w.poly([ring[::-1]])  # clockwise exterior, as shapefiles want
        w.record(name)
    w.close()
    if prj is not None:
        (tmp_path / "communes.prj").write_text(prj)
    return base.with_suffix(".shp")


def test_a_projected_shapefile_is_honoured(tmp_path):
    p = _shapefile(tmp_path, [("Bourail", COMMUNE_3163)], prj=CRS.from_epsg(3163).to_wkt())
    (z,) = load_zones(p, "nom")
    assert z.name == "Bourail" and z.geometry.contains(Point(*ORIGIN_LONLAT))


@pytest.mark.parametrize(
    ("shapes", "prj", "kind", "message"),
    [
        ([], None, shapefile.POLYGON, r"no features: the layer is empty"),
        ([("Bourail", LONLAT_SQUARE), ("Moindou", None)], None, shapefile.POLYGON,
         r"feature 1 \('Moindou'\): no geometry \(null\)"),
        ([("Route", LONLAT_SQUARE[:3])], None, shapefile.POLYLINE, r"feature 0 \('Route'\): a LineString, not a "
                                                                   r"polygon"),
        ([("Noeud", BOW_TIE)], None, shapefile.POLYGON, r"feature 0 \('Noeud'\): invalid geometry \(Self-inters"),
        ([("Bourail", LONLAT_SQUARE), ("Bourail", COMMUNE_3163)], CRS.from_epsg(3163).to_wkt(), shapefile.POLYGON,
         r"feature 1 \('Bourail'\): zone name already used by feature 0"),
        ([("Bourail", COMMUNE_3163)], None, shapefile.POLYGON,
         r"feature 0 \('Bourail'\): coordinates outside longitude/latitude ranges .* declares no CRS"),
        ([("Bourail", LONLAT_SQUARE)], "PROJCS[nonsense", shapefile.POLYGON, r"communes\.prj holds no CRS"),
    ],
)
def test_a_bad_shapefile_names_the_file_and_the_feature(tmp_path, shapes, prj, kind, message):
    p = _shapefile(tmp_path, shapes, prj, kind)
    with pytest.raises(ConfigError, match=rf"^territory\.zones: {p}: {message}"):
        load_zones(p, "nom")


def test_a_truncated_shapefile_is_unreadable(tmp_path):
    p = _shapefile(tmp_path, [("Bourail", LONLAT_SQUARE), ("Moindou", LONLAT_SQUARE)])
    p.write_bytes(p.read_bytes()[:120])
    with pytest.raises(ConfigError, match=rf"territory\.zones: {p}: unreadable shapefile"):
        load_zones(p, "nom")


def _params(tmp_path, zones, name="p.yaml"):
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    data["territory"]["zones"] = str(zones)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def test_the_layer_is_checked_when_the_parameters_load(tmp_path):
    """Before: a missing or broken layer passed the parameters and failed the indicators notebook."""
    missing = _params(tmp_path, tmp_path / "no-such-zones.geojson", "missing.yaml")
    with pytest.raises(ConfigError, match=rf"^{missing}: territory\.zones: {tmp_path}/no-such-zones\.geojson does "
                                          r"not exist$"):
        load_config(missing)
    folder = _params(tmp_path, tmp_path, "folder.yaml")
    with pytest.raises(ConfigError, match=r"territory\.zones: .* is not a file$"):
        load_config(folder)
    twice = _geojson(tmp_path, [_feature("Sud", _poly(LONLAT_SQUARE)), _feature("Sud", _poly(LONLAT_SQUARE))])
    p = _params(tmp_path, twice)
    with pytest.raises(ConfigError, match=rf"^{p}: territory\.zones: {twice}: feature 1 \('Sud'\): zone name "
                                          r"already used") as info:
        load_config(p)
    assert "\n" not in str(info.value)
    good = _geojson(tmp_path, [_feature("Bourail", _poly(COMMUNE_3163))], crs=_urn(3163), name="good.geojson")
    assert load_config(_params(tmp_path, good)).territory.zones == good
    assert load_config(missing, check_layers=False).territory.zones == tmp_path / "no-such-zones.geojson"
