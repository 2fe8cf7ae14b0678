"""STAC items as scenes of the local engine.

``StacScene`` (Sentinel-2 L2A, Landsat C2 L2) is a ``local.scenes.Scene`` whose bands are read through
odc-stac: ``odc.stac.load`` builds a dask-backed dataset of the item on the output grid (nearest
neighbour, chunks of ``stac.chunk`` px), and the engine's reader computes only the window it asks for,
so a 10 m tile is never loaded whole and the same graph runs on a dask.distributed cluster when a
``Client`` is active. Asset names are mapped onto the specification's bands (``assets.py``); the values
keep the Earth Engine layout (harmonized Sentinel-2 DN, DOMAIN.md §4.1), so ``products.py`` rules apply
unchanged.

``SlstrScene`` (SL_2_LST) downloads the item's three NetCDF files into a cache (with the CDSE token
where the catalogue needs one), reads and flags the swath and resamples it onto the global grid
(``slstr.py``): its single band ``LST`` is Kelvin, 0 where masked (``products.SL_2_LST``).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
from rasterio.windows import Window as RioWindow

from .. import products as P
from ..config import Config, Grid, LocalTile, StacSource
from ..local.scenes import Scene, SceneError
from ..storage import atomic_path
from .assets import ProductAssets, check_complete
from .credentials import S3_KEY_ENV, S3_SECRET_ENV, CredentialsError, cdse_credentials, fetch_token
from .search import StacSearch, _item_time, assets_of, grid_bbox, run_search

# odc-geo reprojects numpy blocks with rasterio.warp.reproject, which warns "Dataset has no geotransform"
# for some of them although both sides are georeferenced (the pixels read are checked in tests): silenced
# for rasterio.warp only; a filter set per read would not be thread-safe.
warnings.filterwarnings("ignore", message="Dataset has no geotransform", module="rasterio.warp")

S2_HARMONIZE_FROM = date(2022, 1, 25)  # DOMAIN.md §4.1: baseline >= 04.00 shifts DN by +1000 from this date
S2_BOA_OFFSET_DN = 1000
SCL_CLOUD = (8, 9, 10)  # DOMAIN.md §4.1: SCL 8/9 cloud medium/high probability, 10 cirrus
PROBABILITY = "probability"  # the band name of the s2cloudless layer (DOMAIN.md §4.2)


# --------------------------------------------------------------------------------------------
# Scene properties in the Earth Engine names the engine reads (DOMAIN.md §4.1, §4.3)
# --------------------------------------------------------------------------------------------
def _first(props: dict, *names: str) -> Any:
    for n in names:
        if props.get(n) is not None:
            return props[n]
    return None


def ee_properties(product: str, props: dict, t: datetime) -> dict[str, Any]:
    """The properties ``local.highres`` reads, from the item's STAC properties."""
    out: dict[str, Any] = {}
    if product == "S2":
        out["CLOUDY_PIXEL_PERCENTAGE"] = _first(props, "eo:cloud_cover", "s2:cloudy_pixel_percentage")
        out["MEAN_SOLAR_AZIMUTH_ANGLE"] = _first(props, "view:sun_azimuth", "s2:mean_solar_azimuth")
    elif product in ("L7", "L8", "L9"):
        out["CLOUD_COVER_LAND"] = _first(props, "landsat:cloud_cover_land", "eo:cloud_cover")
        if product == "L7":  # DOMAIN.md §1.4 / §6 item 5: SLC off since 31 May 2003
            out["SENSOR_MODE_SLC"] = "OFF" if t.date() > P.L7_SLC_FAILURE else "ON"
    return {k: v for k, v in out.items() if v is not None}


def s2_dn_shift(item, asset_key: str) -> int:
    """DN to subtract from a Sentinel-2 reflectance asset to reach the harmonized layout (DOMAIN.md §4.1).

    In order: ``earthsearch:boa_offset_applied: true`` → 0 (the provider removed it); a ``raster:bands``
    offset (e.g. −0.1 at scale 1e-4) → −offset/scale; ``s2:processing_baseline`` ≥ 04.00 → 1000; no
    baseline → 1000 from 2022-01-25. (Derived from DOMAIN.md §4.1 and public readers of these
    catalogues; the ``earthsearch:`` property is third-party knowledge.)
    """
    props = item.properties
    if props.get("earthsearch:boa_offset_applied") is True:
        return 0
    asset = item.assets.get(asset_key)
    bands = (asset.extra_fields.get("raster:bands") or [{}]) if asset is not None else [{}]
    band = bands[0] if bands else {}
    if band.get("offset"):
        return int(round(-float(band["offset"]) / float(band.get("scale", 1e-4))))
    baseline = props.get("s2:processing_baseline") or props.get("processing:version")
    if baseline is not None:
        try:
            return S2_BOA_OFFSET_DN if float(str(baseline)) >= 4.0 else 0
        except ValueError:
            pass
    return S2_BOA_OFFSET_DN if _item_time(item).date() >= S2_HARMONIZE_FROM else 0


