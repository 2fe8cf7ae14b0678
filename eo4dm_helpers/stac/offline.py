"""An offline STAC world: a static catalogue of small COGs and SL_2_LST swaths, and a loopback STAC API.

``export_scenes`` turns Sentinel-2 / Landsat scenes of a local scene store (e.g. the demo archive,
``eo4dm_helpers.sample``) into STAC items whose assets are COGs named as a real catalogue names them
(``assets.py``), with the quirks the loader must undo (Sentinel-2 DN of baseline >= 04.00 shifted by
+1000, DOMAIN.md §4.1). ``write_slstr_product`` writes a synthetic SL_2_LST product (LST_in.nc,
flags_in.nc, geodetic_in.nc) over a bounding box, its LST drawn from the demo world's truth.
``LoopbackStacApi`` serves a static catalogue on 127.0.0.1: ``/search`` (GET and POST), the files
(with HTTP ranges, for GDAL), and an OpenID-like ``/token`` endpoint to check that downloads carry
the user's token. Tests and demos only; nothing here reaches the network.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from .. import products as P
from .assets import ASSET_MAPS, SLSTR_FILES, ProductAssets
from .slstr import BAYES_BITS, CONFIDENCE_MEANINGS

STAC_VERSION = "1.0.0"
CONFORMANCE = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
               "https://api.stacspec.org/v1.0.0/collections", "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"]


def _bbox_geometry(b: tuple[float, float, float, float]) -> dict[str, Any]:
    x0, y0, x1, y1 = b
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


# --------------------------------------------------------------------------------------------
# Sentinel-2 / Landsat items from a local scene store
# --------------------------------------------------------------------------------------------
def _write_cog(path: Path, arr: np.ndarray, crs: str, transform, nodata: float | None) -> None:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    prof = dict(driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=str(arr.dtype), crs=crs,
                transform=transform, nodata=nodata, blocksize=256, compress="deflate")
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr, 1)


def _read_band(scene, band: str):
    import rasterio

    info = scene.bands[band]
    with rasterio.open(scene.path_of(band)) as src:
        from rasterio.warp import transform_bounds

        arr = src.read(int(info.get("band", 1))).astype(info.get("dtype", src.dtypes[0]), copy=False)
        return arr, src.crs.to_string(), src.transform, transform_bounds(src.crs, "EPSG:4326", *src.bounds)


def stac_properties(product: str, scene, shift: int) -> dict[str, Any]:
    """STAC properties as the real catalogues carry them (Earth Search / Planetary Computer style)."""
    p = scene.properties
    out: dict[str, Any] = {}
    if product == "S2":
        out.update({"platform": str(p.get("SPACECRAFT_NAME", "Sentinel-2A")).lower(), "constellation": "sentinel-2",
                    "eo:cloud_cover": p.get("CLOUDY_PIXEL_PERCENTAGE", 0.0),
                    "view:sun_azimuth": p.get("MEAN_SOLAR_AZIMUTH_ANGLE"),
                    "s2:processing_baseline": "05.10" if shift else "03.01",
                    "earthsearch:boa_offset_applied": False})
    else:
        out.update({"platform": {"L7": "landsat-7", "L8": "landsat-8", "L9": "landsat-9"}[product],
                    "eo:cloud_cover": p.get("CLOUD_COVER", p.get("CLOUD_COVER_LAND", 0.0)),
                    "landsat:cloud_cover_land": p.get("CLOUD_COVER_LAND", 0.0), "landsat:collection_category": "T1"})
    return {k: v for k, v in out.items() if v is not None}


def export_scenes(store: Path, root: Path, product: str, lo: datetime, hi: datetime, assets: ProductAssets,
                  harmonized_before: date = date(2022, 1, 25)) -> list:
    """STAC items (pystac) for the ``product`` scenes of ``store`` with ``lo <= time < hi``: one COG per
    asset under ``root/data``. Sentinel-2 scenes from ``harmonized_before`` on get their reflectance DN
    shifted by +1000 and baseline 05.10, as delivered by ESA (DOMAIN.md §4.1); before, baseline 03.01."""
    import pystac

    from ..local.scenes import find_scene, list_scenes

    spec = {"S2": P.S2, "L7": P.L7, "L8": P.L8, "L9": P.L9}[product]
    items = []
    for s in list_scenes(store, spec.collection, lo, hi):
        shift = 1000 if product == "S2" and s.time_start.date() >= harmonized_before else 0
        folder = root / "data" / assets.collection / s.index
        bbox = None
        item_assets = {}
        for band, key in assets.bands.items():
            arr, crs, transform, b4326 = _read_band(s, band)
            if shift and band in spec.reflectance_bands:
                arr = np.where(arr > 0, arr.astype(np.int32) + shift, 0).astype(arr.dtype)
            nodata = assets.nodata.get(band)
            _write_cog(folder / f"{key}.tif", arr, crs, transform, nodata)
            bbox = b4326
            rb = {"data_type": str(arr.dtype), **({"nodata": nodata} if nodata is not None else {})}
            item_assets[key] = pystac.Asset(href=str(folder / f"{key}.tif"), media_type=pystac.MediaType.COG,
                                            roles=["data"], extra_fields={"raster:bands": [rb]})
        if product == "S2" and assets.cloud_probability:
            aux = find_scene(store, P.S2_CLOUD_PROBABILITY, s.index, s.time_start.year)
            if aux is not None:
                arr, crs, transform, _ = _read_band(aux, "probability")
                _write_cog(folder / f"{assets.cloud_probability}.tif", arr.astype(np.uint8), crs, transform, None)
                item_assets[assets.cloud_probability] = pystac.Asset(
                    href=str(folder / f"{assets.cloud_probability}.tif"), media_type=pystac.MediaType.COG,
                    roles=["data"], extra_fields={"raster:bands": [{"data_type": "uint8"}]})
        assert bbox is not None
        item = pystac.Item(s.index, _bbox_geometry(bbox), list(bbox), s.time_start,
                           stac_properties(product, s, shift))
        for k, a in item_assets.items():
            item.add_asset(k, a)
        items.append(item)
    return items


# --------------------------------------------------------------------------------------------
# Synthetic SL_2_LST products
# --------------------------------------------------------------------------------------------
KM_PER_DEG_LAT = 110.6


def slstr_time(day: date, platform: str) -> datetime:
    """Sensing start of the daytime descending pass over New Caledonia: ~10:00 local (UTC+11), i.e.
    ~23:00 UTC of the previous UTC day; S3B ~half an hour apart (derived, for the demo only)."""
    minutes = 0 if platform.endswith("a") else 31
    return datetime.combine(day - timedelta(days=1), time(22, 50), UTC) + timedelta(minutes=minutes)


def swath_lonlat(bbox: tuple[float, float, float, float], spacing_km: float, heading_deg: float = 193.0,
                 shift_km: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A descending along-track × across-track grid of ``spacing_km`` covering ``bbox`` (flat-earth
    offsets around its centre; ``shift_km`` moves the swath across track)."""
    lon0, lat0 = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    km_lon = KM_PER_DEG_LAT * math.cos(math.radians(lat0))
    half_w, half_h = (bbox[2] - bbox[0]) / 2 * km_lon, (bbox[3] - bbox[1]) / 2 * KM_PER_DEG_LAT
    half = math.hypot(half_w, half_h) + 2 * spacing_km
    n = int(math.ceil(2 * half / spacing_km))
    a = (np.arange(n) - n / 2 + 0.5) * spacing_km  # along track (rows, in the direction of travel)
    c = (np.arange(n) - n / 2 + 0.5) * spacing_km + shift_km  # across track (columns)
    aa, cc = np.meshgrid(a, c, indexing="ij")
    h = math.radians(heading_deg)  # direction of travel, clockwise from north
    east = aa * math.sin(h) + cc * math.cos(h)
    north = aa * math.cos(h) - cc * math.sin(h)
    return lon0 + east / km_lon, lat0 + north / KM_PER_DEG_LAT


