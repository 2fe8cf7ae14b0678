"""Statistics per zone (commune, province...) of an indicator (DOMAIN.md §1.7 zonal statistics).

Zones come from a GeoJSON or a shapefile (any CRS with a .prj, EPSG:4326 otherwise). Statistics are
accumulated window by window, so a 10 m tile never has to be in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry import mapping, shape

from .config import Grid
from .indicators import CLASS_NAMES, classify


def reproject(geom, src: str | CRS, dst: str | CRS):
    """A shapely geometry from one CRS to another (always x, y order)."""
    t = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda x, y: t.transform(x, y), interleaved=False)


@dataclass(frozen=True)
class Zone:
    name: str
    geometry: object  # shapely geometry in EPSG:4326


def load_zones(path: Path, name_field: str = "name") -> list[Zone]:
    """Zones from a GeoJSON FeatureCollection (EPSG:4326) or a shapefile (CRS from its .prj)."""
    path = Path(path)
    if path.suffix.lower() == ".shp":
        return _load_shapefile(path, name_field)
    try:
        feats = json.loads(path.read_text(encoding="utf-8"))["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable GeoJSON FeatureCollection ({exc.__class__.__name__})") from None
    out = []
    for i, f in enumerate(feats):
        props = f.get("properties") or {}
        if name_field not in props:
            raise ValueError(f"{path}: feature {i} has no property {name_field!r} (territory.zone_name_field)")
        out.append(Zone(str(props[name_field]), shape(f["geometry"])))
    return out


def _load_shapefile(path: Path, name_field: str) -> list[Zone]:
    import shapefile  # pyshp

    try:
        reader = shapefile.Reader(str(path))
    except (shapefile.ShapefileException, OSError) as exc:
        raise ValueError(f"{path}: unreadable shapefile ({exc})") from None
    fields = [f[0] for f in reader.fields[1:]]
    if name_field not in fields:
        raise ValueError(f"{path}: no attribute {name_field!r} (territory.zone_name_field); has {fields}")
    prj = path.with_suffix(".prj")
    crs = CRS.from_wkt(prj.read_text(encoding="utf-8", errors="replace")) if prj.exists() else CRS.from_epsg(4326)
    out = []
    for rec in reader.iterShapeRecords():
        geom = shape(rec.shape.__geo_interface__)
        if not crs.equals(CRS.from_epsg(4326)):
            geom = reproject(geom, crs, "EPSG:4326")
        out.append(Zone(str(rec.record[name_field]), geom))
    return out


def zone_masks(zones: list[Zone], grid: Grid, window: Window | None = None) -> dict[str, np.ndarray]:
    """Boolean mask of each zone on ``grid`` or on one window of it (pixel centres inside)."""
    win = window or Window(0, 0, grid.width, grid.height)
    tr = window_transform(win, Affine(*grid.transform))
    out = {}
    for z in zones:
        g = reproject(z.geometry, "EPSG:4326", grid.crs)
        out[z.name] = rasterize([(mapping(g), 1)], out_shape=(int(win.height), int(win.width)), transform=tr,
                                fill=0, dtype="uint8").astype(bool)
    return out


@dataclass
class _Acc:
    n: int = 0
    s: float = 0.0
    ss: float = 0.0
    mn: float = np.inf
    mx: float = -np.inf
    q: float = 0.0
    classes: np.ndarray = field(default_factory=lambda: np.zeros(len(CLASS_NAMES), np.int64))


class ZoneStats:
    """Streaming mean/min/max/std/QSCORE and share of area per class, per zone and indicator."""

    def __init__(self) -> None:
        self._acc: dict[tuple[str, str], _Acc] = {}

    def add(self, indicator: str, masks: dict[str, np.ndarray], values: np.ndarray, qscore: np.ndarray,
            breaks: tuple[float, ...]) -> None:
        codes = classify(values, breaks)
        for zone, m in masks.items():
            sel = m & ~np.isnan(values)
            if not sel.any():
                continue
            v = values[sel].astype(np.float64)
            a = self._acc.setdefault((indicator, zone), _Acc())
            a.n += v.size
            a.s += float(v.sum())
            a.ss += float((v * v).sum())
            a.mn, a.mx = min(a.mn, float(v.min())), max(a.mx, float(v.max()))
            a.q += float(np.nan_to_num(qscore[sel]).sum())
            a.classes += np.bincount(codes[sel], minlength=len(CLASS_NAMES) + 1)[1:]

    def rows(self, indicator: str, breaks: tuple[float, ...], drought_classes: int = 3) -> list[dict[str, object]]:
        out = []
        for (ind, zone), a in self._acc.items():
            if ind != indicator:
                continue
            mean = a.s / a.n
            shares = a.classes / a.n
            out.append({
                "zone": zone, "indicator": ind, "pixels": a.n, "mean": round(mean, 4), "min": round(a.mn, 4),
                "max": round(a.mx, 4), "std": round(float(np.sqrt(max(a.ss / a.n - mean * mean, 0.0))), 4),
                "qscore": round(a.q / a.n, 3),
                "class": CLASS_NAMES[int(classify(np.array([mean]), breaks)[0]) - 1],
                **{f"% {k}": round(100 * float(s), 1) for k, s in zip(CLASS_NAMES, shares, strict=True)},
                "% in drought": round(100 * float(shares[:drought_classes].sum()), 1),
            })
        return out
