"""The tiles over the territory: Landsat WRS-2 path/rows (the local chain's unit, DOMAIN.md §1.2, §1.4) and
the Sentinel-2 MGRS tiles over each, with each WRS-2 tile's 10 m grid.

Pure geometry, no request (the Earth Engine discovery is ``eo4dm_helpers.ee.discovery``):

* WRS-2 scene centre from the nominal WRS-2 orbit (USGS constants below: 233 paths, 248 rows, row 60 at
  the descending node, path 1 at 64.6° W, inclination 98.2096°). The footprint is a 185 km × 180 km
  rectangle along the ground track **(derived**: EO4DM clips to the WRS-2 polygons of its
  ``Landsat_Grid_World`` asset, which this model approximates).
* MGRS 100 km square from its letters; a Sentinel-2 tile is that square extended to 109.8 km east and
  south (to within the 0–40 m offset of the S2 tiles' corners, enough to tell which tiles overlap).
* A tile's grid: the footprint's bounds in the UTM zone of its centre (EO4DM: "CRS = the Landsat tile's
  UTM projection", §1.4), snapped outward to multiples of 10 m (odc-geo ``GeoBox``), so the tiles of one
  zone share one 10 m lattice. New Caledonia spans UTM 58S and 59S: 80075 is in 59S.

The tiles found are cached in the archive (``tiles.json``: the query, its date, the ids and grids); the
parameters' ``local_chain.tiles`` overrides the cache.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odc.geo import geom
from odc.geo.geobox import GeoBox

from .config import Grid, LocalTile
from .storage import atomic_path

# WRS-2 nominal orbit (USGS WRS-2 path/row converter constants)
WRS2_PATHS = 233  # orbits per 16-day cycle
WRS2_CYCLE_DAYS = 16
WRS2_ROWS = 248  # scenes per orbit
WRS2_DESCENDING_ROW = 60  # row at the descending node (equator)
WRS2_PATH1_LON = -64.6  # longitude of path 1 at the descending node, degrees
WRS2_INCLINATION = 98.2096  # degrees
WGS84_A, WGS84_B = 6378137.0, 6356752.3
SCENE_ACROSS_M, SCENE_ALONG_M = 185_000.0, 180_000.0  # nominal scene size (derived)

S2_TILE_M = 109_800.0  # a Sentinel-2 tile: a 100 km MGRS square + 9.8 km overlap east and south
MGRS_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are not used
MGRS_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"
MGRS_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # 8° latitude bands from 80° S
RESOLUTION = 10.0  # m, the local chain's output (DOMAIN.md §1.4)
CACHE_NAME = "tiles.json"


class TileError(ValueError):
    """A tile id is not a WRS-2 path/row or an MGRS tile."""


# --------------------------------------------------------------------------------------------
# WRS-2
# --------------------------------------------------------------------------------------------
def wrs2_path_row(tile_id: str) -> tuple[int, int]:
    """Path and row of an EO4DM tile id: ``"82075"`` (``int(PPPRRR)``, DOMAIN.md §1.2) or ``"082075"``."""
    if not tile_id.isdigit() or not 4 <= len(tile_id) <= 6:
        raise TileError(f"{tile_id!r} is not a WRS-2 path/row (PPPRRR, e.g. 82075)")
    path, row = divmod(int(tile_id), 1000)
    if not (1 <= path <= WRS2_PATHS and 1 <= row <= WRS2_ROWS):
        raise TileError(f"{tile_id!r}: path {path} or row {row} out of range")
    return path, row


def wrs2_id(path: int, row: int) -> str:
    return str(path * 1000 + row)


def wrs2_center(path: int, row: float) -> tuple[float, float]:
    """(lon, lat) in degrees of the WRS-2 scene centre (descending pass); ``row`` may be fractional."""
    inc = math.radians(WRS2_INCLINATION)
    central = (row - WRS2_DESCENDING_ROW) * 2 * math.pi / WRS2_ROWS  # travel angle from the node
    gclat = math.asin(-math.sin(central) * math.sin(inc))  # geocentric latitude
    lat = math.atan(math.tan(gclat) * (WGS84_A / WGS84_B) ** 2)
    node = math.radians(WRS2_PATH1_LON) - (path - 1) / WRS2_PATHS * 2 * math.pi
    delta = math.atan2(math.tan(gclat) / math.tan(inc), math.cos(central) / math.cos(gclat))
    earth_turn = central * WRS2_CYCLE_DAYS / WRS2_PATHS  # Earth's rotation while the satellite travels
    lon = (node - delta - earth_turn + math.pi) % (2 * math.pi) - math.pi
    return math.degrees(lon), math.degrees(lat)


def utm_crs(lon: float, lat: float) -> str:
    """The UTM zone of a point, as ``EPSG:326zz`` (north) or ``EPSG:327zz`` (south)."""
    zone = min(int((lon + 180) // 6) + 1, 60)
    return f"EPSG:{(32700 if lat < 0 else 32600) + zone}"


def wrs2_footprint(tile_id: str) -> geom.Geometry:
    """The nominal scene rectangle of a WRS-2 tile, in the UTM zone of its centre."""
    path, row = wrs2_path_row(tile_id)
    lon, lat = wrs2_center(path, row)
    crs = utm_crs(lon, lat)
    pts = [geom.point(*wrs2_center(path, r), "EPSG:4326").to_crs(crs).coords[0] for r in (row - 0.5, row, row + 0.5)]
    (x0, y0), (cx, cy), (x1, y1) = pts
    n = math.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / n, (y1 - y0) / n  # along track
    vx, vy = -uy, ux  # across track
    h, w = SCENE_ALONG_M / 2, SCENE_ACROSS_M / 2
    corners = [(cx + a * h * ux + b * w * vx, cy + a * h * uy + b * w * vy) for a, b in
               ((-1, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))]
    return geom.polygon(corners, crs)


# --------------------------------------------------------------------------------------------
# MGRS (Sentinel-2 tiles)
# --------------------------------------------------------------------------------------------
def mgrs_footprint(tile_id: str) -> geom.Geometry:
    """The Sentinel-2 tile ``58KEB`` as a 109.8 km square in its UTM zone (WGS 84 MGRS lettering: column
    letter sets of 8 repeating every 3 zones, row letters offset by 5 in even zones)."""
    t = tile_id.upper().removeprefix("T")
    if len(t) != 5 or not t[:2].isdigit() or t[2] not in MGRS_BANDS or t[3] not in MGRS_LETTERS \
            or t[4] not in MGRS_ROW_LETTERS:
        raise TileError(f"{tile_id!r} is not an MGRS tile (e.g. 58KEB)")
    zone, band = int(t[:2]), t[2]
    if not 1 <= zone <= 60:
        raise TileError(f"{tile_id!r}: UTM zone {zone} out of range")
    col = MGRS_LETTERS.index(t[3]) - 8 * ((zone - 1) % 3)
    if not 0 <= col < 8:
        raise TileError(f"{tile_id!r}: column letter {t[3]} is not used in zone {zone}")
    east = (col + 1) * 100_000.0
    south = MGRS_BANDS.index(band) * 8 - 80 < 0
    crs = f"EPSG:{(32700 if south else 32600) + zone}"
    # northing of the band's middle, then the 100 km row (letters cycle every 2,000 km) nearest to it
    lat_mid = MGRS_BANDS.index(band) * 8 - 76
    _, n_mid = geom.point(zone * 6 - 183, lat_mid, "EPSG:4326").to_crs(crs).coords[0]
    k = (MGRS_ROW_LETTERS.index(t[4]) - (5 if zone % 2 == 0 else 0)) % 20
    north = k * 100_000.0 + round((n_mid - k * 100_000.0) / 2_000_000.0) * 2_000_000.0
    top = north + 100_000.0
    return geom.box(east, top - S2_TILE_M, east + S2_TILE_M, top, crs)


# --------------------------------------------------------------------------------------------
# Grids and tile lists
# --------------------------------------------------------------------------------------------
def tile_grid(footprint: geom.Geometry, resolution: float = RESOLUTION) -> Grid:
    """The footprint's bounds on the ``resolution`` lattice of its CRS (edges at multiples of it)."""
    return Grid.from_geobox(GeoBox.from_geopolygon(footprint, resolution=resolution, anchor="edge"))


