"""Deterministic generator of the embedded demo archive: synthetic raw scenes in Earth Engine band
layouts over an approximate New Caledonia, with one known drought (2024-02-D2 to 2024-03-D2).

``python -m eo4dm_helpers.sample build --params params/demo.yaml`` writes it into ``paths.scenes``.
"""

from .build import GENERATOR_VERSION, build_demo_archive, is_built, read_manifest
from .model import SAMPLE_PRODUCTS, RenderedScene, acquisition_dates, acquisition_time, product_grids, scene_index
from .render import DEMO_GLOBAL, DEMO_TILE, render_scene, render_worldcover
from .territory import DEMO_DROUGHT, OUTLINE, ZONES, DemoDrought, in_drought, is_land
from .world import CURRENT_YEAR, REFERENCE_YEARS, SPAN_END, SPAN_START, truth, truth_on_grid

__all__ = [
    "CURRENT_YEAR", "DEMO_DROUGHT", "DEMO_GLOBAL", "DEMO_TILE", "GENERATOR_VERSION", "OUTLINE", "REFERENCE_YEARS",
    "SAMPLE_PRODUCTS", "SPAN_END", "SPAN_START", "ZONES", "DemoDrought", "RenderedScene", "acquisition_dates",
    "acquisition_time", "build_demo_archive", "in_drought", "is_built", "is_land", "product_grids",
    "read_manifest", "render_scene", "render_worldcover", "scene_index", "truth", "truth_on_grid",
]
