"""The synthetic truth of the demo world: NDWI, NDVI and LST as pure functions of place and local date.

Per land pixel::

    NDWI = base(x) + 0.08·season(day) + anomaly(year, dekad) − drought
    NDVI = base'(x) + 0.08·season(day) + anomaly'(year, dekad) − drought
    LST  = base''(x) + 4·heat(day) + anomaly''(year, dekad) + drought     (°C)

``base`` varies smoothly in space (sums of sinusoids from 90 km down to 450 m wavelength),
``season`` peaks in the wet season (mid-March) and bottoms out in the dry season (mid-October),
``heat`` peaks early February. Anomalies are constant over a dekad, drawn once for the reference
years 2020-2023 (centred over them, so the mean reference is the seasonal normal) and exactly 0 in
2024. The only drought is :data:`~.territory.DEMO_DROUGHT`. Sea pixels are NaN.
Sensor noise is added by the renderers, not here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
from pyproj import Transformer

from ..config import Grid
from ..dekads import Dekad
from .territory import DEMO_DROUGHT, in_drought, is_land

SPAN_START = date(2020, 1, 1)  # first local date of the demo archive
SPAN_END = date(2024, 3, 20)  # last local date (inclusive): the end of 2024-03-D2
REFERENCE_YEARS = (2020, 2021, 2022, 2023)
CURRENT_YEAR = 2024

NDWI_SEASON_AMPLITUDE = 0.08
NDVI_SEASON_AMPLITUDE = 0.08
LST_SEASON_AMPLITUDE = 4.0  # °C
NDWI_ANOMALY_STD = 0.02
NDVI_ANOMALY_STD = 0.02
LST_ANOMALY_STD = 0.8  # °C

_KM_LON = 103.8  # km per degree of longitude at ~21.2 S
_KM_LAT = 110.6


# --------------------------------------------------------------------------------------------
# Deterministic randomness
# --------------------------------------------------------------------------------------------
def stable_seed(*parts: object) -> int:
    """A seed that depends only on ``parts`` (CRC-32 of their text; never Python's ``hash``)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8"))


def rng_for(*parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*parts))


# --------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------
def grid_xy(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y) of ``grid`` in its CRS, shape (height, width)."""
    xs = grid.x0 + (np.arange(grid.width) + 0.5) * grid.resolution
    ys = grid.y0 - (np.arange(grid.height) + 0.5) * grid.resolution
    return np.meshgrid(xs, ys)


@lru_cache(maxsize=32)
def grid_lonlat(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre longitudes and latitudes of ``grid`` (read-only arrays)."""
    x, y = grid_xy(grid)
    if grid.crs.upper() not in ("EPSG:4326", "OGC:CRS84"):
        x, y = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    lon, lat = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    lon.flags.writeable = False
    lat.flags.writeable = False
    return lon, lat


# --------------------------------------------------------------------------------------------
# Spatial bases
# --------------------------------------------------------------------------------------------
# (amplitude, wavelength km, direction deg, phase rad)
_NDWI_TERMS = ((0.05, 95.0, 20.0, 0.3), (0.04, 33.0, 75.0, 1.1), (0.025, 11.0, 130.0, 2.0),
               (0.015, 3.7, 40.0, 0.7), (0.01, 1.2, 160.0, 2.9), (0.01, 0.45, 100.0, 1.7))
_NDVI_TERMS = ((0.02, 60.0, 110.0, 0.9), (0.015, 7.0, 10.0, 2.2), (0.015, 0.8, 65.0, 0.4))
_LST_TERMS = ((0.6, 120.0, 150.0, 1.3), (0.3, 15.0, 30.0, 0.2), (0.2, 2.0, 85.0, 2.6))


def _smooth(lon: np.ndarray, lat: np.ndarray, terms: tuple[tuple[float, float, float, float], ...]) -> np.ndarray:
    x, y = (lon - 165.0) * _KM_LON, (lat + 21.0) * _KM_LAT
    out = np.zeros(np.shape(lon))
    for amp, wl, deg, ph in terms:
        c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
        u, v = x * c + y * s, -x * s + y * c
        out += amp * np.sin(2 * np.pi * u / wl + ph) * np.cos(2 * np.pi * v / (1.6 * wl) + ph / 2)
    return out


