"""Routine operations: what to process (run modes), whether the data are there yet (availability and
the wait rule), how late each product is (latency), and what the last run left to do.

Modes (DOMAIN.md §1.2): ``auto`` from the dekad after the last one in the archive to the latest complete
dekad, plus the provisional ones to recompute; ``manual`` a given period (inclusive); ``indices``
composites only; ``drought`` indicators and report only, from the archive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from . import products as P
from .archive import Archive
from .config import Config
from .dekads import Dekad, dekad_range, latest_complete_dekad
from .storage import write_text_atomic

# Notebooks of each mode (the routine runs them in this order).
MODE_NOTEBOOKS = {
    "auto": None,  # all
    "manual": None,
    "indices": ("01_medium_resolution", "02_sentinel2", "03_landsat", "04_local_composite", "05_download"),
    "drought": ("06_indicators", "07_report"),
}

EXIT_DONE, EXIT_STEP_FAILED, EXIT_CONFIG, EXIT_LOCKED, EXIT_EARTH_ENGINE, EXIT_WAITING = 0, 1, 2, 3, 4, 5


class NothingToDo(Exception):
    """An ``auto`` run found no new complete dekad."""


def auto_period(cfg: Config, today: date) -> list[Dekad]:
    """From the dekad after the last one in the archive to the latest complete dekad (DOMAIN.md §1.5
    AUTO); from the parameters' history_start when the archive is empty."""
    last_complete = latest_complete_dekad(today)
    last = Archive(cfg.paths.archive).latest_global_dekad() if cfg.global_chain.enabled else None
    if last is None:
        last = _latest_local(cfg)
    if last is None:
        if cfg.history_start is None:
            return [last_complete]
        return dekad_range(Dekad.containing(cfg.history_start), last_complete)
    return dekad_range(last.next(), last_complete)


def _latest_local(cfg: Config) -> Dekad | None:
    found = []
    for t in cfg.local_chain.tiles:
        folder = Archive(cfg.paths.archive).root / "composites" / "local" / t.id / "dekad"
        for p in folder.glob("LS2_NDWI_*_COMPD*.tif") if folder.is_dir() else []:
            stem = p.stem.split("_")
            found.append(Dekad(int(stem[2][:4]), int(stem[2][4:]), int(stem[3][-1])))
    return max(found) if found else None


# --------------------------------------------------------------------------------------------
# Availability and the wait rule
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProductCount:
    product: str
    tile: str
    found: int
    expected: int

    @property
    def enough(self) -> bool:
        return self.found >= self.expected


@dataclass
class Availability:
    dekad: Dekad
    counts: list[ProductCount] = field(default_factory=list)
    decision: str = ""  # "process", "wait" or "process-incomplete"
    reason: str = ""

    def rows(self) -> list[dict[str, object]]:
        return [{"product": c.product, "tile": c.tile, "found": c.found, "expected": c.expected,
                 "enough": "yes" if c.enough else "no"} for c in self.counts]


def _window_utc(tz: str, first: date, last: date) -> tuple[datetime, datetime]:
    z = ZoneInfo(tz)
    return (datetime.combine(first, time(0), z).astimezone(UTC),
            datetime.combine(last + timedelta(days=1), time(0), z).astimezone(UTC))


