"""Statistics per zone (commune, province...) of an indicator raster (DOMAIN.md §1.7 zonal stats)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import Affine
from shapely.geometry import mapping, shape
from shapely.ops import transform as shp_transform

from .config import Grid
from .indicators import CLASS_NAMES, class_shares, classify


@dataclass(frozen=True)
class Zone:
    name: str
    geometry: object  # shapely geometry in EPSG:4326


def load_zones(path: Path, name_field: str = "name") -> list[Zone]:
    """Zones from a GeoJSON FeatureCollection in EPSG:4326."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        feats = data["features"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable GeoJSON FeatureCollection ({exc})") from None
    out = []
    for i, f in enumerate(feats):
        props = f.get("properties") or {}
        if name_field not in props:
            raise ValueError(f"{path}: feature {i} has no property {name_field!r} (territory.zone_name_field)")
        out.append(Zone(str(props[name_field]), shape(f["geometry"])))
    return out


def zone_masks(zones: list[Zone], grid: Grid) -> dict[str, np.ndarray]:
    """Boolean mask of each zone on ``grid`` (pixel centres inside the polygon)."""
    to_grid = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform
    out = {}
    for z in zones:
        g = shp_transform(to_grid, z.geometry)
        out[z.name] = rasterize([(mapping(g), 1)], out_shape=(grid.height, grid.width),
                                transform=Affine(*grid.transform), fill=0, dtype="uint8").astype(bool)
    return out


def zone_table(values: np.ndarray, qscore: np.ndarray, masks: dict[str, np.ndarray], breaks: tuple[float, ...],
               indicator: str) -> list[dict[str, object]]:
    """mean/min/max/std/QSCORE and % of area per class, one row per zone with data."""
    codes = classify(values, breaks)
    rows = []
    for name, m in masks.items():
        v = values[m & ~np.isnan(values)]
        if v.size == 0:
            continue
        shares = class_shares(codes, m)
        mean = float(v.mean())
        rows.append({
            "zone": name, "indicator": indicator, "pixels": int(v.size), "mean": round(mean, 4),
            "min": round(float(v.min()), 4), "max": round(float(v.max()), 4), "std": round(float(v.std()), 4),
            "qscore": round(float(np.nanmean(qscore[m])), 3),
            "class": CLASS_NAMES[int(classify(np.array([mean]), breaks)[0]) - 1],
            **{f"% {k}": round(100 * s, 1) for k, s in shares.items()},
            "% in drought": round(100 * sum(shares[k] for k in CLASS_NAMES[:3]), 1),
        })
    return rows
