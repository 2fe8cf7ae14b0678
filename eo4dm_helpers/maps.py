"""Interactive maps for analysts in Jupyter (geemap), replaced by the static maps in headless runs.

On the Earth Engine backend the dekad's composites are added as Earth Engine layers (from the graphs
the preprocessing notebooks staged); the indicators, computed locally, are added from the archive's
rasters as image overlays, so no tile server and no Google account are needed for them.
"""

from __future__ import annotations

import base64
import io
import os

import numpy as np

from .blocks import read_overview
from .config import Grid
from .indicators import CLASS_COLOURS, CONVENTIONS, VAI_BREAKS
from .workflow import Context
from .zones import reproject

HEADLESS_ENV = "EO4DM_HEADLESS"  # set by run_all.py for papermill runs


def headless() -> bool:
    return os.environ.get(HEADLESS_ENV) == "1"


def _png(values: np.ndarray, breaks: tuple[float, ...]) -> str:
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from PIL import Image

    cmap = ListedColormap(CLASS_COLOURS)
    rgba = cmap(BoundaryNorm(list(breaks), cmap.N)(np.clip(values, breaks[0], breaks[-1])), bytes=True)
    rgba[np.isnan(values), 3] = 0
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _latlon_bounds(grid: Grid) -> tuple[tuple[float, float], tuple[float, float]]:
    from shapely.geometry import box

    b = reproject(box(*grid.bounds), grid.crs, "EPSG:4326").bounds
    return (b[1], b[0]), (b[3], b[2])


def indicator_map(ctx: Context):
    """A geemap map of the dekad's indicators (and composites on Earth Engine); ``None`` when headless."""
    if headless():
        return None
    import geemap
    from ipyleaflet import ImageOverlay

    cfg, d = ctx.cfg, ctx.dekad
    from .geo import centre

    lon, lat = centre(cfg.territory.lonlat)
    m = geemap.Map(center=(lat, lon), zoom=7, ee_initialize=False)
    if cfg.backend == "earthengine":
        from .ee import steps

        for name, img in steps.staged_graphs(ctx).items():
            band = name.split("_")[-3] if "_" in name else name
            vis = {"min": 15, "max": 45, "palette": ["313695", "ffffbf", "a50026"]} if "LST" in band else \
                {"min": -0.2, "max": 0.6, "palette": ["8c510a", "f6e8c3", "01665e"]}
            m.addLayer(img.select(0), vis, name, False)
    breaks = CONVENTIONS[cfg.indicators.convention].vhi_breaks
    layers = [(f"{n} {d.label}", ctx.archive.global_indicator(n, d), cfg.global_chain.grid, breaks)
              for n in ("VHI", "VCI", "TCI")]
    layers += [(f"VAI {t.id} {d.label}", ctx.archive.local_indicator(t.id, "VAI", d), t.grid, VAI_BREAKS)
               for t in cfg.local_chain.tiles]
    for name, path, grid, brk in layers:
        if path.exists():
            m.add_layer(ImageOverlay(url=_png(read_overview(path)[0], brk), bounds=_latlon_bounds(grid), name=name))
    return m
