"""STAC searches: what the chains ask each catalogue for a dekad, and the items it answers.

A ``StacSearch`` is one request: a collection, a bounding box (EPSG:4326) and a datetime window in UTC
holding the acquisitions of the chain's days (``dekads.acquisition_window`` with the product's
``dating``: local midnights for S2/Landsat scenes and SL_2_LST swaths, DOMAIN.md §3.4), exactly as the
Earth Engine graphs filter (``ee/graphs.utc_window``). ``plan_searches`` lists every search of a dekad
(the dry run prints its summary); ``run_search`` sends one through pystac-client (``POST /search`` of a
STAC API) or, for a static catalogue without the item-search conformance class, walks the collection's
items. The answer is filtered again locally (exact window ``[start, end)``, bbox, platform, Landsat tier
T1, S3B dates), so a catalogue that ignores a parameter cannot widen the result.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from .. import products as P
from ..config import Config, Grid, StacSource
from ..dekads import Dekad, acquisition_window, iso_utc
from .assets import ProductAssets, product_assets

ITEM_SEARCH = "https://api.stacspec.org/v1.0.0/item-search"


@dataclass(frozen=True)
class StacSearch:
    product: str  # S2, L7, L8, L9 or SLSTR
    url: str
    collection: str
    bbox: tuple[float, float, float, float]  # lon_min, lat_min, lon_max, lat_max
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive
    platforms: tuple[str, ...] = ()
    purpose: str = ""  # e.g. "global chain LST, local dates 2024-03-11 to 2024-03-20 (Pacific/Noumea)"

    @property
    def datetime(self) -> str:
        """The STAC ``datetime`` parameter (closed interval; the exclusive end is filtered locally)."""
        return f"{_iso(self.start)}/{_iso(self.end)}"

    def summary(self) -> str:
        b = ", ".join(f"{v:.4f}" for v in self.bbox)
        plat = f" platform in {list(self.platforms)}" if self.platforms else ""
        return (f"{self.product}: {self.url} collection={self.collection} bbox=[{b}] "
                f"datetime={self.datetime}{plat} ({self.purpose})")


@dataclass
class SearchPlan:
    """Every STAC search of a dekad, in the order the chains make them."""

    dekad: Dekad
    searches: list[StacSearch] = field(default_factory=list)

    @property
    def global_lst(self) -> bool:
        """True when the global chain's LST comes from a STAC catalogue (no Earth Engine plan for it)."""
        return any(s.product == "SLSTR" for s in self.searches)

    def summary(self) -> str:
        if not self.searches:
            return f"{self.dekad.label}: no STAC search (no STAC source configured)"
        lines = [f"{self.dekad.label}: {len(self.searches)} STAC search(es)"]
        lines += [f"  {s.summary()}" for s in self.searches]
        return "\n".join(lines)


def _iso(t: datetime) -> str:
    return iso_utc(t)


def dating_of(product: str) -> str:
    """``products.Product.dating`` of a STAC product name ("SLSTR", "S2", "L7", "L8", "L9")."""
    return P.SL_2_LST.dating if product == "SLSTR" else P.HIGH_RES[product][0].dating


def utc_window(tz: str, first: date, last: date, product: str = "S2") -> tuple[datetime, datetime]:
    """The UTC window holding ``product``'s acquisitions of days [first, last] (``dekads.acquisition_window``)."""
    return acquisition_window(first, last, tz, dating=dating_of(product))


def grid_bbox(grid: Grid) -> tuple[float, float, float, float]:
    """The grid's bounds in EPSG:4326."""
    from rasterio.warp import transform_bounds

    b = grid.bounds
    if grid.crs.upper() in ("EPSG:4326", "OGC:CRS84"):
        return b
    return tuple(float(v) for v in transform_bounds(grid.crs, "EPSG:4326", *b, densify_pts=21))  # type: ignore


def _source(cfg: Config, product: str) -> StacSource | None:
    if product == "SLSTR":
        return cfg.stac.slstr
    return cfg.stac.highres if cfg.local_chain.source == "stac" else None


def assets_of(cfg: Config, product: str) -> ProductAssets:
    src = _source(cfg, product)
    if src is None:
        raise ValueError(f"no STAC source is configured for {product}")
    return product_assets(src.assets, product, src.collections)


def search_for(cfg: Config, product: str, bbox: tuple[float, float, float, float], first: date, last: date,
               purpose: str) -> StacSearch:
    src = _source(cfg, product)
    assert src is not None
    pa = assets_of(cfg, product)
    lo, hi = utc_window(cfg.timezone, first, last, product)
    days = (f"product days {first} to {last} (UTC)" if dating_of(product) == "product_day"
            else f"local dates {first} to {last} ({cfg.timezone})")
    return StacSearch(product, src.url, pa.collection, bbox, lo, hi, pa.platforms, f"{purpose}, {days}")