_S3_CONFIGURED = threading.Event()


def _configure_s3(item, keys) -> None:
    """``s3://eodata`` hrefs (CDSE) are read by GDAL with the S3 keys of the environment
    (credentials.S3Keys), configured once for every dask worker through odc-stac."""
    if _S3_CONFIGURED.is_set() or not any(item.assets[k].href.startswith("s3://") for k in keys):
        return
    from .credentials import s3_keys

    creds = s3_keys()
    if creds is None:
        raise CredentialsError(f"STAC item {item.id}: s3:// assets need {S3_KEY_ENV}/{S3_SECRET_ENV} (CDSE S3 keys)")
    import odc.stac

    odc.stac.configure_rio(cloud_defaults=True, **creds.gdal_options())
    _S3_CONFIGURED.set()


def _signer(source: StacSource | None):
    """Planetary Computer hrefs need a SAS token: signed through its package when installed."""
    from .assets import ASSET_MAPS

    if source is None or ASSET_MAPS[source.assets].signing != "planetary-computer":
        return None
    try:
        import planetary_computer  # type: ignore[import-not-found]
    except ImportError:
        return None
    return planetary_computer.sign


# --------------------------------------------------------------------------------------------
# Sentinel-2 / Landsat
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StacScene(Scene):
    """A Sentinel-2 or Landsat STAC item seen as a scene of the local engine."""

    item: Any = field(default=None, compare=False, repr=False)
    assets: ProductAssets | None = field(default=None, compare=False, repr=False)
    product: str = "S2"
    chunk: int = 1024
    source: StacSource | None = field(default=None, compare=False, repr=False)

    def open_reader(self, grid: Grid) -> StacReader:
        return StacReader(self, grid)

    def auxiliary(self, collection: str) -> StacScene | None:
        """The s2cloudless stand-in of this item (same item, band ``probability``); None for
        Cloud Score+, which no STAC catalogue carries."""
        if collection == P.S2_CLOUD_PROBABILITY and self.product == "S2":
            return self
        return None


