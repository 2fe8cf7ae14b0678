"""Reassemble downloaded windows into one Cloud-Optimised GeoTIFF on the plan's grid, with bounded
memory, and move it into the archive with an atomic rename (ARCHITECTURE.md §4).

Windows are written one at a time into a tiled GeoTIFF in the work folder; GDAL's COG driver then copies
it block by block into a temporary file next to the destination, which is renamed over it. Every
product has the same layout whatever the route: float32, nodata NaN, band descriptions = band names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from ..archive import SOURCE_EE, SOURCE_TAG
from ..config import Grid
from ..storage import atomic_path
from .errors import TransferError

BLOCK = 256
COG_OPTIONS = {"driver": "COG", "compress": "DEFLATE", "predictor": "YES", "blocksize": BLOCK,
               "overview_resampling": "NEAREST", "bigtiff": "IF_SAFER"}
GDAL_CACHE_MB = 256  # bounds GDAL's block cache while writing and copying


class Assembler:
    """``with Assembler(work_file, grid, names) as out: out.write(...); out.commit(dest)``. Every file
    is tagged ``SOURCE=eo4dm-ee`` (provenance: computed by eo4dm on Earth Engine)."""

    def __init__(self, work_file: Path, grid: Grid, names: Sequence[str]) -> None:
        self.work_file = Path(work_file)
        self.grid = grid
        self.names = tuple(names)
        self.tags = {SOURCE_TAG: SOURCE_EE}
        self._env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
        self._ds: rasterio.io.DatasetWriter | None = None

    def __enter__(self) -> Assembler:
        self.work_file.parent.mkdir(parents=True, exist_ok=True)
        self._env.__enter__()
        g = self.grid
        self._ds = rasterio.open(
            self.work_file, "w", driver="GTiff", width=g.width, height=g.height, count=len(self.names),
            dtype="float32", crs=g.crs, transform=Affine(*g.transform), nodata=np.nan, tiled=True,
            blockxsize=BLOCK, blockysize=BLOCK, compress="deflate", predictor=3, bigtiff="IF_SAFER")
        for i, n in enumerate(self.names, start=1):
            self._ds.set_band_description(i, n)
        self._ds.update_tags(**self.tags)
        return self

    def write(self, data: np.ndarray, row: int, col: int, band_start: int = 0) -> None:
        """Write ``data`` (bands, rows, cols) at (``row``, ``col``) of the grid, bands from ``band_start``."""
        assert self._ds is not None, "use Assembler as a context manager"
        nb, h, w = data.shape
        self._ds.write(np.asarray(data, dtype=np.float32), indexes=list(range(band_start + 1, band_start + nb + 1)),
                       window=Window(col, row, w, h))

    def commit(self, dest: Path) -> Path:
        """Close, copy as a COG into a temporary file next to ``dest`` and rename it over ``dest``."""
        self._close()
        with atomic_path(dest) as tmp:
            rasterio.shutil.copy(self.work_file, tmp, **COG_OPTIONS)
        self.work_file.unlink(missing_ok=True)
        return Path(dest)

    def _close(self) -> None:
        if self._ds is not None:
            self._ds.close()
            self._ds = None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._close()
        self._env.__exit__(typ, exc, tb)
        if typ is not None:
            self.work_file.unlink(missing_ok=True)


def offset_in_grid(src: rasterio.io.DatasetReader, grid: Grid, name: str) -> tuple[int, int]:
    """(row, col) of ``src``'s first pixel in ``grid``; an error if it is not on the same pixel grid."""
    a, b, c, d, e, f = grid.transform
    t = src.transform
    if src.crs is None or src.crs != CRS.from_user_input(grid.crs):
        raise TransferError(f"{name}: CRS {src.crs} differs from the plan's {grid.crs}")
    if not (np.isclose(t.a, a, rtol=1e-9) and np.isclose(t.e, e, rtol=1e-9) and t.b == b and t.d == d):
        raise TransferError(f"{name}: pixel size {t.a, t.e} differs from the plan's {a, e}")
    col, row = (t.c - c) / a, (t.f - f) / e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        raise TransferError(f"{name}: not aligned on the plan's grid (offset {col:.4f}, {row:.4f} px)")
    return int(round(row)), int(round(col))


def assemble_files(parts: Sequence[Path], grid: Grid, names: Sequence[str], work_file: Path, dest: Path,
                   fill: float, rows_per_strip: int = BLOCK) -> Path:
    """Mosaic GeoTIFF ``parts`` (an export split in files) onto ``grid``, strip by strip: ``fill`` values
    and pixels no part covers become NaN. Then COG + atomic rename into ``dest``."""
    with contextlib.ExitStack() as stack:
        srcs = [stack.enter_context(rasterio.open(p)) for p in parts]
        placed = []
        for p, s in zip(parts, srcs, strict=True):
            if s.count != len(names):
                raise TransferError(f"{p.name}: {s.count} bands, expected {len(names)} ({', '.join(names)})")
            placed.append((s, *offset_in_grid(s, grid, p.name)))
        with Assembler(work_file, grid, names) as out:
            for r0 in range(0, grid.height, rows_per_strip):
                h = min(rows_per_strip, grid.height - r0)
                buf = np.full((len(names), h, grid.width), np.nan, dtype=np.float32)
                for s, pr, pc in placed:
                    top, bottom = max(r0, pr), min(r0 + h, pr + s.height)
                    left, right = max(0, pc), min(grid.width, pc + s.width)
                    if top >= bottom or left >= right:
                        continue
                    win = Window(left - pc, top - pr, right - left, bottom - top)
                    buf[:, top - r0:bottom - r0, left:right] = s.read(window=win, out_dtype="float32")
                buf[buf == np.float32(fill)] = np.nan
                out.write(buf, r0, 0)
            return out.commit(dest)