def s2_tiles_over(footprint: geom.Geometry, mgrs: Iterable[str]) -> tuple[str, ...]:
    """The MGRS tiles among ``mgrs`` that overlap ``footprint`` (by a positive area), sorted. Compared in
    the footprint's UTM zone, so tiles on either side of the 180° meridian (zones 60 and 1) compare too."""
    return tuple(sorted(m for m in set(mgrs)
                        if footprint.intersection(mgrs_footprint(m).to_crs(footprint.crs)).area > 0))


def local_tiles(wrs2: Sequence[str], mgrs: Sequence[str], resolution: float = RESOLUTION) -> tuple[LocalTile, ...]:
    """One :class:`LocalTile` per WRS-2 tile: its grid and the MGRS tiles over it."""
    out = []
    for tid in wrs2:
        fp = wrs2_footprint(tid)
        out.append(LocalTile(tid, tile_grid(fp, resolution), s2_tiles_over(fp, mgrs)))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Tiles over a territory (pure geometry; the Earth Engine discovery finds those with scenes)
# --------------------------------------------------------------------------------------------
def _lonlat_near(footprint: geom.Geometry, ref_lon: float) -> Any:
    """A projected footprint as a shapely polygon in lon/lat, longitudes continuous around ``ref_lon``
    (a footprint across 180° is not cut: 179.5 and -179.5 become 179.5 and 180.5 near ref 178)."""
    from pyproj import Transformer
    from shapely.geometry import Polygon

    xs, ys = zip(*footprint.exterior.coords, strict=True)
    n = 16  # densify the edges (straight in UTM, curved in lon/lat)
    px = [x0 + (x1 - x0) * i / n for x0, x1 in zip(xs, xs[1:], strict=False) for i in range(n)]
    py = [y0 + (y1 - y0) * i / n for y0, y1 in zip(ys, ys[1:], strict=False) for i in range(n)]
    lon, lat = Transformer.from_crs(footprint.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(px, py)
    return Polygon([(ref_lon + (v - ref_lon + 180) % 360 - 180, w) for v, w in zip(lon, lat, strict=True)])


def _bbox_area(bbox: tuple[float, float, float, float]) -> tuple[Any, float]:
    from shapely.geometry import box

    from .geo import unwrapped

    x0, y0, x1, y1 = unwrapped(bbox)
    return box(x0, y0, x1, y1), (x0 + x1) / 2


def wrs2_tiles_over(bbox: tuple[float, float, float, float], area: Any = None) -> list[str]:
    """WRS-2 tiles (descending, daytime rows) whose nominal footprint overlaps a lon/lat ``bbox`` (RFC 7946
    form: lon_min > lon_max across 180°), or ``area`` (a shapely geometry in the bbox's unwrapped
    longitudes, e.g. land polygons) when given; sorted by id."""
    region, ref = _bbox_area(bbox)
    region = region if area is None else area
    lat0, lat1 = region.bounds[1], region.bounds[3]
    out = []
    for row in range(1, WRS2_ROWS + 1):
        lat = wrs2_center(1, row)[1]
        if not (lat0 - 2 <= lat <= lat1 + 2) or not (WRS2_DESCENDING_ROW - 60 <= row <= WRS2_DESCENDING_ROW + 62):
            continue
        margin = 2.5 / max(math.cos(math.radians(lat)), 0.1)
        for path in range(1, WRS2_PATHS + 1):
            lon = wrs2_center(path, row)[0]
            lon = ref + (lon - ref + 180) % 360 - 180
            if region.bounds[0] - margin <= lon <= region.bounds[2] + margin:
                tid = wrs2_id(path, row)
                if _lonlat_near(wrs2_footprint(tid), ref).intersection(region).area > 0:
                    out.append(tid)
    return sorted(out, key=int)


def mgrs_tiles_over(bbox: tuple[float, float, float, float], area: Any = None) -> list[str]:
    """Sentinel-2 MGRS tiles overlapping a lon/lat ``bbox`` (or ``area``, as :func:`wrs2_tiles_over`): the
    100 km squares of every UTM zone across it, lettered as :func:`mgrs_footprint` reads them (each name
    checked by reading it back), kept when inside their zone's 6° strip (with S2's overlap) and over the
    region; sorted."""
    from pyproj import Transformer

    from .geo import wrap_lon

    region, ref = _bbox_area(bbox)
    region = region if area is None else area
    x0, y0, x1, y1 = region.bounds
    zones = {int((wrap_lon(lon) + 180) // 6) % 60 + 1 for lon in [x0 + (x1 - x0) * i / 20 for i in range(21)]}
    out = set()
    for zone in zones:
        south = (y0 + y1) / 2 < 0
        crs = f"EPSG:{(32700 if south else 32600) + zone}"
        t = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        lons = [wrap_lon(x0 + (x1 - x0) * i / 20) for i in range(21)]
        lats = [y0 + (y1 - y0) * j / 20 for j in range(21)]
        es, ns = t.transform([a for a in lons for _ in lats], [b for _ in lons for b in lats])
        central = zone * 6 - 183
        strip = geom.box(central - 3.0, -80, central + 3.0, 84, "EPSG:4326")
        for ei in range(1, 9):  # 100 km columns 100-900 km
            for ni in range(int(min(ns) // 100_000) - 1, int(max(ns) // 100_000) + 2):
                sq = geom.box(ei * 100_000.0, ni * 100_000.0 - 9_800.0, ei * 100_000.0 + S2_TILE_M,
                              (ni + 1) * 100_000.0, crs)
                if _lonlat_near(sq, central).intersection(strip.geom).area <= 0.01:
                    continue  # outside the zone's strip: no S2 tile there
                lon_c, lat_c = sq.centroid.to_crs("EPSG:4326").coords[0]
                band = MGRS_BANDS[min(max(int((lat_c + 80) // 8), 0), len(MGRS_BANDS) - 1)]
                col = MGRS_LETTERS[ei - 1 + 8 * ((zone - 1) % 3)]
                row = MGRS_ROW_LETTERS[(ni % 20 + (5 if zone % 2 == 0 else 0)) % 20]
                name = f"{zone:02d}{band}{col}{row}"
                try:
                    ok = mgrs_footprint(name).boundingbox[:4] == sq.boundingbox[:4]
                except TileError:
                    ok = False
                if ok and _lonlat_near(sq, ref).intersection(region).area > 0:
                    out.add(name)
    return sorted(out)


# --------------------------------------------------------------------------------------------
# The archive's cache
# --------------------------------------------------------------------------------------------
def cache_path(archive: Path) -> Path:
    return Path(archive) / CACHE_NAME


def write_cache(archive: Path, wrs2: Sequence[str], mgrs: Sequence[str], query: dict[str, Any],
                resolution: float = RESOLUTION) -> Path:
    """Write the tiles found (ids, grids, MGRS tiles per WRS-2 tile) with the query and its date."""
    tiles = local_tiles(sorted(wrs2, key=int), sorted(mgrs), resolution)
    doc = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "query": query,
           "wrs2": [t.id for t in tiles], "mgrs": sorted(mgrs),
           "tiles": [{"id": t.id, "s2_tiles": list(t.s2_tiles),
                      "grid": {k: getattr(t.grid, k) for k in ("crs", "x0", "y0", "resolution", "width", "height")}}
                     for t in tiles]}
    path = cache_path(archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path
