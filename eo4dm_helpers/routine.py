"""Routine operations: what to process (run modes), whether the data are there yet (availability and
the wait rule), how late each product is (latency), and what the last run left to do.

Modes (DOMAIN.md §1.2): ``auto`` from the dekad after the last one in the archive to the latest complete
dekad, plus the provisional ones to recompute; ``manual`` a given period (inclusive); ``indices``
composites only; ``drought`` indicators and report only, from the archive.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from . import completeness as C
from . import products as P
from .config import Config, ConfigError, LocalTile
from .dekads import Dekad, DekadError, acquisition_day, acquisition_window, latest_complete_dekad
from .storage import write_text_atomic

# Notebooks of each mode (the routine runs them in this order).
MODE_NOTEBOOKS = {
    "auto": None,  # all
    "manual": None,
    "indices": ("01_medium_resolution", "02_sentinel2", "03_landsat", "04_local_composite", "05_download"),
    "drought": ("06_indicators", "07_report"),
}

EXIT_DONE, EXIT_STEP_FAILED, EXIT_CONFIG, EXIT_LOCKED, EXIT_EARTH_ENGINE, EXIT_WAITING, EXIT_INTERRUPTED = range(7)
REPORT_NOTEBOOKS = ("06_indicators", "07_report")  # a dekad whose composites are all there


@dataclass
class Plan:
    """What an auto run does: dekads completed in-process (the history, no bulletin), then dekads run
    through the notebooks (with their bulletin), each with the notebooks it needs."""

    history: list[Dekad] = field(default_factory=list)
    routine: list[Dekad] = field(default_factory=list)
    notebooks: dict[Dekad, tuple[str, ...] | None] = field(default_factory=dict)  # None: all
    missing: dict[Dekad, list[C.Product]] = field(default_factory=dict)
    bulletins_from: Dekad | None = None

    @property
    def empty(self) -> bool:
        return not self.history and not self.routine


def routine_state_path(cfg: Config) -> Path:
    return cfg.paths.output / "state" / "routine.json"


def bulletins_from(cfg: Config, inv: C.Inventory, today: date, *, record: bool = False) -> Dekad:
    """The first dekad a bulletin is expected for: recorded by the first auto run (the dekad after the last
    one the archive held then, at most the latest complete dekad); earlier dekads are history, completed
    in-process without a bulletin. ``record`` saves it when it was not recorded yet."""
    p = routine_state_path(cfg)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return Dekad.parse(data["bulletins_from"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, DekadError):
        raise ConfigError(f"{p}: damaged routine state (not the JSON this version writes); delete it (bulletins "
                          "are then expected from the next dekad on)") from None
    latest = latest_complete_dekad(today)
    last = inv.last_dekad()
    first = min(latest, last.next()) if last is not None else latest
    if record:
        write_text_atomic(p, json.dumps({"bulletins_from": first.label}, indent=1) + "\n")
    return first


def auto_plan(cfg: Config, today: date, inv: C.Inventory | None = None) -> Plan:
    """Every incomplete dekad from the archive's start (or ``history_start``) to the latest complete one
    (DOMAIN.md §1.5 AUTO, made convergent: a dekad left incomplete by any earlier run is taken up again)."""
    inv = inv or C.Inventory.scan(cfg, today)
    plan = Plan(bulletins_from=bulletins_from(cfg, inv, today))
    for d in C.span(cfg, inv, today):
        routine = d >= plan.bulletins_from
        todo = C.missing(cfg, d, inv, bulletin=routine)
        if not todo:
            continue
        plan.missing[d] = todo
        if routine:
            plan.routine.append(d)
            plan.notebooks[d] = None if C.composites_missing(todo) else REPORT_NOTEBOOKS
        else:
            plan.history.append(d)
    return plan


def auto_period(cfg: Config, today: date) -> list[Dekad]:
    """The dekads an auto run processes (history and routine), in order."""
    plan = auto_plan(cfg, today)
    return plan.history + plan.routine


def check_folders(cfg: Config) -> None:
    """``paths.archive`` and ``paths.output`` are folders (or can be made): not a file, not a link loop."""
    for key, folder in (("paths.archive", cfg.paths.archive), ("paths.output", cfg.paths.output)):
        p = Path(folder)
        try:
            p.resolve(strict=False)
        except RuntimeError:  # Python < 3.13: a symlink loop
            raise ConfigError(f"{key}: {p} is a symbolic link loop") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(f"{key}: {p} is a symbolic link loop") from None
            raise ConfigError(f"{key}: {p} cannot be used ({exc.strerror})") from None
        try:
            exists, is_dir, link = p.exists(), p.is_dir(), p.is_symlink()
        except OSError as exc:
            raise ConfigError(f"{key}: {p} cannot be used ({exc.strerror})") from None
        if exists and not is_dir:
            raise ConfigError(f"{key}: {p} is a file, not a folder")
        if link and not exists:
            raise ConfigError(f"{key}: {p} is a symbolic link to nothing (or a loop)")


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


@dataclass(frozen=True)
class _Query:
    product: str
    tile: LocalTile | None  # None: the global chain (the territory's grid)
    collection: str  # several joined by "+" (Landsat: every sensor of the dekad)
    first: date
    last: date
    expected: int
    dating: str = "scene"  # products.Product.dating: which UTC window holds the days [first, last]

    def window(self, tz: str) -> tuple[datetime, datetime]:
        return acquisition_window(self.first, self.last, tz, dating=self.dating)


def count_products(cfg: Config, dekad: Dekad) -> list[ProductCount]:
    """Products found against expected in the dekad's local dates (EO4DM's rule: every daily MODIS/VIIRS
    granule, at least ``availability.s2_min`` Sentinel-2 and ``landsat_min`` Landsat scenes per tile,
    counted over each tile: scenes over its grid, S2 of its ``s2_tiles`` when listed).
    Local backend: the scene store; Earth Engine: one batched request."""
    from .chains import sensor_for

    av = cfg.availability
    queries: list[_Query] = []
    if cfg.global_chain.enabled:
        ndwi = sensor_for(cfg.global_chain.ndwi_sensors, dekad.start)
        lst = sensor_for(cfg.global_chain.lst_sensors, dekad.start)
        for prod in (P.MEDIUM_RES_NDWI.get(ndwi or "", ()) + P.LST_SOURCES.get(lst or "", ()))[:2]:
            queries.append(_Query(prod.key, None, prod.collection, dekad.start, dekad.end, dekad.ndays,
                                  prod.dating))  # daily products: their product days (DOMAIN.md §3.4)
    if cfg.local_chain.enabled:
        first, last = dekad.start, dekad.end
        names = {s.name for s in cfg.local_chain.sensors if s.start <= last and (s.end is None or s.end >= first)}
        for tile in cfg.local_chain.tiles:
            if "S2" in names:
                queries.append(_Query("S2", tile, P.S2.collection, first, last, av.s2_min))
            landsat = [k for k in ("L7", "L8", "L9") if k in names]
            for k in landsat:
                queries.append(_Query(k, tile, P.PRODUCTS[k].collection, first, last, 0))
            if landsat:
                queries.append(_Query("Landsat", tile, "+".join(P.PRODUCTS[k].collection for k in landsat), first,
                                      last, av.landsat_min))
    found = _count_ee(cfg, queries) if cfg.backend == "earthengine" else _count_local(cfg, queries)
    return [ProductCount(q.product, q.tile.id if q.tile else "-", n, q.expected)
            for q, n in zip(queries, found, strict=True)]


def _count_local(cfg: Config, queries: list[_Query]) -> list[int]:
    from .local.scenes import list_scenes, over_tile
    from .stac.search import scene_times

    by_collection = {p.collection: p.key for p in (*P.PRODUCTS.values(), P.SL_2_LST)}
    out = []
    for q in queries:
        lo, hi = q.window(cfg.timezone)
        n = 0
        for c in q.collection.split("+"):
            # STAC sources (issue #10): searched over the tile's grid
            times = scene_times(cfg, by_collection.get(c, ""), q.first, q.last, q.tile.grid if q.tile else None)
            if times is None:
                n += sum(1 for s in list_scenes(cfg.paths.scenes, c, lo, hi) if q.tile is None or over_tile(s, q.tile))
            elif c == P.SL_2_LST.collection:  # SLSTR: days with a granule (several granules a day)
                n += len({acquisition_day(t, cfg.timezone, dating=q.dating) for t in times})
            else:
                n += len(times)
        out.append(n)
    return out


def _count_ee(cfg: Config, queries: list[_Query]) -> list[int]:
    """Sizes of every filtered collection in ONE request, each over its tile's grid (the global grid for
    the global chain); Sentinel-2 of the tile's ``s2_tiles`` when listed."""
    import ee

    from .ee.graphs import grid_region, s2_scenes
    from .ee.io import LiveIO

    sizes = []
    for q in queries:
        region = grid_region(q.tile.grid if q.tile else cfg.global_chain.grid)
        lo, hi = (t.isoformat() for t in q.window(cfg.timezone))
        cols = [s2_scenes(P.S2, region, lo, hi, q.tile.s2_tiles if q.tile else ()) if c == P.S2.collection else
                ee.ImageCollection(c).filterBounds(region).filterDate(lo, hi) for c in q.collection.split("+")]
        total = cols[0].size()
        for c in cols[1:]:
            total = total.add(c.size())
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

        latest = {}
        from .stac.search import scene_times

        for p in products:
            times = scene_times(cfg, p.key, today - timedelta(days=lookback_days), today)  # STAC (#10)
            if times is None:
                lo, hi = acquisition_window(today - timedelta(days=lookback_days), today, cfg.timezone,
                                            dating=p.dating)
                times = [s.time_start for s in list_scenes(cfg.paths.scenes, p.collection, lo, hi)]
            latest[p.key] = max(times) if times else None
    rows = []
    for p in products:
        t = latest.get(p.key)
        rows.append({"product": p.key, "collection": p.collection,
                     "latest acquisition (UTC)": t.strftime("%Y-%m-%d %H:%M") if t else f"none in {lookback_days} d",
                     "latency (days)": (today - acquisition_day(t, cfg.timezone, dating=p.dating)).days
                     if t else None})  # a daily product's product day, a scene's local date (§3.4)
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
# Run state: what the last run was asked, did and where it stopped (for --since-failure)
# --------------------------------------------------------------------------------------------
STATE_VERSION = 2


