"""Run parameters: YAML files parsed into validated, frozen dataclasses.

Every problem (unknown key, wrong type, impossible value) raises :class:`ConfigError` with one
line naming the key, e.g. ``params/demo.yaml: indicators.alpha: must be between 0 and 1, got 1.5``.
Relative paths are resolved against the directory of the YAML file.

Hostile files are refused, never half-read: more than 1 MiB, not UTF-8, anchors and aliases (a
parameter file never needs them, and refusing them rules out any "billion laughs" expansion), merge
keys, nesting deeper than 32 levels, a key given twice (PyYAML would keep the last silently) and
impossible dates (``2024-02-30``) all give one line with the file, the line and the key.

A wrong type is reported with the key, the expected type and the *kind* of value found ("got a
list"), never the value: a password put in the wrong place must not be printed. Values are quoted
only by the checks of non-secret settings where it helps (unknown time zone or CRS, out-of-range
numbers, a misspelt choice), never under ``credentials``. The zone layer (``territory.zones``) is
validated as the file loads (:func:`eo4dm_helpers.zones.load_zones`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from .dekads import Dekad, DekadError


class ConfigError(ValueError):
    """A parameter is missing, unknown, of the wrong type or impossible."""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SensorPeriod:
    """A sensor and the dates it is valid for (inclusive; ``end: null`` = still operating)."""

    name: str
    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Territory:
    name: str
    code: str
    timezone: str
    # lon_min, lat_min, lon_max, lat_max in EPSG:4326 (lon_min > lon_max: across 180°, RFC 7946 §5.2), or
    # x_min, y_min, x_max, y_max in ``bbox_crs``; read it through :attr:`lonlat` (eo4dm_helpers.geo)
    bbox: tuple[float, float, float, float]
    zones: Path | None = None  # polygon layer (GeoJSON) for statistics per zone
    zone_name_field: str = "name"
    outline: Path | None = None  # coastline drawn on maps (GeoJSON), optional
    bbox_crs: str = "EPSG:4326"

    @property
    def lonlat(self) -> tuple[float, float, float, float]:
        """The bbox in lon/lat (RFC 7946 form: lon_min > lon_max across 180°), whatever ``bbox_crs``."""
        from .geo import territory_lonlat

        return territory_lonlat(self)


@dataclass(frozen=True)
class Grid:
    """A fixed output grid: CRS, full affine transform and shape, lossless (ARCHITECTURE.md §7, odc-geo's
    ``GeoBox``).

    ``Grid(crs, x0, y0, resolution, width, height)`` is the usual north-up grid with square pixels: origin
    (upper-left corner), pixel size. ``y_resolution`` (pixel height, positive north-up) and ``rotation``
    (the affine's b and d terms) complete the affine for any other grid; :meth:`from_affine` builds one
    from a transform, :meth:`from_geobox` from an odc-geo ``GeoBox``. Grid guards compare with
    :meth:`same_as` (CRS equal as CRSs, transform within a tiny tolerance, shape exact).
    """

    crs: str
    x0: float
    y0: float
    resolution: float  # pixel width (affine a)
    width: int
    height: int
    y_resolution: float | None = None  # pixel height (affine e = -y_resolution); None: square pixels
    rotation: tuple[float, float] = (0.0, 0.0)  # affine b (row term of x) and d (column term of y)

    @classmethod
    def from_affine(cls, crs: Any, transform: Any, width: int, height: int) -> Grid:
        """The grid of a raster: ``crs`` (string, rasterio or pyproj CRS) and a 6-term transform
        (``affine.Affine`` or (a, b, c, d, e, f))."""
        a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
        crs_text = "" if crs is None else crs if isinstance(crs, str) else crs.to_string()  # "": no CRS
        return cls(crs_text, c, f, a, int(width), int(height), None if e == -a else -e, (b, d))

    @classmethod
    def from_geobox(cls, gbox: Any) -> Grid:
        """From an odc-geo ``GeoBox``."""
        h, w = gbox.shape
        return cls.from_affine(gbox.crs.to_wkt() if gbox.crs.epsg is None else f"EPSG:{gbox.crs.epsg}",
                               gbox.affine, w, h)

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """Affine coefficients (a, b, c, d, e, f) as rasterio/Earth Engine ``crsTransform`` order."""
        yres = self.resolution if self.y_resolution is None else self.y_resolution
        b, d = self.rotation
        return (self.resolution, b, self.x0, d, -yres, self.y0)

    @property
    def affine(self) -> Any:
        """The transform as an ``affine.Affine``."""
        from affine import Affine

        return Affine(*self.transform)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def geobox(self) -> Any:
        """The same grid as an odc-geo ``GeoBox``."""
        from odc.geo.geobox import GeoBox

        return GeoBox(self.shape, self.affine, self.crs)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid's four corners in its CRS."""
        t = self.affine
        xs, ys = zip(*(t @ (c, r) for c in (0, self.width) for r in (0, self.height)), strict=True)
        return (min(xs), min(ys), max(xs), max(ys))

    def mismatch(self, other: Grid, rtol: float = 1e-6) -> str | None:
        """What differs from ``other`` (CRS, shape, transform term), or None when the grids are the same:
        CRSs equal as CRSs (pyproj), shape exact, every transform term within ``rtol`` of the pixel size."""
        if not same_crs(self.crs, other.crs):
            return f"CRS {self.crs} != {other.crs}"
        if self.shape != other.shape:
            return f"shape {self.width} x {self.height} != {other.width} x {other.height} px"
        tol = rtol * max(abs(v) for v in (*self.transform[:2], *self.transform[3:5]))
        for name, x, y in zip("abcdef", self.transform, other.transform, strict=True):
            if abs(x - y) > tol:
                return f"transform {name} {x!r} != {y!r}"
        return None

    def same_as(self, other: Grid, rtol: float = 1e-6) -> bool:
        return self.mismatch(other, rtol) is None

    def __str__(self) -> str:
        return f"{self.crs} {self.width} x {self.height} px, transform {list(self.transform)}"


@functools.lru_cache(maxsize=64)
def same_crs(a: str, b: str) -> bool:
    """Whether two CRS texts name the same CRS (pyproj comparison, "EPSG:32758" == its WKT)."""
    from pyproj import CRS

    if a == b or not (a and b):
        return a == b
    return CRS.from_user_input(a) == CRS.from_user_input(b)


@dataclass(frozen=True)
class GlobalChain:
    enabled: bool
    grid: Grid
    ndwi_sensors: tuple[SensorPeriod, ...]  # medium-resolution reflectance sensors (NDWI and NDVI)
    lst_sensors: tuple[SensorPeriod, ...] = ()  # empty: no LST, hence no TCI or VHI
    daily_nan_max: float = 0.95  # DOMAIN.md §1.3: daily product dropped when > 95 % of land is masked
    lst_qc_mask: bool = True  # DOMAIN.md §1.10 item 3: EO4DM had none
    # composites the chain produces (NDVI, NDWI, LST); null: the convention's VCI index, NDWI, and LST when
    # lst_sensors are listed (eo4dm_helpers.capabilities)
    indices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Calibration:
    """``y = a·x + b`` to Landsat-8 (DOMAIN.md §1.4 table)."""

    ndwi: tuple[float, float]
    ndvi: tuple[float, float]


@dataclass(frozen=True)
class LocalThresholds:
    # DOMAIN.md §1.4 (EO4DM values)
    scene_cloud_cover_max: float = 90.0
    cloud_probability: float = 50.0
    cloud_score_plus_clear: float = 0.6
    nir_dark: float = 0.15
    cloud_projection_km: float = 1.0
    buffer_m: float = 50.0
    aot_max: float = 0.3  # S2 AOT x 0.001 (OPA_THRESH; EO4DM's 1e4 scale was a bug, §1.10 item 1)
    l7_opacity_max: float = 0.3  # L7 SR_ATMOS_OPACITY x 0.001 (§1.4, §4.3: > 0.3 haze/cloud)
    ndvi_water: float = 0.03
    composite_nan_max: float = 0.5  # DOMAIN.md §1.5 COMP_NAN_THRESH
    scene_nan_max: float = 0.95  # DOMAIN.md §1.4: Landsat scene dropped when more land is masked


@dataclass(frozen=True)
class LocalTile:
    """A processing tile of the local chain (EO4DM: a Landsat WRS-2 path/row, DOMAIN.md §1.2) with its 10 m
    grid and the Sentinel-2 MGRS tiles whose scenes it reads (empty: every S2 scene over the grid)."""

    id: str
    grid: Grid
    s2_tiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalChain:
    enabled: bool
    sensors: tuple[SensorPeriod, ...] = ()
    # empty: the tiles discovered over the territory, cached in the archive (eo4dm_helpers.territory_tiles)
    tiles: tuple[LocalTile, ...] = ()
    s2_cloud_source: Literal["cloud_score_plus", "s2cloudless"] = "cloud_score_plus"
    # "archive": apply the coefficients fitted by notebooks/tools/inter_sensor_calibration (good or usable
    # fits only) instead of the ``calibration`` table below
    calibration_source: Literal["parameters", "archive"] = "parameters"
    thresholds: LocalThresholds = field(default_factory=LocalThresholds)
    calibration: dict[str, Calibration] = field(default_factory=dict)
    source: Literal["scenes", "stac"] = "scenes"  # stac: S2/Landsat scenes from ``stac.highres`` (issue #10)
    indices: tuple[str, ...] = ("NDVI", "NDWI")  # composites of the tiles; VAI from NDWI, else NDVI


@dataclass(frozen=True)
class Reference:
    """Historical reference: all years before the dekad's year, or a fixed baseline."""

    mode: Literal["previous_years", "fixed"] = "previous_years"
    start_year: int | None = None
    end_year: int | None = None
    min_years: int = 3


@dataclass(frozen=True)
class Indicators:
    # standard = Kogan/FAO: VCI from NDVI, 0-100, drought VHI < 40, FAO ASIS share VHI < 35 (indicators.KOGAN_SCHEME)
    convention: Literal["eo4dm", "standard"] = "eo4dm"
    alpha: float = 0.5
    reference: Reference = field(default_factory=Reference)
    # VAI is not computed where the reference mean NDVI is < vai_bare_soil_ndvi (bare soil: NDVI <= 0.1 barren,
    # 0.2-0.3 shrub/grass, NASA Earth Observatory "Measuring Vegetation"; long-term mean NDVI < 0.2 masked as bare
    # ground with GIMMS NDVI3g, greenbrown/Forkel et al. 2013) or > vai_dense_vegetation_ndvi (closed canopy, where
    # NDVI saturates: Huete et al. 2002 RSE 83:195-213). EO4DM has no such filter (indicators.VAI_FILTER_SOURCES).
    vai_bare_soil_ndvi: float = 0.2
    vai_dense_vegetation_ndvi: float = 0.8
    provisional_dekads: int = 3


@dataclass(frozen=True)
class Paths:
    archive: Path
    output: Path
    scenes: Path | None = None  # local engine: root of the local scene store


@dataclass(frozen=True)
class AvailabilityRules:
    """When a dekad is ready (EO4DM: every daily granule, >= 5 S2 scenes per tile, >= 2 Landsat)."""

    s2_min: int = 5  # per tile: Sentinel-2 scenes over it (of its ``s2_tiles`` when listed) in the dekad
    landsat_min: int = 2  # per tile: Landsat scenes over it (all sensors, all overlapping paths) in the dekad
    max_wait_days: int = 15  # after the dekad's end, process with what exists (and say so)


@dataclass(frozen=True)
class Download:
    """How Earth Engine composites come home (issue 6): direct tiled computePixels or Drive export."""

    method: Literal["auto", "direct", "drive"] = "auto"  # auto: direct when it fits a few requests
    concurrency: int = 4  # parallel computePixels requests
    drive_folder: str = "eo4dm_exports"
    drive_auth: Literal["service_account", "user"] = "user"  # service accounts have no Drive storage
    drive_client_secrets: Path | None = None  # OAuth client of the user route
    drive_token: Path | None = None  # saved user token (written by the first interactive login)


@dataclass(frozen=True)
class Credentials:
    ee_key_file: Path | None = None  # or environment variable EO4DM_EE_KEY; never printed
    ee_project: str | None = None
    # Copernicus Data Space (SLSTR downloads): or EO4DM_CDSE_USER / EO4DM_CDSE_PASSWORD; never printed
    cdse_user: str | None = None
    cdse_password: str | None = None


CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
STAC_PRODUCTS = ("S2", "L7", "L8", "L9", "SLSTR")


@dataclass(frozen=True)
class StacSource:
    """A STAC catalogue the chains read from (eo4dm_helpers.stac, DOMAIN.md §4.6)."""

    url: str  # STAC API root (…/v1), or a static catalogue (catalog.json path or URL)
    assets: Literal["earth-search", "planetary-computer", "cdse", "digital-earth-pacific"]  # asset-name map
    collections: dict[str, str] = field(default_factory=dict)  # S2/L7/L8/L9/SLSTR -> id; default: the map's
    credentials: Literal["none", "cdse"] = "none"  # cdse: downloads with the CDSE user's token


@dataclass(frozen=True)
class Stac:
    slstr: StacSource | None = None  # global chain: SL_2_LST swaths (global_chain.lst_sensors name SLSTR)
    highres: StacSource | None = None  # local chain: S2 L2A and Landsat C2 L2 (local_chain.source: stac)
    cache: Path | None = None  # downloaded swath files; default <output>/cache/stac
    chunk: int = 1024  # dask chunk side (px) of STAC scenes on the output grid (the engine's window)
    swath_radius_m: float = 1500.0  # nearest-neighbour search radius, swath → grid (SLSTR ~1 km pixels)
    token_url: str = CDSE_TOKEN_URL


@dataclass(frozen=True)
class Config:
    territory: Territory
    backend: Literal["earthengine", "local"]
    paths: Paths
    global_chain: GlobalChain
    local_chain: LocalChain = field(default_factory=lambda: LocalChain(enabled=False))  # absent: no local chain
    indicators: Indicators = field(default_factory=Indicators)
    credentials: Credentials = field(default_factory=Credentials)
    download: Download = field(default_factory=Download)
    availability: AvailabilityRules = field(default_factory=AvailabilityRules)
    stac: Stac = field(default_factory=Stac)
    binning: Literal["local", "utc"] = "local"
    as_of: date | None = None  # "today" for the latest complete dekad; null = the real today
    history_start: date | None = None  # first day of the reference that `run_all.py --backfill` builds
    source: Path | None = None  # the YAML file this came from

    @property
    def timezone(self) -> str:
        """Time zone used to bin scenes into dekads (DOMAIN.md §3.4; daily products: their UTC product day)."""
        return self.territory.timezone if self.binning == "local" else "UTC"

    def today(self) -> date:
        return self.as_of or date.today()


# --------------------------------------------------------------------------------------------
# Generic loader
# --------------------------------------------------------------------------------------------
_SCALAR_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is Path:
        return "a path"
    if tp is date:
        return "a date YYYY-MM-DD"
    if tp in _SCALAR_NAMES:
        return _SCALAR_NAMES[tp]
    if origin in (tuple, list):
        return "a list"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _found(value: Any) -> str:
    """What kind of value was found, never the value itself (it may be a misplaced secret)."""
    if value is None:
        return "null"
    if isinstance(value, _BadDate):
        return "an impossible date"
    kinds = ((bool, "true or false"), (int, "an integer"), (float, "a number"), (str, "a string"),
             (datetime, "a date and time"), (date, "a date"), (bytes, "binary data"), (dict, "a mapping"),
             (list | tuple, "a list"), (set, "a set"))
    return next((name for t, name in kinds if isinstance(value, t)), "a value of another kind")


def _date_reason(exc: Exception) -> str:
    """Why a date is impossible, from datetime's message when it does not quote the value."""
    msg = str(exc)
    return msg if ("range" in msg or "must be in" in msg) and "'" not in msg else "expected YYYY-MM-DD"


def _secret_key(key: str) -> bool:
    """Keys whose values are never quoted in a message (``credentials.*``, ``stac.*.credentials``)."""
    return "credentials" in key.replace("[", ".").split(".")


def _wrong(key: str, tp: Any, value: Any) -> ConfigError:
    hint = " (quote it to keep it as text)" if tp is str and isinstance(value, bool | date | float) else ""
    return ConfigError(f"{key}: must be {_type_name(tp)}, got {_found(value)}{hint}")


def _convert(value: Any, tp: Any, key: str, base: Path) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, base)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else _wrong(key, tp, value)
    if value is None:
        raise ConfigError(f"{key}: must be {_type_name(tp)}, got null")
    if isinstance(value, _BadDate) and tp is not date:
        raise _wrong(key, tp, value)
    if origin is Literal:
        if value not in typing.get_args(tp):
            shown = f"{value!r}" if isinstance(value, str) and not _secret_key(key) and len(value) <= 40 \
                else _found(value)
            raise ConfigError(f"{key}: must be {_type_name(tp)}, got {shown}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, base)
    if tp is bool:
        if not isinstance(value, bool):
            raise _wrong(key, tp, value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(key, tp, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(key, tp, value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value}")
        return float(value)
    if tp is str:
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _wrong(key, tp, value)
        return str(value)
    if tp is Path:
        if not isinstance(value, str):
            raise _wrong(key, tp, value)
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (base / p).resolve()
    if tp is date:
        if isinstance(value, _BadDate):
            raise ConfigError(f"{key}: not a valid date YYYY-MM-DD ({value.reason}, line {value.line})")
        if isinstance(value, datetime) or not isinstance(value, date | str):
            raise _wrong(key, tp, value)
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: not a valid date YYYY-MM-DD ({_date_reason(exc)})") from None
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise _wrong(key, tp, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", base) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: must be a list of {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]", base) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        kt, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise _wrong(key, tp, value)
        return {_convert(k, kt, key, base): _convert(v, vt, f"{key}.{k}", base) for k, v in value.items()}
    raise TypeError(f"unsupported schema type {tp!r} at {key}")  # programming error


def _build(cls: type, data: Any, prefix: str, base: Path) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'file'}: must be a mapping, got {_found(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not (cls is Config and f.name == "source")}
    for k in data:
        if k not in fields:
            expected = f"expected one of: {', '.join(fields)}"
            if _secret_key(prefix):  # the "key" may be a secret typed as one (``{cdse_password:s3cr3t}``)
                raise ConfigError(f"{prefix}: unknown key (not shown: it may hold a secret; {expected})")
            where = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"{where}: unknown key ({expected})")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key, base)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: missing")
    obj = cls(**kwargs)
    _check(obj, prefix)
    return obj


def _fail(prefix: str, name: str, msg: str) -> None:
    raise ConfigError(f"{prefix + '.' if prefix else ''}{name}: {msg}")


def _check(obj: Any, p: str) -> None:
    """Value checks beyond types (impossible values)."""
    if isinstance(obj, SensorPeriod) and obj.end is not None and obj.end < obj.start:
        _fail(p, "end", f"is before start ({obj.end} < {obj.start})")
    if isinstance(obj, Territory):
        lon0, lat0, lon1, lat1 = obj.bbox
        if obj.bbox_crs.upper() in ("EPSG:4326", "OGC:CRS84"):  # lon_min > lon_max: across 180° (RFC 7946 §5.2)
            if not (-180 <= lon0 <= 180 and -180 <= lon1 <= 180 and lon0 != lon1 and -90 <= lat0 < lat1 <= 90):
                _fail(p, "bbox", "must be [lon_min, lat_min, lon_max, lat_max] in -180..180 with lat_min < lat_max "
                      f"(lon_min > lon_max: across the 180° meridian), got {list(obj.bbox)}")
        else:
            if not (lon0 < lon1 and lat0 < lat1):
                _fail(p, "bbox", f"must be [x_min, y_min, x_max, y_max] in {obj.bbox_crs} with min < max, "
                      f"got {list(obj.bbox)}")
            try:
                _ = obj.lonlat
            except Exception:
                _fail(p, "bbox_crs", f"unknown CRS {obj.bbox_crs!r}, or the bbox is outside its area (e.g. EPSG:32758)")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(obj.timezone)
        except Exception:
            _fail(p, "timezone", f"unknown time zone {obj.timezone!r} (e.g. Pacific/Noumea)")
    if isinstance(obj, Grid):
        if obj.resolution <= 0:
            _fail(p, "resolution", f"must be positive, got {obj.resolution}")
        if obj.y_resolution == 0:
            _fail(p, "y_resolution", "must not be 0")
        if obj.width <= 0 or obj.height <= 0:
            _fail(p, "width/height", f"must be positive, got {obj.width} x {obj.height}")
        try:
            from pyproj import CRS

            CRS.from_user_input(obj.crs)
        except Exception:
            _fail(p, "crs", f"unknown CRS {obj.crs!r}")
    if isinstance(obj, GlobalChain | LocalChain) and obj.enabled:
        periods = (obj.ndwi_sensors + obj.lst_sensors) if isinstance(obj, GlobalChain) else obj.sensors
        if not periods:
            _fail(p, "sensors", "at least one sensor is needed when the chain is enabled")
    if isinstance(obj, GlobalChain):
        for s_ in obj.ndwi_sensors:
            if s_.name not in {"MODIS", "VIIRS"}:
                _fail(p, "ndwi_sensors", f"unknown medium-resolution sensor {s_.name!r} (MODIS or VIIRS)")
        for s_ in obj.lst_sensors:
            if s_.name not in {"MODIS", "VIIRS", "SLSTR"}:
                _fail(p, "lst_sensors", f"unknown LST sensor {s_.name!r} (MODIS, VIIRS or SLSTR)")
            if s_.name == "SLSTR" and s_.start < date(2017, 7, 5):  # DOMAIN.md §4.6
                _fail(p, "lst_sensors", f"SLSTR starts {s_.start}, but SL_2_LST is operational from 2017-07-05")
        if not 0 < obj.daily_nan_max <= 1:
            _fail(p, "daily_nan_max", f"must be in (0, 1], got {obj.daily_nan_max}")
        _check_index_list(p, obj.indices, ("NDVI", "NDWI", "LST"))
    if isinstance(obj, LocalChain):
        _check_index_list(p, obj.indices, ("NDVI", "NDWI"))
        for s in obj.sensors:
            if s.name not in {"S2", "L7", "L8", "L9"}:
                _fail(p, "sensors", f"unknown high-resolution sensor {s.name!r} (S2, L7, L8 or L9)")
        for name in obj.calibration:
            if name not in {"S2", "L7", "L9"}:
                _fail(p, "calibration", f"coefficients are to Landsat-8, for S2, L7 or L9 (got {name!r})")
        ids = [t.id for t in obj.tiles]
        for t in obj.tiles:
            bad = [m for m in t.s2_tiles if not re.fullmatch(r"\d{2}[C-X][A-Z]{2}", m)]
            if bad:
                _fail(p, f"tiles[{t.id}].s2_tiles", f"not MGRS tile ids (e.g. 58KEB): {bad}")
        if len(set(ids)) != len(ids):
            _fail(p, "tiles", f"duplicate tile ids {ids}")
    if isinstance(obj, LocalThresholds):
        for name in ("composite_nan_max", "scene_nan_max"):
            if not 0 < getattr(obj, name) <= 1:
                _fail(p, name, f"must be in (0, 1], got {getattr(obj, name)}")
    if isinstance(obj, Reference):
        if obj.mode == "fixed":
            if obj.start_year is None or obj.end_year is None:
                _fail(p, "start_year/end_year", "both are required when mode is 'fixed'")
            if obj.end_year < obj.start_year:  # type: ignore[operator]
                _fail(p, "end_year", f"is before start_year ({obj.end_year} < {obj.start_year})")
        if obj.min_years < 1:
            _fail(p, "min_years", f"must be at least 1, got {obj.min_years}")
    if isinstance(obj, AvailabilityRules):
        for name in ("s2_min", "landsat_min", "max_wait_days"):
            if getattr(obj, name) < 0:
                _fail(p, name, f"must be >= 0, got {getattr(obj, name)}")
    if isinstance(obj, StacSource):
        if not obj.url.strip():
            _fail(p, "url", "must not be empty")
        for k in obj.collections:
            if k not in STAC_PRODUCTS:
                _fail(p, "collections", f"unknown product {k!r} ({', '.join(STAC_PRODUCTS)})")
    if isinstance(obj, Stac):
        if obj.chunk < 64:
            _fail(p, "chunk", f"must be at least 64 px, got {obj.chunk}")
        if obj.swath_radius_m <= 0:
            _fail(p, "swath_radius_m", f"must be positive, got {obj.swath_radius_m}")
    if isinstance(obj, Config):
        _check_sources(obj)
        from .capabilities import check_indices  # here: capabilities imports this module

        check_indices(obj)
    if isinstance(obj, Credentials | Download):
        for name in ("ee_key_file", "drive_client_secrets", "drive_token"):
            value = getattr(obj, name, None)
            if value is not None and _holds_key(str(value)):
                _fail(p, name, "holds the key itself (JSON or PEM), not the path of a file: save it in a file "
                               "readable by you only (chmod 600) and give its path")
    if isinstance(obj, Download) and obj.concurrency < 1:
        _fail(p, "concurrency", f"must be at least 1, got {obj.concurrency}")
    if isinstance(obj, Indicators):
        if not 0 <= obj.alpha <= 1:
            _fail(p, "alpha", f"must be between 0 and 1, got {obj.alpha}")
        if not obj.vai_bare_soil_ndvi < obj.vai_dense_vegetation_ndvi:
            _fail(p, "vai_dense_vegetation_ndvi", "must be greater than vai_bare_soil_ndvi")
        if obj.provisional_dekads < 0:
            _fail(p, "provisional_dekads", f"must be >= 0, got {obj.provisional_dekads}")


def _check_index_list(p: str, indices: tuple[str, ...] | None, allowed: tuple[str, ...]) -> None:
    if indices is None:
        return
    bad = [k for k, i in enumerate(indices) if i not in allowed]
    if bad:  # the value is not quoted (a misplaced secret must never be printed)
        _fail(p, f"indices[{bad[0]}]", f"unknown index (expected one of {', '.join(allowed)})")
    if not indices:
        _fail(p, "indices", f"list at least one of {', '.join(allowed)} (or disable the chain)")
    if len(set(indices)) != len(indices):
        _fail(p, "indices", "an index is listed twice")


def _holds_key(value: str) -> bool:
    """A path setting that holds key material (as ``eo4dm_helpers.ee.session.looks_like_key``)."""
    return "{" in value or "private_key" in value or "-----BEGIN" in value or "\n" in value


def _check_sources(cfg: Config) -> None:
    """Sources beyond Earth Engine (DOMAIN.md §4.6): SLSTR LST and STAC scenes need a STAC catalogue and
    the local backend (Earth Engine has no SL_2_LST; a hybrid Earth Engine + STAC chain is not built)."""
    gc, lc = cfg.global_chain, cfg.local_chain
    if gc.enabled and any(s.name == "SLSTR" for s in gc.lst_sensors):
        if cfg.stac.slstr is None:
            _fail("stac", "slstr", "needed by global_chain.lst_sensors SLSTR (the catalogue of SL_2_LST)")
        if cfg.backend != "local":
            _fail("global_chain", "lst_sensors", "SLSTR is not in Earth Engine (DOMAIN.md §4.6): use backend: local")
    if lc.enabled and lc.source == "stac":
        if cfg.stac.highres is None:
            _fail("stac", "highres", "needed by local_chain.source: stac (the catalogue of S2 and Landsat)")
        if cfg.backend != "local":
            _fail("local_chain", "source", "stac needs backend: local")
        if lc.s2_cloud_source != "s2cloudless" and any(s.name == "S2" for s in lc.sensors):
            _fail("local_chain", "s2_cloud_source", "STAC catalogues carry no Cloud Score+: use s2cloudless "
                  "(the L2A cloud probability, else the SCL, stands in for it)")


MAX_BYTES = 1 << 20  # parameter files are a few kilobytes
MAX_DEPTH = 32  # they nest 5 levels


@dataclass(frozen=True)
class _BadDate:
    """A YAML timestamp that is no date (``2024-02-30``): reported with the key it is given to."""

    reason: str
    line: int


class _ParamLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader without anchors, aliases or merge keys, with bounded nesting, and with
    impossible dates kept as :class:`_BadDate` instead of raising."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _at(event.start_mark, "anchors (&) and aliases (*) are not allowed in a parameter file")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _at(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError, AttributeError) as exc:
            return _BadDate(_date_reason(exc), node.start_mark.line + 1)


_ParamLoader.add_constructor("tag:yaml.org,2002:timestamp", _ParamLoader.construct_yaml_timestamp)


def _at(mark: Any, msg: str) -> ConfigError:
    return ConfigError(f"line {mark.line + 1}: {msg}")


def _check_keys(root: yaml.Node) -> None:
    """Every mapping key a plain name given once (PyYAML keeps the last of repeated keys silently)."""
    todo: list[tuple[yaml.Node, str]] = [(root, "")]
    while todo:
        node, where = todo.pop()
        if isinstance(node, yaml.SequenceNode):
            todo += [(v, f"{where}[{i}]") for i, v in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                if k.tag == "tag:yaml.org,2002:merge":
                    raise _at(k.start_mark, "merge keys (<<) are not allowed in a parameter file")
                if not isinstance(k, yaml.ScalarNode):
                    raise _at(k.start_mark, f"{where or 'file'}: a key must be a plain name, not a list or mapping")
                name = f"{where}.{k.value}" if where else str(k.value)
                shown = where + ".<a key>" if _secret_key(where) else name
                if k.value in first:
                    raise _at(k.start_mark, f"{shown}: repeated key (first given line {first[k.value]})")
                first[k.value] = k.start_mark.line + 1
                todo.append((v, name))


def _read_yaml(text: str) -> Any:
    loader = _ParamLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_keys(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(path: str | os.PathLike[str], *, check_layers: bool = True, resolve_tiles: bool = True) -> Config:
    """Read and validate a parameter file; with ``check_layers`` (the default), also the zone layer
    ``territory.zones`` (it must exist and be usable). ``check_layers=False`` is for the demo generator,
    which writes that layer, and for tests of other parts. With ``resolve_tiles`` (the default), an empty
    ``local_chain.tiles`` is filled from the archive's tile cache (``resolve_tiles=False``: the discovery
    that writes it)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the parameter file ({exc.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES >> 20} MiB: not a parameter file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}): save the file "
                          "as UTF-8") from None
    try:
        data = _read_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # e.g. ``!!int x``: never echoed
        raise ConfigError(f"{path}: not valid YAML (a value cannot be read: {exc.__class__.__name__})") from None
    try:
        cfg = _build(Config, data or {}, "", path.parent.resolve())
        if resolve_tiles:
            cfg = _with_cached_tiles(cfg)
        if check_layers and cfg.territory.zones is not None:
            from .zones import load_zones  # here: zones imports this module

            load_zones(cfg.territory.zones, cfg.territory.zone_name_field)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return dataclasses.replace(cfg, source=path.resolve())


def _with_cached_tiles(cfg: Config) -> Config:
    """``local_chain.tiles`` when listed (they override), else the tiles discovered over the territory and
    cached in the archive (``<archive>/tiles.json``, written by ``python -m eo4dm_helpers.ee.discovery``)."""
    lc = cfg.local_chain
    if not lc.enabled or lc.tiles:
        return cfg
    cache = cfg.paths.archive / "tiles.json"
    hint = ("list them in local_chain.tiles, or discover them over the territory with "
            "`python -m eo4dm_helpers.ee.discovery --params <this file>` (one Earth Engine request)")
    try:
        doc = json.loads(cache.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"local_chain.tiles: none listed and no tile cache {cache}: {hint}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"local_chain.tiles: the tile cache {cache} is unreadable ({exc.__class__.__name__}): "
                          f"{hint}") from None
    tiles = _convert(doc.get("tiles") if isinstance(doc, dict) else None, tuple[LocalTile, ...],
                     f"{cache.name}: tiles", cache.parent)
    if not tiles:
        raise ConfigError(f"local_chain.tiles: the tile cache {cache} holds no tile: {hint}")
    return dataclasses.replace(cfg, local_chain=dataclasses.replace(lc, tiles=tiles))


def parse_dekad(label: str, key: str = "dekad") -> Dekad:
    """Parse a dekad label given as a parameter; the error names the parameter."""
    try:
        return Dekad.parse(label)
    except DekadError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def public_view(cfg: Config) -> dict[str, Any]:
    """The parameters as a plain dict safe to show in a report: credentials are reduced to booleans,
    absolute paths under the user's home are shown with ``~``."""
    home = str(Path.home())

    def clean(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: clean(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, Path):
            s = str(v)
            return "~" + s[len(home) :] if home not in ("", "/") and s.startswith(home) else s
        if isinstance(v, date):
            return v.isoformat()
        return v

    out = clean(cfg)
    out["credentials"] = {
        "ee_key_file": "set" if cfg.credentials.ee_key_file else "not set",
        "ee_project": cfg.credentials.ee_project,
    }
    return out
