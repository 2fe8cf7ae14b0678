"""MODIS (MOD09GA, MOD11A1), VIIRS (VNP09GA, VNP21A1D) and ESA WorldCover scenes in Earth Engine layouts.

Terra products of one day share one sky (drawn on the 1/32° grid), as do SNPP products: the 1/16°
LST pixel is cloudy when any of its four 1/32° sub-pixels is.
"""

from __future__ import annotations

from datetime import date

import numpy as np
from scipy import ndimage

from ..config import Grid
from .model import (
    SAMPLE_PRODUCTS,
    WORLDCOVER_COLLECTIONS,
    WORLDCOVER_TIME,
    RenderedScene,
    acquisition_time,
    finer,
    scene_index,
    worldcover_index,
)
from .optics import base_truth, reflectances
from .sky import Sky, blob_mask, draw_cloud_fraction, few_pixels, make_sky, sun_angles, swath_gap
from .world import rng_for, static_on_grid, truth_on_grid

MODIS_SCALE = 1e-4  # DOMAIN.md §4.4: sur_refl_b0x × 0.0001
MODIS_FILL = -28672  # DOMAIN.md §4.4
LST_SCALE = 0.02  # DOMAIN.md §4.4: LST_Day_1km × 0.02 K
KELVIN = 273.15
LST_NOISE = 0.3  # K
WORLDCOVER_WATER = 80  # DOMAIN.md §4.8: 80 permanent water bodies


def _platform_sky(platform: str, day: date, grid: Grid) -> tuple[Sky, np.ndarray, np.random.Generator]:
    """The day's clouds and swath gap of ``platform`` (TERRA or SNPP) on the 1/32° ``grid``."""
    rng = rng_for(platform, day)
    azimuth, _ = sun_angles(day)
    px_m = grid.resolution * 108_000.0
    sky = make_sky(rng, grid, draw_cloud_fraction(rng, day), azimuth, blob_m=25_000.0, shadow_m=px_m, ring_px=1)
    gap = swath_gap(rng, grid) if platform == "TERRA" and rng.random() < 0.15 else \
        np.zeros((grid.height, grid.width), bool)
    return sky, gap, rng


def _any2x2(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    return mask[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))


def _coarse_sky(sky: Sky) -> Sky:
    cloud = _any2x2(sky.cloud)
    shadow = np.zeros_like(cloud)  # LST products flag no shadows: none drawn
    h, w = sky.thickness.shape
    thick = sky.thickness[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3))
    edge = cloud & ~ndimage.binary_erosion(cloud, border_value=1)
    ring = ndimage.binary_dilation(cloud) & ~cloud
    return Sky(cloud, thick, shadow, edge, ring, sky.fraction)


# --------------------------------------------------------------------------------------------
# Reflectance products
# --------------------------------------------------------------------------------------------
def render_mod09ga(day: date, grid: Grid) -> RenderedScene:
    sky, gap, rng = _platform_sky("TERRA", day, grid)
    shape = sky.cloud.shape
    tr = truth_on_grid(grid, day)
    refl, ndwi_s, ndvi_s = reflectances(tr, "MODIS", rng, sky)
    cirrus = blob_mask(rng, shape, rng.uniform(0.05, 0.2), 4.0) & ~sky.cloud if rng.random() < 0.15 else \
        np.zeros(shape, bool)

    def dn(r: np.ndarray) -> np.ndarray:  # DOMAIN.md §4.4: int16 × 1e-4, fill −28672
        out = np.clip(np.rint(r / MODIS_SCALE), -100, 16000).astype(np.int16)
        out[gap] = MODIS_FILL
        return out

    # state_1km (DOMAIN.md §4.4): bits 0-1 cloud state (1 cloudy, 2 mixed), 2 cloud shadow,
    # 3-5 land/water (1 land, 7 deep ocean), 6-7 aerosol (1 low), 8-9 cirrus, 10 internal cloud flag,
    # 13 adjacent to cloud
    state = np.where(tr.sea, 7 << 3, 1 << 3).astype(np.uint16) | (1 << 6)
    state[sky.cloud] |= 1 | (1 << 10)
    state[sky.edge] = (state[sky.edge] & ~np.uint16(0b11)) | 2
    state[sky.shadow] |= 1 << 2
    state[cirrus] |= np.uint16(int(rng.integers(1, 4)) << 8)
    state[sky.ring] |= 1 << 13
    # QC_500m (DOMAIN.md §4.4): bits 0-1 MODLAND (0 ideal, 2 not produced due to cloud, 3 other);
    # 4-bit band quality at bits 2..26 (15 = not processed); bit 30 atmospheric, 31 adjacency correction
    qc = np.full(shape, (1 << 30) | (1 << 31), np.uint32)
    qc[gap] = 0x3FFFFFFF  # MODLAND 3 + every band "not processed"
    qc[sky.cloud] = 2
    truth = base_truth(tr, ndwi_s, ndvi_s, sky) | {"fill": gap, "edge": sky.edge, "ring": sky.ring, "cirrus": cirrus}
    bands = {"sur_refl_b01": dn(refl["red"]), "sur_refl_b02": dn(refl["nir"]), "sur_refl_b06": dn(refl["swir"]),
             "state_1km": state, "QC_500m": qc}
    return RenderedScene("MOD09GA", SAMPLE_PRODUCTS["MOD09GA"].collection, scene_index("MOD09GA", day),
                         acquisition_time("MOD09GA", day), {}, bands, truth, grid, day)