def state_path(cfg: Config) -> Path:
    return cfg.paths.output / "state" / "last_run.json"


@dataclass
class RunState:
    """``<output>/state/last_run.json``: written when a run starts, after every dekad and when it ends,
    so that ``--since-failure`` resumes after a kill, an interruption or a full disk."""

    cfg: Config
    mode: str
    requested: list[Dekad]  # dekads run through the notebooks
    notebooks: tuple[str, ...] | None = None  # those the requested dekads run (None: all)
    run_id: str = ""
    history: list[Dekad] = field(default_factory=list)  # dekads completed in-process (no bulletin)
    done: list[Dekad] = field(default_factory=list)
    current: Dekad | None = None
    status: str = "running"  # running, done, failed, waiting, interrupted
    exit_code: int | None = None
    detail: str = ""
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def save(self) -> None:
        from .interrupt import deferred

        data = {"version": STATE_VERSION, "run_id": self.run_id, "pid": os.getpid(), "mode": self.mode,
                "requested": [d.label for d in self.requested], "history": [d.label for d in self.history],
                "done": [d.label for d in self.done],
                "notebooks": list(self.notebooks) if self.notebooks else None,
                "current": self.current.label if self.current else None,
                "failed": self.current.label if self.current and self.status != "running" else None,
                "status": self.status, "exit_code": self.exit_code, "detail": self.detail,
                "started": self.started,
                "finished": None if self.status == "running" else datetime.now(UTC).isoformat(timespec="seconds")}
        with deferred():
            write_text_atomic(state_path(self.cfg), json.dumps(data, indent=1))

    def finish(self, code: int, status: str, detail: str = "") -> None:
        self.exit_code, self.status, self.detail = code, status, detail
        self.save()


