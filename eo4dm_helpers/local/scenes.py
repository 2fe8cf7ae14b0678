"""Local scene store: GeoTIFFs in Earth Engine band layouts, described by a small JSON sidecar.

Layout::

    <root>/<collection with '/' replaced by '_'>/<YYYY>/<system:index>.json   sidecar
    <root>/<collection ...>/<YYYY>/<system:index>[.<group>].tif             one or more GeoTIFFs

Sidecar (UTF-8 JSON)::

    {"collection": "COPERNICUS/S2_SR_HARMONIZED", "system:index": "20240312T232121_..._T58KEB",
     "system:time_start": 1710285681000,            # milliseconds since 1970-01-01 UTC
     "properties": {"CLOUDY_PIXEL_PERCENTAGE": 12.5, "MEAN_SOLAR_AZIMUTH_ANGLE": 60.1, ...},
     "bands": {"B4": {"file": "<name>.tif", "band": 1, "dtype": "uint16"}, ...}}

Several files per scene let bands keep their Earth Engine data types (MOD09GA mixes int16,
uint16 and uint32), as real Landsat deliveries keep one file per band. ``file`` may be an absolute
path: ``scene_from_files`` + ``register_scene`` index GeoTIFF/COG files a user already has (one file
per band as ESPA delivers them, or multi-band files) without copying them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window as RioWindow

from ..config import Grid, LocalTile
from ..storage import atomic_path


class SceneError(RuntimeError):
    """A scene file is missing, corrupt or lacks a band."""


def collection_dir(root: Path, collection: str) -> Path:
    return Path(root) / collection.replace("/", "_")


@dataclass(frozen=True)
class Scene:
    collection: str
    index: str
    time_start: datetime  # aware, UTC
    properties: Mapping[str, Any]
    bands: Mapping[str, Mapping[str, Any]]
    folder: Path = field(compare=False)

    def path_of(self, band: str) -> Path:
        try:
            return self.folder / self.bands[band]["file"]
        except KeyError:
            raise SceneError(f"scene {self.index} of {self.collection} has no band {band!r}") from None


def _sidecar(path: Path) -> Scene:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return Scene(
            collection=meta["collection"],
            index=meta["system:index"],
            time_start=datetime.fromtimestamp(meta["system:time_start"] / 1000, UTC),
            properties=meta.get("properties", {}),
            bands=meta["bands"],
            folder=path.parent,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SceneError(f"{path}: unreadable scene sidecar ({exc.__class__.__name__}: {exc})") from None


def list_scenes(root: Path, collection: str, start: datetime, end: datetime) -> list[Scene]:
    """Scenes of ``collection`` with ``start <= time_start < end`` (aware UTC bounds), by time."""
    base = collection_dir(root, collection)
    if not base.is_dir():
        return []
    out = []
    for year in range(start.year - 1, end.year + 1):  # a UTC year may hold a local date of the next
        folder = base / f"{year:04d}"
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.json")):
            s = _sidecar(p)
            if start <= s.time_start < end:
                out.append(s)
    return sorted(out, key=lambda s: (s.time_start, s.index))


def scene_bounds(scene: Scene, crs: str) -> tuple[float, float, float, float]:
    """Bounds in ``crs`` of the files of ``scene`` (headers only)."""
    boxes = []
    for fname in sorted({str(scene.path_of(b)) for b in scene.bands}):
        try:
            with rasterio.open(fname) as src:
                boxes.append(transform_bounds(src.crs, crs, *src.bounds, densify_pts=21))
        except rasterio.errors.RasterioIOError as exc:
            raise SceneError(f"{fname}: unreadable scene file ({exc})") from None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def over_tile(scene: Scene, tile: LocalTile) -> bool:
    """Whether ``scene`` counts for ``tile``: its files overlap the tile's grid and, for a Sentinel-2 scene
    when the tile lists its ``s2_tiles``, its ``MGRS_TILE`` is one of them."""
    mgrs = scene.properties.get("MGRS_TILE")
    if tile.s2_tiles and mgrs is not None and str(mgrs) not in tile.s2_tiles:
        return False
    x0, y0, x1, y1 = scene_bounds(scene, tile.grid.crs)
    g = tile.grid.bounds
    return x0 < g[2] and g[0] < x1 and y0 < g[3] and g[1] < y1


def find_scene(root: Path, collection: str, index: str, year: int) -> Scene | None:
    p = collection_dir(root, collection) / f"{year:04d}" / f"{index}.json"
    return _sidecar(p) if p.exists() else None


# Exact coordinate transformation when the scene and the grid CRSs differ: GDAL's default
# approximation (0.125 px) depends on the requested window, so windowed reads would not reproduce a
# whole-grid read pixel for pixel. Same-CRS reads are affine and unaffected.
EXACT_TOLERANCE = 1e-9


class SceneReader:
    """Reads bands of one scene onto ``grid`` window by window (nearest neighbour, Earth Engine's
    default resampling; DOMAIN.md §1.4 output grid). One ``WarpedVRT`` per file is opened on first
    use and kept until ``close``, so a window read only warps that window.

    Pixels outside the scene footprint are the band's nodata (0 where undefined), which every
    product's rules treat as fill.
    """

    def __init__(self, scene: Scene, grid: Grid):
        self.scene, self.grid = scene, grid
        self._open: dict[str, tuple[Any, WarpedVRT]] = {}

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for src, vrt in self._open.values():
            vrt.close()
            src.close()
        self._open.clear()

    def _vrt(self, fname: str) -> WarpedVRT:
        if fname not in self._open:
            try:
                src = rasterio.open(fname)
            except rasterio.errors.RasterioIOError as exc:
                raise SceneError(f"{fname}: cannot read scene file ({exc})") from None
            g = self.grid
            opts: dict[str, Any] = dict(crs=g.crs, transform=Affine(*g.transform), width=g.width, height=g.height,
                                        resampling=Resampling.nearest)
            if src.nodata is None:
                opts["nodata"] = 0
            if src.crs != CRS.from_user_input(g.crs):
                opts["tolerance"] = EXACT_TOLERANCE
            self._open[fname] = (src, WarpedVRT(src, **opts))
        return self._open[fname][1]

    def footprint(self, names: Iterable[str]) -> tuple[float, float, float, float]:
        """Bounds (in the grid CRS) of the files holding ``names``."""
        boxes = []
        for fname in {str(self.scene.path_of(n)) for n in names}:
            self._vrt(fname)
            src = self._open[fname][0]
            boxes.append(transform_bounds(src.crs, self.grid.crs, *src.bounds, densify_pts=21))
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))

    def read(self, names: Iterable[str], window: RioWindow | None = None) -> dict[str, np.ndarray]:
        """Bands ``names`` over ``window`` of the grid (the whole grid when None)."""
        by_file: dict[str, list[str]] = {}
        for n in names:
            by_file.setdefault(str(self.scene.path_of(n)), []).append(n)
        out: dict[str, np.ndarray] = {}
        for fname, bands in by_file.items():
            idx = [int(self.scene.bands[b].get("band", 1)) for b in bands]
            try:
                data = self._vrt(fname).read(idx, window=window)
            except rasterio.errors.RasterioIOError as exc:
                raise SceneError(f"{fname}: cannot read scene file ({exc})") from None
            for b, arr in zip(bands, data, strict=True):
                out[b] = arr.astype(self.scene.bands[b].get("dtype", arr.dtype), copy=False)
        return out


def open_reader(scene: Scene, grid: Grid) -> SceneReader:
    """The reader of ``scene`` on ``grid``. Scenes of other sources (STAC items, ``eo4dm_helpers.stac``)
    bring their own reader with the same interface (``read(names, window)``, ``footprint``, ``close``)."""
    custom = getattr(scene, "open_reader", None)
    return custom(grid) if custom is not None else SceneReader(scene, grid)


def read_bands(scene: Scene, names: Iterable[str], grid: Grid) -> dict[str, np.ndarray]:
    """Read bands onto the whole of ``grid`` (see ``SceneReader``)."""
    with open_reader(scene, grid) as r:
        return r.read(names)


def scene_from_files(collection: str, index: str, time_start: datetime, files: Mapping[str, str | Path | tuple],
                     properties: Mapping[str, Any] | None = None) -> Scene:
    """A scene over files a user already has: ``files`` maps a band name to a path (band 1) or to
    ``(path, band number)``. Nothing is copied."""
    if time_start.tzinfo is None:
        raise ValueError("time_start must be timezone-aware (UTC)")
    bands = {}
    for name, f in files.items():
        path, band = (f if isinstance(f, tuple) else (f, 1))
        bands[name] = {"file": str(Path(path).resolve()), "band": int(band)}
    return Scene(collection, index, time_start.astimezone(UTC), dict(properties or {}), bands, Path("/"))


def register_scene(root: Path, scene: Scene) -> Path:
    """Write the sidecar of ``scene`` (e.g. from ``scene_from_files``) into the store at ``root``, so
    ``list_scenes`` finds it; its files stay where they are (absolute paths in the sidecar)."""
    folder = collection_dir(root, scene.collection) / f"{scene.time_start.year:04d}"
    bands = {n: {**b, "file": str(scene.path_of(n).resolve())} for n, b in scene.bands.items()}
    meta = {"collection": scene.collection, "system:index": scene.index,
            "system:time_start": int(round(scene.time_start.timestamp() * 1000)),
            "properties": dict(scene.properties), "bands": bands}
    side = folder / f"{scene.index}.json"
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(side) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    return side


def write_scene(
    root: Path,
    collection: str,
    index: str,
    time_start: datetime,
    properties: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, np.ndarray]],
    grid: Grid,
) -> Path:
    """Write one scene: ``groups`` maps a file group name ("" = main file) to {band: 2-D array}.

    All arrays of a group share a dtype. Files are written atomically; the sidecar last, so a scene
    whose sidecar exists is complete.
    """
    if time_start.tzinfo is None:
        raise ValueError("time_start must be timezone-aware (UTC)")
    folder = collection_dir(root, collection) / f"{time_start.astimezone(UTC).year:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    bands_meta: dict[str, dict[str, Any]] = {}
    for group, arrays in groups.items():
        fname = f"{index}{'.' + group if group else ''}.tif"
        stack = np.stack(list(arrays.values()))
        profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=stack.shape[0],
                       dtype=stack.dtype, crs=grid.crs, transform=Affine(*grid.transform),
                       compress="deflate", predictor=2 if stack.dtype.kind in "iu" else 1, tiled=False)
        with atomic_path(folder / fname) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(stack)
            for i, name in enumerate(arrays, start=1):
                dst.set_band_description(i, name)
        for i, (name, arr) in enumerate(arrays.items(), start=1):
            bands_meta[name] = {"file": fname, "band": i, "dtype": str(arr.dtype)}
    meta = {
        "collection": collection,
        "system:index": index,
        "system:time_start": int(round(time_start.timestamp() * 1000)),
        "properties": dict(properties),
        "bands": bands_meta,
    }
    side = folder / f"{index}.json"
    with atomic_path(side) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    return side


def scene_count(root: Path) -> int:
    return sum(1 for _ in Path(root).rglob("*.json")) if Path(root).exists() else 0


__all__ = ["Scene", "SceneError", "SceneReader", "find_scene", "list_scenes", "open_reader", "read_bands",
           "register_scene", "scene_from_files", "write_scene"]