class StacReader:
    """Reads bands of a ``StacScene`` onto ``grid`` window by window (the ``SceneReader`` interface)."""

    def __init__(self, scene: StacScene, grid: Grid):
        self.scene, self.grid = scene, grid
        self._ds = None
        self._lock = threading.Lock()

    def __enter__(self) -> StacReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._ds = None

    # which asset holds each band the engine may ask for
    def _asset_of(self, band: str) -> str:
        pa = self.scene.assets
        assert pa is not None
        if band == PROBABILITY:
            return pa.cloud_probability or pa.bands["SCL"]
        try:
            return pa.bands[band]
        except KeyError:
            raise SceneError(f"STAC item {self.scene.index}: no asset for band {band!r}") from None

    def _dataset(self):
        with self._lock:
            if self._ds is None:
                import odc.stac
                from affine import Affine
                from odc.geo.geobox import GeoBox

                pa, g = self.scene.assets, self.grid
                assert pa is not None
                wanted = (*pa.bands, PROBABILITY) if self.scene.product == "S2" else tuple(pa.bands)
                keys = sorted({self._asset_of(b) for b in wanted} & set(self.scene.item.assets))
                types = {pa.bands[b]: t for b, t in pa.dtypes.items() if b in pa.bands}
                nodata = {pa.bands[b]: v for b, v in pa.nodata.items() if b in pa.bands}
                if pa.cloud_probability:
                    types.setdefault(pa.cloud_probability, "uint8")
                    nodata.setdefault(pa.cloud_probability, 0)
                cfg = {"*": {"assets": {k: {"data_type": types.get(k, "uint16"), "nodata": nodata.get(k, 0)}
                                        for k in keys}}}
                _configure_s3(self.scene.item, keys)
                gbox = GeoBox((g.height, g.width), Affine(*g.transform), g.crs)
                c = self.scene.chunk
                self._ds = odc.stac.load([self.scene.item], bands=keys, geobox=gbox, chunks={"x": c, "y": c},
                                         resampling="nearest", stac_cfg=cfg, groupby="id",
                                         patch_url=_signer(self.scene.source))
            return self._ds

    def footprint(self, names) -> tuple[float, float, float, float]:
        """The item's bounding box in the grid CRS."""
        from rasterio.warp import transform_bounds

        b = self.scene.item.bbox
        if b is None:
            return self.grid.bounds
        return tuple(transform_bounds("EPSG:4326", self.grid.crs, *b, densify_pts=21))  # type: ignore[return-value]

    def read(self, names, window: RioWindow | None = None) -> dict[str, np.ndarray]:
        """Bands ``names`` over ``window`` of the grid: only the dask chunks under it are computed."""
        import dask

        ds = self._dataset()
        if window is None:
            window = RioWindow(0, 0, self.grid.width, self.grid.height)
        r0, c0 = int(window.row_off), int(window.col_off)
        rows, cols = slice(r0, r0 + int(window.height)), slice(c0, c0 + int(window.width))
        names = list(names)
        keys = {n: self._asset_of(n) for n in names}
        uniq = sorted(set(keys.values()))
        try:
            arrays = dask.compute(*[ds[k].data[0, rows, cols] for k in uniq])
        except Exception as exc:  # rasterio/HTTP errors surface here, with the asset's URL
            raise SceneError(f"STAC item {self.scene.index}: cannot read {uniq} ({exc.__class__.__name__}: "
                             f"{exc})") from None
        got = dict(zip(uniq, arrays, strict=True))
        out: dict[str, np.ndarray] = {}
        pa = self.scene.assets
        assert pa is not None
        spec = P.HIGH_RES[self.scene.product][0]
        for n in names:
            v = np.asarray(got[keys[n]])
            if n == PROBABILITY and not pa.cloud_probability:
                # no cloud probability asset: SCL clouds (8, 9) and cirrus (10) stand in for it (100 / 0)
                v = np.where(np.isin(v, SCL_CLOUD), 100, 0).astype(np.uint8)
            elif n in spec.reflectance_bands and self.scene.product == "S2":
                shift = s2_dn_shift(self.scene.item, keys[n])
                if shift:  # to the harmonized layout; valid DN stays > 0 (0 is the fill value)
                    v = np.where(v > 0, np.maximum(v.astype(np.int32) - shift, 1), 0)
            dtype = pa.dtypes.get(n)
            out[n] = v.astype(dtype if dtype else v.dtype, copy=False)
        return out


def highres_scenes(cfg: Config, product: P.Product, tile: LocalTile, lo: datetime, hi: datetime) -> list[StacScene]:
    """The STAC items of ``product`` (S2, L7, L8 or L9) over ``tile`` with ``lo <= time < hi`` (UTC)."""
    src = cfg.stac.highres
    assert src is not None
    pa = assets_of(cfg, product.key)
    check_complete(pa, product.key)
    s = StacSearch(product.key, src.url, pa.collection, grid_bbox(tile.grid), lo, hi, pa.platforms,
                   f"local chain tile {tile.id}")
    out = []
    for item in run_search(s):
        t = _item_time(item)
        out.append(StacScene(collection=product.collection, index=item.id, time_start=t,
                             properties=ee_properties(product.key, item.properties, t),
                             bands={b: {"asset": a} for b, a in pa.bands.items()}, folder=Path("/"), item=item,
                             assets=pa, product=product.key, chunk=cfg.stac.chunk, source=src))
    return out


# --------------------------------------------------------------------------------------------
# SLSTR
# --------------------------------------------------------------------------------------------
class Downloader:
    """Fetches assets into ``cache`` (atomic, skipped when present); local and ``file://`` hrefs are
    read in place. With ``credentials: cdse`` every request carries the user's access token."""

    def __init__(self, cfg: Config, source: StacSource):
        self.cfg, self.source = cfg, source
        self.cache = cfg.stac.cache or (cfg.paths.output / "cache" / "stac")
        self._token: str | None = None
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        if self.source.credentials != "cdse":
            return {}
        with self._lock:
            if self._token is None:
                self._token = fetch_token(cdse_credentials(self.cfg), self.cfg.stac.token_url)
        return {"Authorization": f"Bearer {self._token}"}

    def fetch(self, item, key: str, folder: str) -> Path:
        asset = item.assets.get(key)
        if asset is None:
            raise SceneError(f"STAC item {item.id} has no asset {key!r}")
        href = asset.get_absolute_href() or asset.href
        if href.startswith("s3://"):  # CDSE: prefer the https alternate (token) over S3 keys
            alt = (asset.extra_fields.get("alternate") or {}).get("https", {}).get("href")
            if not alt:
                raise SceneError(f"{item.id}/{key}: s3:// asset without an https alternate; use a catalogue "
                                 "with https hrefs")
            href = alt
        parsed = urlparse(href)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path) if parsed.scheme else href)
        name = Path(unquote(parsed.path)).name or key
        if name in ("$value", "value"):
            name = f"{key}.nc"
        dest = self.cache / folder / item.id / name
        if dest.exists() and dest.stat().st_size > 0:
            return dest
        self._download(href, dest, item.id, key)
        return dest

    def _download(self, href: str, dest: Path, item_id: str, key: str) -> None:
        import requests

        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with requests.get(href, headers=self._headers(), stream=True, timeout=120) as r:
                if r.status_code in (401, 403):
                    raise CredentialsError(f"{item_id}/{key}: download refused (HTTP {r.status_code}); check the "
                                           "Copernicus Data Space credentials")
                if r.status_code != 200:
                    raise SceneError(f"{item_id}/{key}: download failed (HTTP {r.status_code})")
                with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
                    for chunk in r.iter_content(1 << 20):
                        fh.write(chunk)
        except requests.RequestException as exc:
            raise SceneError(f"{item_id}/{key}: download failed ({exc.__class__.__name__})") from None


