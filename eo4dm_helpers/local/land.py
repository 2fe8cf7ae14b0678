"""The land/sea mask: ESA WorldCover v100 AND v200, class != 80 (DOMAIN.md §1.3, §4.8, §1.10 item 7).

Each WorldCover collection is mosaicked onto the grid (first scene wins, 0 = not covered); a pixel
that neither year covers is not land. ``LandMask`` serves it by window, from memory (small grids) or
from a staged uint8 GeoTIFF (10 m tiles), so a tile's mask is computed once per run.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

from .. import products as P
from ..config import Grid
from ..storage import atomic_path
from .scenes import Scene, SceneReader, list_scenes
from .windows import WINDOW, Window, full, iter_windows


def worldcover_scenes(root: Path) -> dict[str, list[Scene]]:
    far_past, far_future = datetime(1970, 1, 2).astimezone(), datetime(2100, 1, 1).astimezone()
    out = {}
    for coll in P.WORLDCOVER:
        scenes = list_scenes(root, coll, far_past, far_future)
        if not scenes:
            raise FileNotFoundError(f"no {coll} land cover found under {root}: the land/sea mask needs it")
        out[coll] = scenes
    return out


def land_window(readers: dict[str, list[SceneReader]], win: Window) -> np.ndarray:
    """Land (True) over ``win``: WorldCover v100 AND v200 != 80, 0 = not covered (DOMAIN.md §1.3)."""
    land = np.ones(win.shape, dtype=bool)
    for rs in readers.values():
        classes = np.zeros(win.shape, dtype=np.uint8)
        for r in rs:
            m = r.read(["Map"], win.rio)["Map"]
            classes = np.where(classes == 0, m, classes)
        land &= (classes != 0) & (classes != P.WORLDCOVER_WATER)
    return land


def _readers(root: Path, grid: Grid) -> dict[str, list[SceneReader]]:
    return {c: [SceneReader(s, grid) for s in ss] for c, ss in worldcover_scenes(root).items()}


def _close(readers: dict[str, list[SceneReader]]) -> None:
    for rs in readers.values():
        for r in rs:
            r.close()


def land_mask(root: Path, grid: Grid, window: int | None = WINDOW) -> np.ndarray:
    """The whole mask as a boolean array (global grid, small tiles)."""
    readers = _readers(root, grid)
    try:
        out = np.zeros((grid.height, grid.width), dtype=bool)
        for win in iter_windows(out.shape, window):
            out[win.slices] = land_window(readers, win)
        return out
    finally:
        _close(readers)


class LandMask:
    """Land by window: from an array in memory, or from a staged uint8 GeoTIFF (1 = land)."""

    def __init__(self, grid: Grid, array: np.ndarray | None = None, path: Path | None = None):
        if (array is None) == (path is None):
            raise ValueError("LandMask needs exactly one of array or path")
        self.grid, self.array, self.path = grid, array, path

    @classmethod
    def staged(cls, root: Path, grid: Grid, path: Path, window: int | None = WINDOW) -> LandMask:
        """Compute the mask window by window into ``path`` (kept if it already exists)."""
        path = Path(path)
        if not path.exists():
            readers = _readers(root, grid)
            profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8",
                           crs=grid.crs, transform=Affine(*grid.transform), compress="zstd", nodata=None)
            if grid.width >= 256 and grid.height >= 256:
                profile.update(tiled=True, blockxsize=256, blockysize=256)
            try:
                with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
                    for win in iter_windows((grid.height, grid.width), window):
                        dst.write(land_window(readers, win).astype(np.uint8)[None], window=win.rio)
            finally:
                _close(readers)
        return cls(grid, path=path)

    def window(self, win: Window) -> np.ndarray:
        if self.array is not None:
            return self.array[win.slices]
        with rasterio.open(self.path) as src:
            return src.read(1, window=win.rio).astype(bool)

    def as_array(self) -> np.ndarray:
        return self.window(full(self.grid))
