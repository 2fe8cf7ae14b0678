"""Sentinel-2 SR (+ s2cloudless probability) and Landsat 7/8/9 C2 L2 scenes in Earth Engine layouts."""

from __future__ import annotations

from datetime import date

import numpy as np

from ..config import Grid
from .model import (
    S2_TILE,
    SAMPLE_PRODUCTS,
    WRS_PATH,
    WRS_ROW,
    RenderedScene,
    acquisition_time,
    landsat_product_id,
    scene_index,
    spacecraft,
)
from .optics import base_truth, reflectances
from .sky import blob_mask, draw_cloud_fraction, few_pixels, make_sky, slc_off_stripes, smooth_field, sun_angles
from .world import rng_for, truth_on_grid

S2_SCALE = 1e-4  # DOMAIN.md §4.1: SR = DN × 1e-4, no offset (harmonized collection)
AOT_SCALE = 1e-3  # DOMAIN.md §4.1: AOT scale 0.001
LANDSAT_SCALE, LANDSAT_OFFSET = 2.75e-05, -0.2  # DOMAIN.md §4.3: SR = DN × 2.75e-05 − 0.2
LANDSAT_DN_MAX = 65455  # DOMAIN.md §4.3: valid DN 1-65455
OPACITY_SCALE = 1e-3  # DOMAIN.md §4.3: SR_ATMOS_OPACITY scale 0.001
OPACITY_FILL = -9999


def _percent(mask: np.ndarray, where: np.ndarray | None = None) -> float:
    m = mask[where] if where is not None and where.any() else mask
    return round(100.0 * float(m.mean()), 2) if m.size else 0.0


# --------------------------------------------------------------------------------------------
# Sentinel-2
# --------------------------------------------------------------------------------------------
def render_s2_pair(day: date, grid: Grid) -> tuple[RenderedScene, RenderedScene]:
    """The S2 SR scene of local date ``day`` and its s2cloudless twin (same system:index and time)."""
    rng = rng_for("S2", day)
    shape = (grid.height, grid.width)
    azimuth, zenith = sun_angles(day)
    sky = make_sky(rng, grid, draw_cloud_fraction(rng, day), azimuth, blob_m=300.0,
                   shadow_m=rng.uniform(300.0, 800.0), ring_px=2)
    tr = truth_on_grid(grid, day)
    refl, ndwi_s, ndvi_s = reflectances(tr, "S2", rng, sky)
    land, clear = ~tr.sea, ~sky.cloud & ~sky.shadow
    haze = blob_mask(rng, shape, rng.uniform(0.05, 0.25), 12.0) & ~sky.cloud if rng.random() < 0.12 else \
        np.zeros(shape, bool)
    refl["red"][haze] += 0.02
    refl["nir"][haze] += 0.01
    saturated = few_pixels(rng, shape, int(rng.integers(3, 12)), land & clear) if rng.random() < 0.1 else \
        np.zeros(shape, bool)
    for arr in refl.values():
        arr[saturated] = 1.0

    def dn(r: np.ndarray) -> np.ndarray:  # DOMAIN.md §4.1: uint16 SR × 1e4, 0 = no data
        return np.clip(np.rint(r / S2_SCALE), 1, 65535).astype(np.uint16)

    # SCL classes, DOMAIN.md §4.1: 1 saturated, 3 cloud shadow, 4 vegetation, 5 bare soil, 6 water,
    # 8 cloud medium probability, 9 cloud high probability
    base_ndvi = np.where(tr.sea, 0.0, tr.ndvi)
    scl = np.where(base_ndvi >= 0.5, 4, 5).astype(np.uint8)
    scl[tr.sea] = 6
    scl[sky.shadow] = 3
    scl[sky.cloud] = np.where(sky.thickness[sky.cloud] > 0.3, 9, 8)
    scl[saturated] = 1

    level = rng.uniform(50.0, 200.0)  # AOT DN, × 0.001 (DOMAIN.md §4.1): 0.05-0.2
    aot = np.minimum(level * (1 + 0.15 * smooth_field(rng, shape, 20.0)), 280.0)
    aot[haze] = np.maximum(rng.uniform(320.0, 450.0) + 30.0 * smooth_field(rng, shape, 6.0)[haze], 310.0)  # haze
    aot = np.clip(np.rint(aot), 1, 65535).astype(np.uint16)

    # s2cloudless probability 0-100 (DOMAIN.md §4.2): > 50 exactly on the clouds drawn
    prob = 6.0 + 5.0 * smooth_field(rng, shape, 15.0) + np.where(scl == 5, 18.0, 0.0)
    prob[sky.ring] = np.maximum(prob[sky.ring], 38.0)
    prob = np.clip(prob, 0, 48)
    prob[sky.cloud] = 55.0 + 45.0 * sky.thickness[sky.cloud]
    prob_u8 = np.clip(np.rint(prob), 0, 100).astype(np.uint8)

    index, t = scene_index("S2", day), acquisition_time("S2", day)
    sat = "S2A" if spacecraft("S2", day).endswith("A") else "S2B"
    baseline = "04.00" if day >= date(2022, 1, 25) else "02.14"
    props = {
        "CLOUDY_PIXEL_PERCENTAGE": _percent(sky.cloud),
        "MEAN_SOLAR_AZIMUTH_ANGLE": round(azimuth, 3),
        "MEAN_SOLAR_ZENITH_ANGLE": round(zenith, 3),
        "MGRS_TILE": S2_TILE,
        "SPACECRAFT_NAME": spacecraft("S2", day),
        "PROCESSING_BASELINE": baseline,
        "SENSING_ORBIT_NUMBER": 30,
        "PRODUCT_ID": f"{sat}_MSIL2A_{index[:15]}_N{baseline.replace('.', '')}_R030_T{S2_TILE}_{index[16:31]}",
    }
    truth = base_truth(tr, ndwi_s, ndvi_s, sky) | {
        "fill": np.zeros(shape, bool), "ring": sky.ring, "haze": haze, "saturated": saturated,
    }
    sr = RenderedScene(
        "S2", SAMPLE_PRODUCTS["S2"].collection, index, t, props,
        {"B4": dn(refl["red"]), "B8": dn(refl["nir"]), "B11": dn(refl["swir"]), "AOT": aot, "SCL": scl},
        truth, grid, day,
    )
    cp = RenderedScene("S2_CLOUD_PROBABILITY", SAMPLE_PRODUCTS["S2_CLOUD_PROBABILITY"].collection, index, t, {},
                       {"probability": prob_u8}, truth, grid, day)
    return sr, cp


