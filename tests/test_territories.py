"""Any territory (issue 15): the four shipped parameter files load, dry-run offline, and a small archive of
each goes through drought mode to a bulletin; the 180° meridian (Fiji); bbox in another CRS; the ``eo4dm
new-territory`` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from eo4dm_helpers import completeness as C
from eo4dm_helpers import geo
from eo4dm_helpers import territory_tiles as T
from eo4dm_helpers.archive import write_raster
from eo4dm_helpers.config import ConfigError, Grid, load_config
from eo4dm_helpers.dekads import Dekad

from .conftest import ROOT

TERRITORIES = {  # file: (name, code, time zone, a land point (lon, lat) of the territory)
    "new_caledonia": ("New Caledonia (Fr)", "NC", "Pacific/Noumea", (165.5, -21.5)),  # Grande Terre
    "fiji": ("Fiji", "FJ", "Pacific/Fiji", (179.95, -16.8)),  # Vanua Levu / Taveuni, by the 180° meridian
    "vanuatu": ("Vanuatu", "VU", "Pacific/Efate", (168.3, -17.7)),  # Efate
    "french_polynesia": ("French Polynesia (Fr)", "PF", "Pacific/Tahiti", (-149.45, -17.65)),  # Tahiti
}
DEKAD = Dekad(2024, 3, 1)
YEARS = (2021, 2022, 2023, 2024)  # a 3-year reference (indicators.reference.min_years) and the dekad's year


def _copy(name: str, tmp: Path) -> Path:
    """The shipped file with its folders under ``tmp`` (no zone layer: a dry run needs none)."""
    data = yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"archive": str(tmp / "archive"), "output": str(tmp / "output")}
    data["territory"].pop("zones")
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


@pytest.mark.parametrize("name", list(TERRITORIES))
def test_shipped_parameter_files_load_and_name_their_territory(name, tmp_path):
    cfg = load_config(_copy(name, tmp_path))
    full, code, tz, (lon, lat) = TERRITORIES[name]
    t = cfg.territory
    assert (t.name, t.code, t.timezone) == (full, code, tz)
    lon0, lat0, lon1, lat1 = geo.unwrapped(t.lonlat)
    assert lon0 <= (lon if lon >= lon0 else lon + 360) <= lon1 and lat0 <= lat <= lat1
    g = cfg.global_chain.grid
    assert g.crs == "EPSG:4326" and g.resolution == pytest.approx(1 / 240)
    x0, y0, x1, y1 = g.bounds  # the grid covers the bbox, within a pixel (snapped outward)
    e = 1e-4  # NC's file gives y0 to 4 decimals
    assert x0 - e <= lon0 < x0 + g.resolution and x1 - g.resolution < lon1 <= x1 + e
    assert y0 - e <= lat0 < y0 + g.resolution and y1 - g.resolution < lat1 <= y1 + e
    shipped = yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text(encoding="utf-8"))["territory"]
    assert shipped["zones"] and shipped["zone_name_field"] == {"new_caledonia": "nom", "fiji": "shapeName"}.get(
        name, "Name")  # EO4DM's KEY_STATS (docker-compose.yml)


def test_fiji_crosses_the_180th_meridian_everywhere(tmp_path):
    cfg = load_config(_copy("fiji", tmp_path))
    assert geo.crosses(cfg.territory.lonlat) and cfg.territory.bbox[0] > cfg.territory.bbox[2]
    g = cfg.global_chain.grid
    assert g.x0 < 180 < g.bounds[2] < 183  # the EPSG:4326 grid continues past 180
    assert geo.split(cfg.territory.lonlat) == [(176.85, -21.1, 180.0, -15.65), (-180.0, -21.1, -178.15, -15.65)]
    # EO4DM's Fiji tiles (docker-compose.yml TILES_L) are among those the WRS-2 model finds over the bbox
    found = T.wrs2_tiles_over(cfg.territory.lonlat)
    assert {"74072", "74073", "75072"} <= set(found)
    assert {t.id for t in cfg.local_chain.tiles} == {"74072", "74073", "75072"}
    assert {t.grid.crs for t in cfg.local_chain.tiles} == {"EPSG:32760"}  # their centres are in UTM 60S
    # the S2 tiles over 74072 (east edge 179.9° E) include zone 1's: tiles compared across the meridian
    t74072 = next(t for t in cfg.local_chain.tiles if t.id == "74072")
    assert 179.5 < geo.lonlat_of(t74072.grid.bounds, t74072.grid.crs)[2] < 180
    assert any(m.startswith("01K") for m in t74072.s2_tiles)
    # MGRS tiles over Fiji: both UTM zones 60 and 1; 01KAB is the S2 tile at 180°, 16.8° S
    # (cirrus-geo/cirrus-earth-search#29: scenes "S2A_1KAB" found for bbox 179.99..180.0, -16.85..-16.83)
    mgrs = T.mgrs_tiles_over(cfg.territory.lonlat)
    assert {m[:2] for m in mgrs} == {"60", "01"} and "01KAB" in mgrs


def test_tile_model_finds_eo4dm_new_caledonia_tiles():
    nc = (163.4629, -22.8619, 168.3033, -19.4449)  # EO4DM's MODIS bbox (docker-compose.yml)
    assert {"82075", "81075", "83074", "82074", "81074", "80075", "81076"} <= set(T.wrs2_tiles_over(nc))


def test_zones_in_minus180_180_rasterize_on_a_grid_past_180():
    from shapely.geometry import box

    from eo4dm_helpers.zones import Zone, zone_masks

    grid = Grid("EPSG:4326", 179.5, -16.5, 0.1, 10, 5)  # 179.5 to 180.5
    zones = [Zone("west", box(179.6, -17.0, 179.9, -16.6)), Zone("east", box(-179.9, -17.0, -179.6, -16.6))]
    m = zone_masks(zones, grid)
    assert m["west"].sum() == 3 * 4 and m["east"].sum() == 3 * 4
    # rows -16.6 to -17.0; columns 179.6-179.9 and 180.1-180.4
    assert m["west"][1:, 1:4].all() and m["east"][1:, 6:9].all()


def test_bbox_in_the_grid_crs_is_read_as_lonlat(tmp_path):
    data = yaml.safe_load((ROOT / "params" / "new_caledonia.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"archive": str(tmp_path / "a"), "output": str(tmp_path / "o")}
    data["territory"].pop("zones")
    # Nouméa's UTM 58S box (EPSG:32758): about 166.36-166.55 E, 22.32-22.19 S
    data["territory"].update(bbox=[650000, 7530000, 670000, 7545000], bbox_crs="EPSG:32758")
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    lon0, lat0, lon1, lat1 = load_config(p).territory.lonlat
    assert 166.4 < lon0 < lon1 < 166.7 and -22.4 < lat0 < lat1 < -22.1
    # a UTM 60S box across 180° gives lon_min > lon_max
    assert geo.crosses(geo.lonlat_of((780000, 8100000, 820000, 8140000), "EPSG:32760"))
    data["territory"].update(bbox=[670000, 7530000, 650000, 7545000])
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"territory\.bbox: .*EPSG:32758"):
        load_config(p)


# ------------------------------------------------------------------------------------------------
# dry run (offline Earth Engine graphs)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TERRITORIES))
def test_dry_run_writes_the_graphs_of_each_territory(name, tmp_path, ee_offline):
    sys.path.insert(0, str(ROOT))
    try:
        import run_all
    finally:
        sys.path.remove(str(ROOT))
    params, plan = _copy(name, tmp_path), tmp_path / "plan"
    assert run_all.main(["--params", str(params), "--dekad", DEKAD.label, "--dry-run", "--plan-dir", str(plan)]) == 0
    cfg = load_config(params)
    index = (plan / "index.txt").read_text(encoding="utf-8").splitlines()
    assert len(index) == 3 + 2 * len(cfg.local_chain.tiles)  # NDWI, NDVI, LST + NDWI, NDVI per tile
    summary = (plan / f"global_MODIS_NDVI_{DEKAD.year}{DEKAD.month:02d}_COMPD1.txt").read_text(encoding="utf-8")
    g = cfg.global_chain.grid
    assert f"dimensions: {g.width} x {g.height} px" in summary
    graph = (plan / f"global_MODIS_NDVI_{DEKAD.year}{DEKAD.month:02d}_COMPD1.json").read_text(encoding="utf-8")
    if name == "fiji":  # the region is cut at 180°: two rectangles inside -180..180, never the complement
        assert "GeometryConstructors.MultiPolygon" in graph
        coords = json.loads(ee_offline.serializer.toJSON(_region(cfg)))
        assert _numbers(coords) and max(_numbers(coords)) <= 180 and min(_numbers(coords)) >= -180


def _region(cfg):
    from eo4dm_helpers.ee.graphs import grid_region

    return grid_region(cfg.global_chain.grid)


def _numbers(node) -> list[float]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _numbers(v)]
    if isinstance(node, list):
        return [x for v in node for x in _numbers(v)]
    return [float(node)] if isinstance(node, float | int) and not isinstance(node, bool) else []


# ------------------------------------------------------------------------------------------------
# drought mode and the bulletin, from a small archive
# ------------------------------------------------------------------------------------------------
def _small(name: str, tmp: Path) -> tuple[Path, list[str]]:
    """The shipped file cropped to a few pixels around a land point (global grid: 24 x 12 px; one local tile
    cut to 40 x 30 px at 10 m... around its own centre), with two zones over the global window (for Fiji,
    one each side of 180°, in -180..180 longitudes)."""
    from shapely.geometry import box, mapping

    data = yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text(encoding="utf-8"))
    _, _, _, (lon, lat) = TERRITORIES[name]
    res = 1 / 240
    x0 = round((lon - 12 * res) / res) * res
    y0 = round((lat + 6 * res) / res) * res
    data["global_chain"]["grid"] = {"crs": "EPSG:4326", "x0": x0, "y0": y0, "resolution": res, "width": 24,
                                    "height": 12}
    tiles = data["local_chain"].get("tiles") or []
    if tiles:
        t = tiles[0]
        g = t["grid"]
        t["grid"] = {**g, "x0": g["x0"] + g["width"] // 2 * 10.0, "y0": g["y0"] - g["height"] // 2 * 10.0,
                     "width": 40, "height": 30}
        data["local_chain"]["tiles"] = [t]
    # the shipped backend (earthengine) and no scene store: drought mode reads the archive only, so it needs
    # neither scenes nor Earth Engine credentials (the runs get none: no key, an empty HOME)
    data["paths"] = {"archive": str(tmp / "archive"), "output": str(tmp / "output")}
    data["as_of"] = "2024-04-30"
    assert data["backend"] == "earthengine"
    west, east = box(x0, y0 - 12 * res, x0 + 12 * res, y0), box(x0 + 12 * res, y0 - 12 * res, x0 + 24 * res, y0)
    zones = [("West zone", west), ("East zone", east)]
    feats = [{"type": "Feature", "properties": {data["territory"]["zone_name_field"]: n},
              "geometry": mapping(_wrap(g))} for n, g in zones]
    layer = tmp / "zones.geojson"
    layer.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    data["territory"]["zones"] = str(layer)
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p, [n for n, _ in zones]


def _wrap(g):
    """A box given past 180° as it comes in a zone layer: in -180..180."""
    from shapely import affinity

    return affinity.translate(g, xoff=-360) if g.bounds[0] >= 180 else g


def _composites(cfg) -> None:
    """The dekad's composites of every year, in the archive: a value rising by 0.05 a year (so the dekad's
    year is the wettest and greenest, and warmest-free: VCI 1) plus a west-east gradient."""
    for year in YEARS:
        d = Dekad(year, DEKAD.month, DEKAD.index)
        for p in C.missing(cfg, d, C.Inventory.scan(cfg), bulletin=False):
            if p.kind != C.COMPOSITE:
                continue
            rel = p.path.relative_to(cfg.paths.archive).parts
            g = next(t.grid for t in cfg.local_chain.tiles if t.id == rel[2]) if rel[1] == "local" \
                else cfg.global_chain.grid
            base = 28.0 - (year - 2021) if "LST" in p.path.name else 0.3 + 0.05 * (year - 2021)
            band = np.full((g.height, g.width), base, np.float32) + np.linspace(0, 0.01, g.width, dtype=np.float32)
            write_raster(p.path, [band, np.full_like(band, 3.0)], ["value", "count"], g, {})


@pytest.fixture(scope="module")
def drought_runs(tmp_path_factory):
    """``run_all.py --mode drought`` on the small archive of each territory, the four run side by side
    (each is mostly its notebook kernels): ``{name: (cfg, zone names, completed process)}``."""
    runs = {}
    for name in TERRITORIES:
        tmp = tmp_path_factory.mktemp(name)
        params, zone_names = _small(name, tmp)
        cfg = load_config(params)
        _composites(cfg)
        env = {k: v for k, v in os.environ.items() if k not in ("EO4DM_EE_KEY", "GOOGLE_APPLICATION_CREDENTIALS")}
        (tmp / "home").mkdir()
        env["HOME"] = str(tmp / "home")  # no Earth Engine user credentials either
        proc = subprocess.Popen([sys.executable, str(ROOT / "run_all.py"), "--params", str(params), "--mode",
                                 "drought", "--dekad", DEKAD.label], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, env=env)
        runs[name] = (cfg, zone_names, proc)
    out = {}
    for name, (cfg, zone_names, proc) in runs.items():
        _, err = proc.communicate(timeout=600)
        out[name] = (cfg, zone_names, proc.returncode, err)
    return out


@pytest.mark.parametrize("name", list(TERRITORIES))
def test_drought_mode_and_bulletin_of_a_small_archive(name, drought_runs):
    cfg, zone_names, code, err = drought_runs[name]
    assert code == 0, err[-3000:]
    stats = (cfg.paths.archive / "stats" / DEKAD.label / "zones.csv").read_text(encoding="utf-8")
    for z in zone_names:  # both zones (for Fiji: each side of 180°) have VHI statistics over their pixels
        rows = [r for r in stats.splitlines() if z in r and ",VHI," in r]
        assert rows, f"{z}: no VHI row in {stats[:500]}"
    html = C.bulletin_path(cfg, DEKAD).read_text(encoding="utf-8")
    assert cfg.territory.name.replace("(", "").split()[0] in html
    assert all(z in html for z in zone_names)


# ------------------------------------------------------------------------------------------------
# the console script
# ------------------------------------------------------------------------------------------------
def _eo4dm(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "eo4dm"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "eo4dm_helpers.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_console_script_writes_a_file_that_loads_and_never_overwrites(tmp_path, ee_offline):
    out = tmp_path / "vu.yaml"
    args = ["new-territory", "--name", "Vanuatu", "--code", "VU", "--timezone", "Pacific/Efate",
            "--bbox", "166.5", "-20.3", "170.3", "-13.05", "--no-local-chain", "--out", str(out)]
    res = _eo4dm(*args)
    assert res.returncode == 0, res.stderr
    text = out.read_text(encoding="utf-8")
    cfg = load_config(out, check_layers=False)
    (tmp_path / "s").mkdir()
    shipped = load_config(_copy("vanuatu", tmp_path / "s"))  # the shipped file was written by this command
    assert cfg.global_chain.grid == shipped.global_chain.grid and not cfg.local_chain.enabled
    assert cfg.territory.lonlat == shipped.territory.lonlat == (166.5, -20.3, 170.3, -13.05)
    again = _eo4dm(*args)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    assert out.read_text(encoding="utf-8") == text
    base = ["new-territory", "--name", "X", "--code", "X", "--out", str(tmp_path / "x.yaml")]
    for bad, msg in ((["--timezone", "Pacific/Nowhere", "--bbox", "166.5", "-20.3", "170.3", "-13.05"], "--timezone"),
                     (["--timezone", "UTC", "--bbox", "1", "2", "3"], "--bbox"),
                     (["--timezone", "UTC", "--bbox", "166.5", "-13", "170.3", "-20"], "--bbox"),
                     (["--timezone", "UTC", "--bbox", "166.5", "-20.3", "170.3", "-13.05", "--tiles", "58KEB"],
                      "--tiles"),
                     (["--timezone", "UTC", "--bbox", "166.5", "-20.3", "170.3", "-13.05", "--tiles", "82075"],
                      "not over the territory")):
        r = _eo4dm(*base, *bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and msg in r.stderr, r.stderr
        assert not (tmp_path / "x.yaml").exists()
    assert _eo4dm("no-such-command").returncode == 2