def write_slstr_product(folder: Path, day: date, platform: str, bbox: tuple[float, float, float, float], *,
                        spacing_km: float = 1.0, shift_km: float = 0.0, night: bool = False,
                        cloud_fraction: float | None = None, seed: int | None = None) -> dict[str, Path]:
    """Write an SL_2_LST-like ``.SEN3`` folder: LST (truth of the demo world on local date ``day`` + 0.3 K
    noise, packed int16), LST_uncertainty, geolocation and flags (day bit, land/ocean, clouds in
    summary_cloud, bayes single_moderate and cloud_in gross_cloud). Returns {"LST", "flags", "geodetic"}."""
    import xarray as xr
    from scipy import ndimage

    from ..sample.world import rng_for, truth

    rng = np.random.default_rng(seed) if seed is not None else rng_for("SLSTR", platform, day)
    lon, lat = swath_lonlat(bbox, spacing_km, shift_km=shift_km)
    shape = lon.shape
    tr = truth(lon, lat, day)
    lst_k = tr.lst + 273.15 + rng.normal(0.0, 0.3, shape)
    frac = float(rng.uniform(0.0, 0.5)) if cloud_fraction is None else cloud_fraction
    f = ndimage.gaussian_filter(rng.standard_normal(shape), 8.0 / spacing_km)
    cloud = f > np.quantile(f, 1.0 - frac) if frac > 0 else np.zeros(shape, bool)
    unc = np.full(shape, 0.9, np.float32)
    unc[rng.random(shape) < 0.01] = 4.5  # a few poorly retrieved pixels (> 3 K)
    lst_k = np.where(cloud, lst_k - 15.0, lst_k)  # clouds are cold: must be masked, never averaged in
    cbit = {m: 1 << i for i, m in enumerate(CONFIDENCE_MEANINGS)}
    conf = np.where(tr.sea, cbit["ocean"], cbit["land"]).astype(np.uint16)
    if not night:
        conf |= cbit["day"]
    conf[cloud] |= cbit["summary_cloud"]
    fill = ~np.isfinite(lst_k)
    conf[fill & ~tr.sea] |= cbit["unfilled"]
    bayes = np.where(cloud, 1 << BAYES_BITS["single_moderate"], 0).astype(np.uint8)
    cloud_in = np.where(cloud, 1 << 7, 0).astype(np.uint16)  # gross_cloud
    folder.mkdir(parents=True, exist_ok=True)
    dims = ("rows", "columns")
    packed = np.where(fill, -32768, np.round((np.nan_to_num(lst_k) - 290.0) / 0.002)).astype(np.int16)
    # Encodings as read in public readers; the exact packing of ESA's files was not checked (the reader
    # relies on CF decoding, not on these numbers).
    lst_ds = xr.Dataset({
        "LST": (dims, packed, {"units": "K", "standard_name": "surface_temperature", "_FillValue": np.int16(-32768),
                               "scale_factor": 0.002, "add_offset": 290.0}),
        "LST_uncertainty": (dims, unc, {"units": "K"}),
    })
    geo = xr.Dataset({
        "latitude_in": (dims, np.round(lat * 1e6).astype(np.int32), {"units": "degrees_north", "scale_factor": 1e-6}),
        "longitude_in": (dims, np.round(lon * 1e6).astype(np.int32), {"units": "degrees_east", "scale_factor": 1e-6}),
    })
    flags = xr.Dataset({
        "confidence_in": (dims, conf, {"flag_masks": np.array([1 << i for i in range(16)], np.uint16),
                                       "flag_meanings": " ".join(CONFIDENCE_MEANINGS)}),
        "bayes_in": (dims, bayes, {"flag_masks": np.array([1, 2, 4, 8], np.uint8),
                                   "flag_meanings": "single_low single_moderate dual_low dual_moderate"}),
        "cloud_in": (dims, cloud_in),
    })
    out = {"LST": folder / "LST_in.nc", "flags": folder / "flags_in.nc", "geodetic": folder / "geodetic_in.nc"}
    for ds, key in ((lst_ds, "LST"), (flags, "flags"), (geo, "geodetic")):
        for v in ds.data_vars.values():
            v.encoding.update({"zlib": True})
        ds.to_netcdf(out[key], engine="h5netcdf")
    return out