def count_products(cfg: Config, dekad: Dekad) -> list[ProductCount]:
    """Products found against expected in the dekad's local dates (EO4DM's rule: every daily MODIS/VIIRS
    granule, at least ``availability.s2_min`` Sentinel-2 and ``landsat_min`` Landsat scenes per tile).
    Local backend: the scene store; Earth Engine: one batched request."""
    from .chains import sensor_for

    av = cfg.availability
    out: list[ProductCount] = []
    queries: list[tuple[str, str, str, date, date, int]] = []  # product, tile, collection, first, last, expected
    if cfg.global_chain.enabled:
        ndwi = sensor_for(cfg.global_chain.ndwi_sensors, dekad.start)
        lst = sensor_for(cfg.global_chain.lst_sensors, dekad.start)
        for prod in (P.MEDIUM_RES_NDWI.get(ndwi or "", ()) + P.LST_SOURCES.get(lst or "", ()))[:2]:
            queries.append((prod.key, "-", prod.collection, dekad.start, dekad.end, dekad.ndays))
    if cfg.local_chain.enabled:
        first, last = dekad.start, dekad.end
        names = {s.name for s in cfg.local_chain.sensors if s.start <= last and (s.end is None or s.end >= first)}
        for tile in cfg.local_chain.tiles:
            if "S2" in names:
                queries.append(("S2", tile.id, P.S2.collection, first, last, av.s2_min))
            landsat = [k for k in ("L7", "L8", "L9") if k in names]
            for k in landsat:
                queries.append((k, tile.id, P.PRODUCTS[k].collection, first, last, 0))
            if landsat:
                queries.append(("Landsat", tile.id, "+".join(P.PRODUCTS[k].collection for k in landsat), first,
                                last, av.landsat_min))
    found = _count(cfg, [(q[2], q[3], q[4]) for q in queries], {q[1] for q in queries} - {"-"})
    for (product, tile, _c, _f, _l, expected), n in zip(queries, found, strict=True):
        out.append(ProductCount(product, tile, n, expected))
    return out


def _count(cfg: Config, windows: list[tuple[str, date, date]], tiles: set[str]) -> list[int]:
    if cfg.backend == "earthengine":
        return _count_ee(cfg, windows)
    from .local.scenes import list_scenes
    from .stac.search import scene_times

    by_collection = {p.collection: p.key for p in (*P.PRODUCTS.values(), P.SL_2_LST)}
    out = []
    for coll, first, last in windows:
        lo, hi = _window_utc(cfg.timezone, first, last)
        n = 0
        for c in coll.split("+"):
            times = scene_times(cfg, by_collection.get(c, ""), first, last)  # STAC sources (issue #10)
            if times is None:
                n += len(list_scenes(cfg.paths.scenes, c, lo, hi))
            elif c == P.SL_2_LST.collection:  # SLSTR: days with a granule (several granules a day)
                n += len({t.astimezone(ZoneInfo(cfg.timezone)).date() for t in times})
            else:
                n += len(times)
        out.append(n)
    return out


def _count_ee(cfg: Config, windows: list[tuple[str, date, date]]) -> list[int]:
    """Sizes of every filtered collection in ONE request."""
    import ee

    from .ee.graphs import grid_region
    from .ee.io import LiveIO

    region = grid_region(cfg.global_chain.grid)
    sizes = []
    for coll, first, last in windows:
        lo, hi = _window_utc(cfg.timezone, first, last)
        cols = [ee.ImageCollection(c).filterBounds(region).filterDate(lo.isoformat(), hi.isoformat()).size()
                for c in coll.split("+")]
        total = cols[0]
        for c in cols[1:]:
            total = total.add(c)
        sizes.append(total)
    return [int(v) for v in LiveIO().compute_value(ee.List(sizes))]


def check_availability(cfg: Config, dekad: Dekad, today: date) -> Availability:
    """Process when every product has enough acquisitions; else wait until ``availability.max_wait_days``
    after the dekad's end, then process with what exists and flag it."""
    a = Availability(dekad, count_products(cfg, dekad))
    short = [c for c in a.counts if not c.enough]
    deadline = dekad.end + timedelta(days=cfg.availability.max_wait_days)
    if not short:
        a.decision, a.reason = "process", "all products available"
    elif today <= deadline:
        a.decision = "wait"
        a.reason = (f"waiting for {', '.join(f'{c.product} ({c.found}/{c.expected})' for c in short)} until "
                    f"{deadline} (availability.max_wait_days = {cfg.availability.max_wait_days})")
    else:
        a.decision = "process-incomplete"
        a.reason = (f"processed with incomplete data after waiting {cfg.availability.max_wait_days} days: "
                    f"{', '.join(f'{c.product} {c.found}/{c.expected}' for c in short)}")
    return a