def base_fields(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time-invariant NDWI (0.05-0.35), NDVI (0.40-0.80) and LST (26-30 °C) bases."""
    ndwi = 0.20 + _smooth(lon, lat, _NDWI_TERMS)
    ndvi = 0.45 + (ndwi - 0.05) + _smooth(lon, lat, _NDVI_TERMS)
    lst = 28.0 - 6.0 * (ndwi - 0.20) + _smooth(lon, lat, _LST_TERMS)
    return ndwi, ndvi, lst


# --------------------------------------------------------------------------------------------
# Time terms
# --------------------------------------------------------------------------------------------
_WET_PEAK_DOY, _DRY_LOW_DOY = 75.0, 288.0  # mid-March, mid-October


def season(day: date) -> float:
    """+1 at the wet-season peak (mid-March), −1 in the dry season (mid-October); C¹ periodic."""
    doy = (day.timetuple().tm_yday - _WET_PEAK_DOY) % 365.25
    half = _DRY_LOW_DOY - _WET_PEAK_DOY
    phase = np.pi * doy / half if doy < half else np.pi + np.pi * (doy - half) / (365.25 - half)
    return float(np.cos(phase))


def heat(day: date) -> float:
    """+1 early February (hottest), −1 early August."""
    return float(np.cos(2 * np.pi * (day.timetuple().tm_yday - 35) / 365.25))


@lru_cache(maxsize=1)
def _anomaly_table() -> np.ndarray:
    """(years, 36 dekads, 3 variables) anomalies for the reference years, centred over the years."""
    rng = rng_for("world", "anomaly")
    n = len(REFERENCE_YEARS)
    e = rng.standard_normal((n, 36, 3))
    z = np.empty_like(e)
    rho = 0.6  # persistence from one dekad to the next
    z[:, 0] = e[:, 0]
    for k in range(1, 36):
        z[:, k] = rho * z[:, k - 1] + np.sqrt(1 - rho**2) * e[:, k]
    z -= z.mean(axis=0, keepdims=True)
    z /= np.sqrt((n - 1) / n)
    ndwi = NDWI_ANOMALY_STD * z[..., 0]
    ndvi = NDVI_ANOMALY_STD * (0.8 * z[..., 0] + 0.6 * z[..., 1])
    lst = LST_ANOMALY_STD * (-0.7 * z[..., 0] + 0.714 * z[..., 2])
    return np.stack([ndwi, ndvi, lst], axis=-1)


def anomaly(day: date) -> tuple[float, float, float]:
    """Interannual (NDWI, NDVI, LST °C) anomaly of the dekad containing ``day`` (0 outside 2020-2023)."""
    if day.year not in REFERENCE_YEARS:
        return 0.0, 0.0, 0.0
    d = Dekad.containing(day)
    a = _anomaly_table()[REFERENCE_YEARS.index(day.year), (d.month - 1) * 3 + d.index - 1]
    return float(a[0]), float(a[1]), float(a[2])


def drought_strength(day: date) -> float:
    """0 outside the drought dekads, a linear ramp over the first dekad, then 1 until the last."""
    first, last = DEMO_DROUGHT.first, DEMO_DROUGHT.last
    if day < first.start or day > last.end:
        return 0.0
    if day <= first.end:
        return ((day - first.start).days + 1) / first.ndays
    return 1.0


# --------------------------------------------------------------------------------------------
# Truth
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Truth:
    """Noise-free world state at some points for one local date (NaN over the sea)."""

    ndwi: np.ndarray
    ndvi: np.ndarray
    lst: np.ndarray  # °C
    sea: np.ndarray  # bool
    drought: np.ndarray  # bool: the drought signal is applied here on this date


@dataclass(frozen=True)
class _Static:
    sea: np.ndarray
    region: np.ndarray
    ndwi: np.ndarray
    ndvi: np.ndarray
    lst: np.ndarray


def _static(lon: np.ndarray, lat: np.ndarray) -> _Static:
    ndwi, ndvi, lst = base_fields(lon, lat)
    return _Static(~is_land(lon, lat), in_drought(lon, lat), ndwi, ndvi, lst)


@lru_cache(maxsize=32)
def _static_on(grid: Grid) -> _Static:
    return _static(*grid_lonlat(grid))


def _combine(st: _Static, day: date) -> Truth:
    s, h = season(day), heat(day)
    a_ndwi, a_ndvi, a_lst = anomaly(day)
    k = drought_strength(day)
    dr = st.region & ~st.sea & (k > 0)
    kd = np.where(dr, k, 0.0)
    ndwi = st.ndwi + NDWI_SEASON_AMPLITUDE * s + a_ndwi - DEMO_DROUGHT.ndwi_drop * kd
    ndvi = st.ndvi + NDVI_SEASON_AMPLITUDE * s + a_ndvi - DEMO_DROUGHT.ndvi_drop * kd
    lst = st.lst + LST_SEASON_AMPLITUDE * h + a_lst + DEMO_DROUGHT.lst_rise * kd
    nan = np.where(st.sea, np.nan, 0.0)
    return Truth(ndwi + nan, ndvi + nan, lst + nan, st.sea.copy(), dr)


def truth(lon: np.ndarray, lat: np.ndarray, day: date) -> Truth:
    """World state at arbitrary points (EPSG:4326) on local date ``day``."""
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return _combine(_static(lon, lat), day)


def truth_on_grid(grid: Grid, day: date) -> Truth:
    """World state at the pixel centres of ``grid`` on local date ``day`` (static parts cached)."""
    return _combine(_static_on(grid), day)


def sea_on_grid(grid: Grid) -> np.ndarray:
    return _static_on(grid).sea.copy()


def static_on_grid(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base (NDWI, NDVI, LST) on ``grid``, without season, anomaly or drought (NaN over the sea)."""
    st = _static_on(grid)
    nan = np.where(st.sea, np.nan, 0.0)
    return st.ndwi + nan, st.ndvi + nan, st.lst + nan