def slstr_item(files: Mapping[str, Path], day: date, platform: str, assets: ProductAssets, index: str | None = None):
    """A STAC item for a product written by ``write_slstr_product`` (asset keys of ``assets``)."""
    import pystac
    import xarray as xr

    with xr.open_dataset(files["geodetic"], engine="h5netcdf") as g:
        lat, lon = g["latitude_in"].values, g["longitude_in"].values
    bbox = (float(np.nanmin(lon)), float(np.nanmin(lat)), float(np.nanmax(lon)), float(np.nanmax(lat)))
    t0 = slstr_time(day, platform)
    sat = "S3A" if platform.endswith("a") else "S3B"
    index = index or (f"{sat}_SL_2_LST____{t0:%Y%m%dT%H%M%S}_{t0 + timedelta(minutes=3):%Y%m%dT%H%M%S}_"
                      f"{t0 + timedelta(days=1):%Y%m%dT%H%M%S}_0179_000_000_3420_PS1_O_NT_004")
    item = pystac.Item(index, _bbox_geometry(bbox), list(bbox), t0,
                       {"platform": platform, "instruments": ["slstr"], "constellation": "sentinel-3",
                        "start_datetime": t0.isoformat().replace("+00:00", "Z"),
                        "end_datetime": (t0 + timedelta(minutes=3)).isoformat().replace("+00:00", "Z"),
                        "product:type": "SL_2_LST___", "sat:orbit_state": "descending"})
    for f in SLSTR_FILES:
        item.add_asset(assets.bands[f], pystac.Asset(href=str(files[f]), media_type="application/x-netcdf",
                                                     roles=["data"]))
    return item


