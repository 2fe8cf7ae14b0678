"""Longitude/latitude boxes and the 180° meridian: ONE representation, used everywhere.

* A lon/lat bbox is ``(lon_min, lat_min, lon_max, lat_max)`` in -180..180. When ``lon_min > lon_max`` it
  crosses the 180° meridian (RFC 7946 §5.2: Fiji is ``[177.0, -20.0, -178.0, -16.0]``).
* :func:`unwrapped` gives its continuous form, ``lon_max + 360`` (182 for -178); EPSG:4326 grids over such a
  territory continue past 180 (``x0 = 176.85``, right edge 181.85), like GDAL's grids over the antimeridian.
* Geometries in -180..180 (zones, outlines) are placed on such a grid by copies shifted by ±360
  (:func:`on_grid_lons`): what lies outside the grid is simply not drawn.
* Earth Engine regions are :func:`split` at 180 into boxes inside -180..180 (a MultiPolygon; RFC 7946 §3.1.9
  "antimeridian cutting"), so a region never becomes the complement of the territory.
* ``territory.bbox`` may be given in another CRS (``territory.bbox_crs``, e.g. EPSG:32760); every reader gets
  lon/lat through :func:`territory_lonlat` (config.Territory.lonlat).
"""

from __future__ import annotations

import math
from typing import Any

BBox = tuple[float, float, float, float]
GEOGRAPHIC = ("EPSG:4326", "OGC:CRS84")


def crosses(bbox: BBox) -> bool:
    """Whether a lon/lat bbox crosses the 180° meridian (``lon_min > lon_max``)."""
    return bbox[0] > bbox[2]


def unwrapped(bbox: BBox) -> BBox:
    """The continuous form: ``lon_max`` + 360 when the box crosses 180 (then lon_max is in 180..540)."""
    lon0, lat0, lon1, lat1 = bbox
    return (lon0, lat0, lon1 + 360.0 if lon0 > lon1 else lon1, lat1)


def wrap_lon(lon: float) -> float:
    """A longitude in [-180, 180)."""
    return (lon + 180.0) % 360.0 - 180.0


def wrapped(bbox: BBox) -> BBox:
    """The RFC 7946 form of a continuous box (longitudes back in -180..180; lon_min > lon_max across 180)."""
    lon0, lat0, lon1, lat1 = bbox
    if lon1 - lon0 >= 360:
        return (-180.0, lat0, 180.0, lat1)
    a, b = wrap_lon(lon0), wrap_lon(lon1)
    if b == -180.0 and lon1 > lon0:
        b = 180.0
    return (a, lat0, b, lat1)


def split(bbox: BBox) -> list[BBox]:
    """The box as one or two boxes inside -180..180 (cut at the 180° meridian)."""
    lon0, lat0, lon1, lat1 = bbox
    if not crosses(bbox):
        return [bbox]
    return [(lon0, lat0, 180.0, lat1), (-180.0, lat0, lon1, lat1)]


def lonlat_of(bbox: BBox, crs: str) -> BBox:
    """A bbox given in ``crs`` as a lon/lat bbox (RFC 7946 form): the box's edges, densified, to EPSG:4326;
    a projected box that straddles 180 gives ``lon_min > lon_max``."""
    if crs.upper() in GEOGRAPHIC:
        return tuple(float(v) for v in bbox)  # type: ignore[return-value]
    from pyproj import Transformer

    x0, y0, x1, y1 = bbox
    n = 64
    xs = [x0 + (x1 - x0) * i / n for i in range(n + 1)]
    ys = [y0 + (y1 - y0) * i / n for i in range(n + 1)]
    px = xs + [x1] * (n + 1) + xs + [x0] * (n + 1)
    py = [y0] * (n + 1) + ys + [y1] * (n + 1) + ys
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(px, py)
    if not all(math.isfinite(v) for v in (*lon, *lat)):
        raise ValueError(f"bbox {list(bbox)} is outside the area of {crs}")
    if max(lon) - min(lon) > 180:  # the edges jump across 180: unwrap the western hemisphere
        lon = [v + 360 if v < 0 else v for v in lon]
    return wrapped((min(lon), min(lat), max(lon), max(lat)))


def territory_lonlat(territory: Any) -> BBox:
    """``territory.bbox`` in lon/lat (RFC 7946 form), whatever ``territory.bbox_crs``."""
    return lonlat_of(tuple(territory.bbox), getattr(territory, "bbox_crs", "EPSG:4326"))


def centre(bbox: BBox) -> tuple[float, float]:
    """(lon, lat) of the box's centre, lon in -180..180."""
    lon0, lat0, lon1, lat1 = unwrapped(bbox)
    return wrap_lon((lon0 + lon1) / 2), (lat0 + lat1) / 2


def is_geographic(crs: str) -> bool:
    from pyproj import CRS

    return crs.upper() in GEOGRAPHIC or CRS.from_user_input(crs).is_geographic


def grid_crosses(grid: Any) -> bool:
    """Whether a geographic grid extends past 180° (or before -180°)."""
    if not is_geographic(grid.crs):
        return False
    x0, _, x1, _ = grid.bounds
    return x1 > 180 or x0 < -180


def grid_lonlat(grid: Any) -> BBox:
    """A grid's extent as a lon/lat bbox (RFC 7946 form)."""
    b = grid.bounds
    return wrapped(b) if is_geographic(grid.crs) else lonlat_of(b, grid.crs)


def on_grid_lons(geom: Any, grid: Any) -> Any:
    """A -180..180 geometry with copies shifted by ±360 when ``grid`` is geographic and extends past ±180,
    so that the parts beyond the meridian land on the grid (rasterizing, drawing). Other grids: unchanged."""
    if not grid_crosses(grid):
        return geom
    from shapely import affinity
    from shapely.geometry import MultiPolygon, Polygon

    def parts(g: Any) -> list:
        return list(g.geoms) if hasattr(g, "geoms") else [g]

    copies = [p for dx in (0.0, 360.0, -360.0) for p in parts(affinity.translate(geom, xoff=dx))]
    if all(isinstance(p, Polygon) for p in copies):
        return MultiPolygon(copies)
    from shapely.geometry import GeometryCollection

    return GeometryCollection(copies)


def snapped_grid(bbox: BBox, resolution: float, crs: str = "EPSG:4326") -> Any:
    """The grid of ``resolution`` over a lon/lat bbox, edges on multiples of the resolution (EO4DM's global
    grid: 1/240° over the territory, params/new_caledonia.yaml), continuing past 180 when the box crosses it."""
    from .config import Grid

    lon0, lat0, lon1, lat1 = unwrapped(bbox)
    eps = 1e-9
    i0, i1 = math.floor(lon0 / resolution + eps), math.ceil(lon1 / resolution - eps)
    j0, j1 = math.floor(lat0 / resolution + eps), math.ceil(lat1 / resolution - eps)
    return Grid(crs, i0 * resolution, j1 * resolution, resolution, i1 - i0, j1 - j0)
