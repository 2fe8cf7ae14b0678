"""Tiling of direct downloads: every request stays under Earth Engine's computePixels limits (48 MB
counting the mask byte, 32K px per side, 1024 bands; DOMAIN.md §5.5, google/Xee PR 210) and the
tiles cover the grid exactly once."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eo4dm_helpers.config import load_config
from eo4dm_helpers.ee.tiles import (
    LIMITS,
    MAX_BANDS,
    MAX_GRID_DIMENSION,
    REQUEST_BYTE_LIMIT,
    Limits,
    bytes_per_pixel,
    fits,
    plan_tiles,
    request_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]


def _check_cover(tiles, width, height, nbands):
    """Per band group the tiles form a partition of the grid; the groups partition the bands."""
    groups = sorted({(t.band_start, t.band_stop) for t in tiles})
    assert groups[0][0] == 0 and groups[-1][1] == nbands
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:], strict=False))
    for b0, b1 in groups:
        mine = [t for t in tiles if (t.band_start, t.band_stop) == (b0, b1)]
        assert sum(t.width * t.height for t in mine) == width * height
        assert len({(t.row, t.col) for t in mine}) == len(mine)
        rows, cols = sorted({t.row for t in mine}) + [height], sorted({t.col for t in mine}) + [width]
        next_row, next_col = dict(zip(rows, rows[1:], strict=False)), dict(zip(cols, cols[1:], strict=False))
        for t in mine:  # each tile spans exactly from its start to the next start (no overlap, no gap)
            assert (t.row + t.height, t.col + t.width) == (next_row[t.row], next_col[t.col])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.one_of(st.tuples(st.integers(1, 120_000), st.integers(1, 120_000), st.integers(1, 8)),
                       st.tuples(st.integers(1, 400), st.integers(1, 400), st.integers(9, 2500))),
       dtypes=st.lists(st.sampled_from(DTYPES), min_size=1, max_size=4), data=st.data())
def test_tiles_never_exceed_the_earth_engine_limits(shape, dtypes, data):
    width, height, nbands = shape
    bands = [dtypes[i % len(dtypes)] for i in range(nbands)]
    estimate = math.ceil(width * height * bytes_per_pixel(bands) / REQUEST_BYTE_LIMIT) * math.ceil(nbands / 1024)
    assume(estimate <= 1500)  # keep each example fast
    align = data.draw(st.sampled_from([1, 16, 256]))
    tiles = plan_tiles(width, height, bands, LIMITS, align)
    for t in tiles:
        assert fits(t, bands)
        assert t.width <= MAX_GRID_DIMENSION and t.height <= MAX_GRID_DIMENSION
        assert t.band_stop - t.band_start <= MAX_BANDS
        # one extra mask byte per pixel (Xee PR 210) at the very least; counted per band here
        sizes = [np.dtype(d).itemsize for d in bands[t.band_start:t.band_stop]]
        assert t.width * t.height * (sum(sizes) + 1) <= request_bytes(t, bands) <= REQUEST_BYTE_LIMIT
    _check_cover(tiles, width, height, nbands)


@settings(max_examples=120, deadline=None)
@given(width=st.integers(1, 3000), height=st.integers(1, 3000), nbands=st.integers(1, 40),
       dtype=st.sampled_from(DTYPES), request=st.integers(64, 2**22), side=st.integers(1, 5000),
       max_bands=st.integers(1, 64), align=st.sampled_from([1, 16, 256]))
def test_tiles_respect_any_smaller_limits(width, height, nbands, dtype, request, side, max_bands, align):
    limits = Limits(request, side, max_bands)
    bands = [dtype] * nbands
    assume(request >= np.dtype(dtype).itemsize + 1)
    assume(math.ceil(width / side) * math.ceil(height / side) * nbands * 2 <= 3000)
    assume(width * height * bytes_per_pixel(bands) / request <= 3000)
    tiles = plan_tiles(width, height, bands, limits, align)
    assert all(fits(t, bands, limits) for t in tiles)
    _check_cover(tiles, width, height, nbands)


def test_the_mask_byte_is_counted():
    # 4096 x 3072 float32 is exactly 48 MB of data: with the mask byte it no longer fits one request
    assert REQUEST_BYTE_LIMIT == 4096 * 3072 * 4
    assert bytes_per_pixel(["float32"]) == 5
    assert len(plan_tiles(4096, 3072, ["float32"])) > 1


def test_global_dekad_is_one_request_and_a_10m_tile_many_aligned_ones():
    cfg = load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)
    g = cfg.global_chain.grid
    assert len(plan_tiles(g.width, g.height, ["float32", "float32"])) == 1
    t = cfg.local_chain.tiles[0].grid
    tiles = plan_tiles(t.width, t.height, ["float32", "float32"])
    # DOMAIN.md §5.5: "~30-35 tiles ... per band" for 18,500² px; a WRS-2 scene's UTM bounds are ~22,000² px
    least = math.ceil(t.width * t.height * bytes_per_pixel(["float32"] * 2) / REQUEST_BYTE_LIMIT)
    assert 60 <= least <= len(tiles) <= 1.25 * least
    assert all(x.row % 256 == 0 and x.col % 256 == 0 for x in tiles)  # whole output blocks per tile


def test_bad_inputs():
    with pytest.raises(ValueError):
        plan_tiles(0, 10, ["float32"])
    with pytest.raises(ValueError):
        plan_tiles(10, 10, [])
    with pytest.raises(ValueError, match="exceeds the request limit"):
        plan_tiles(10, 10, ["float64"], Limits(request_bytes=4))
