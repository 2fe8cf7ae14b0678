"""Per-scene preprocessing on the local engine: masks, indices, gap filling, calibration.

One function per chain phase, each interpreting the product specification of ``products.py``.
Outputs are float32 arrays on the fixed output grid, NaN where masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np

from .. import products as P
from ..config import Grid, LocalChain
from ..dekads import local_date
from . import ops
from .scenes import Scene, find_scene, list_scenes, read_bands


@dataclass
class Processed:
    """One preprocessed acquisition: indices on the output grid (NaN = masked)."""

    product: str
    sensor: str
    scene_id: str
    time_start: datetime
    day: date  # local (or UTC) date used for dekad binning
    values: dict[str, np.ndarray]
    notes: dict[str, float] = field(default_factory=dict)  # masked shares, for the report


@dataclass
class Dropped:
    product: str
    scene_id: str
    reason: str


def land_mask(root: Path, grid: Grid) -> np.ndarray:
    """WorldCover v100 AND v200 class != 80 (permanent water) (DOMAIN.md §1.3, §4.8, §1.10 item 7).

    Each WorldCover collection is mosaicked onto the grid; where neither year covers a pixel it is
    not land.
    """
    far_past, far_future = datetime(1970, 1, 2).astimezone(), datetime(2100, 1, 1).astimezone()
    land = np.ones((grid.height, grid.width), dtype=bool)
    for coll in P.WORLDCOVER:
        classes = np.zeros((grid.height, grid.width), dtype=np.uint8)
        scenes = list_scenes(root, coll, far_past, far_future)
        if not scenes:
            raise FileNotFoundError(f"no {coll} land cover found under {root}: the land/sea mask needs it")
        for s in scenes:
            m = read_bands(s, ["Map"], grid)["Map"]
            classes = np.where(classes == 0, m, classes)
        land &= (classes != 0) & (classes != P.WORLDCOVER_WATER)
    return land


def _scaled(bands: dict[str, np.ndarray], product: P.Product) -> dict[str, np.ndarray]:
    """Apply scale and offset to reflectance bands BEFORE any ratio (DOMAIN.md §1.4, §4.3)."""
    out = dict(bands)
    for b in product.reflectance_bands:
        out[b] = bands[b].astype(np.float32) * np.float32(product.scale) + np.float32(product.offset)
    return out


def _fill_mask(bands: dict[str, np.ndarray], product: P.Product, shape: tuple[int, int]) -> np.ndarray:
    keep = np.ones(shape, dtype=bool)
    for b, v in product.nodata.items():
        keep &= bands[b] != v
    return keep


def _indices(bands: dict[str, np.ndarray], product: P.Product) -> dict[str, np.ndarray]:
    sb = _scaled(bands, product)
    out = {}
    for idx in product.indices:
        if isinstance(idx, P.NormalizedDifference):
            out[idx.name] = ops.normalized_difference(sb[idx.a], sb[idx.b])
        else:
            out[idx.name] = (bands[idx.band].astype(np.float32) * np.float32(idx.scale) + np.float32(idx.offset))
    return out


def s2_clear_mask(bands: dict[str, np.ndarray], probability: np.ndarray, azimuth: float, grid: Grid,
                  chain: LocalChain) -> np.ndarray:
    """s2cloudless clouds + projected shadows + buffer (DOMAIN.md §1.4, §5.2). True = clear.

    clouds = probability > 50; dark = B8 < 0.15 × 1e4 and SCL != 6; shadows = clouds projected
    ``CLD_PRJ_DIST`` km away from the sun, computed on a 100 m grid, ∩ dark; then the cloud+shadow
    mask is eroded 40 m and dilated ``2 × BUFFER`` m (the tutorial's focalMin(2).focalMax(5) at 20 m).
    """
    th = chain.thresholds
    clouds = probability > th.cloud_probability
    dark = (bands["B8"] < th.nir_dark * 1e4) & (bands["SCL"] != 6)
    factor = max(1, int(round(100.0 / grid.resolution)))
    coarse = ops.block_reduce_any(clouds, factor)
    max_px = int(round(th.cloud_projection_km * 1000 / (grid.resolution * factor)))
    proj = ops.block_expand(ops.project_shadows(coarse, azimuth, max_px), factor, clouds.shape)
    cloud_shadow = clouds | (proj & dark)
    erode = int(round(40.0 / grid.resolution))
    dilate = int(round(2 * th.buffer_m / grid.resolution))
    return ~ops.focal_min_max(cloud_shadow, erode, dilate)


def preprocess_highres(scene: Scene, product: P.Product, grid: Grid, land: np.ndarray, chain: LocalChain,
                       root: Path, tz: str) -> Processed | Dropped:
    """Sentinel-2 or Landsat scene → calibrated NDVI/NDWI on the output grid (DOMAIN.md §1.4)."""
    shape = (grid.height, grid.width)
    prop = product.cloud_cover_property
    if prop and float(scene.properties.get(prop, 0.0)) > chain.thresholds.scene_cloud_cover_max:
        return Dropped(product.key, scene.index, f"{prop} > {chain.thresholds.scene_cloud_cover_max:g}")
    bands = read_bands(scene, product.bands, grid)
    valid_data = _fill_mask(bands, product, shape)
    if not (valid_data & land).any():
        return Dropped(product.key, scene.index, "no data over land")
    idx = _indices(bands, product)
    per_index: dict[str, np.ndarray] = {}
    for name in idx:
        per_index[name] = ops.all_rules(bands, product.rules_for(name), shape)
    if product.key == "S2":
        if chain.s2_cloud_source == "s2cloudless":
            cp = find_scene(root, P.S2_CLOUD_PROBABILITY, scene.index, scene.time_start.year)
            if cp is None:  # ee.Join.saveFirst drops primaries without a match
                return Dropped(product.key, scene.index, "no s2cloudless probability for this scene")
            prob = read_bands(cp, ["probability"], grid)["probability"]
            clear = s2_clear_mask(bands, prob, float(scene.properties["MEAN_SOLAR_AZIMUTH_ANGLE"]), grid, chain)
        else:
            cs = find_scene(root, P.S2_CLOUD_SCORE_PLUS, scene.index, scene.time_start.year)
            if cs is None:
                return Dropped(product.key, scene.index, "no Cloud Score+ for this scene "
                               "(set local_chain.s2_cloud_source: s2cloudless to use cloud probability)")
            clear = read_bands(cs, ["cs_cdf"], grid)["cs_cdf"] >= chain.thresholds.cloud_score_plus_clear
        for name in per_index:
            per_index[name] &= clear
    gap_fill = product.gap_fill_property and scene.properties.get(product.gap_fill_property[0]) == \
        product.gap_fill_property[1]
    out: dict[str, np.ndarray] = {}
    for name, values in idx.items():
        if gap_fill:
            values = _gap_fill_l7(values, per_index[name], valid_data)
        else:
            values = np.where(valid_data & per_index[name], values, np.nan).astype(np.float32)
        out[name] = np.where(land, values, np.nan).astype(np.float32)
    _remove_outliers(out, chain.thresholds.ndvi_water)
    _calibrate(out, product.sensor, chain)
    masked = 1.0 - float(np.mean(~np.isnan(out["NDWI"][land]))) if land.any() else 1.0
    if product.sensor != "S2" and masked > 0.95:  # DOMAIN.md §1.4: Landsat NaN-score > 95 % rejected
        return Dropped(product.key, scene.index, f"{masked:.0%} of land masked")
    return Processed(product.key, product.sensor, scene.index, scene.time_start,
                     local_date(scene.time_start, tz), out, {"masked_land": masked})


def _gap_fill_l7(values: np.ndarray, quality: np.ndarray, has_data: np.ndarray) -> np.ndarray:
    """L7 SLC-off gap filling (DOMAIN.md §1.4 gapfillingL7, §5.3): fill the index from its
    neighbours (focal_mean r=1, 25 iterations), fill the quality mask by focal_mode (r=2, 11
    iterations), keep filled values only where the filled quality says good."""
    vals = np.where(has_data, values, np.nan).astype(np.float32)
    filled = ops.focal_mean_fill(vals, P.GAP_FILL_INDEX["radius"], P.GAP_FILL_INDEX["iterations"])
    q, q_valid = ops.focal_mode_fill(quality.astype(np.uint8), has_data, P.GAP_FILL_QMASK["radius"],
                                     P.GAP_FILL_QMASK["iterations"])
    return np.where(q_valid & (q == 1), filled, np.nan).astype(np.float32)


def _remove_outliers(out: dict[str, np.ndarray], ndvi_water: float) -> None:
    """DOMAIN.md §1.4 removeOutliers: NDVI < 0.03 is water (all indices masked); index > 1 masked."""
    if "NDVI" in out:
        water = out["NDVI"] < ndvi_water
        for name in out:
            out[name][water] = np.nan
    for name in out:
        out[name][np.abs(out[name]) > P.OUTLIER_INDEX_MAX] = np.nan


def _calibrate(out: dict[str, np.ndarray], sensor: str, chain: LocalChain) -> None:
    """Cross-sensor calibration to Landsat-8, y = a·x + b (DOMAIN.md §1.4). Applied to L7 too
    (EO4DM had the coefficients but did not apply them)."""
    cal = chain.calibration.get(sensor)
    if cal is None:
        return
    for name, (a, b) in (("NDWI", cal.ndwi), ("NDVI", cal.ndvi)):
        if name in out:
            out[name] = (out[name] * np.float32(a) + np.float32(b)).astype(np.float32)


def preprocess_medium(ndwi_scene: Scene | None, lst_scenes: list[Scene], ndwi_product: P.Product,
                      lst_products: dict[str, P.Product], grid: Grid, land: np.ndarray, tz: str,
                      lst_qc: bool, nan_max: float) -> Processed | Dropped:
    """One day of the global chain: NDWI and LST (°C) on the grid, common mask (DOMAIN.md §1.3)."""
    shape = (grid.height, grid.width)
    if ndwi_scene is None:
        return Dropped(ndwi_product.key, "-", "no NDWI product this day")
    b = read_bands(ndwi_scene, ndwi_product.bands, grid)
    ndwi = _indices(b, ndwi_product)["NDWI"]
    ndwi = np.where(ops.all_rules(b, ndwi_product.rules, shape) & land, ndwi, np.nan).astype(np.float32)
    ndwi[np.abs(ndwi) > P.OUTLIER_INDEX_MAX] = np.nan
    lsts = []
    for s in lst_scenes:
        prod = lst_products[s.collection]
        lb = read_bands(s, prod.bands, grid)
        v = _indices(lb, prod)["LST"]
        rules = prod.rules if lst_qc else tuple(r for r in prod.rules if isinstance(r, P.ValueNotIn))
        keep = ops.all_rules(lb, rules, shape) & land
        if prod.lst_max_c is not None:
            keep &= v <= prod.lst_max_c
        lsts.append(np.where(keep, v, np.nan))
    if not lsts:
        return Dropped(ndwi_product.key, ndwi_scene.index, "no LST product this day")
    with np.errstate(all="ignore"):
        # Aqua and Terra the same day: mean of both (DOMAIN.md §1.3 computeMODIS_LST)
        lst = np.nanmean(np.stack(lsts), axis=0).astype(np.float32) if len(lsts) > 1 else lsts[0].astype(np.float32)
    both = ~np.isnan(ndwi) & ~np.isnan(lst)  # common mask qmask_all (DOMAIN.md §1.3)
    n_land = int(land.sum())
    score_ndwi = 1 - np.count_nonzero(~np.isnan(ndwi) & land) / max(n_land, 1)
    score_lst = 1 - np.count_nonzero(~np.isnan(lst) & land) / max(n_land, 1)
    if score_ndwi > nan_max or score_lst > nan_max:  # DOMAIN.md §1.3 computeNanScores
        return Dropped(ndwi_product.key, ndwi_scene.index,
                       f"{max(score_ndwi, score_lst):.0%} of land masked (limit {nan_max:.0%})")
    values = {"NDWI": np.where(both, ndwi, np.nan).astype(np.float32),
              "LST": np.where(both, lst, np.nan).astype(np.float32)}
    return Processed(ndwi_product.key, ndwi_product.sensor, ndwi_scene.index, ndwi_scene.time_start,
                     local_date(ndwi_scene.time_start, tz), values,
                     {"masked_land": 1 - np.count_nonzero(both) / max(n_land, 1)})