# --------------------------------------------------------------------------------------------
# Latency (design note §5): latest acquisition available against today, per product
# --------------------------------------------------------------------------------------------
def latency_table(cfg: Config, today: date, lookback_days: int = 60) -> list[dict[str, object]]:
    """Latest acquisition of each product the parameters use, and its delay in days."""
    products = _used_products(cfg)
    if cfg.backend == "earthengine":
        latest = _latest_ee(cfg, products, today, lookback_days)
    else:
        from .local.scenes import list_scenes

        lo, hi = _window_utc(cfg.timezone, today - timedelta(days=lookback_days), today)
        latest = {}
        from .stac.search import scene_times

        for p in products:
            times = scene_times(cfg, p.key, today - timedelta(days=lookback_days), today)  # STAC (#10)
            if times is None:
                times = [s.time_start for s in list_scenes(cfg.paths.scenes, p.collection, lo, hi)]
            latest[p.key] = max(times) if times else None
    rows = []
    for p in products:
        t = latest.get(p.key)
        rows.append({"product": p.key, "collection": p.collection,
                     "latest acquisition (UTC)": t.strftime("%Y-%m-%d %H:%M") if t else f"none in {lookback_days} d",
                     "latency (days)": (today - t.astimezone(ZoneInfo(cfg.timezone)).date()).days if t else None})
    return rows


def _used_products(cfg: Config) -> list[P.Product]:
    out: dict[str, P.Product] = {}
    for s in cfg.global_chain.ndwi_sensors if cfg.global_chain.enabled else ():
        for p in P.MEDIUM_RES_NDWI.get(s.name, ()):
            out[p.key] = p
    for s in cfg.global_chain.lst_sensors if cfg.global_chain.enabled else ():
        for p in P.LST_SOURCES.get(s.name, ()):
            out[p.key] = p
    for s in cfg.local_chain.sensors if cfg.local_chain.enabled else ():
        for p in P.HIGH_RES.get(s.name, ()):
            out[p.key] = p
    return list(out.values())


def _latest_ee(cfg: Config, products: list[P.Product], today: date, lookback: int) -> dict[str, datetime | None]:
    """``aggregate_max('system:time_start')`` of every collection in ONE request."""
    import ee

    from .ee.graphs import grid_region
    from .ee.io import LiveIO

    region = grid_region(cfg.global_chain.grid)
    lo, hi = today - timedelta(days=lookback), today + timedelta(days=1)
    d = ee.Dictionary({p.key: ee.ImageCollection(p.collection).filterBounds(region)
                       .filterDate(lo.isoformat(), hi.isoformat()).aggregate_max("system:time_start")
                       for p in products})
    info = LiveIO().compute_value(d) or {}
    return {k: datetime.fromtimestamp(v / 1000, UTC) if isinstance(v, int | float) else None for k, v in info.items()}


# --------------------------------------------------------------------------------------------
# Run state: what the last run was asked, did and where it failed (for --since-failure)
# --------------------------------------------------------------------------------------------
def state_path(cfg: Config) -> Path:
    return cfg.paths.output / "state" / "last_run.json"


def save_state(cfg: Config, requested: list[Dekad], done: list[Dekad], failed: Dekad | None, mode: str,
               exit_code: int) -> None:
    write_text_atomic(state_path(cfg), json.dumps({
        "requested": [d.label for d in requested], "done": [d.label for d in done],
        "failed": failed.label if failed else None, "mode": mode, "exit_code": exit_code,
        "finished": datetime.now(UTC).isoformat(timespec="seconds")}, indent=1))


def since_failure(cfg: Config) -> tuple[list[Dekad], str]:
    """The dekads the last run did not finish (from its failed dekad to the end of its request)."""
    p = state_path(cfg)
    if not p.exists():
        return [], "no previous run recorded"
    st = json.loads(p.read_text(encoding="utf-8"))
    done = set(st.get("done", []))
    todo = [Dekad.parse(x) for x in st.get("requested", []) if x not in done]
    return todo, st.get("mode", "manual")
