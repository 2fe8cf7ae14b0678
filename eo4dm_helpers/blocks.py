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
from rasterio.windows import Window

from .config import Grid

BLOCK = 1024  # pixels per side of a processing window (4 MB per float32 band)
READ_THREADS = str(os.cpu_count() or 1)  # GDAL decompresses the tiles of a window in parallel


def block_windows(grid: Grid, block: int = BLOCK) -> Iterator[Window]:
    """The grid's windows of ``block`` px, row by row (``local.windows.iter_windows``), as rasterio windows."""
    from .local.windows import iter_windows

    return (w.rio for w in iter_windows(grid.shape, block))


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
    """Several float32 GeoTIFFs on ``grid`` (the archive's layout), written window by window; each is
    renamed into place on success only (one ``local.rasters.RasterWriter`` per output)."""

    def __init__(self, outputs: Mapping[str, tuple[Path, Sequence[str]]], grid: Grid,
                 tags: Mapping[str, Mapping[str, object]] | None = None):
        from .local.rasters import ARCHIVED, RasterWriter

        self._writers = {k: RasterWriter(path, grid, names, (tags or {}).get(k), ARCHIVED)
                         for k, (path, names) in outputs.items()}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> BlockWriter:
        for w in self._writers.values():
            self._stack.enter_context(w)
        return self

    def write(self, key: str, window: Window, bands: Sequence[np.ndarray]) -> None:
        self._writers[key].write(window, bands)

    def __exit__(self, *exc) -> bool:
        return bool(self._stack.__exit__(*exc))