@dataclass(frozen=True)
class SlstrScene(Scene):
    """An SL_2_LST item seen as a scene of the local engine: one band ``LST`` (K, 0 = masked)."""

    item: Any = field(default=None, compare=False, repr=False)
    assets: ProductAssets | None = field(default=None, compare=False, repr=False)
    downloader: Downloader | None = field(default=None, compare=False, repr=False)
    radius_m: float = 1500.0
    qc: bool = True

    def files(self) -> dict[str, Path]:
        assert self.assets is not None and self.downloader is not None
        folder = self.assets.collection
        return {f: self.downloader.fetch(self.item, self.assets.bands[f], folder) for f in ("LST", "flags", "geodetic")}

    def open_reader(self, grid: Grid) -> SlstrReader:
        return SlstrReader(self, grid)


class SlstrReader:
    """The swath of an ``SlstrScene`` resampled once onto ``grid``, then read by window."""

    def __init__(self, scene: SlstrScene, grid: Grid):
        self.scene, self.grid = scene, grid
        self._lst: np.ndarray | None = None
        self.masked: dict[str, int] = {}

    def __enter__(self) -> SlstrReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._lst = None

    def footprint(self, names) -> tuple[float, float, float, float]:
        from rasterio.warp import transform_bounds

        b = self.scene.item.bbox
        return self.grid.bounds if b is None else tuple(transform_bounds("EPSG:4326", self.grid.crs, *b))

    def read(self, names, window: RioWindow | None = None) -> dict[str, np.ndarray]:
        from .slstr import read_swath, resample

        if self._lst is None:
            sw = read_swath(self.scene.files(), self.scene.qc)
            self.masked = sw.masked
            k = resample(sw, self.grid, self.scene.radius_m)
            self._lst = np.where(np.isfinite(k), k, 0.0).astype(np.float32)
        lst = self._lst
        if window is not None:
            r0, c0 = int(window.row_off), int(window.col_off)
            lst = lst[r0:r0 + int(window.height), c0:c0 + int(window.width)]
        out = {}
        for n in names:
            if n != "LST":
                raise SceneError(f"SL_2_LST item {self.scene.index}: no band {n!r} (only LST)")
            out[n] = lst
        return out


def slstr_scenes(cfg: Config, lo: datetime, hi: datetime) -> list[SlstrScene]:
    """The SL_2_LST items over the global grid with ``lo <= time < hi`` (UTC), as scenes."""
    src = cfg.stac.slstr
    if src is None:
        raise ValueError("stac.slstr: needed by global_chain.lst_sensors SLSTR")
    pa = assets_of(cfg, "SLSTR")
    check_complete(pa, "SLSTR")
    s = StacSearch("SLSTR", src.url, pa.collection, grid_bbox(cfg.global_chain.grid), lo, hi, pa.platforms,
                   "global chain LST")
    dl = Downloader(cfg, src)
    out = []
    for item in run_search(s):
        t = _item_time(item).astimezone(UTC)
        out.append(SlstrScene(collection=P.SL_2_LST.collection, index=item.id, time_start=t,
                              properties=dict(item.properties), bands={"LST": {"asset": pa.bands["LST"]}},
                              folder=Path("/"), item=item, assets=pa, downloader=dl,
                              radius_m=cfg.stac.swath_radius_m, qc=cfg.global_chain.lst_qc_mask))
    return out


__all__ = ["Downloader", "SlstrReader", "SlstrScene", "StacReader", "StacScene", "ee_properties", "highres_scenes",
           "s2_dn_shift", "slstr_scenes"]
