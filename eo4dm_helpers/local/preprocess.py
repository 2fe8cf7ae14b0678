"""Per-scene preprocessing on the local engine: the operations both chains share (scale/offset,
QA rules, normalized differences, outliers, calibration) and the global chain's daily products.

Every function interprets the product specification of ``products.py`` and works on the arrays of
one window of the output grid (or the whole grid); outputs are float32, NaN where masked. The
high-resolution chain, which runs window by window over 10 m tiles, is in ``highres.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from .. import products as P
from ..config import Grid, LocalChain
from ..dekads import acquisition_day
from . import ops
from .land import land_mask
from .scenes import Scene, read_bands
from .windows import Window


@dataclass
class Processed:
    """One preprocessed acquisition held in memory: indices on the output grid (NaN = masked)."""

    product: str
    sensor: str
    scene_id: str
    time_start: datetime
    day: date  # dekads.acquisition_day: a scene's local date, a daily product's product day
    values: dict[str, np.ndarray]
    notes: dict[str, float] = field(default_factory=dict)  # masked shares, for the report

    def read(self, names: Sequence[str], win: Window) -> dict[str, np.ndarray]:
        """The indices ``names`` over ``win`` (the composites' reading interface)."""
        return {n: self.values[n][win.slices] for n in names}


@dataclass
class Dropped:
    product: str
    scene_id: str
    reason: str


def scaled(bands: dict[str, np.ndarray], product: P.Product) -> dict[str, np.ndarray]:
    """Apply scale and offset to reflectance bands BEFORE any ratio (DOMAIN.md §1.4, §4.3)."""
    out = dict(bands)
    for b in product.reflectance_bands:
        out[b] = bands[b].astype(np.float32) * np.float32(product.scale) + np.float32(product.offset)
    return out


def has_data(bands: dict[str, np.ndarray], product: P.Product) -> np.ndarray:
    """False where a band holds its raw fill value or a fill bit is set (``Product.data_rules``)."""
    shape = next(iter(bands.values())).shape
    return ops.all_rules(bands, product.data_rules, shape)


def indices(bands: dict[str, np.ndarray], product: P.Product) -> dict[str, np.ndarray]:
    """The product's indices: normalized differences of scaled reflectances (DOMAIN.md §1.3, §1.4)
    and linear bands such as LST °C = DN × scale + offset (DOMAIN.md §4.4)."""
    sb = scaled(bands, product)
    out = {}
    for idx in product.indices:
        if isinstance(idx, P.NormalizedDifference):
            out[idx.name] = ops.normalized_difference(sb[idx.a], sb[idx.b])
        else:
            out[idx.name] = (bands[idx.band].astype(np.float32) * np.float32(idx.scale) + np.float32(idx.offset))
    return out


def quality(bands: dict[str, np.ndarray], product: P.Product, index: str) -> np.ndarray:
    """True where every QA rule of ``product`` that applies to ``index`` keeps the pixel."""
    shape = next(iter(bands.values())).shape
    return ops.all_rules(bands, product.rules_for(index), shape)


def remove_outliers(out: dict[str, np.ndarray], ndvi_water: float) -> None:
    """DOMAIN.md §1.4 removeOutliers: NDVI < 0.03 is water (all indices masked); index > 1 masked. As
    EO4DM's ``updateMask(ndvi.gte(0.03))`` (and the Earth Engine graph), a pixel whose NDVI is masked
    cannot be told from water: every index is masked there too."""
    if "NDVI" in out:
        with np.errstate(invalid="ignore"):
            water = ~(out["NDVI"] >= ndvi_water)  # NaN NDVI counts as water
        for name in out:
            out[name][water] = np.nan
    mask_out_of_range(out)


def mask_out_of_range(out: dict[str, np.ndarray]) -> None:
    """|index| > 1 is impossible for a normalized difference (DOMAIN.md §1.4 removeOutliers)."""
    for name in out:
        out[name][np.abs(out[name]) > P.OUTLIER_INDEX_MAX] = np.nan


def calibrate(out: dict[str, np.ndarray], sensor: str, chain: LocalChain) -> None:
    """Cross-sensor calibration to Landsat-8, y = a·x + b (DOMAIN.md §1.4), then the outlier bounds
    again: y can leave [-1, 1] (S2 NDWI 0.98·x + 0.07 > 1 for x > 0.95). Applied to L7 too (EO4DM had
    the coefficients but did not apply them)."""
    cal = chain.calibration.get(sensor)
    if cal is None:
        return
    for name, (a, b) in (("NDWI", cal.ndwi), ("NDVI", cal.ndvi)):
        if name in out:
            out[name] = (out[name] * np.float32(a) + np.float32(b)).astype(np.float32)
    mask_out_of_range(out)


def preprocess_medium(ndwi_scene: Scene | None, lst_scenes: list[Scene], ndwi_product: P.Product,
                      lst_products: dict[str, P.Product], grid: Grid, land: np.ndarray, tz: str,
                      lst_qc: bool, nan_max: float) -> Processed | Dropped:
    """One day of the global chain: NDWI and LST (°C) on the grid, common mask (DOMAIN.md §1.3). Without
    ``lst_products`` (no LST configured), NDWI and NDVI alone, each with its own mask."""
    shape = (grid.height, grid.width)
    if ndwi_scene is None:
        return Dropped(ndwi_product.key, "-", "no NDWI product this day")
    b = read_bands(ndwi_scene, ndwi_product.bands, grid)
    refl = {}
    for name, v in indices(b, ndwi_product).items():  # NDWI, and NDVI for the standard convention
        v = np.where(ops.all_rules(b, ndwi_product.rules_for(name), shape) & land, v, np.nan).astype(np.float32)
        v[np.abs(v) > P.OUTLIER_INDEX_MAX] = np.nan
        refl[name] = v
    ndwi = refl["NDWI"]
    n_land = int(land.sum())
    if not lst_products:  # no LST configured: the reflectance indices with their own masks, no TCI/VHI
        score = 1 - np.count_nonzero(~np.isnan(ndwi) & land) / max(n_land, 1)
        if score > nan_max:  # DOMAIN.md §1.3 computeNanScores (NDWI)
            return Dropped(ndwi_product.key, ndwi_scene.index, f"{score:.0%} of land masked (limit {nan_max:.0%})")
        return Processed(ndwi_product.key, ndwi_product.sensor, ndwi_scene.index, ndwi_scene.time_start,
                         acquisition_day(ndwi_scene.time_start, tz, dating=ndwi_product.dating), refl,
                         {"masked_land": score})
    lsts = []
    for s in lst_scenes:
        prod = lst_products[s.collection]
        lb = read_bands(s, prod.bands, grid)
        v = indices(lb, prod)["LST"]
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
    score_ndwi = 1 - np.count_nonzero(~np.isnan(ndwi) & land) / max(n_land, 1)
    score_lst = 1 - np.count_nonzero(~np.isnan(lst) & land) / max(n_land, 1)
    if score_ndwi > nan_max or score_lst > nan_max:  # DOMAIN.md §1.3 computeNanScores
        return Dropped(ndwi_product.key, ndwi_scene.index,
                       f"{max(score_ndwi, score_lst):.0%} of land masked (limit {nan_max:.0%})")
    values = {"NDWI": np.where(both, ndwi, np.nan).astype(np.float32),
              "LST": np.where(both, lst, np.nan).astype(np.float32)}
    if "NDVI" in refl:  # NDVI shares the LST mask too (its VCI is combined with TCI)
        values["NDVI"] = np.where(~np.isnan(lst), refl["NDVI"], np.nan).astype(np.float32)
    return Processed(ndwi_product.key, ndwi_product.sensor, ndwi_scene.index, ndwi_scene.time_start,
                     acquisition_day(ndwi_scene.time_start, tz, dating=ndwi_product.dating), values,
                     {"masked_land": 1 - np.count_nonzero(both) / max(n_land, 1)})


__all__ = ["Dropped", "Processed", "calibrate", "has_data", "indices", "land_mask", "mask_out_of_range",
           "preprocess_medium", "quality", "remove_outliers", "scaled"]