def _active(periods, first: date, last: date) -> Iterable[tuple[str, date, date]]:
    for s in periods:
        lo, hi = max(first, s.start), min(last, s.end or last)
        if lo <= hi:
            yield s.name, lo, hi


def plan_searches(cfg: Config, dekad: Dekad) -> SearchPlan:
    """The STAC searches the chains make for ``dekad``: SL_2_LST over the global grid for the days whose
    LST sensor is SLSTR (the whole month with the third dekad, DOMAIN.md §1.5), S2/Landsat over each
    tile for the widest window of the local composite (DOMAIN.md §1.5 widening)."""
    from ..chains import local_window, month_bounds

    plan = SearchPlan(dekad)
    gc, lc = cfg.global_chain, cfg.local_chain
    if gc.enabled and cfg.stac.slstr is not None:
        first, last = month_bounds(dekad) if dekad.index == 3 else (dekad.start, dekad.end)
        for name, lo, hi in _active(gc.lst_sensors, first, last):
            if name == "SLSTR":
                plan.searches.append(search_for(cfg, "SLSTR", grid_bbox(gc.grid), lo, hi, "global chain LST"))
    if lc.enabled and lc.source == "stac":
        first, last = local_window(dekad)
        for tile in lc.tiles:
            for name, lo, hi in _active(lc.sensors, first, last):
                plan.searches.append(search_for(cfg, name, grid_bbox(tile.grid), lo, hi, f"local chain tile {tile.id}"))
    return plan


# --------------------------------------------------------------------------------------------
# Running a search
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _client(url: str):
    import pystac_client

    with warnings.catch_warnings():  # a static catalogue advertises no conformance classes: expected
        warnings.simplefilter("ignore")
        return pystac_client.Client.open(url)


def _item_time(item) -> datetime:
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise ValueError(f"STAC item {item.id} has no datetime")
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _keep(item, s: StacSearch) -> bool:
    t = _item_time(item)
    if not s.start <= t < s.end:
        return False
    if item.bbox is not None:
        b = item.bbox
        if b[2] < s.bbox[0] or b[0] > s.bbox[2] or b[3] < s.bbox[1] or b[1] > s.bbox[3]:
            return False
    props = item.properties
    platform = str(props.get("platform", "")).lower()
    if s.platforms and platform and platform not in s.platforms:
        return False
    if s.product in ("L7", "L8", "L9") and props.get("landsat:collection_category", "T1") != "T1":
        return False  # the Earth Engine collections are Tier 1 (DOMAIN.md §4.3)
    # DOMAIN.md §4.6: S3B SL_2_LST is operational from 2018-11-17 (earlier: commissioning data)
    return not (s.product == "SLSTR" and platform == "sentinel-3b" and t.date() < P.SLSTR_S3B_START)


def run_search(s: StacSearch) -> list:
    """The items of ``s`` (pystac Items, sorted by time then id)."""
    from pystac_client.exceptions import APIError

    client = _client(s.url)
    try:
        if client.conforms_to(_conformance("ITEM_SEARCH")):
            found = client.search(collections=[s.collection], bbox=list(s.bbox), datetime=s.datetime).items()
        else:  # a static catalogue: walk the collection (pystac-client warns that it falls back to pystac)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                coll = client.get_collection(s.collection)
                found = list(coll.get_items(recursive=True)) if coll is not None else []
        items = [it for it in found if _keep(it, s)]
    except APIError as exc:
        raise RuntimeError(f"STAC search failed at {s.url} ({s.collection}): {exc}") from None
    return sorted(items, key=lambda it: (_item_time(it), it.id))


def _conformance(name: str):
    from pystac_client.conformance import ConformanceClasses

    return getattr(ConformanceClasses, name)


def scene_times(cfg: Config, product_key: str, first: date, last: date,
                grid: Grid | None = None) -> list[datetime] | None:
    """Acquisition times found in the STAC source of the spec product ``product_key`` (e.g. "S2",
    "SL_2_LST") over the dekad's days (``dekads.acquisition_day``; over ``grid`` when given, else every
    tile), or None when that product is not read from STAC (the routine's availability check and latency table)."""
    product = "SLSTR" if product_key == P.SL_2_LST.key else product_key
    if product not in ("S2", "L7", "L8", "L9", "SLSTR") or _source(cfg, product) is None:
        return None
    if grid is not None:
        boxes = [grid_bbox(grid)]
    elif product == "SLSTR":
        boxes = [grid_bbox(cfg.global_chain.grid)]
    else:
        boxes = [grid_bbox(t.grid) for t in cfg.local_chain.tiles]
    bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return [_item_time(it) for it in run_search(search_for(cfg, product, bbox, first, last, "availability"))]


__all__ = ["SearchPlan", "StacSearch", "assets_of", "dating_of", "grid_bbox", "plan_searches", "run_search",
           "scene_times", "utc_window"]
