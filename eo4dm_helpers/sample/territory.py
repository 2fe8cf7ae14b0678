"""The demo territory: an approximate New Caledonia outline, statistics zones and the known drought.

**Approximate demo outline, not survey data.** The vertices were drawn by hand to look like New
Caledonia at the scale of the demo grids (Grande Terre ≈ 400 km x 40-60 km, Île des Pins, Maré,
Lifou, Ouvéa). The west coast of Grande Terre is placed so that it crosses the local 10 m demo tile
(EPSG:32758, x 544400-546800, y 7611700-7613300, ≈ 165.44E 21.59S), leaving about a third of the
tile (its south-west corner) at sea.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping

from ..dekads import Dekad

# --------------------------------------------------------------------------------------------
# Outline (lon, lat), EPSG:4326. Approximate, hand-drawn demo coastline.
# --------------------------------------------------------------------------------------------
GRANDE_TERRE: tuple[tuple[float, float], ...] = (
    # west coast, north-west tip to south-east tip
    (163.98, -20.05), (164.10, -20.30), (164.22, -20.44), (164.30, -20.55), (164.45, -20.70),
    (164.55, -20.80), (164.80, -21.02), (164.93, -21.17), (165.05, -21.28), (165.22, -21.40),
    (165.3731, -21.5507), (165.5033, -21.6319),  # this segment crosses the local demo tile
    (165.75, -21.76), (165.90, -21.86), (166.05, -21.93), (166.22, -22.08), (166.35, -22.15),
    (166.45, -22.30), (166.58, -22.28), (166.70, -22.33), (166.90, -22.42), (167.05, -22.40),
    # east coast, south-east back to north-west
    (167.044, -22.222), (166.824, -22.022), (166.505, -21.737), (166.255, -21.517), (166.005, -21.357),
    (165.805, -21.187), (165.555, -20.987), (165.355, -20.787), (165.105, -20.617), (164.755, -20.387),
    (164.424, -20.192), (164.174, -20.052),
)
ILE_DES_PINS: tuple[tuple[float, float], ...] = (
    (167.42, -22.55), (167.50, -22.53), (167.56, -22.58), (167.55, -22.66), (167.48, -22.70),
    (167.41, -22.66), (167.39, -22.60),
)
MARE: tuple[tuple[float, float], ...] = (
    (167.80, -21.40), (167.95, -21.33), (168.10, -21.40), (168.13, -21.52), (168.05, -21.63),
    (167.90, -21.65), (167.80, -21.55),
)
LIFOU: tuple[tuple[float, float], ...] = (
    (167.00, -20.80), (167.12, -20.68), (167.30, -20.70), (167.45, -20.80), (167.48, -20.95),
    (167.38, -21.10), (167.20, -21.13), (167.05, -21.00),
)
OUVEA: tuple[tuple[float, float], ...] = (
    (166.55, -20.42), (166.60, -20.48), (166.60, -20.60), (166.52, -20.72), (166.42, -20.74),
    (166.45, -20.68), (166.53, -20.58), (166.53, -20.48),
)

ISLANDS: dict[str, Polygon] = {
    name: Polygon(ring)
    for name, ring in (("Grande Terre", GRANDE_TERRE), ("Île des Pins", ILE_DES_PINS), ("Maré", MARE),
                       ("Lifou", LIFOU), ("Ouvéa", OUVEA))
}
OUTLINE: MultiPolygon = MultiPolygon(list(ISLANDS.values()))
shapely.prepare(OUTLINE)


def is_land(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where (lon, lat) falls inside the demo outline (vectorised)."""
    return np.asarray(shapely.contains_xy(OUTLINE, np.asarray(lon), np.asarray(lat)), dtype=bool)


# --------------------------------------------------------------------------------------------
# Grande Terre axis frame: s (km along the island, NW tip → SE tip), p (km to the north-east).
# --------------------------------------------------------------------------------------------
_AXIS_NW = (163.98, -20.05)
_AXIS_SE = (167.05, -22.40)
_KM_LON = 111.32 * math.cos(math.radians(21.2))  # km per degree of longitude at ~21.2 S
_KM_LAT = 110.6
_dx, _dy = (_AXIS_SE[0] - _AXIS_NW[0]) * _KM_LON, (_AXIS_SE[1] - _AXIS_NW[1]) * _KM_LAT
_L = math.hypot(_dx, _dy)
_U = (_dx / _L, _dy / _L)
_P = (-_U[1], _U[0])


