"""Windowed GeoTIFF writing and reading for the local engine (ARCHITECTURE.md §4: readable by window,
so that a 10 m tile never has to fit in memory).

Files have the layout of ``archive.write_raster`` (float32, NaN nodata, 256-px tiles, predictor 3),
are written window by window and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import Affine

from ..archive import CODEC
from ..config import Grid
from ..storage import atomic_path
from .windows import Window

# GDAL block cache while a tile is processed: bounded, so that reading and writing 18,500² px rasters
# does not grow the process by GDAL's default of 5 % of the machine's memory.
GDAL_CACHE_BYTES = 256 * 2**20
STAGED = {"compress": "zstd", "zstd_level": 1}  # intermediates in the work folder: fast
ARCHIVED = CODEC  # the store: the codec of archive.write_raster
PREVIEW_MAX_PX = 4096


def gdal_env() -> rasterio.Env:
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, GDAL_NUM_THREADS="ALL_CPUS")


class RasterWriter:
    """A float32 GeoTIFF on ``grid`` written by windows; atomically renamed to ``path`` on success.

    Blocks never written stay sparse and read back as NaN (nodata), so windows outside a scene's
    footprint cost nothing.
    """

    def __init__(self, path: Path, grid: Grid, names: Sequence[str], tags: Mapping[str, object] | None = None,
                 codec: Mapping[str, Any] = ARCHIVED):
        self.path, self.grid, self.names = Path(path), grid, list(names)
        self.tags = dict(tags or {})
        self._stack = contextlib.ExitStack()
        profile: dict[str, Any] = dict(driver="GTiff", width=grid.width, height=grid.height, count=len(self.names),
                                       dtype="float32", crs=grid.crs, transform=Affine(*grid.transform),
                                       nodata=np.nan, predictor=3, sparse_ok=True, num_threads="ALL_CPUS",
                                       bigtiff="IF_SAFER", **codec)
        if grid.width >= 256 and grid.height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        self._profile = profile
        self._dst: Any = None

    def __enter__(self) -> RasterWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._dst = self._stack.enter_context(rasterio.open(tmp, "w", **self._profile))
        return self

    def write(self, win: Window | rasterio.windows.Window, bands: Sequence[np.ndarray]) -> None:
        """Write one window (a local-engine ``Window`` or a rasterio one)."""
        self._dst.write(np.stack([np.asarray(b, dtype=np.float32) for b in bands]), window=getattr(win, "rio", win))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        if exc_type is None:
            for i, n in enumerate(self.names, start=1):
                self._dst.set_band_description(i, n)
            if self.tags:
                self._dst.update_tags(**{k: str(v) for k, v in self.tags.items()})
        return self._stack.__exit__(exc_type, exc, tb)


def read_window(path: Path, bands: Sequence[int], win: Window | None = None) -> np.ndarray:
    """Bands (1-based) of ``path`` over ``win`` as float32 (bands, rows, cols)."""
    from ..blocks import read_window as read

    return read(path, win.rio if win else None, bands)


def read_tags(path: Path) -> dict[str, str]:
    with rasterio.open(path) as src:
        return src.tags()


class FileBand:
    """One band of a written raster, read when converted to an array (``np.asarray``, ``imshow``).

    For display: grids up to ``PREVIEW_MAX_PX`` a side come back whole; larger ones are decimated
    (nearest) to that size, so a notebook map of a 10 m tile never loads the full tile. The file holds
    the full resolution.
    """

    def __init__(self, path: Path, band: int):
        self.path, self.band = Path(path), band

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        with rasterio.open(self.path) as src:
            scale = max(src.height, src.width) / PREVIEW_MAX_PX
            shape = None if scale <= 1 else (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
            a = src.read(self.band, out_shape=shape)
        return a.astype(dtype or np.float32, copy=False)

    def __repr__(self) -> str:
        return f"FileBand({self.path.name!r}, band={self.band})"
