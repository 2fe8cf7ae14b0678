"""Windows of an output grid: the unit of work that keeps memory bounded on 10 m tiles.

A tile is processed as core windows (they partition the grid); focal operations read a halo around
each core so that the core's result is the one the whole array would give (ARCHITECTURE.md §2).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from rasterio.windows import Window as RioWindow
from rasterio.windows import bounds as rio_bounds

from ..config import Grid

# Core window side in pixels: a multiple of the 256-px GeoTIFF blocks, so windowed writes fill whole
# blocks. About 1 M px per window keeps a Sentinel-2 window with its 130-px halo near 150 MB.
WINDOW = 1024
# Windows processed at once (threads: numpy and GDAL release the GIL). Memory grows with it: about
# 250 MB per Sentinel-2 window in flight.
WORKERS = min(4, os.cpu_count() or 1)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Window:
    """Rows ``row:row+height`` and columns ``col:col+width`` of a grid."""

    row: int
    col: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    @property
    def rio(self) -> RioWindow:
        return RioWindow(self.col, self.row, self.width, self.height)

    def within(self, outer: Window) -> tuple[slice, slice]:
        """Slices of ``self`` inside an array that covers ``outer``."""
        r, c = self.row - outer.row, self.col - outer.col
        return slice(r, r + self.height), slice(c, c + self.width)

    def bounds(self, grid: Grid) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the window on ``grid`` (its full affine)."""
        return rio_bounds(self.rio, grid.affine)


def full(grid: Grid) -> Window:
    return Window(0, 0, grid.height, grid.width)


def iter_windows(shape: tuple[int, int], size: int | None = WINDOW) -> Iterator[Window]:
    """Core windows of ``size`` px (the last row/column of windows may be smaller), row by row.
    ``None`` gives one window for the whole grid."""
    h, w = shape
    size = max(h, w, 1) if size is None else int(size)
    if size <= 0:
        raise ValueError(f"window size must be positive, got {size}")
    for r in range(0, h, size):
        for c in range(0, w, size):
            yield Window(r, c, min(size, h - r), min(size, w - c))


def with_halo(core: Window, halo: int, shape: tuple[int, int], align: int = 1) -> Window:
    """``core`` grown by ``halo`` px on each side and clipped to the grid. Its start is rounded down
    and its end up to multiples of ``align``, so block reductions (the 100 m shadow grid of
    Sentinel-2) fall on the same blocks as for the whole grid."""
    h, w = shape
    align = max(int(align), 1)
    r0 = max(0, (core.row - halo) // align * align)
    c0 = max(0, (core.col - halo) // align * align)
    r1 = min(h, -(-(core.row + core.height + halo) // align) * align)
    c1 = min(w, -(-(core.col + core.width + halo) // align) * align)
    return Window(r0, c0, r1 - r0, c1 - c0)


def intersects(win: Window, grid: Grid, box: tuple[float, float, float, float]) -> bool:
    """Whether ``win`` (on ``grid``) overlaps the bounding box ``box`` (grid CRS)."""
    x0, y0, x1, y1 = win.bounds(grid)
    return not (box[2] <= x0 or box[0] >= x1 or box[3] <= y0 or box[1] >= y1)


def map_ordered(fn: Callable[[T], R], items: Iterable[T], workers: int = WORKERS) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, results in order, at most ``workers + 1`` pending
    (so at most that many windows are held in memory)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as ex:
        pending: deque = deque()
        for it in items:
            pending.append(ex.submit(fn, it))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
