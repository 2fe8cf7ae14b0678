"""Direct download: ``computePixels`` in tiles under the limits, fetched a few at a time, retried on
transient errors only, reassembled into the same COG a single request would give.

Each fetched tile is kept as ``<work>/<product>/tiles-<fingerprint>/<tile>.npy`` (atomic write), so an
interrupted download resumes with the missing tiles only; the fingerprint covers the expression, the
grid and the tiling, so tiles of another request are never mixed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

import ee
import numpy as np

from ..config import Grid
from ..storage import atomic_path
from .cog import Assembler
from .errors import RETRY, RetryPolicy, TransferError, call_with_retry
from .io import PixelIO
from .plan import ExportPlan
from .tiles import LIMITS, Limits, Tile, plan_tiles, request_bytes

# Masked pixels are sent as FILL (``unmask``, as Xee does with its mask value) and become NaN here; no
# composite value can be -9999 (NDWI/NDVI in [-1, 1], LST in kelvin, counts >= 0).
FILL = -9999.0
T = TypeVar("T")


def filled(image: ee.Image) -> ee.Image:
    """``image`` with masked pixels set to :data:`FILL` everywhere (``sameFootprint=False``), kept float32:
    the fill constant is a double and ``unmask`` would promote the bands to float64, twice the bytes the
    request budgets count (``tiles.bytes_per_pixel`` of float32 bands)."""
    return image.unmask(FILL, False).toFloat()


def download_expression(plan: ExportPlan) -> ee.Image:
    """What is fetched or exported: the plan's bands, filled (:func:`filled`), so both routes give the
    same values."""
    return filled(plan.image.select(list(plan.bands)))


def fetch_expression(plans: Sequence[ExportPlan]) -> tuple[ee.Image, tuple[str, ...]]:
    """The image and bands fetched for ``plans``: one plan's own expression, or for plans that share one
    multi-band image (``ExportPlan.shared``: the global chain's NDWI, NDVI and LST of a period) that image
    filled, with the bands of every plan, so one ``computePixels`` per tile serves them all."""
    if len(plans) == 1:
        return download_expression(plans[0]), tuple(plans[0].bands)
    shared = plans[0].shared
    if shared is None or any(p.shared is not shared or p.grid != plans[0].grid for p in plans):
        raise ValueError("plans fetched together must share one image and one grid")
    return filled(shared), tuple(b for p in plans for b in p.bands)


def band_dtypes(plan: ExportPlan) -> list[np.dtype]:
    """The bands' types: the plans' images are ``toFloat()`` (ExportPlan: float32 bands)."""
    return [np.dtype(np.float32)] * len(plan.bands)


def pixel_request(expression: ee.Image, grid: Grid, bands: tuple[str, ...], tile: Tile) -> dict[str, Any]:
    """``ee.data.computePixels`` parameters for ``tile`` of ``grid``: the grid's CRS and transform,
    shifted to the tile's first pixel."""
    a, b, c, d, e, f = grid.transform
    return {
        "expression": expression,
        "fileFormat": "NUMPY_NDARRAY",
        "bandIds": list(bands[tile.band_start:tile.band_stop]),
        "grid": {
            "dimensions": {"width": tile.width, "height": tile.height},
            "affineTransform": {"scaleX": a, "shearX": b, "translateX": c + a * tile.col + b * tile.row,
                                "shearY": d, "scaleY": e, "translateY": f + d * tile.col + e * tile.row},
            "crsCode": grid.crs,
        },
    }


def decode(raw: np.ndarray, bands: list[str], height: int, width: int, what: str) -> np.ndarray:
    """(bands, rows, cols) float32 from the structured array of ``computePixels``; FILL becomes NaN."""
    if raw.shape != (height, width) or raw.dtype.names is None or any(b not in raw.dtype.names for b in bands):
        raise TransferError(f"{what}: Earth Engine returned {raw.dtype.names} {raw.shape}, expected bands "
                            f"{bands} on {height} x {width} px")
    out = np.stack([raw[b].astype(np.float32) for b in bands])
    out[out == np.float32(FILL)] = np.nan
    return out


def run_bounded(fn: Callable[[T], None], items: Iterable[T], concurrency: int) -> None:
    """``fn(item)`` for every item, at most ``concurrency`` at a time. After the first error no new item
    starts, those running finish, and the error is raised."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    it = iter(items)
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eo4dm-pixels") as pool:
        running: set[Future[None]] = {pool.submit(fn, x) for x in itertools.islice(it, concurrency)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.exception() is not None and error is None:
                    error = fut.exception()
            if error is None:
                running |= {pool.submit(fn, x) for x in itertools.islice(it, len(done))}
    if error is not None:
        raise error


def fingerprint(expression: ee.Image, grid: Grid, bands: tuple[str, ...], tiles: list[Tile]) -> str:
    text = json.dumps([ee.serializer.toJSON(expression), grid.crs, list(grid.transform), grid.width, grid.height,
                       list(bands), [t.key for t in tiles]])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def download_direct(plan: ExportPlan, work_dir: Path, io: PixelIO, *, concurrency: int = 4,
                    limits: Limits = LIMITS, retry: RetryPolicy = RETRY,
                    sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = print) -> Path:
    """Fetch ``plan`` tile by tile (``concurrency`` requests at a time) and write it to
    ``plan.archive_path`` as a COG (atomic). Tiles already fetched by an interrupted run are reused."""
    return download_together([plan], work_dir, io, concurrency=concurrency, limits=limits, retry=retry,
                             sleep=sleep, log=log)[0]


def download_together(plans: Sequence[ExportPlan], work_dir: Path, io: PixelIO, *, concurrency: int = 4,
                      limits: Limits = LIMITS, retry: RetryPolicy = RETRY,
                      sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = print) -> list[Path]:
    """Fetch ``plans`` (one, or several sharing one image: :func:`fetch_expression`) in one set of tiles,
    each tile one ``computePixels`` request with the bands of every plan, and write each plan's bands to its
    ``archive_path`` as a COG (atomic). Tiles already fetched by an interrupted run are reused."""
    g = plans[0].grid
    expr, bands = fetch_expression(plans)
    name = plans[0].product if len(plans) == 1 else "+".join(p.product for p in plans)
    dtypes = [d for p in plans for d in band_dtypes(p)]
    tiles = plan_tiles(g.width, g.height, dtypes, limits)
    tile_dir = Path(work_dir) / plans[0].product / f"tiles-{fingerprint(expr, g, bands, tiles)}"
    tile_dir.mkdir(parents=True, exist_ok=True)
    missing = [t for t in tiles if not (tile_dir / f"{t.key}.npy").exists()]
    biggest = max(request_bytes(t, dtypes) for t in tiles) / 2**20
    log(f"{name}: {len(tiles)} computePixels request(s) of at most {biggest:.2f} MB, {concurrency} at a "
        f"time" + (f"; {len(tiles) - len(missing)} already fetched" if len(missing) < len(tiles) else ""))
    t0 = time.monotonic()

    def fetch(t: Tile) -> None:
        what = f"{name} tile {t.key}"
        req = pixel_request(expr, g, bands, t)
        raw = call_with_retry(lambda: io.compute_pixels(req), what, retry, sleep=sleep, log=log)
        arr = decode(raw, list(bands[t.band_start:t.band_stop]), t.height, t.width, what)
        with atomic_path(tile_dir / f"{t.key}.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr)

    run_bounded(fetch, missing, concurrency)
    out_paths, first = [], 0
    for p in plans:  # each plan's bands are bands [first, first + n) of the fetched ones
        n = len(p.bands)
        with Assembler(tile_dir.parent / "assembling.tif", g, p.bands) as out:
            for t in tiles:
                lo, hi = max(t.band_start, first), min(t.band_stop, first + n)
                if lo < hi:
                    arr = np.load(tile_dir / f"{t.key}.npy", mmap_mode="r")
                    out.write(arr[lo - t.band_start:hi - t.band_start], t.row, t.col, lo - first)
            out_paths.append(out.commit(p.archive_path))
        first += n
    shutil.rmtree(tile_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        tile_dir.parent.rmdir()  # only if nothing else is left there
    log(f"{name}: {g.width} x {g.height} px written to {', '.join(d.name for d in out_paths)} in "
        f"{time.monotonic() - t0:.1f} s")
    return out_paths
