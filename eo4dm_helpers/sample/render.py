"""Render one synthetic scene of any demo product: ``render_scene(product_key, when, grid)``."""

from __future__ import annotations

from datetime import date

from ..config import Grid
from .highres import render_landsat, render_s2_pair
from .medres import render_mod09ga, render_mod11a1, render_vnp09ga, render_vnp21a1d, render_worldcover
from .model import SAMPLE_PRODUCTS, RenderedScene, product_grids
from .optics import SENSOR_BIAS, sensor_view

# The grids of params/demo.yaml (the outline and the drought are drawn around DEMO_TILE).
DEMO_TILE = Grid("EPSG:32758", 544400.0, 7613300.0, 10.0, 240, 160)
DEMO_GLOBAL = Grid("EPSG:4326", 163.4375, -19.4375, 0.03125, 156, 110)
WORLDCOVER_GLOBAL_FACTOR = 2  # WorldCover "global" scene at 1/64° = global grid / 2


def default_grid(product_key: str) -> Grid:
    """The grid ``product_key`` is rendered on for the demo grids."""
    return product_grids(DEMO_TILE, DEMO_GLOBAL)[product_key]


def render_scene(product_key: str, when: date, grid: Grid | None = None) -> RenderedScene:
    """Render the scene of ``product_key`` (a key of ``SAMPLE_PRODUCTS``) for local date ``when``.

    ``grid`` is the product's own grid (``model.product_grids``); default: the demo grids.
    Does not check the acquisition calendar (``model.acquisition_dates``).
    """
    if product_key not in SAMPLE_PRODUCTS:
        raise KeyError(f"unknown sample product {product_key!r} (one of {', '.join(SAMPLE_PRODUCTS)})")
    grid = grid or default_grid(product_key)
    if product_key == "S2":
        return render_s2_pair(when, grid)[0]
    if product_key == "S2_CLOUD_PROBABILITY":
        return render_s2_pair(when, grid)[1]
    if product_key in ("L7", "L8", "L9"):
        return render_landsat(product_key, when, grid)
    return {"MOD09GA": render_mod09ga, "MOD11A1": render_mod11a1, "VNP09GA": render_vnp09ga,
            "VNP21A1D": render_vnp21a1d}[product_key](when, grid)


__all__ = ["DEMO_GLOBAL", "DEMO_TILE", "SENSOR_BIAS", "RenderedScene", "default_grid", "render_scene",
           "render_s2_pair", "render_worldcover", "sensor_view"]