def slstr_items(root: Path, days: Iterable[date], bbox: tuple[float, float, float, float], assets: ProductAssets,
                spacing_km: float = 1.0) -> list:
    """One daytime product a day over ``bbox``, S3A and S3B alternating (S3B from 2018-11-17)."""
    items = []
    for day in days:
        platform = "sentinel-3b" if day.toordinal() % 2 and day >= P.SLSTR_S3B_START else "sentinel-3a"
        folder = root / "data" / assets.collection / f"{platform}-{day.isoformat()}.SEN3"
        files = write_slstr_product(folder, day, platform, bbox, spacing_km=spacing_km)
        items.append(slstr_item(files, day, platform, assets))
    return items


def write_catalogue(root: Path, items_by_collection: Mapping[str, list], title: str = "eo4dm offline") -> Path:
    """A self-contained static catalogue (catalog.json, one collection per id) of ``items_by_collection``."""
    import pystac

    cat = pystac.Catalog("eo4dm-offline", title)
    for cid, items in items_by_collection.items():
        if not items:
            continue
        boxes = [it.bbox for it in items]
        bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
        times = [it.datetime for it in items]
        coll = pystac.Collection(cid, f"{cid} (offline copy)", pystac.Extent(
            pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[min(times), max(times)]])), license="proprietary")
        for it in items:
            coll.add_item(it)
        cat.add_child(coll)
    root.mkdir(parents=True, exist_ok=True)
    cat.normalize_hrefs(str(root))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def asset_map(name: str, product: str) -> ProductAssets:
    return ASSET_MAPS[name].product(product)


