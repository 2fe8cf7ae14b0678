"""In-memory fakes of Earth Engine (``computePixels``, export tasks) and of Drive, for the tests and the
benchmark: the same limits, the same error types and messages, injectable faults, no network.

``FakeEarthEngine`` implements ``io.TransferIO``; register what each plan would compute with
``add(plan, array)`` (bands, rows, cols; NaN where Earth Engine would mask).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ee
import numpy as np
from rasterio.io import MemoryFile
from rasterio.transform import Affine

from ..config import Grid
from .io import DriveFile, TaskStatus
from .pixels import FILL, download_expression, filled
from .plan import ExportPlan
from .tiles import LIMITS, MASK_BYTES, Limits


def key_of(expression: ee.ComputedObject) -> str:
    return ee.serializer.toJSON(expression)


def drive_http_error(status: int, message: str, reason: str = "") -> Exception:
    """The error pydrive2 raises for an HTTP error of the Drive API (``ApiRequestError``)."""
    import httplib2
    from googleapiclient.errors import HttpError
    from pydrive2.files import ApiRequestError

    body = {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}
    return ApiRequestError(HttpError(httplib2.Response({"status": status}), json.dumps(body).encode()))


def _rectangle(geometry: Any) -> list[float] | None:
    """The corners of an ``ee.Geometry.Rectangle`` (computed or not) from its serialized graph."""
    def find(node: Any) -> list[float] | None:
        if isinstance(node, dict):
            coords = node.get("coordinates")
            if isinstance(coords, dict) and isinstance(coords.get("constantValue"), list):
                return coords["constantValue"]
            for v in node.values():
                if (found := find(v)) is not None:
                    return found
        elif isinstance(node, list):
            for v in node:
                if (found := find(v)) is not None:
                    return found
        return None
    return find(json.loads(ee.serializer.toJSON(geometry)))


@dataclass
class _Source:
    array: np.ndarray  # (bands, rows, cols) float32, NaN = masked
    grid: Grid
    bands: tuple[str, ...]


@dataclass
class _Task:
    params: dict[str, Any]
    polls: int = 0
    state: str = "PENDING"
    error: str | None = None


@dataclass
class FakeDrive:
    """A Drive in memory. ``calls`` records ("list"|"download"|"delete", name) in order; ``on_delete`` is
    called with the file name before a deletion; faults are raised by the next calls of each kind."""

    quota_bytes: int = 15 * 2**30
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    wrong_md5: set[str] = field(default_factory=set)  # names whose metadata md5 is wrong
    download_faults: list[BaseException] = field(default_factory=list)
    delete_faults: list[BaseException] = field(default_factory=list)
    on_delete: Any = None

    def put(self, name: str, data: bytes) -> DriveFile:
        fid = hashlib.sha1(f"{name}{len(self.files)}".encode()).hexdigest()[:16]
        self.files[fid] = {"name": name, "data": data}
        return self._meta(fid)

    def used(self) -> int:
        return sum(len(f["data"]) for f in self.files.values())

    def _meta(self, fid: str) -> DriveFile:
        f = self.files[fid]
        md5 = hashlib.md5(f["data"]).hexdigest()
        if f["name"] in self.wrong_md5:
            md5 = hashlib.md5(b"something else").hexdigest()
        return DriveFile(fid, f["name"], len(f["data"]), md5)

    def list_files(self, prefix: str) -> list[DriveFile]:
        self.calls.append(("list", prefix))
        return [self._meta(i) for i, f in sorted(self.files.items(), key=lambda kv: kv[1]["name"])
                if f["name"].startswith(prefix)]

    def download(self, file: DriveFile, dest: Path) -> None:
        self.calls.append(("download", file.name))
        if self.download_faults:
            raise self.download_faults.pop(0)
        if file.id not in self.files:
            raise drive_http_error(404, f"File not found: {file.id}", "notFound")
        Path(dest).write_bytes(self.files[file.id]["data"])

    def delete(self, file: DriveFile) -> None:
        self.calls.append(("delete", file.name))
        if self.on_delete is not None:
            self.on_delete(file.name)
        if self.delete_faults:
            raise self.delete_faults.pop(0)
        self.files.pop(file.id, None)

    def free_bytes(self) -> int | None:
        return max(0, self.quota_bytes - self.used())


class FakeEarthEngine:
    """``computePixels`` with Earth Engine's size limits, and export tasks that write GeoTIFFs into a
    :class:`FakeDrive` after ``polls_to_finish`` status calls.

    Faults: ``faults`` are raised by the next ``compute_pixels`` calls in order; ``tile_faults[(row, col)]``
    by the next requests of the tile starting at that grid pixel; ``export_error`` makes every task fail
    with that message. ``file_rows`` splits exports into files of that many rows (named as Earth Engine
    does, ``prefix-RRRRRRRRRR-CCCCCCCCCC.tif``).
    """

    def __init__(self, *, limits: Limits = LIMITS, drive: FakeDrive | None = None, polls_to_finish: int = 2,
                 eecu_seconds: float = 42.0, file_rows: int | None = None) -> None:
        self.limits = limits
        self.drive = drive
        self.polls_to_finish = polls_to_finish
        self.eecu_seconds = eecu_seconds
        self.file_rows = file_rows
        self.faults: list[BaseException] = []
        self.tile_faults: dict[tuple[int, int], list[BaseException]] = {}
        self.export_error: str | None = None
        self.pixel_requests: list[dict[str, Any]] = []
        self.export_calls: list[str] = []  # request ids, in call order (repeats included)
        self.tasks: dict[str, _Task] = {}
        self._sources: dict[str, _Source] = {}
        self._lock = threading.Lock()

    def add(self, plan: ExportPlan, array: np.ndarray) -> None:
        """Register what ``plan`` computes; a plan with a ``shared`` image also adds its bands to that
        image's source (the request of plans fetched together)."""
        arr = np.asarray(array, dtype=np.float32)
        assert arr.shape == (len(plan.bands), plan.grid.height, plan.grid.width), arr.shape
        self._sources[key_of(download_expression(plan))] = _Source(arr, plan.grid, plan.bands)
        if plan.shared is not None:
            key = key_of(filled(plan.shared))
            old = self._sources.get(key)
            if old is None:
                self._sources[key] = _Source(arr, plan.grid, plan.bands)
            else:
                assert old.grid == plan.grid
                self._sources[key] = _Source(np.concatenate([old.array, arr]), plan.grid, old.bands + plan.bands)

    # -- computePixels ---------------------------------------------------------------------------
    def compute_pixels(self, request: dict[str, Any]) -> np.ndarray:
        grid = request["grid"]
        w, h = grid["dimensions"]["width"], grid["dimensions"]["height"]
        bands = list(request["bandIds"])
        src = self._sources[key_of(request["expression"])]
        a, _, c, _, e, f = src.grid.transform
        t = grid["affineTransform"]
        col, row = round((t["translateX"] - c) / a), round((t["translateY"] - f) / e)
        with self._lock:
            self.pixel_requests.append({k: v for k, v in request.items() if k != "expression"})
            queue = self.tile_faults.get((row, col)) or self.faults
            fault = queue.pop(0) if queue else None
        if fault is not None:
            raise fault
        size = w * h * sum(np.dtype(np.float32).itemsize + MASK_BYTES for _ in bands)
        if size > self.limits.request_bytes:  # Earth Engine's HTTP 400 text (through ee.EEException)
            raise ee.EEException(f"Total request size ({size} bytes) must be less than or equal to "
                                 f"{self.limits.request_bytes} bytes.")
        if max(w, h) > self.limits.max_side or len(bands) > self.limits.max_bands:
            raise ee.EEException(f"Grid dimensions ({w}x{h}) or band count ({len(bands)}) exceed the limits.")
        if t["scaleX"] != a or t["scaleY"] != e or grid["crsCode"] != src.grid.crs:
            raise ee.EEException("fake: the request is not on the source grid")
        out = np.full((len(bands), h, w), FILL, dtype=np.float32)  # outside the source: filled (unmask)
        r0, r1, c0, c1 = max(row, 0), min(row + h, src.grid.height), max(col, 0), min(col + w, src.grid.width)
        if r0 < r1 and c0 < c1:
            idx = [src.bands.index(b) for b in bands]
            win = src.array[idx, r0:r1, c0:c1]
            out[:, r0 - row:r1 - row, c0 - col:c1 - col] = np.where(np.isnan(win), FILL, win)
        raw = np.empty((h, w), dtype=[(b, "<f4") for b in bands])
        for i, b in enumerate(bands):
            raw[b] = out[i]
        return raw

    # -- export tasks ----------------------------------------------------------------------------
    def start_export(self, params: dict[str, Any], request_id: str) -> str:
        with self._lock:
            self.export_calls.append(request_id)
            name = f"projects/fake/operations/{request_id}"
            if name not in self.tasks:  # the same request id never makes a second task
                self.tasks[name] = _Task(params)
            return name

    def task_status(self, task: str) -> TaskStatus:
        t = self.tasks.get(task)
        if t is None:
            raise ee.EEException(f"Operation {task} not found.")
        t.polls += 1
        if t.state in ("PENDING", "RUNNING"):
            t.state = "RUNNING" if t.polls < self.polls_to_finish else self._finish(t)
        took = 60.0 * t.polls
        return TaskStatus(t.state, t.error, self.eecu_seconds if t.state != "RUNNING" else None, 1000.0,
                          1000.0 + took)

    def _finish(self, t: _Task) -> str:
        if self.export_error:
            t.error = self.export_error
            return "FAILED"
        p = t.params
        src = self._sources[key_of(p["image"])]
        if list(p["crsTransform"]) != list(src.grid.transform) or p["crs"] != src.grid.crs:
            t.error = "fake: export grid differs from the source"
            return "FAILED"
        if _rectangle(p["region"]) != list(src.grid.bounds):
            t.error = "fake: export region differs from the grid bounds"
            return "FAILED"
        if src.grid.width * src.grid.height > p["maxPixels"]:
            t.error = f"Export too large: specified {src.grid.width * src.grid.height} pixels (max: {p['maxPixels']})."
            return "FAILED"
        assert self.drive is not None, "a FakeDrive is needed for exports"
        files = self._geotiffs(src, p["fileNamePrefix"])
        if sum(len(d) for _, d in files) > (self.drive.free_bytes() or 0):
            t.error = "Unable to write to Google Drive: The user's Drive storage quota has been exceeded."
            return "FAILED"
        for name, data in files:
            self.drive.put(name, data)
        return "SUCCEEDED"

    def _geotiffs(self, src: _Source, prefix: str) -> list[tuple[str, bytes]]:
        g = src.grid
        rows = self.file_rows or g.height
        out = []
        for r0 in range(0, g.height, rows):
            part = src.array[:, r0:r0 + rows]
            a, b, c, d, e, f = g.transform
            profile = dict(driver="GTiff", width=g.width, height=part.shape[1], count=part.shape[0],
                           dtype="float32", crs=g.crs, transform=Affine(a, b, c, d, e, f + e * r0))
            with MemoryFile() as mem:
                with mem.open(**profile) as ds:
                    ds.write(np.where(np.isnan(part), FILL, part).astype(np.float32))
                data = bytes(mem.read())
            name = f"{prefix}.tif" if rows >= g.height else f"{prefix}-{r0:010d}-{0:010d}.tif"
            out.append((name, data))
        return out


def sample_plan(product: str, archive_path: Path, grid: Grid, bands: tuple[str, ...] = ("NDWI", "NDWI_count"),
                seed: int = 0) -> tuple[ExportPlan, np.ndarray]:
    """A plan whose image is a distinct constant graph (needs ``ee`` initialised, offline is enough) and
    the array it "computes": random values, a masked corner and masked stripes (NaN)."""
    image = ee.Image.constant([seed + i for i in range(len(bands))]).rename(list(bands)).toFloat()
    rng = np.random.default_rng(seed)
    arr = rng.normal(0.2, 0.3, (len(bands), grid.height, grid.width)).astype(np.float32)
    arr[:, : grid.height // 5, : grid.width // 4] = np.nan
    arr[0, :, ::7] = np.nan
    return ExportPlan(product, Path(archive_path), image, grid, bands, "test"), arr
