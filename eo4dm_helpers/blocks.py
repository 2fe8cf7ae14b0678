"""Window-by-window raster processing with bounded memory (10 m tiles never have to fit in memory).

``block_windows`` splits a grid into square windows; ``read_window`` reads one window of a file;
``BlockWriter`` writes float32 multi-band tiled GeoTIFFs window by window and renames them into
place atomically when every window is written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

from .archive import COMPRESSION
from .config import Grid
from .storage import atomic_path

BLOCK = 1024  # pixels per side of a processing window (4 MB per float32 band)
TILE = 256  # internal GeoTIFF tile size
READ_THREADS = str(os.cpu_count() or 1)  # GDAL decompresses the tiles of a window in parallel


def block_windows(grid: Grid, block: int = BLOCK) -> Iterator[Window]:
    for row in range(0, grid.height, block):
        for col in range(0, grid.width, block):
            yield Window(col, row, min(block, grid.width - col), min(block, grid.height - row))


def read_window(path: Path, window: Window | None = None, bands: Sequence[int] | None = None) -> np.ndarray:
    """Bands (1-based) of one window as float32, nodata as NaN."""
    try:
        with rasterio.Env(GDAL_NUM_THREADS=READ_THREADS), rasterio.open(path) as src:
            data = src.read(list(bands) if bands else None, window=window, masked=src.nodata is not None
                            and not np.isnan(src.nodata))
    except rasterio.errors.RasterioIOError as exc:
        raise OSError(f"{path}: unreadable raster ({exc})") from None
    if np.ma.isMaskedArray(data):
        data = data.filled(np.nan)
    return np.asarray(data, dtype=np.float32)


def read_overview(path: Path, max_size: int = 1600) -> np.ndarray:
    """A decimated read (nearest) for maps: at most ``max_size`` pixels on the longer side."""
    with rasterio.open(path) as src:
        f = max(1, int(np.ceil(max(src.width, src.height) / max_size)))
        shape = (src.count, int(np.ceil(src.height / f)), int(np.ceil(src.width / f)))
        return src.read(out_shape=shape, resampling=rasterio.enums.Resampling.nearest).astype(np.float32)


class BlockWriter:
    """Float32 GeoTIFFs on ``grid``, written window by window; renamed into place on success only."""

    def __init__(self, outputs: Mapping[str, tuple[Path, Sequence[str]]], grid: Grid,
                 tags: Mapping[str, Mapping[str, object]] | None = None):
        self._outputs, self._grid, self._tags = outputs, grid, tags or {}
        self._stack = contextlib.ExitStack()
        self._dst: dict[str, rasterio.io.DatasetWriter] = {}

    def __enter__(self) -> BlockWriter:
        g = self._grid
        tiled = g.width >= TILE and g.height >= TILE
        for key, (path, names) in self._outputs.items():
            tmp = self._stack.enter_context(atomic_path(path))
            profile = dict(driver="GTiff", width=g.width, height=g.height, count=len(names), dtype="float32",
                           crs=g.crs, transform=Affine(*g.transform), nodata=np.nan, tiled=tiled,
                           BIGTIFF="IF_SAFER", **COMPRESSION)
            if tiled:
                profile.update(blockxsize=TILE, blockysize=TILE)
            dst = self._stack.enter_context(rasterio.open(tmp, "w", **profile))
            for i, n in enumerate(names, start=1):
                dst.set_band_description(i, n)
            dst.update_tags(**{k: str(v) for k, v in self._tags.get(key, {}).items()})
            self._dst[key] = dst
        return self

    def write(self, key: str, window: Window, bands: Sequence[np.ndarray]) -> None:
        self._dst[key].write(np.stack([np.asarray(b, np.float32) for b in bands]), window=window)

    def __exit__(self, *exc) -> bool:
        # datasets close before their atomic_path renames (ExitStack unwinds in reverse order)
        return bool(self._stack.__exit__(*exc))