# --------------------------------------------------------------------------------------------
# Loopback STAC API
# --------------------------------------------------------------------------------------------
def _parse_dt(s: str) -> datetime | None:
    if s in ("", ".."):
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class LoopbackStacApi:
    """Serve the static catalogue ``catalog`` at ``http://127.0.0.1:<port>/`` (a thread; ``with`` block).

    Implements the landing page, ``/conformance``, ``/collections``, ``/search`` (GET/POST: collections,
    bbox, datetime, limit) and ``/files/<path>`` with ``Range``. Files under a folder named in
    ``protected`` need ``Authorization: Bearer <token>``, obtained from ``POST /token`` with
    ``username``/``password`` equal to ``credentials``. ``requests`` records (method, path, authorised)."""

    def __init__(self, catalog: Path, credentials: tuple[str, str] | None = None, protected: tuple[str, ...] = (),
                 token: str = "offline-token-4f2a"):
        import pystac

        self.catalog = Path(catalog).resolve()
        self.root = self.catalog.parent
        self.credentials, self.protected, self.token = credentials, protected, token
        self.requests: list[tuple[str, str, bool]] = []
        cat = pystac.Catalog.from_file(str(self.catalog))
        self._collections: dict[str, dict] = {}
        self._items: list[dict] = []
        for coll in cat.get_children():
            self._collections[coll.id] = coll.to_dict(include_self_link=False, transform_hrefs=False)
            for it in coll.get_items(recursive=True):
                d = it.to_dict(include_self_link=False, transform_hrefs=False)
                for key, a in it.assets.items():
                    rel = Path(a.get_absolute_href()).resolve().relative_to(self.root)
                    d["assets"][key]["href"] = f"/files/{rel.as_posix()}"  # made absolute per request
                d["collection"] = coll.id
                d["links"] = []
                self._items.append(d)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackStacApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, obj: Any, code: int = 200) -> None:
                self._send(code, json.dumps(obj).encode("utf-8"), "application/geo+json"
                           if obj.get("type") == "FeatureCollection" else "application/json")

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                u = urlparse(self.path)
                q = {k: v[-1] for k, v in parse_qs(u.query).items()}
                api._route(self, u.path, q)

            def do_POST(self) -> None:
                u = urlparse(self.path)
                n = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(n) if n else b""
                if u.path.rstrip("/") == "/token":
                    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()}
                    api._token(self, form)
                    return
                try:
                    q = json.loads(body or b"{}")
                except ValueError:
                    self._json({"code": "BadRequest", "description": "invalid JSON"}, 400)
                    return
                api._route(self, u.path, q)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="loopback-stac", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- routes ----------------------------------------------------------------------------------
    def _landing(self) -> dict:
        u = self.url
        return {"type": "Catalog", "id": "eo4dm-offline", "stac_version": STAC_VERSION, "description": "offline",
                "conformsTo": CONFORMANCE,
                "links": [{"rel": "self", "href": f"{u}/", "type": "application/json"},
                          {"rel": "root", "href": f"{u}/", "type": "application/json"},
                          {"rel": "conformance", "href": f"{u}/conformance", "type": "application/json"},
                          {"rel": "data", "href": f"{u}/collections", "type": "application/json"},
                          {"rel": "search", "href": f"{u}/search", "type": "application/geo+json", "method": "GET"},
                          {"rel": "search", "href": f"{u}/search", "type": "application/geo+json", "method": "POST"}]}

    def _route(self, h, path: str, q: dict) -> None:
        auth = h.headers.get("Authorization") == f"Bearer {self.token}"
        self.requests.append((h.command, path, auth))
        p = path.rstrip("/") or "/"
        if p == "/":
            h._json(self._landing())
        elif p == "/conformance":
            h._json({"conformsTo": CONFORMANCE})
        elif p == "/collections":
            h._json({"collections": [self._coll(c) for c in self._collections], "links": []})
        elif p.startswith("/collections/") and p.count("/") == 2:
            cid = p.split("/")[2]
            if cid in self._collections:
                h._json(self._coll(cid))
            else:
                h._json({"code": "NotFound", "description": cid}, 404)
        elif p == "/search":
            h._json(self._search(q))
        elif p.startswith("/files/"):
            self._file(h, unquote(p[len("/files/"):]), auth)
        else:
            h._json({"code": "NotFound", "description": path}, 404)

    def _coll(self, cid: str) -> dict:
        d = dict(self._collections[cid])
        d["links"] = [{"rel": "self", "href": f"{self.url}/collections/{cid}"},
                      {"rel": "root", "href": f"{self.url}/"}]
        return d

    def _search(self, q: dict) -> dict:
        colls = q.get("collections")
        if isinstance(colls, str):
            colls = colls.split(",")
        bbox = q.get("bbox")
        if isinstance(bbox, str):
            bbox = [float(v) for v in bbox.split(",")]
        lo = hi = None
        if q.get("datetime"):
            parts = str(q["datetime"]).split("/")
            lo, hi = _parse_dt(parts[0]), _parse_dt(parts[-1])
        out = []
        for d in self._items:
            if colls and d["collection"] not in colls:
                continue
            b = d.get("bbox")
            if bbox and b and (b[2] < bbox[0] or b[0] > bbox[2] or b[3] < bbox[1] or b[1] > bbox[3]):
                continue
            t = _parse_dt(d["properties"]["datetime"])
            if t is not None and ((lo and t < lo) or (hi and t > hi)):
                continue
            item = json.loads(json.dumps(d))
            for a in item["assets"].values():
                a["href"] = self.url + a["href"]
            item["links"] = [{"rel": "collection", "href": f"{self.url}/collections/{d['collection']}"}]
            out.append(item)
        return {"type": "FeatureCollection", "features": out, "links": [], "numberReturned": len(out)}

    def _token(self, h, form: dict[str, str]) -> None:
        self.requests.append(("POST", "/token", False))
        if self.credentials and (form.get("username"), form.get("password")) == self.credentials and \
                form.get("grant_type") == "password":
            h._json({"access_token": self.token, "token_type": "Bearer", "expires_in": 600})
        else:
            h._json({"error": "invalid_grant"}, 401)

    def _file(self, h, rel: str, auth: bool) -> None:
        path = (self.root / rel).resolve()
        if self.root not in path.parents or not path.is_file():
            h._json({"code": "NotFound", "description": rel}, 404)
            return
        if any(part in self.protected for part in Path(rel).parts) and not auth:
            h._json({"code": "Unauthorized"}, 401)
            return
        data = path.read_bytes()
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a) if a else max(0, len(data) - int(b))
            end = min(int(b), len(data) - 1) if (a and b) else len(data) - 1
            if start >= len(data):
                h._send(416, b"", "application/octet-stream", {"Content-Range": f"bytes */{len(data)}"})
                return
            h._send(206, data[start:end + 1], "application/octet-stream",
                    {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"})
        else:
            h._send(200, data, "application/octet-stream", {"Accept-Ranges": "bytes"})


__all__ = ["LoopbackStacApi", "asset_map", "export_scenes", "slstr_item", "slstr_items", "swath_lonlat",
           "write_catalogue", "write_slstr_product"]
