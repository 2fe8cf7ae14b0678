"""Catalogue of the synthetic products: collections, acquisition calendars, timestamps, indices."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from ..config import Grid
from .world import SPAN_END, SPAN_START, stable_seed


@dataclass(frozen=True)
class SampleProduct:
    key: str
    collection: str
    grid: str  # "tile" (10 m), "landsat" (30 m), "global" (1/32°), "global16" (1/16°)
    every_days: int
    anchor: date  # one acquisition date (local)
    first: date | None = None  # local dates, inclusive; None = span bound
    last: date | None = None


_L8_ANCHOR = date(2020, 1, 6)
SAMPLE_PRODUCTS: dict[str, SampleProduct] = {
    p.key: p
    for p in (
        SampleProduct("S2", "COPERNICUS/S2_SR_HARMONIZED", "tile", 5, date(2020, 1, 2)),
        SampleProduct("S2_CLOUD_PROBABILITY", "COPERNICUS/S2_CLOUD_PROBABILITY", "tile", 5, date(2020, 1, 2)),
        SampleProduct("L8", "LANDSAT/LC08/C02/T1_L2", "landsat", 16, _L8_ANCHOR),
        SampleProduct("L9", "LANDSAT/LC09/C02/T1_L2", "landsat", 16, _L8_ANCHOR + timedelta(days=8),
                      first=date(2021, 11, 1)),
        SampleProduct("L7", "LANDSAT/LE07/C02/T1_L2", "landsat", 16, _L8_ANCHOR + timedelta(days=8),
                      last=date(2022, 4, 6)),
        SampleProduct("MOD09GA", "MODIS/061/MOD09GA", "global", 1, SPAN_START),
        SampleProduct("MOD11A1", "MODIS/061/MOD11A1", "global16", 1, SPAN_START),
        SampleProduct("VNP09GA", "NASA/VIIRS/002/VNP09GA", "global", 1, SPAN_START, first=date(2024, 1, 1)),
        SampleProduct("VNP21A1D", "NASA/VIIRS/002/VNP21A1D", "global16", 1, SPAN_START, first=date(2024, 1, 1)),
    )
}
WORLDCOVER_COLLECTIONS = {"v100": "ESA/WorldCover/v100", "v200": "ESA/WorldCover/v200"}
WORLDCOVER_TIME = {"v100": datetime(2020, 1, 1, tzinfo=UTC), "v200": datetime(2021, 1, 1, tzinfo=UTC)}

S2_TILE = "58KEB"
WRS_PATH, WRS_ROW = 81, 75
_LANDSAT_PREFIX = {"L7": "LE07", "L8": "LC08", "L9": "LC09"}
_SPACECRAFT = {"L7": "LANDSAT_7", "L8": "LANDSAT_8", "L9": "LANDSAT_9"}


def acquisition_dates(key: str, start: date = SPAN_START, end: date = SPAN_END) -> list[date]:
    """Local dates on which product ``key`` has a scene, within [start, end] and the demo span."""
    p = SAMPLE_PRODUCTS[key]
    lo = max(start, SPAN_START, p.first or SPAN_START)
    hi = min(end, SPAN_END, p.last or SPAN_END)
    if hi < lo:
        return []
    k0 = math.ceil((lo - p.anchor).days / p.every_days)
    out = []
    d = p.anchor + timedelta(days=k0 * p.every_days)
    while d <= hi:
        out.append(d)
        d += timedelta(days=p.every_days)
    return out


def acquisition_time(key: str, day: date) -> datetime:
    """``system:time_start`` (aware UTC) of the scene of local date ``day`` (DOMAIN.md §3.4).

    S2 ~10:20 and Landsat ~10:05 local (UTC+11) are stamped ~23:20 / ~23:05 UTC of the previous UTC
    day; daily MODIS/VIIRS tiles are stamped 00:00 UTC of their product day ``day``, the day they are
    binned on in any time zone (``products.Product.dating``, ``dekads.acquisition_day``).
    """
    p = SAMPLE_PRODUCTS[key]
    jitter = stable_seed("time", "S2" if key.startswith("S2") else key, day)
    prev = day - timedelta(days=1)
    if p.grid == "tile":
        return datetime.combine(prev, time(23, 19, 30), UTC) + timedelta(seconds=jitter % 150)
    if p.grid == "landsat":
        return datetime.combine(prev, time(23, 4, 0), UTC) + timedelta(seconds=jitter % 120)
    return datetime.combine(day, time(0), UTC)


def scene_index(key: str, day: date) -> str:
    """``system:index`` in the Earth Engine style of the collection (UTC dates)."""
    p = SAMPLE_PRODUCTS[key]
    t = acquisition_time(key, day)
    if p.grid == "tile":  # S2 SR and S2 cloud probability share it (joined on system:index)
        return f"{t:%Y%m%dT%H%M%S}_{t + timedelta(seconds=3):%Y%m%dT%H%M%S}_T{S2_TILE}"
    if p.grid == "landsat":
        return f"{_LANDSAT_PREFIX[key]}_{WRS_PATH:03d}{WRS_ROW:03d}_{t:%Y%m%d}"
    return f"{t:%Y_%m_%d}"


def worldcover_index(version: str, grid_name: str) -> str:
    """``system:index`` of the WorldCover ``version`` scene drawn on grid ``grid_name`` (tile id or "global")."""
    return f"ESA_WorldCover_10m_{WORLDCOVER_TIME[version].year}_{version}_{grid_name}"


def landsat_product_id(key: str, day: date) -> str:
    t = acquisition_time(key, day)
    processed = t + timedelta(days=8)
    return f"{_LANDSAT_PREFIX[key]}_L2SP_{WRS_PATH:03d}{WRS_ROW:03d}_{t:%Y%m%d}_{processed:%Y%m%d}_02_T1"


def spacecraft(key: str, day: date) -> str:
    if key.startswith("S2"):  # S2A and S2B alternate every 5 days
        n = (day - SAMPLE_PRODUCTS["S2"].anchor).days // 5
        return "Sentinel-2A" if n % 2 == 0 else "Sentinel-2B"
    return _SPACECRAFT.get(key, "")


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------
def landsat_grid(tile: Grid, pad_m: float = 300.0) -> Grid:
    """The 30 m Landsat grid covering ``tile`` with a margin, pixel corners on the Landsat 15 m offset."""
    r = 30.0
    x0 = math.floor((tile.x0 - pad_m - 15.0) / r) * r + 15.0
    y0 = math.ceil((tile.y0 + pad_m - 15.0) / r) * r + 15.0
    xmin, ymin, xmax, _ = tile.bounds
    width = math.ceil((xmax + pad_m - x0) / r)
    height = math.ceil((y0 - (ymin - pad_m)) / r)
    return Grid(tile.crs, x0, y0, r, width, height)


def coarser(grid: Grid, factor: int) -> Grid:
    """Same origin, ``factor`` times coarser (the 1/16° LST grid from the 1/32° grid)."""
    return Grid(grid.crs, grid.x0, grid.y0, grid.resolution * factor, grid.width // factor, grid.height // factor)


def finer(grid: Grid, factor: int) -> Grid:
    return Grid(grid.crs, grid.x0, grid.y0, grid.resolution / factor, grid.width * factor, grid.height * factor)


def product_grids(tile: Grid, global_grid: Grid) -> dict[str, Grid]:
    """The grid each product is rendered on, from the demo tile and the global demo grid."""
    grids = {"tile": tile, "landsat": landsat_grid(tile), "global": global_grid, "global16": coarser(global_grid, 2)}
    return {k: grids[p.grid] for k, p in SAMPLE_PRODUCTS.items()}


# --------------------------------------------------------------------------------------------
# Rendered scene
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedScene:
    """One synthetic scene: bands as Earth Engine stores them, plus the truth it was drawn from.

    ``truth`` holds boolean masks ``cloud``, ``shadow``, ``sea``, ``fill`` (and, depending on the
    product, ``edge``, ``ring``, ``cirrus``, ``haze``, ``saturated``, ``occluded``, ``lst_error``,
    ``drought``) and float fields ``ndwi``, ``ndvi``, ``lst`` (noise-free world truth, NaN at sea)
    and ``ndwi_sensor``, ``ndvi_sensor`` (the same seen by this sensor: see ``render.SENSOR_BIAS``).
    """

    product: str
    collection: str
    index: str
    time_start: datetime
    properties: dict[str, Any]
    bands: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    grid: Grid
    local_date: date = field(default=SPAN_START)

    @property
    def groups(self) -> dict[str, dict[str, np.ndarray]]:
        """Bands split into files by dtype: the first band's dtype is the main file ("")."""
        out: dict[str, dict[str, np.ndarray]] = {}
        main = next(iter(self.bands.values())).dtype
        for name, arr in self.bands.items():
            out.setdefault("" if arr.dtype == main else str(arr.dtype), {})[name] = arr
        return out