def _frame_point(s: float, p: float) -> tuple[float, float]:
    x, y = s * _U[0] + p * _P[0], s * _U[1] + p * _P[1]
    return (_AXIS_NW[0] + x / _KM_LON, _AXIS_NW[1] + y / _KM_LAT)


def _frame_box(s0: float, s1: float, p0: float, p1: float) -> Polygon:
    return Polygon([_frame_point(s0, p0), _frame_point(s1, p0), _frame_point(s1, p1), _frame_point(s0, p1)])


# --------------------------------------------------------------------------------------------
# Zones (statistics per zone): 6 zones partitioning the outline.
# --------------------------------------------------------------------------------------------
_WEST_EAST_P = 4.0  # km north-east of the axis
_NORTH_CENTRE_S, _CENTRE_SOUTH_S = 150.0, 300.0  # km along the axis


def _zones() -> dict[str, MultiPolygon]:
    gt = ISLANDS["Grande Terre"]
    cells = {
        "Nord-Ouest": _frame_box(-50, _NORTH_CENTRE_S, -100, _WEST_EAST_P),
        "Nord-Est": _frame_box(-50, _NORTH_CENTRE_S, _WEST_EAST_P, 100),
        "Centre-Ouest": _frame_box(_NORTH_CENTRE_S, _CENTRE_SOUTH_S, -100, _WEST_EAST_P),
        "Centre-Est": _frame_box(_NORTH_CENTRE_S, _CENTRE_SOUTH_S, _WEST_EAST_P, 100),
        "Sud": _frame_box(_CENTRE_SOUTH_S, 600, -100, 100),
    }
    out: dict[str, MultiPolygon] = {}
    for name, cell in cells.items():
        geom = gt.intersection(cell)
        if name == "Sud":
            geom = geom.union(ISLANDS["Île des Pins"])
        out[name] = _as_multi(geom)
    out["Îles Loyauté"] = MultiPolygon([ISLANDS["Ouvéa"], ISLANDS["Lifou"], ISLANDS["Maré"]])
    return out


def _as_multi(geom: Any) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    return MultiPolygon([g for g in geom.geoms if isinstance(g, Polygon)])


ZONES: dict[str, MultiPolygon] = _zones()


# --------------------------------------------------------------------------------------------
# The one known drought of the demo world.
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoDrought:
    """A drought injected into the synthetic world (full strength after its first dekad)."""

    region: Polygon  # EPSG:4326
    first: Dekad  # ramps in linearly over the days of this dekad
    last: Dekad  # inclusive
    ndwi_drop: float
    ndvi_drop: float
    lst_rise: float  # °C


# West coast of Grande Terre, ≈ 60 km along the coast x 40 km inland (≈ 2200 km² of land), in the
# Centre-Ouest zone. Its south-east edge cuts the local demo tile so that half of its land is inside.
DEMO_DROUGHT = DemoDrought(
    region=Polygon([(165.3574, -21.6878), (165.6741, -21.3234), (165.3381, -21.0662), (165.1381, -21.0532),
                    (164.8945, -21.3334)]),
    first=Dekad(2024, 2, 2),
    last=Dekad(2024, 3, 2),
    ndwi_drop=0.15,
    ndvi_drop=0.15,
    lst_rise=7.0,
)
shapely.prepare(DEMO_DROUGHT.region)


def in_drought(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True inside the drought region (whatever the date; see ``world.drought_strength``)."""
    return np.asarray(shapely.contains_xy(DEMO_DROUGHT.region, np.asarray(lon), np.asarray(lat)), dtype=bool)


# --------------------------------------------------------------------------------------------
# GeoJSON
# --------------------------------------------------------------------------------------------
def _rounded(geom: Any, ndigits: int = 5) -> dict[str, Any]:
    return mapping(shapely.transform(geom, lambda xy: np.round(xy, ndigits)))


def outline_geojson() -> dict[str, Any]:
    """The coastline as an EPSG:4326 FeatureCollection with one MultiPolygon feature."""
    return {
        "type": "FeatureCollection",
        "name": "outline",
        "features": [{"type": "Feature",
                      "properties": {"name": "New Caledonia (approximate demo outline, not survey data)"},
                      "geometry": _rounded(OUTLINE)}],
    }


def zones_geojson() -> dict[str, Any]:
    """The statistics zones as an EPSG:4326 FeatureCollection (property ``name``)."""
    return {
        "type": "FeatureCollection",
        "name": "zones",
        "features": [{"type": "Feature", "properties": {"name": name}, "geometry": _rounded(geom)}
                     for name, geom in ZONES.items()],
    }
