"""Clouds, shadows, haze patches, swath gaps, SLC-off stripes and sun angles of synthetic scenes.

Clouds are blobs: Gaussian-filtered white noise on a coarse lattice in the grid's CRS, sampled
bilinearly at pixel centres and thresholded at the scene's cloud fraction. A shadow is the cloud
mask displaced away from the sun (sampling the same field at points shifted towards the sun), so
clouds outside the grid still cast shadows into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy import ndimage

from ..config import Grid
from .world import grid_lonlat, grid_xy


@dataclass(frozen=True)
class Sky:
    """Cloud state of one scene on one grid (boolean masks, shape of the grid)."""

    cloud: np.ndarray
    thickness: np.ndarray  # 0-1 inside clouds, 0 elsewhere
    shadow: np.ndarray  # never overlaps cloud
    edge: np.ndarray  # cloud pixels touching a clear pixel
    ring: np.ndarray  # clear pixels within ``ring_px`` of a cloud
    fraction: float  # drawn cloud fraction


def draw_cloud_fraction(rng: np.random.Generator, day: date) -> float:
    """Many clear-ish scenes, some 30-80 %, an occasional fully cloudy one (more in the wet season)."""
    wet = day.month in (12, 1, 2, 3, 4)
    u = rng.random()
    if u < (0.07 if wet else 0.04):
        return 1.0
    if u < 0.50:
        f = rng.uniform(0.0, 0.08)
        return 0.0 if f < 0.02 else f
    if u < (0.72 if wet else 0.78):
        return rng.uniform(0.08, 0.30)
    return rng.uniform(0.30, 0.80)


def is_geographic(grid: Grid) -> bool:
    return grid.crs.upper() in ("EPSG:4326", "OGC:CRS84")


def _metres_per_unit(grid: Grid) -> tuple[float, float]:
    """Ground metres per CRS unit in x and y (at the grid centre for geographic grids)."""
    if not is_geographic(grid):
        return 1.0, 1.0
    lat = math.radians(grid.y0 - grid.height * grid.resolution / 2)
    return 111_320.0 * math.cos(lat), 110_600.0


def make_sky(
    rng: np.random.Generator,
    grid: Grid,
    fraction: float,
    sun_azimuth: float,
    *,
    blob_m: float,
    shadow_m: float,
    ring_px: int = 1,
) -> Sky:
    """Draw clouds covering ``fraction`` of ``grid`` with blobs of ~``blob_m`` metres.

    Shadows are displaced ``shadow_m`` metres away from the sun (azimuth in degrees clockwise
    from north): for a sun in the north-east they fall to the south-west.
    """
    shape = (grid.height, grid.width)
    mx, my = _metres_per_unit(grid)
    cell = blob_m / 4.0  # lattice step (metres): blobs span ~4 sigma
    margin = shadow_m + 4 * blob_m
    x0, ymin, x1, y1 = grid.bounds
    lx0, ly1 = x0 - margin / mx, y1 + margin / my
    nx = int(math.ceil((x1 - x0 + 2 * margin / mx) * mx / cell)) + 2
    ny = int(math.ceil((y1 - ymin + 2 * margin / my) * my / cell)) + 2
    noise = rng.standard_normal((ny, nx))
    field = ndimage.gaussian_filter(noise, 1.2, mode="wrap") * 0.5 + ndimage.gaussian_filter(noise, 3.0, mode="wrap")
    field /= field.std() or 1.0

    xs, ys = grid_xy(grid)

    def sample(dx_m: float, dy_m: float) -> np.ndarray:
        col = ((xs + dx_m / mx) - lx0) * mx / cell
        row = (ly1 - (ys + dy_m / my)) * my / cell
        return ndimage.map_coordinates(field, [row, col], order=1, mode="nearest")

    here = sample(0.0, 0.0)
    if fraction <= 0:
        thr = np.inf
    elif fraction >= 1:
        thr = -np.inf
    else:
        thr = float(np.quantile(here, 1.0 - fraction))
    cloud = here > thr
    az = math.radians(sun_azimuth)
    toward_sun = sample(shadow_m * math.sin(az), shadow_m * math.cos(az))
    shadow = (toward_sun > thr) & ~cloud
    thickness = np.where(cloud, np.clip((here - (thr if np.isfinite(thr) else here.min())) / 1.5, 0, 1), 0.0)
    edge = cloud & ~ndimage.binary_erosion(cloud, border_value=1)
    ring = ndimage.binary_dilation(cloud, iterations=ring_px) & ~cloud if cloud.any() else np.zeros(shape, bool)
    return Sky(cloud, thickness, shadow, edge, ring, float(fraction))


def blob_mask(rng: np.random.Generator, shape: tuple[int, int], fraction: float, sigma_px: float) -> np.ndarray:
    """A smooth random patch mask covering ``fraction`` of the array (haze, cirrus, aerosol)."""
    if fraction <= 0:
        return np.zeros(shape, bool)
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="reflect")
    return f > np.quantile(f, 1.0 - fraction)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """A smooth random field with zero mean and unit standard deviation."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="reflect")
    return (f - f.mean()) / (f.std() or 1.0)


def few_pixels(rng: np.random.Generator, shape: tuple[int, int], n: int, allowed: np.ndarray) -> np.ndarray:
    """``n`` random pixels among ``allowed``."""
    out = np.zeros(shape, bool)
    idx = np.flatnonzero(allowed)
    if n > 0 and idx.size:
        out.flat[rng.choice(idx, size=min(n, idx.size), replace=False)] = True
    return out


def swath_gap(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """A band of missing data between two MODIS swaths (20-60 km wide, tilted 10-25° from north)."""
    lon, lat = grid_lonlat(grid)
    lon0 = rng.uniform(lon.min(), lon.max())
    lat0 = float(lat.mean())
    width = rng.uniform(20.0, 60.0)
    tilt = math.radians(rng.uniform(10.0, 25.0))
    x, y = (lon - lon0) * 103.8, (lat - lat0) * 110.6
    return np.abs(x * math.cos(tilt) - y * math.sin(tilt)) < width / 2


def slc_off_stripes(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Landsat 7 SLC-off gaps: 3-pixel stripes every ~13 pixels, tilted ~12° from the rows."""
    period, width = 13.0, 3.0
    tilt = math.radians(12.0)
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    n = r * math.cos(tilt) - c * math.sin(tilt) + rng.uniform(0, period)
    return np.mod(n, period) < width


def sun_angles(day: date) -> tuple[float, float]:
    """(azimuth, zenith) in degrees at ~10:20 local time: sun in the north-east, high in December."""
    k = math.cos(2 * math.pi * (day.timetuple().tm_yday - 355) / 365.25)  # +1 at the December solstice
    return 65.0 + 15.0 * k, 37.0 - 13.0 * k
