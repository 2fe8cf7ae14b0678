"""The local chain's scenes (Sentinel-2, Landsat 7/8/9) on the local engine, window by window.

``scene_window`` holds the whole per-scene logic of DOMAIN.md §1.4 for one window of the output grid:
read (nearest) → scale/offset → QA rules → clouds and shadows (S2) → indices → L7 gap fill → land mask
→ outliers → calibration. ``process_scene`` drives it over the grid with the halo its focal
operations need and hands each core window to a sink: a GeoTIFF written by windows
(``stage_highres``, bounded memory on 10 m tiles) or arrays in memory (``preprocess_highres``). Both
give the same pixels whatever the window size.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from .. import products as P
from ..config import Grid, LocalChain, LocalThresholds
from ..dekads import acquisition_day
from . import ops
from .land import LandMask
from .preprocess import Dropped, Processed, calibrate, has_data, indices, quality, remove_outliers
from .rasters import STAGED, RasterWriter, gdal_env, read_tags, read_window
from .scenes import Scene, SceneError, SceneReader, find_scene, open_reader
from .windows import WINDOW, WORKERS, Window, intersects, iter_windows, map_ordered, with_halo

INDEX_NAMES = ("NDVI", "NDWI")  # staged scene bands b1, b2
SHADOW_GRID_M = P.S2_SHADOW_GRID_M  # DOMAIN.md §5.2: the shadow projection is reprojected at 100 m
CLOUD_ERODE_M = P.S2_CLOUD_ERODE_PX * P.S2_MORPHOLOGY_GRID_M  # DOMAIN.md §1.4: focalMin(2) at 20 m = 40 m


@dataclass
class Staged:
    """One preprocessed acquisition staged on disk (b1 NDVI, b2 NDWI; NaN = masked)."""

    product: str
    sensor: str
    scene_id: str
    time_start: datetime
    day: date
    path: Path
    notes: dict[str, float] = field(default_factory=dict)

    def read(self, names: Sequence[str], win: Window) -> dict[str, np.ndarray]:
        data = read_window(self.path, [INDEX_NAMES.index(n) + 1 for n in names], win)
        return dict(zip(names, data, strict=True))

    @classmethod
    def from_file(cls, path: Path) -> Staged:
        t = read_tags(path)
        return cls(t["PRODUCT"], t["SENSOR"], t["SCENE"], datetime.fromisoformat(t["TIME_START"]),
                   date.fromisoformat(t["DAY"]), Path(path), {"masked_land": float(t.get("MASKED_LAND", "nan"))})


def staged_name(day: date, product: str, scene_id: str) -> str:
    return f"{day.isoformat()}_{product}_{scene_id}.tif"


# --------------------------------------------------------------------------------------------
# Pixel logic (arrays of one window)
# --------------------------------------------------------------------------------------------
def _shadow_factor(resolution: float) -> int:
    return max(1, int(round(SHADOW_GRID_M / resolution)))


def _morphology_px(th: LocalThresholds, resolution: float) -> tuple[int, int]:
    return int(round(CLOUD_ERODE_M / resolution)), int(round(2 * th.buffer_m / resolution))


def s2cloudless_clouds(probability: np.ndarray, th: LocalThresholds) -> np.ndarray:
    """Clouds = s2cloudless probability (0-100) > CLD_PRB_THRESH (DOMAIN.md §1.4, §4.2, §5.2)."""
    return probability > th.cloud_probability


def s2_clear_mask(bands: dict[str, np.ndarray], probability: np.ndarray, azimuth: float, resolution: float,
                  th: LocalThresholds) -> np.ndarray:
    """s2cloudless clouds + projected shadows + buffer (DOMAIN.md §1.4, §5.2). True = clear.

    clouds = probability > 50; dark = B8 < 0.15 × 1e4 and SCL != 6; shadows = clouds projected
    ``CLD_PRJ_DIST`` km away from the sun, computed on a 100 m grid, ∩ dark; then the cloud+shadow
    mask is eroded 40 m and dilated ``2 × BUFFER`` m (the tutorial's focalMin(2).focalMax(5) at 20 m).
    """
    clouds = s2cloudless_clouds(probability, th)
    dark = (bands["B8"] < round(th.nir_dark / P.S2.scale, 6)) & (bands["SCL"] != P.S2_SCL_WATER)  # §5.2
    factor = _shadow_factor(resolution)
    coarse = ops.block_reduce_any(clouds, factor)
    max_px = int(round(th.cloud_projection_km * 1000 / (resolution * factor)))
    proj = ops.block_expand(ops.project_shadows(coarse, azimuth, max_px), factor, clouds.shape)
    cloud_shadow = clouds | (proj & dark)
    erode, dilate = _morphology_px(th, resolution)
    return ~ops.focal_min_max(cloud_shadow, erode, dilate)


def gap_fill_l7(values: dict[str, np.ndarray], keep: dict[str, np.ndarray], data: np.ndarray
                ) -> dict[str, np.ndarray]:
    """L7 SLC-off gap filling (DOMAIN.md §1.4 gapfillingL7, §5.3).

    ``values`` are NaN wherever any mask rejects the pixel (no data, quality, clouds, shadows,
    saturation, haze, land, outliers): EO4DM's computeL7indices applies its quality and land masks
    before gapfillingL7, so only fully valid neighbours enter the focal mean (r=1, 25 iterations).
    Only gaps (``~data``: the SLC-off stripes) are filled, and only where the quality mask ``keep``
    of the neighbours, filled by focal_mode (r=2, 11 iterations), says good; a pixel masked for
    cloud or the like is never filled.
    """
    names = list(values)
    stack = np.stack([values[n].astype(np.float32) for n in names])
    filled = ops.focal_mean_fill(stack, P.GAP_FILL_INDEX["radius"], P.GAP_FILL_INDEX["iterations"])
    out: dict[str, np.ndarray] = {}
    modes: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]] = []  # indices often share their QA
    for i, n in enumerate(names):
        mode = next((m for k, m in modes if np.array_equal(k, keep[n])), None)
        if mode is None:
            mode = ops.focal_mode_fill(keep[n].astype(np.uint8), data, P.GAP_FILL_QMASK["radius"],
                                       P.GAP_FILL_QMASK["iterations"])
            modes.append((keep[n], mode))
        q, q_valid = mode
        fill_here = ~data & q_valid & (q == 1)
        out[n] = np.where(fill_here, filled[i], values[n]).astype(np.float32)
    return out


@dataclass(frozen=True)
class Plan:
    """What a scene needs besides its own bands, decided once per scene."""

    product: P.Product
    chain: LocalChain
    resolution: float
    gap_fill: bool = False
    clouds: str | None = None  # "s2cloudless" or "cloud_score_plus" (S2 only)
    azimuth: float = 0.0

    @property
    def halo(self) -> tuple[int, int]:
        """(halo px, alignment px) the focal operations need around a core window."""
        halo, align = 0, 1
        if self.clouds == "s2cloudless":
            th = self.chain.thresholds
            factor = _shadow_factor(self.resolution)
            erode, dilate = _morphology_px(th, self.resolution)
            reach = math.ceil(th.cloud_projection_km * 1000 / self.resolution)
            halo, align = reach + factor + erode + dilate, factor  # shadow reach, one 100 m block, buffer
        if self.gap_fill:
            halo = max(halo, *(g["radius"] * g["iterations"] for g in (P.GAP_FILL_INDEX, P.GAP_FILL_QMASK)))
        return halo, align


def scene_window(bands: dict[str, np.ndarray], aux: np.ndarray | None, plan: Plan, outer: Window, core: Window,
                 land: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Indices over ``core`` from bands (and the S2 cloud layer ``aux``) and the land mask read over ``outer``.

    Returns the calibrated indices (NaN = masked) and the core's has-data mask.
    """
    product, th = plan.product, plan.chain.thresholds
    data = has_data(bands, product)
    idx = indices(bands, product)
    keep = {n: quality(bands, product, n) for n in idx}
    if plan.clouds is not None and aux is not None:
        if plan.clouds == "s2cloudless":
            clear = s2_clear_mask(bands, aux, plan.azimuth, plan.resolution, th)
        else:  # Cloud Score+ cs_cdf, 1 = clear
            clear = aux >= th.cloud_score_plus_clear
        keep = {n: k & clear for n, k in keep.items()}
    # every mask first (data, quality, clouds, land §1.3, outliers §1.4), so the L7 fill averages valid pixels only
    idx = {n: np.where(data & keep[n] & land, v, np.nan).astype(np.float32) for n, v in idx.items()}
    remove_outliers(idx, th.ndvi_water)
    if plan.gap_fill:
        idx = gap_fill_l7(idx, keep, data)
        remove_outliers(idx, th.ndvi_water)
    inner = core.within(outer)
    out = {n: np.where(land[inner], v[inner], np.nan).astype(np.float32) for n, v in idx.items()}  # filled gaps: land
    calibrate(out, product.sensor, plan.chain)
    return out, data[inner]


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------
class Sink(Protocol):
    tags: dict[str, object]

    def write(self, win: Window, bands: Sequence[np.ndarray]) -> None: ...


class ArraySink:
    """Core windows assembled into whole arrays (tests, small grids)."""

    def __init__(self, shape: tuple[int, int]):
        self.values = {n: np.full(shape, np.nan, dtype=np.float32) for n in INDEX_NAMES}
        self.tags: dict[str, object] = {}

    def write(self, win: Window, bands: Sequence[np.ndarray]) -> None:
        for n, b in zip(INDEX_NAMES, bands, strict=True):
            self.values[n][win.slices] = b


class _Drop(Exception):
    pass


def plan_scene(scene: Scene, product: P.Product, grid: Grid, chain: LocalChain, root: Path
               ) -> tuple[Plan, Scene | None] | Dropped:
    """Scene-level decisions before any pixel is read (DOMAIN.md §1.4)."""
    prop = product.cloud_cover_property
    if prop and float(scene.properties.get(prop, 0.0)) > chain.thresholds.scene_cloud_cover_max:
        return Dropped(product.key, scene.index, f"{prop} > {chain.thresholds.scene_cloud_cover_max:g}")
    product = P.tuned(product, chain.thresholds)  # rule limits from the parameters (aot_max, l7_opacity_max)
    gap = product.gap_fill_property
    plan = Plan(product, chain, grid.resolution, gap_fill=bool(gap) and scene.properties.get(gap[0]) == gap[1])
    if not product.cloud_layer:
        return plan, None
    own = getattr(scene, "auxiliary", None)  # STAC items carry their cloud layer (eo4dm_helpers.stac)
    if chain.s2_cloud_source == "s2cloudless":
        aux = own(P.S2_CLOUD_PROBABILITY) if own else find_scene(root, P.S2_CLOUD_PROBABILITY, scene.index,
                                                                 scene.time_start.year)
        if aux is None:  # ee.Join.saveFirst drops primaries without a match
            return Dropped(product.key, scene.index, "no s2cloudless probability for this scene")
    else:
        aux = own(P.S2_CLOUD_SCORE_PLUS) if own else find_scene(root, P.S2_CLOUD_SCORE_PLUS, scene.index,
                                                                scene.time_start.year)
        if aux is None:
            return Dropped(product.key, scene.index, "no Cloud Score+ for this scene "
                           "(set local_chain.s2_cloud_source: s2cloudless to use cloud probability)")
    azimuth = 0.0
    if chain.s2_cloud_source == "s2cloudless":  # DOMAIN.md §5.2: shadows cast away from the sun
        try:
            azimuth = float(scene.properties["MEAN_SOLAR_AZIMUTH_ANGLE"])
        except (KeyError, TypeError, ValueError):
            raise SceneError(f"scene {scene.index}: property MEAN_SOLAR_AZIMUTH_ANGLE is missing or not a number "
                             "(needed to project cloud shadows)") from None
    return Plan(product, chain, grid.resolution, False, chain.s2_cloud_source, azimuth), aux


def process_scene(scene: Scene, aux_scene: Scene | None, plan: Plan, grid: Grid, land: LandMask, sink: Sink,
                  window: int | None = WINDOW, workers: int = WORKERS) -> str | None:
    """Run ``scene_window`` over every core window of ``grid`` into ``sink`` (windows computed on
    ``workers`` threads, each with its own readers; written in order by the calling thread).

    Returns a reason to drop the scene (no data over land; Landsat NaN-score > 95 %), else None.
    """
    shape = (grid.height, grid.width)
    halo, align = plan.halo
    aux_band = "probability" if plan.clouds == "s2cloudless" else "cs_cdf"
    local, readers = threading.local(), []
    lock = threading.Lock()

    def reader(name: str, s: Scene) -> SceneReader:
        if not hasattr(local, name):
            setattr(local, name, open_reader(s, grid))
            with lock:
                readers.append(getattr(local, name))
        return getattr(local, name)

    def one(core: Window) -> tuple[Window, np.ndarray, dict[str, np.ndarray] | None, np.ndarray | None]:
        outer = with_halo(core, halo, shape, align)
        if not intersects(outer, grid, box):
            return core, land.window(core), None, None  # outside the footprint: nothing but fill, NaN in the output
        lo = land.window(outer)  # the gap fill's neighbours must be land too
        bands = reader("scene", scene).read(plan.product.bands, outer.rio)
        aux = reader("aux", aux_scene).read([aux_band], outer.rio)[aux_band] if aux_scene else None
        vals, data = scene_window(bands, aux, plan, outer, core, lo)
        return core, lo[core.within(outer)], vals, data

    n_land = n_data = n_kept = 0
    try:
        box = reader("scene", scene).footprint(plan.product.bands)
        for core, lw, vals, data in map_ordered(one, iter_windows(shape, window), workers):
            n_land += int(lw.sum())
            if vals is None or data is None:
                continue
            n_data += int((data & lw).sum())
            n_kept += int((~np.isnan(vals["NDWI"]) & lw).sum())
            if any(not np.isnan(v).all() for v in vals.values()):
                sink.write(core, [vals[n] for n in INDEX_NAMES])
    finally:
        for r in readers:
            r.close()
    if n_data == 0:
        return "no data over land"
    masked = 1.0 - n_kept / n_land
    sink.tags["MASKED_LAND"] = masked
    nan_max = plan.chain.thresholds.scene_nan_max
    if plan.product.scene_nan_score and masked > nan_max:  # DOMAIN.md §1.4: Landsat NaN-score > 95 % rejected
        return f"{masked:.0%} of land masked (limit {nan_max:.0%})"
    return None


def stage_highres(scene: Scene, product: P.Product, grid: Grid, land: LandMask, chain: LocalChain, root: Path,
                  tz: str, folder: Path, window: int | None = WINDOW) -> Staged | Dropped:
    """Preprocess one scene into ``folder`` as a GeoTIFF written window by window (DOMAIN.md §1.4)."""
    planned = plan_scene(scene, product, grid, chain, root)
    if isinstance(planned, Dropped):
        return planned
    plan, aux = planned
    day = acquisition_day(scene.time_start, tz, dating=product.dating)  # local date (DOMAIN.md §3.4)
    path = Path(folder) / staged_name(day, product.key, scene.index)
    tags = {"DAY": day.isoformat(), "PRODUCT": product.key, "SENSOR": product.sensor, "SCENE": scene.index,
            "TIME_START": scene.time_start.isoformat()}
    try:
        with gdal_env(), RasterWriter(path, grid, INDEX_NAMES, tags, codec=STAGED) as sink:
            reason = process_scene(scene, aux, plan, grid, land, sink, window)
            if reason:
                raise _Drop(reason)  # the temporary file is removed, nothing is staged
    except _Drop as d:
        return Dropped(product.key, scene.index, str(d))
    return Staged(product.key, product.sensor, scene.index, scene.time_start, day, path,
                  {"masked_land": float(sink.tags["MASKED_LAND"])})


def preprocess_highres(scene: Scene, product: P.Product, grid: Grid, land: LandMask | np.ndarray, chain: LocalChain,
                       root: Path, tz: str, window: int | None = None) -> Processed | Dropped:
    """The same preprocessing with the result in memory (small grids, tests)."""
    planned = plan_scene(scene, product, grid, chain, root)
    if isinstance(planned, Dropped):
        return planned
    plan, aux = planned
    mask = land if isinstance(land, LandMask) else LandMask(grid, array=land)
    sink = ArraySink((grid.height, grid.width))
    with gdal_env():
        reason = process_scene(scene, aux, plan, grid, mask, sink, window)
    if reason:
        return Dropped(product.key, scene.index, reason)
    return Processed(product.key, product.sensor, scene.index, scene.time_start,
                     acquisition_day(scene.time_start, tz, dating=product.dating),
                     sink.values, {"masked_land": float(sink.tags["MASKED_LAND"])})
