"""Which Landsat WRS-2 and Sentinel-2 MGRS tiles cover the territory: ONE Earth Engine request.

``discovery_graph`` builds it (pure): the distinct ``WRS_PATH``/``WRS_ROW`` of Landsat 8 scenes and the
distinct ``MGRS_TILE`` of Sentinel-2 scenes over the territory outline (else its bbox) during a year,
aggregated server-side into one dictionary. ``discover`` sends it through an ``EarthEngineIO`` and caches
the tiles, their 10 m grids and the MGRS tiles over each WRS-2 tile in ``<archive>/tiles.json``
(``eo4dm_helpers.territory_tiles``). ``local_chain.tiles`` in the parameters overrides the cache.

    python -m eo4dm_helpers.ee.discovery --params params/new_caledonia.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import ee

from .. import products as P
from .. import territory_tiles as T
from ..config import Config, load_config

LANDSAT = "LANDSAT/LC08/C02/T1_L2"  # WRS_PATH / WRS_ROW (DOMAIN.md §4.3)
QUERY_DAYS = 365  # a year of acquisitions: every tile of the territory has scenes in it


def territory_region(cfg: Config) -> tuple[ee.Geometry, str]:
    """The territory outline (``territory.outline`` GeoJSON) when given, else its bbox; and its name."""
    outline = cfg.territory.outline
    if outline is not None and Path(outline).exists():
        data = json.loads(Path(outline).read_text(encoding="utf-8"))
        feats = data.get("features", [data]) if data.get("type") == "FeatureCollection" else [data]
        parts = [ee.Feature(ee.Geometry(f.get("geometry", f), "EPSG:4326", False)) for f in feats]
        return ee.FeatureCollection(parts).geometry(), str(outline)
    from ..geo import split

    bbox = cfg.territory.lonlat  # cut at 180°: never the complement of the territory (eo4dm_helpers.geo)
    boxes = [ee.Geometry.Rectangle(list(b), "EPSG:4326", False) for b in split(bbox)]
    region = boxes[0] if len(boxes) == 1 else ee.Geometry.MultiPolygon([b.coordinates() for b in boxes],
                                                                       "EPSG:4326", False)
    return region, f"bbox {[round(v, 6) for v in bbox]}"


def discovery_graph(region: ee.Geometry, start: date, end: date) -> ee.Dictionary:
    """{"wrs_path": [...], "wrs_row": [...], "mgrs": [...]}: distinct tiles with scenes over ``region`` in
    [start, end). Nothing is sent."""
    window = (start.isoformat(), end.isoformat())
    landsat = ee.ImageCollection(LANDSAT).filterBounds(region).filterDate(*window).distinct(["WRS_PATH", "WRS_ROW"])
    s2 = ee.ImageCollection(P.S2.collection).filterBounds(region).filterDate(*window)
    return ee.Dictionary({"wrs_path": landsat.aggregate_array("WRS_PATH"),
                          "wrs_row": landsat.aggregate_array("WRS_ROW"),
                          "mgrs": s2.aggregate_array("MGRS_TILE").distinct()})


def parse(result: dict[str, Any]) -> tuple[list[str], list[str]]:
    """WRS-2 ids (EO4DM's ``int(PPPRRR)``) and MGRS tiles from the request's answer, sorted."""
    paths, rows = result.get("wrs_path") or [], result.get("wrs_row") or []
    if len(paths) != len(rows):
        raise ValueError(f"tile discovery: {len(paths)} WRS paths but {len(rows)} rows")
    wrs2 = sorted({T.wrs2_id(int(p), int(r)) for p, r in zip(paths, rows, strict=True)}, key=int)
    return wrs2, sorted({str(m).upper() for m in result.get("mgrs") or []})


def discover(cfg: Config, io: Any, today: date | None = None) -> Path:
    """Send the discovery request (one ``compute_value``) and cache its result in the archive."""
    end = today or cfg.today()
    start = end - timedelta(days=QUERY_DAYS)
    region, where = territory_region(cfg)
    wrs2, mgrs = parse(io.compute_value(discovery_graph(region, start, end)))
    if not wrs2:
        raise ValueError(f"tile discovery: no Landsat scene over {where} from {start} to {end}")
    query = {"landsat": LANDSAT, "sentinel2": P.S2.collection, "region": where, "start": start.isoformat(),
             "end": end.isoformat()}
    return T.write_cache(cfg.paths.archive, wrs2, mgrs, query)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eo4dm_helpers.ee.discovery", description=__doc__.split("\n")[0])
    p.add_argument("--params", required=True, type=Path, help="parameter file (YAML)")
    args = p.parse_args(argv)
    from .io import LiveIO
    from .session import initialize

    cfg = load_config(args.params, check_layers=False, resolve_tiles=False)
    initialize(cfg)
    path = discover(cfg, LiveIO())
    doc = json.loads(path.read_text(encoding="utf-8"))
    print(f"{len(doc['wrs2'])} WRS-2 tiles ({', '.join(doc['wrs2'])}) and {len(doc['mgrs'])} MGRS tiles cached in "
          f"{path}; list them in local_chain.tiles to override")
    return 0


if __name__ == "__main__":
    sys.exit(main())