def render_vnp09ga(day: date, grid: Grid) -> RenderedScene:
    sky, _, rng = _platform_sky("SNPP", day, grid)
    shape = sky.cloud.shape
    tr = truth_on_grid(grid, day)
    refl, ndwi_s, ndvi_s = reflectances(tr, "VIIRS", rng, sky)
    cirrus = blob_mask(rng, shape, rng.uniform(0.05, 0.2), 4.0) & ~sky.cloud if rng.random() < 0.15 else \
        np.zeros(shape, bool)
    bad = few_pixels(rng, shape, int(rng.integers(2, 10)), ~tr.sea & ~sky.cloud) if rng.random() < 0.1 else \
        np.zeros(shape, bool)
    # DOMAIN.md §4.5: v002 reflectances are stored with the scale already applied (float)
    i1 = np.round(refl["red"], 4).astype(np.float32)
    i2 = np.round(refl["nir"], 4).astype(np.float32)
    i3 = np.round(refl["swir"], 4).astype(np.float32)
    i3[bad] = 1.2
    # QF1 (DOMAIN.md §4.5): bits 0-1 cloud-mask quality (3 high), bits 2-3 cloud confidence (3 confident cloudy)
    qf1 = np.full(shape, 3, np.uint8)
    qf1[sky.cloud] |= 3 << 2
    # QF2: bits 0-2 land/water (1 land no desert, 3 sea water), 3 cloud shadow, 6 thin cirrus reflective
    qf2 = np.where(tr.sea, 3, 1).astype(np.uint8)
    qf2[sky.shadow] |= 1 << 3
    qf2[cirrus] |= 1 << 6
    # QF4: bit 2 bad I2, bit 3 bad I3
    qf4 = np.zeros(shape, np.uint8)
    qf4[bad] |= 1 << 3
    # QF7: bit 1 adjacent to cloud, bits 2-3 aerosol quantity (1 low), bit 4 thin cirrus flag
    qf7 = np.full(shape, 1 << 2, np.uint8)
    qf7[sky.ring] |= 1 << 1
    qf7[cirrus] |= 1 << 4
    truth = base_truth(tr, ndwi_s, ndvi_s, sky) | {
        "fill": np.zeros(shape, bool), "ring": sky.ring, "cirrus": cirrus, "saturated": bad,
    }
    bands = {"I1": i1, "I2": i2, "I3": i3, "QF1": qf1, "QF2": qf2, "QF4": qf4, "QF7": qf7}
    return RenderedScene("VNP09GA", SAMPLE_PRODUCTS["VNP09GA"].collection, scene_index("VNP09GA", day),
                         acquisition_time("VNP09GA", day), {}, bands, truth, grid, day)


# --------------------------------------------------------------------------------------------
# LST products (1/16° grid)
# --------------------------------------------------------------------------------------------
def _lst_common(platform: str, day: date, grid: Grid) -> tuple[Sky, np.ndarray, np.random.Generator]:
    fine = finer(grid, 2)
    sky, gap, _ = _platform_sky(platform, day, fine)
    return _coarse_sky(sky), _any2x2(gap), rng_for(platform, "LST", day)