# --------------------------------------------------------------------------------------------
# Landsat
# --------------------------------------------------------------------------------------------
# QA_PIXEL (DOMAIN.md §4.3): bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 shadow, 6 clear,
# 7 water; confidences (0 none, 1 low, 2 medium, 3 high): bits 8-9 cloud, 10-11 shadow, 12-13 snow,
# 14-15 cirrus (L8/L9 only).
QA_FILL, QA_DILATED, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_CLEAR, QA_WATER = 1, 2, 4, 8, 16, 64, 128


def _conf(shift: int, level: int) -> int:
    return level << shift


def landsat_qa_pixel(key: str, cloud: np.ndarray, ring: np.ndarray, shadow: np.ndarray, sea: np.ndarray,
                     cirrus: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """QA_PIXEL: clear land = 21824 on L8/L9 (5440 on L7), like CFMASK."""
    oli = key != "L7"
    low = _conf(8, 1) | _conf(10, 1) | _conf(12, 1) | (_conf(14, 1) if oli else 0)
    qa = np.full(cloud.shape, low, np.uint16)
    qa[~cloud & ~ring] |= QA_CLEAR  # "clear": cloud and dilated cloud bits not set
    qa[ring] |= QA_DILATED
    qa[cloud] |= QA_CLOUD | _conf(8, 3)
    qa[shadow] |= QA_SHADOW | _conf(10, 3)
    qa[sea] |= QA_WATER
    if oli:
        qa[cirrus] |= QA_CIRRUS | _conf(14, 3)
    qa[fill] = QA_FILL
    return qa


def render_landsat(key: str, day: date, grid: Grid) -> RenderedScene:
    """A Landsat 7, 8 or 9 Collection 2 Level-2 scene of local date ``day`` on the 30 m ``grid``."""
    rng = rng_for(key, day)
    shape = (grid.height, grid.width)
    azimuth, zenith = sun_angles(day)
    azimuth, zenith = azimuth - 3.0, zenith + 2.0  # ~15 min earlier than Sentinel-2
    sky = make_sky(rng, grid, draw_cloud_fraction(rng, day), azimuth, blob_m=300.0,
                   shadow_m=rng.uniform(300.0, 800.0), ring_px=3)
    tr = truth_on_grid(grid, day)
    refl, ndwi_s, ndvi_s = reflectances(tr, key, rng, sky)
    land, clear = ~tr.sea, ~sky.cloud & ~sky.shadow & ~sky.ring
    oli = key != "L7"
    fill = slc_off_stripes(rng, shape) if not oli else np.zeros(shape, bool)
    cirrus = blob_mask(rng, shape, rng.uniform(0.05, 0.3), 5.0) & ~sky.cloud if oli and rng.random() < 0.2 \
        else np.zeros(shape, bool)
    refl["red"][cirrus] += 0.02
    refl["nir"][cirrus] += 0.02
    haze = blob_mask(rng, shape, rng.uniform(0.05, 0.25), 5.0) & ~sky.cloud if rng.random() < 0.12 else \
        np.zeros(shape, bool)
    saturated = few_pixels(rng, shape, int(rng.integers(2, 8)), land & clear) if rng.random() < 0.15 else \
        np.zeros(shape, bool)
    occluded = few_pixels(rng_for("terrain", grid), shape, 6, land) if oli else np.zeros(shape, bool)
    for arr in refl.values():
        arr[saturated] = 1.6
        arr[occluded] = 0.01

    def dn(r: np.ndarray) -> np.ndarray:  # DOMAIN.md §4.3: DN = (SR + 0.2) / 2.75e-05, 0 = fill
        out = np.clip(np.rint((r - LANDSAT_OFFSET) / LANDSAT_SCALE), 1, LANDSAT_DN_MAX).astype(np.uint16)
        out[fill] = 0
        return out

    qa = landsat_qa_pixel(key, sky.cloud, sky.ring, sky.shadow, tr.sea, cirrus, fill)
    # QA_RADSAT (DOMAIN.md §4.3): L8/L9 bits 3-5 = B4-B6 saturated, bit 11 terrain occlusion;
    # L7 bits 2-4 = B3-B5 saturated
    radsat = np.zeros(shape, np.uint16)
    radsat[saturated] = 0b111000 if oli else 0b11100
    radsat[occluded] |= 1 << 11
    radsat[fill] = 0
    bands: dict[str, np.ndarray]
    if oli:
        bands = {"SR_B4": dn(refl["red"]), "SR_B5": dn(refl["nir"]), "SR_B6": dn(refl["swir"]),
                 "QA_PIXEL": qa, "QA_RADSAT": radsat}
        # SR_QA_AEROSOL (DOMAIN.md §4.3): bit 1 retrieval valid, 2 water, 5 interpolated,
        # bits 6-7 aerosol level (1 low, 3 high)
        aer = np.full(shape, 0b10 | (1 << 6), np.uint8)
        aer[tr.sea] |= 0b100
        aer[sky.cloud | sky.shadow] = (1 << 5) | (1 << 6)
        aer[haze] = (aer[haze] & 0b00111111) | (3 << 6)
        bands["SR_QA_AEROSOL"] = aer
    else:
        bands = {"SR_B3": dn(refl["red"]), "SR_B4": dn(refl["nir"]), "SR_B5": dn(refl["swir"]),
                 "QA_PIXEL": qa, "QA_RADSAT": radsat}
        # SR_CLOUD_QA (DOMAIN.md §4.3): bit 1 cloud, 2 cloud shadow, 3 adjacent to cloud, 5 water
        cqa = np.zeros(shape, np.uint8)
        cqa[sky.cloud] |= 1 << 1
        cqa[sky.shadow] |= 1 << 2
        cqa[sky.ring] |= 1 << 3
        cqa[tr.sea] |= 1 << 5
        cqa[fill] = 0
        bands["SR_CLOUD_QA"] = cqa
        # SR_ATMOS_OPACITY int16 × 0.001 (DOMAIN.md §4.3): < 0.1 clear, > 0.3 haze/cloud
        opa = np.minimum(rng.uniform(20.0, 150.0) * (1 + 0.2 * smooth_field(rng, shape, 10.0)), 280.0)
        opa[haze] = rng.uniform(320.0, 500.0)
        opa[sky.cloud] = 600.0 + 300.0 * sky.thickness[sky.cloud]
        opa = np.rint(opa).astype(np.int16)
        opa[fill] = OPACITY_FILL
        bands["SR_ATMOS_OPACITY"] = opa

    t = acquisition_time(key, day)
    props: dict[str, object] = {
        "CLOUD_COVER": _percent(sky.cloud),
        "CLOUD_COVER_LAND": _percent(sky.cloud, land),
        "WRS_PATH": WRS_PATH,
        "WRS_ROW": WRS_ROW,
        "LANDSAT_PRODUCT_ID": landsat_product_id(key, day),
        "DATE_ACQUIRED": f"{t:%Y-%m-%d}",
        "SPACECRAFT_ID": spacecraft(key, day),
        "SUN_AZIMUTH": round(azimuth, 3),
        "SUN_ELEVATION": round(90.0 - zenith, 3),
    }
    if not oli:
        props["SENSOR_MODE_SLC"] = "OFF"
    truth = base_truth(tr, ndwi_s, ndvi_s, sky) | {
        "fill": fill, "ring": sky.ring, "cirrus": cirrus, "haze": haze, "saturated": saturated,
        "occluded": occluded,
    }
    return RenderedScene(key, SAMPLE_PRODUCTS[key].collection, scene_index(key, day), t, props, bands, truth,
                         grid, day)
