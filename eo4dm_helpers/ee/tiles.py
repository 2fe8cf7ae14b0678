"""Split a grid into ``computePixels`` requests that stay under Earth Engine's limits (DOMAIN.md §5.5).

Pure arithmetic, no request. The limits are those of ``projects.image.computePixels``
(https://developers.google.com/earth-engine/reference/rest/v1/projects.image/computePixels):
48 MB of uncompressed data per request, 32K pixels per side, 1024 bands. Earth Engine also counts a
mask byte per pixel (google/Xee PR 210, "Account for mask byte in chunk size calculation"); every band
carries its own mask, so one mask byte is counted per band and pixel here, which is never less than
one per pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..local.windows import Window

REQUEST_BYTE_LIMIT = 48 * 2**20  # "limited to 48 MB in uncompressed data per request"; Xee: 2**20 * 48
MAX_GRID_DIMENSION = 32768  # "at most 32K pixels in either dimension"
MAX_BANDS = 1024  # "at most 1024 bands"
MASK_BYTES = 1  # per band and pixel (google/Xee PR 210)
BLOCK = 256  # tile sides are multiples of the output's 256-pixel blocks when the limits allow it


@dataclass(frozen=True)
class Limits:
    """The per-request limits (the defaults are Earth Engine's; tests and the benchmark shrink them)."""

    request_bytes: int = REQUEST_BYTE_LIMIT
    max_side: int = MAX_GRID_DIMENSION
    max_bands: int = MAX_BANDS


LIMITS = Limits()


@dataclass(frozen=True)
class Tile(Window):
    """A request window: a :class:`~eo4dm_helpers.local.windows.Window` of the grid (the one window type)
    and a slice of the bands."""

    band_start: int
    band_stop: int

    @property
    def key(self) -> str:
        return f"b{self.band_start}-{self.band_stop}_r{self.row}_c{self.col}"


def bytes_per_pixel(dtypes: Sequence[np.dtype | str | type]) -> int:
    """Bytes Earth Engine counts per pixel for these bands: each band's size plus its mask byte."""
    return sum(np.dtype(d).itemsize + MASK_BYTES for d in dtypes)


def request_bytes(tile: Tile, dtypes: Sequence[np.dtype | str | type]) -> int:
    """Uncompressed size of ``tile`` as Earth Engine counts it against ``Limits.request_bytes``."""
    return tile.width * tile.height * bytes_per_pixel(dtypes[tile.band_start:tile.band_stop])


def fits(tile: Tile, dtypes: Sequence[np.dtype | str | type], limits: Limits = LIMITS) -> bool:
    return (tile.width <= limits.max_side and tile.height <= limits.max_side
            and tile.band_stop - tile.band_start <= limits.max_bands
            and request_bytes(tile, dtypes) <= limits.request_bytes)


def band_groups(dtypes: Sequence[np.dtype | str | type], limits: Limits = LIMITS) -> list[tuple[int, int]]:
    """Consecutive band ranges of at most ``max_bands`` bands whose one pixel fits in a request."""
    groups: list[tuple[int, int]] = []
    start, size = 0, 0
    for i, d in enumerate(dtypes):
        b = np.dtype(d).itemsize + MASK_BYTES
        if b > limits.request_bytes:
            raise ValueError(f"band {i} ({np.dtype(d)}) alone exceeds the request limit")
        if i > start and (i - start >= limits.max_bands or size + b > limits.request_bytes):
            groups.append((start, i))
            start, size = i, 0
        size += b
    if len(dtypes) > start:
        groups.append((start, len(dtypes)))
    return groups


def _down(n: int, align: int) -> int:
    """``n`` rounded down to a multiple of ``align`` when that leaves at least one block."""
    return n // align * align if n >= align else n


def tile_shape(width: int, height: int, bpp: int, limits: Limits = LIMITS, align: int = BLOCK) -> tuple[int, int]:
    """(height, width) of the tiles: the whole grid if it fits, else full-width strips, else blocks;
    sides are multiples of ``align`` where possible so that tiles cover whole output blocks."""
    max_px = limits.request_bytes // bpp
    side = limits.max_side
    if max_px < 1:
        raise ValueError("one pixel of these bands exceeds the request limit")
    if width <= side and height <= side and width * height <= max_px:
        return height, width
    tw, th = min(width, side), min(height, side)
    if tw * th <= max_px:  # only the side limit binds
        return (_down(th, align) if th < height else th), (_down(tw, align) if tw < width else tw)
    if width <= side and width * min(height, align) <= max_px:  # full-width strips
        rows = min(height, side, max_px // width)
        return (_down(rows, align) if rows < height else rows), width
    tw = _down(min(width, side, math.isqrt(max_px)), align)
    th = min(height, side, max_px // tw)
    return (_down(th, align) if th < height else th), tw


def plan_tiles(width: int, height: int, dtypes: Sequence[np.dtype | str | type], limits: Limits = LIMITS,
               align: int = BLOCK) -> list[Tile]:
    """Every request needed to fetch a ``width`` x ``height`` grid of these bands, row-major per band
    group; each one within ``limits`` (see :func:`fits`)."""
    if width < 1 or height < 1 or not dtypes:
        raise ValueError("an empty grid or no band has nothing to fetch")
    tiles = []
    for b0, b1 in band_groups(dtypes, limits):
        th, tw = tile_shape(width, height, bytes_per_pixel(dtypes[b0:b1]), limits, align)
        for r in range(0, height, th):
            for c in range(0, width, tw):
                tiles.append(Tile(r, c, min(th, height - r), min(tw, width - c), b0, b1))
    return tiles
