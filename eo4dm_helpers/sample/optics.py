"""Surface reflectances (red, NIR, SWIR) that reproduce the world's NDVI/NDWI, seen by one sensor."""

from __future__ import annotations

import numpy as np

from ..products import DEFAULT_CALIBRATION
from .sky import Sky
from .world import Truth

NOISE_STD = 0.01  # per-pixel, per-scene noise on NDWI and NDVI
SEA = {"red": 0.03, "nir": 0.02, "swir": 0.01}
SHADOW_FACTOR = 0.35  # shadowed NIR ≈ 0.05-0.1 < 0.15: "dark" for the s2cloudless shadow test (DOMAIN.md §1.4)

# The world's NDWI/NDVI are Landsat-8 values. Sensors calibrated to L8 with y = a·x + b
# (DOMAIN.md §1.4 table, products.DEFAULT_CALIBRATION) observe x = (y − b) / a, so that the engine's
# calibration brings every sensor back onto the world truth. MODIS and VIIRS see the truth as is.
SENSOR_BIAS: dict[str, dict[str, tuple[float, float]]] = {
    s: {k.lower(): ab for k, ab in coeffs.items()} for s, coeffs in DEFAULT_CALIBRATION.items()
}


def sensor_view(sensor: str, index: str, values: np.ndarray) -> np.ndarray:
    """What ``sensor`` measures when the world (in Landsat-8 terms) has ``values`` of ``index``."""
    a, b = SENSOR_BIAS.get(sensor, {}).get(index.lower(), (1.0, 0.0))
    return (np.asarray(values) - b) / a


def reflectances(
    truth: Truth, sensor: str, rng: np.random.Generator, sky: Sky, *, noise: float = NOISE_STD
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(bands red/nir/swir as reflectance, sensor NDWI, sensor NDVI) for one scene.

    Land: NIR = 0.15 + 0.25·NDVI, red and SWIR from the noisy sensor NDVI/NDWI; sea: dark water;
    shadows: ×0.35; clouds: bright, 0.4-0.6 in every band (SWIR 10 % lower).
    """
    sea = truth.sea
    ndwi_s = sensor_view(sensor, "ndwi", truth.ndwi)
    ndvi_s = sensor_view(sensor, "ndvi", truth.ndvi)
    shape = sea.shape
    ndwi = np.where(sea, 0.0, ndwi_s) + rng.normal(0.0, noise, shape)
    ndvi = np.where(sea, 0.0, ndvi_s) + rng.normal(0.0, noise, shape)
    nir = 0.15 + 0.25 * ndvi
    bands = {"red": nir * (1 - ndvi) / (1 + ndvi), "nir": nir, "swir": nir * (1 - ndwi) / (1 + ndwi)}
    water_noise = rng.normal(0.0, 0.002, shape)
    for name, arr in bands.items():
        arr[sea] = np.maximum(SEA[name] + water_noise[sea], 0.002)
        arr[sky.shadow] *= SHADOW_FACTOR
        bright = 0.4 + 0.2 * sky.thickness[sky.cloud]
        arr[sky.cloud] = bright * (0.9 if name == "swir" else 1.0)
    return bands, ndwi_s, ndvi_s


def base_truth(truth: Truth, ndwi_s: np.ndarray, ndvi_s: np.ndarray, sky: Sky) -> dict[str, np.ndarray]:
    """The truth entries common to every product."""
    return {
        "cloud": sky.cloud, "shadow": sky.shadow, "sea": truth.sea, "drought": truth.drought,
        "ndwi": truth.ndwi, "ndvi": truth.ndvi, "lst": truth.lst,
        "ndwi_sensor": ndwi_s, "ndvi_sensor": ndvi_s,
    }
