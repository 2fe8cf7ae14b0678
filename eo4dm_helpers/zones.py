"""Statistics per zone (commune, province...) of an indicator (DOMAIN.md §1.7 zonal statistics).

Zones come from a GeoJSON FeatureCollection or a shapefile (``territory.zones``) and are returned in
EPSG:4326. A GeoJSON is lon/lat unless it declares its CRS (the 2008 ``crs`` member, e.g.
``urn:ogc:def:crs:EPSG::3163``), a shapefile unless it has a ``.prj``; a declared CRS is honoured
(reprojected) and an unknown one refused. The layer is checked when the parameters load
(``config.load_config``) and any problem is a :class:`~eo4dm_helpers.config.ConfigError` naming
``territory.zones``, the file and the feature: no feature, a null, empty, non-polygon or invalid
geometry (shapely's reason; nothing is repaired silently), repeated zone names (their statistics would
merge), lon/lat out of range. Statistics are accumulated window by window, so a 10 m tile never has to
be in memory.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
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

from .config import ConfigError, Grid
from .indicators import CLASS_NAMES, VEG_BARE, VEG_DENSE, classify

KEY = "territory.zones"
WGS84 = CRS.from_epsg(4326)


def reproject(geom, src: str | CRS, dst: str | CRS):
    """A shapely geometry from one CRS to another (always x, y order)."""
    t = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda x, y: t.transform(x, y), interleaved=False)


@dataclass(frozen=True)
class Zone:
    name: str
    geometry: object  # shapely geometry in EPSG:4326


def load_zones(path: Path, name_field: str = "name") -> list[Zone]:
    """The zones of a GeoJSON or shapefile layer in EPSG:4326, validated (see the module's notes)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{KEY}: {path} does not exist" if not path.exists() else f"{KEY}: {path} is not a file")
    read = _read_shapefile if path.suffix.lower() == ".shp" else _read_geojson
    features, crs = read(path, name_field)
    return _validated(path, features, crs)


def _fail(path: Path, msg: str) -> ConfigError:
    return ConfigError(f"{KEY}: {path}: {msg}")


def _read_geojson(path: Path, name_field: str) -> tuple[list[tuple[object, object]], CRS | None]:
    """``[(name or None, geometry or error text)]`` and the declared CRS (None: lon/lat by default)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text: not a GeoJSON file") from None
    except (ValueError, RecursionError):
        raise _fail(path, "not JSON: not a GeoJSON file") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise _fail(path, "not a GeoJSON FeatureCollection")
    crs = _declared_crs(path, doc.get("crs"))
    out: list[tuple[object, object]] = []
    for i, f in enumerate(doc["features"]):
        if not isinstance(f, dict):
            raise _fail(path, f"feature {i} is not a GeoJSON Feature")
        props = f.get("properties") or {}
        if not isinstance(props, dict) or name_field not in props:
            raise _fail(path, f"feature {i} has no property {name_field!r} (territory.zone_name_field)")
        out.append((props[name_field], _geometry(f.get("geometry"))))
    return out, crs


def _declared_crs(path: Path, member: object) -> CRS | None:
    if member is None:
        return None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) and member.get("type") == "name" \
        and isinstance(member.get("properties"), dict) else None
    if not isinstance(name, str):
        raise _fail(path, 'unsupported "crs" member (expected {"type": "name", "properties": {"name": '
                          '"urn:ogc:def:crs:EPSG::<code>"}})')
    try:
        return CRS.from_user_input(name)
    except Exception:  # pyproj.exceptions.CRSError and friends
        raise _fail(path, f"declares an unknown CRS {name[:80]!r}") from None


def _geometry(obj: object) -> object:
    """A shapely geometry, None for a null geometry, or the reason it cannot be read (a string)."""
    if obj is None:
        return None
    try:
        return shape(obj)
    except Exception as exc:  # shapely raises ValueError, TypeError, GeometryTypeError, GEOSException...
        return f"malformed geometry ({exc.__class__.__name__}: {' '.join(str(exc).split())[:120]})"


def _read_shapefile(path: Path, name_field: str) -> tuple[list[tuple[object, object]], CRS | None]:
    import shapefile  # pyshp

    prj = path.with_suffix(".prj")
    crs = None
    if prj.exists():
        try:
            crs = CRS.from_wkt(prj.read_text(encoding="utf-8", errors="replace"))
        except Exception:  # pyproj.exceptions.CRSError
            raise _fail(path, f"{prj.name} holds no CRS that PROJ knows") from None
    quiet = logging.getLogger("shapefile")  # pyshp logs and warns about what the checks below judge
    was, quiet.disabled = quiet.disabled, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _shapefile_features(shapefile, path, name_field)
    except ConfigError:
        raise
    except Exception as exc:  # pyshp raises ShapefileException, struct.error, OSError... on damaged files
        raise _fail(path, f"unreadable shapefile ({exc.__class__.__name__})") from None
    finally:
        quiet.disabled = was
    return out, crs


def _shapefile_features(shapefile, path: Path, name_field: str) -> list[tuple[object, object]]:
    with shapefile.Reader(str(path)) as reader:
        fields = [f[0] for f in reader.fields[1:]]
        if name_field not in fields:
            raise _fail(path, f"no attribute {name_field!r} (territory.zone_name_field); has {fields}")
        return [(rec.record[name_field], None if rec.shape.shapeType == shapefile.NULL
                 else _geometry(rec.shape.__geo_interface__)) for rec in reader.iterShapeRecords()]


def _validated(path: Path, features: list[tuple[object, object]], crs: CRS | None) -> list[Zone]:
    if not features:
        raise _fail(path, "no features: the layer is empty")
    geographic = crs is None or crs.equals(WGS84, ignore_axis_order=True)
    first: dict[str, int] = {}
    out = []
    for i, (raw_name, geom) in enumerate(features):
        name = "" if raw_name is None else str(raw_name)
        what = f"feature {i} ({name!r})"
        if not name.strip():
            raise _fail(path, f"feature {i} has an empty zone name (territory.zone_name_field)")
        if name in first:
            raise _fail(path, f"{what}: zone name already used by feature {first[name]}: zone names must be unique "
                              "(their statistics would merge)")
        first[name] = i
        if geom is None:
            raise _fail(path, f"{what}: no geometry (null)")
        if isinstance(geom, str):
            raise _fail(path, f"{what}: {geom}")
        if geom.is_empty:
            raise _fail(path, f"{what}: empty geometry")
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise _fail(path, f"{what}: a {geom.geom_type}, not a polygon (zones are areas)")
        if not all(math.isfinite(v) for v in geom.bounds):
            raise _fail(path, f"{what}: coordinates that are not finite numbers")
        if not geom.is_valid:
            raise _fail(path, f"{what}: invalid geometry ({shapely.is_valid_reason(geom)}); repair it in a GIS "
                              "(e.g. QGIS Fix geometries)")
        if not geographic:
            geom = reproject(geom, crs, WGS84)
            if not all(math.isfinite(v) for v in geom.bounds):
                raise _fail(path, f"{what}: outside the area of its declared CRS ({crs.to_string()})")
        x0, y0, x1, y1 = geom.bounds
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            hint = ("; the layer declares no CRS: declare it (GeoJSON \"crs\" member, shapefile .prj)"
                    if crs is None else "")
            raise _fail(path, f"{what}: coordinates outside longitude/latitude ranges (x {x0:.6g} to {x1:.6g}, "
                              f"y {y0:.6g} to {y1:.6g}){hint}")
        out.append(Zone(name, geom))
    return out


def zone_masks(zones: list[Zone], grid: Grid, window: Window | None = None) -> dict[str, np.ndarray]:
    """Boolean mask of each zone on ``grid`` or on one window of it (pixel centres inside). On a lon/lat
    grid past 180° the zones (given in -180..180) are placed with copies shifted by 360° (eo4dm_helpers.geo)."""
    from .geo import on_grid_lons

    win = window or Window(0, 0, grid.width, grid.height)
    tr = window_transform(win, Affine(*grid.transform))
    out = {}
    for z in zones:
        g = on_grid_lons(reproject(z.geometry, "EPSG:4326", grid.crs), grid)
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
    affected: int = 0  # FAO ASIS: values < the scheme's ``affected`` threshold
    record: np.ndarray | None = None  # pixels with a RECORD mark: [with a mark, below every year, above every year]
    veg: np.ndarray | None = None  # VAI vegetation filter: [land (reference NDVI), bare soil, dense vegetation]


class ZoneStats:
    """Streaming mean/min/max/std/QSCORE and share of area per class, per zone and indicator; with the
    "beyond the record" shares of VCI/TCI and the land the VAI vegetation filter removed."""

    def __init__(self) -> None:
        self._acc: dict[tuple[str, str], _Acc] = {}

    def add(self, indicator: str, masks: dict[str, np.ndarray], values: np.ndarray, qscore: np.ndarray,
            breaks: tuple[float, ...], record: np.ndarray | None = None) -> None:
        """``breaks``: a tuple or an indicators.ClassScheme; ``record``: the RECORD band (-1/0/+1/NaN,
        indicators.beyond_record) of the same window."""
        codes = classify(values, breaks)
        affected = getattr(breaks, "affected", None)
        for zone, m in masks.items():
            if record is not None:
                r = record[m & ~np.isnan(record)]
                if r.size:
                    a = self._acc.setdefault((indicator, zone), _Acc())
                    a.record = (a.record if a.record is not None else np.zeros(3, np.int64)) + \
                        [r.size, np.count_nonzero(r < 0), np.count_nonzero(r > 0)]
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
            if affected is not None:
                a.affected += int(np.count_nonzero(v < affected))

    def add_filter(self, indicator: str, masks: dict[str, np.ndarray], veg: np.ndarray) -> None:
        """Accumulate the VAI vegetation filter band (indicators.VEG_KEPT / VEG_BARE / VEG_DENSE, NaN where the
        reference NDVI is unknown): land = pixels with a reference NDVI."""
        for zone, m in masks.items():
            f = veg[m & ~np.isnan(veg)]
            if f.size:
                a = self._acc.setdefault((indicator, zone), _Acc())
                a.veg = (a.veg if a.veg is not None else np.zeros(3, np.int64)) + \
                    [f.size, np.count_nonzero(f == VEG_BARE), np.count_nonzero(f == VEG_DENSE)]

    def rows(self, indicator: str, breaks: tuple[float, ...], drought_classes: int | None = None
             ) -> list[dict[str, object]]:
        """One row per zone; class columns named after the scheme's classes (``breaks.names``), "% in drought"
        over its drought classes; "% < 35 (FAO ASIS)" when the scheme has an affected threshold; "% below record"
        / "% above record" for indicators with a RECORD band; "% VAI filtered ..." for VAI. A zone whose every
        pixel the VAI filter removed still gets a row (0 pixels), so the desert is visible."""
        names = getattr(breaks, "names", CLASS_NAMES)
        drought = drought_classes or getattr(breaks, "drought", 3)
        affected = getattr(breaks, "affected", None)
        out = []
        for (ind, zone), a in self._acc.items():
            if ind != indicator:
                continue
            row: dict[str, object] = {"zone": zone, "indicator": ind, "pixels": a.n}
            if a.n:
                mean = a.s / a.n
                shares = a.classes / a.n
                row.update({
                    "mean": round(mean, 4), "min": round(a.mn, 4), "max": round(a.mx, 4),
                    "std": round(float(np.sqrt(max(a.ss / a.n - mean * mean, 0.0))), 4),
                    "qscore": round(a.q / a.n, 3),
                    "class": names[int(classify(np.array([mean]), breaks)[0]) - 1],
                    **{f"% {k}": round(100 * float(s), 1) for k, s in zip(names, shares, strict=True)},
                    "% in drought": round(100 * float(shares[:drought].sum()), 1),
                })
                if affected is not None:
                    row[f"% < {affected:g} (FAO ASIS)"] = round(100 * a.affected / a.n, 1)
            if a.record is not None:
                row["% below record"] = round(100 * float(a.record[1] / a.record[0]), 1)
                row["% above record"] = round(100 * float(a.record[2] / a.record[0]), 1)
            if a.veg is not None:
                row["% VAI filtered (bare soil)"] = round(100 * float(a.veg[1] / a.veg[0]), 1)
                row["% VAI filtered (dense vegetation)"] = round(100 * float(a.veg[2] / a.veg[0]), 1)
            out.append(row)
        return out