def render_mod11a1(day: date, grid: Grid) -> RenderedScene:
    sky, gap, rng = _lst_common("TERRA", day, grid)
    shape = sky.cloud.shape
    tr = truth_on_grid(grid, day)
    land = ~tr.sea
    err = blob_mask(rng, shape, rng.uniform(0.03, 0.12), 2.0) & land & ~sky.cloud & ~gap if rng.random() < 0.15 \
        else np.zeros(shape, bool)
    kelvin = np.where(land, tr.lst, 0.0) + KELVIN + rng.normal(0.0, LST_NOISE, shape) + np.where(err, 4.0, 0.0)
    produced = land & ~sky.cloud & ~gap
    # LST_Day_1km uint16, DN = K / 0.02 (DOMAIN.md §4.4), 0 = fill
    lst = np.where(produced, np.clip(np.rint(kelvin / LST_SCALE), 1, 65535), 0).astype(np.uint16)
    # QC_Day (DOMAIN.md §4.4): bits 0-1 mandatory QA (0 good, 1 other quality, 2 not produced cloud,
    # 3 not produced other), bits 4-5 emissivity error (1 ≤ 0.02), bits 6-7 LST error (1 ≤ 2 K, 3 > 3 K)
    other = rng.random(shape) < 0.3
    qc = np.where(other, 1 | (1 << 4) | (1 << 6), 0).astype(np.uint8)
    qc[err] = 1 | (1 << 4) | (3 << 6)
    qc[~produced] = 3
    qc[sky.cloud] = 2
    truth = base_truth(tr, tr.ndwi, tr.ndvi, sky) | {"fill": gap, "lst_error": err}
    return RenderedScene("MOD11A1", SAMPLE_PRODUCTS["MOD11A1"].collection, scene_index("MOD11A1", day),
                         acquisition_time("MOD11A1", day), {}, {"LST_Day_1km": lst, "QC_Day": qc}, truth, grid, day)


def render_vnp21a1d(day: date, grid: Grid) -> RenderedScene:
    sky, _, rng = _lst_common("SNPP", day, grid)
    shape = sky.cloud.shape
    tr = truth_on_grid(grid, day)
    land = ~tr.sea
    produced = land & ~sky.cloud
    kelvin = np.where(land, tr.lst, 0.0) + KELVIN + rng.normal(0.0, LST_NOISE, shape)
    # LST_1KM float32 Kelvin, no scale (DOMAIN.md §4.5); 0 where not produced
    lst = np.where(produced, np.round(kelvin, 2), 0.0).astype(np.float32)
    # QC (DOMAIN.md §4.4/§4.5, MYD21A1D layout): bits 0-1 mandatory QA (2 cloud, 3 other), 4-5 cloud
    # flag (3 cloudy), 10-11 MMD (3 vegetation/water), 12-13 emissivity accuracy, 14-15 LST accuracy
    qc = np.full(shape, (3 << 10) | (2 << 12) | (2 << 14), np.uint16)
    qc[~produced] = 3
    qc[sky.cloud] = 2 | (3 << 4)
    truth = base_truth(tr, tr.ndwi, tr.ndvi, sky) | {"fill": np.zeros(shape, bool)}
    return RenderedScene("VNP21A1D", SAMPLE_PRODUCTS["VNP21A1D"].collection, scene_index("VNP21A1D", day),
                         acquisition_time("VNP21A1D", day), {}, {"LST_1KM": lst, "QC": qc}, truth, grid, day)


# --------------------------------------------------------------------------------------------
# ESA WorldCover
# --------------------------------------------------------------------------------------------
def render_worldcover(version: str, grid: Grid, name: str) -> RenderedScene:
    """Band ``Map`` (uint8, DOMAIN.md §4.8): 10 tree, 20 shrub, 30 grass, 80 water (= sea), 95 mangroves.

    v200 flips ~10 % of the coastline pixels of v100, so the two coastlines differ here and there.
    """
    ndwi, ndvi, _ = static_on_grid(grid)
    sea = np.isnan(ndvi)
    land_ndvi = np.where(sea, 0.0, ndvi)
    cover = np.where(land_ndvi >= 0.62, 10, np.where(land_ndvi >= 0.5, 20, 30)).astype(np.uint8)
    coast = ndimage.binary_dilation(sea) & ~sea
    px_m = grid.resolution * (108_000.0 if grid.crs.upper() == "EPSG:4326" else 1.0)
    shore_m = ndimage.distance_transform_edt(~sea) * px_m
    cover[(shore_m <= max(px_m, 80.0)) & (np.where(sea, 0.0, ndwi) > 0.1)] = 95
    cover[sea] = WORLDCOVER_WATER
    if version == "v200":
        rng = rng_for("WorldCover", version, name, grid)
        shore = (coast | (ndimage.binary_dilation(~sea) & sea)) & (rng.random(sea.shape) < 0.1)
        cover[shore & sea] = 30
        cover[shore & ~sea] = WORLDCOVER_WATER
    t = WORLDCOVER_TIME[version]
    index = worldcover_index(version, name)
    truth = {"sea": sea, "cloud": np.zeros(sea.shape, bool), "shadow": np.zeros(sea.shape, bool),
             "fill": np.zeros(sea.shape, bool)}
    return RenderedScene(f"WorldCover_{version}", WORLDCOVER_COLLECTIONS[version], index, t, {"DEMO_GRID": name},
                         {"Map": cover}, truth, grid, t.date())