def save_state(cfg: Config, requested: list[Dekad], done: list[Dekad], failed: Dekad | None, mode: str,
               exit_code: int) -> None:
    """One-shot state of a finished run."""
    st = RunState(cfg, mode, list(requested), done=list(done), current=failed)
    st.finish(exit_code, "done" if exit_code == EXIT_DONE else "failed")


def read_state(cfg: Config) -> dict | None:
    """The last run's state; ConfigError naming the file when it is damaged."""
    p = state_path(cfg)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{p}: the last run's state cannot be read ({why}); delete it and run the dekads "
                          "again") from None
    try:
        st = json.loads(text)
        if not isinstance(st, dict):
            raise ValueError
        requested = [Dekad.parse(x) for x in st.get("requested") or []]
        history = [Dekad.parse(x) for x in st.get("history") or []]
        done = {Dekad.parse(x) for x in st.get("done") or []}
        mode = st.get("mode", "manual")
        notebooks = st.get("notebooks")
        if mode not in MODE_NOTEBOOKS or not (notebooks is None or isinstance(notebooks, list)):
            raise ValueError
    except (ValueError, TypeError, AttributeError, DekadError):
        raise ConfigError(f"{p}: damaged run state (not the JSON this version writes); delete it and run the "
                          "dekads again") from None
    st["requested"], st["history"], st["done"] = requested, history, done
    return st


@dataclass
class Resume:
    """What ``--since-failure`` runs: the last run's mode, its dekads left to run through the notebooks
    (``None`` after an auto run: auto mode re-plans every incomplete dekad by itself) and its history
    dekads left to complete in-process."""

    mode: str
    routine: list[Dekad] | None
    history: list[Dekad] = field(default_factory=list)


def since_failure(cfg: Config) -> Resume:
    """What the last run did not finish: its dekads not done, or done and made incomplete since."""
    st = read_state(cfg)
    if st is None:
        return Resume("manual", [])
    mode = st["mode"]
    if mode == "auto":
        return Resume("auto", None)
    notebooks = st.get("notebooks")
    bulletin = notebooks is None or "07_report" in notebooks
    inv = C.Inventory.scan(cfg)

    def left(dekads: list[Dekad], with_bulletin: bool) -> list[Dekad]:
        return [d for d in dekads if d not in st["done"] or (mode != "indices" and C.missing(
            cfg, d, inv, bulletin=with_bulletin))]

    return Resume(mode, left(st["requested"], bulletin), left(st["history"], False))
