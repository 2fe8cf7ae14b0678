"""The two chains on the local engine, per dekad: which scenes, preprocessing, composites.

Notebooks call these; ``backfill`` calls them too, to build the historical reference from raw scenes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from . import products as P
from .capabilities import capabilities
from .composites import Composite, Observation, choose_window, composite, local_dekad_composite, write_composite
from .config import Config, LocalTile, SensorPeriod
from .dekads import Dekad, acquisition_day, acquisition_window, month_ndays, widened_window
from .local.highres import Staged, preprocess_highres, stage_highres
from .local.land import LandMask
from .local.preprocess import Dropped, Processed, land_mask, preprocess_medium
from .local.scenes import list_scenes
from .local.windows import WINDOW


class NoDataError(RuntimeError):
    """A dekad has no usable acquisition at all (empty or all-cloud)."""


@dataclass
class Availability:
    """What was found and used, for the report (per product)."""

    found: Counter = field(default_factory=Counter)
    used: Counter = field(default_factory=Counter)
    dropped: list[Dropped] = field(default_factory=list)
    latest: dict[str, str] = field(default_factory=dict)  # product -> latest acquisition (ISO)
    inputs: list[str] = field(default_factory=list)  # "<collection>/<system:index>" of every scene used

    def merge(self, other: Availability) -> None:
        self.found.update(other.found)
        self.used.update(other.used)
        self.dropped.extend(other.dropped)
        self.inputs.extend(other.inputs)
        for k, v in other.latest.items():
            self.latest[k] = max(v, self.latest.get(k, v))

    def as_rows(self) -> list[dict[str, object]]:
        reasons: dict[str, Counter] = {}
        for d in self.dropped:
            reasons.setdefault(d.product, Counter())[d.reason] += 1
        return [{"product": k, "found": self.found[k], "used": self.used[k],
                 "dropped": "; ".join(f"{r} ({n})" for r, n in reasons.get(k, Counter()).items()),
                 "latest acquisition": self.latest.get(k, "")} for k in sorted(self.found)]


def sensor_for(periods: tuple[SensorPeriod, ...], day: date) -> str | None:
    for s in periods:
        if s.covers(day):
            return s.name
    return None


# --------------------------------------------------------------------------------------------
# Global chain (MODIS / VIIRS)
# --------------------------------------------------------------------------------------------
def global_days(cfg: Config, first: date, last: date, land: np.ndarray | None = None
                ) -> tuple[list[Processed], Availability]:
    """Preprocess every day from ``first`` to ``last`` (local dates): NDWI + LST, common mask (NDWI and NDVI
    alone when no LST is configured)."""
    gc, root, grid = cfg.global_chain, cfg.paths.scenes, cfg.global_chain.grid
    if root is None:
        raise ValueError("paths.scenes is required with the local backend")
    land = land_mask(root, grid) if land is None else land
    by_day: dict[tuple[str, date], list] = {}
    avail = Availability()
    lst_on = capabilities(cfg).lst  # no LST configured: no LST product is read
    for sensors, table in ((gc.ndwi_sensors, P.MEDIUM_RES_NDWI), (gc.lst_sensors if lst_on else (), P.LST_SOURCES)):
        for name in {s.name for s in sensors}:
            for prod in table[name]:
                # daily products by product day, in every time zone (DOMAIN.md §3.4, products.Product.dating)
                lo, hi = acquisition_window(first, last, cfg.timezone, dating=prod.dating)
                for s in _medium_scenes(cfg, prod, lo, hi):
                    d = acquisition_day(s.time_start, cfg.timezone, dating=prod.dating)
                    if sensor_for(sensors, d) != name:
                        continue
                    by_day.setdefault((prod.key, d), []).append(s)
                    avail.found[prod.key] += 1
                    avail.latest[prod.key] = max(s.time_start.isoformat(), avail.latest.get(prod.key, ""))
    out = []
    day = first
    while day <= last:
        ndwi_sensor = sensor_for(gc.ndwi_sensors, day)
        lst_sensor = sensor_for(gc.lst_sensors, day) if lst_on else None
        if ndwi_sensor and (lst_sensor or not lst_on):
            ndwi_prod = P.MEDIUM_RES_NDWI[ndwi_sensor][0]
            ndwi_scenes = by_day.get((ndwi_prod.key, day), [])
            # SLSTR days: LST only (§4.6); no LST configured: none (reflectance indices alone)
            lst_prods = {p.collection: p for p in P.LST_SOURCES[lst_sensor]} if lst_sensor else {}
            lst_scenes = [s for p in lst_prods.values() for s in by_day.get((p.key, day), [])]
            r = preprocess_medium(ndwi_scenes[0] if ndwi_scenes else None, lst_scenes, ndwi_prod, lst_prods,
                                  grid, land, cfg.timezone, gc.lst_qc_mask, gc.daily_nan_max)
            if isinstance(r, Processed):
                r.day = day
                out.append(r)
                avail.used[ndwi_prod.key] += 1
                avail.inputs.append(f"{ndwi_prod.collection}/{ndwi_scenes[0].index}")
                for s in lst_scenes:
                    avail.used[lst_prods[s.collection].key] += 1
                    avail.inputs.append(f"{s.collection}/{s.index}")
            elif ndwi_scenes or lst_scenes:
                avail.dropped.append(r)
        day += timedelta(days=1)
    return out, avail


def _medium_scenes(cfg: Config, prod: P.Product, lo: datetime, hi: datetime) -> list:
    """Daily products of ``prod``: SL_2_LST from its STAC catalogue (DOMAIN.md §4.6), else the scene store."""
    if prod.key in {p.key for ps in P.STAC_LST.values() for p in ps}:
        from .stac.loader import slstr_scenes

        return slstr_scenes(cfg, lo, hi)
    assert cfg.paths.scenes is not None
    return list_scenes(cfg.paths.scenes, prod.collection, lo, hi)


def global_composites(days: list[Processed], first: date, last: date, shape: tuple[int, int]) -> Composite:
    chosen = [d for d in days if first <= d.day <= last]
    names = tuple(n for n in ("NDWI", "NDVI", "LST") if n != "NDVI" or all("NDVI" in d.values for d in chosen))
    if chosen and not all("LST" in d.values for d in chosen):  # no LST configured
        names = tuple(n for n in names if n != "LST")
    comp = composite(chosen, names, shape)
    comp.window = (first, last)
    return comp


def global_period_sensor(cfg: Config, day: date) -> tuple[str, str | None]:
    """(NDWI sensor, LST sensor) valid on ``day``; LST None when no LST is configured (capabilities)."""
    gc = cfg.global_chain
    lst_on = capabilities(cfg).lst
    n, t = sensor_for(gc.ndwi_sensors, day), sensor_for(gc.lst_sensors, day) if lst_on else None
    if n is None or (lst_on and t is None):
        raise NoDataError(f"no medium-resolution sensor is configured for {day} "
                          "(global_chain.ndwi_sensors / lst_sensors)")
    return n, t


def month_bounds(dekad: Dekad) -> tuple[date, date]:
    return date(dekad.year, dekad.month, 1), date(dekad.year, dekad.month, month_ndays(dekad.year, dekad.month))


# --------------------------------------------------------------------------------------------
# Local chain (Sentinel-2, Landsat)
# --------------------------------------------------------------------------------------------
def local_window(dekad: Dekad) -> tuple[date, date]:
    """The widest window the widening may reach: ±10 days and the whole month (DOMAIN.md §1.5)."""
    lo_m, hi_m = widened_window(dekad, "m")
    lo_M, hi_M = widened_window(dekad, "M")
    return min(lo_m, lo_M), max(hi_m, hi_M)


def highres_scenes(cfg: Config, tile: LocalTile, dekad: Dekad, sensors: tuple[str, ...],
                   land: LandMask | np.ndarray | None = None, folder: Path | None = None,
                   window: int | None = WINDOW) -> tuple[list[Staged | Processed], Availability]:
    """Preprocess the scenes of ``sensors`` (e.g. ("S2",) or ("L7", "L8", "L9")) in the widest window.

    With ``folder``, each scene is staged there as a GeoTIFF written window by window (bounded memory
    on 10 m tiles); without, results are kept in memory (small grids, tests).
    """
    from .calibration import local_chain_for

    lc, root = local_chain_for(cfg), cfg.paths.scenes  # fitted coefficients when calibration_source: archive
    if root is None:
        raise ValueError("paths.scenes is required with the local backend")
    if land is None:
        land = land_mask(root, tile.grid)
    mask = land if isinstance(land, LandMask) else LandMask(tile.grid, array=land)
    first, last = local_window(dekad)
    avail = Availability()
    out: list[Staged | Processed] = []
    for period in lc.sensors:
        if period.name not in sensors:
            continue
        for prod in P.HIGH_RES[period.name]:
            lo, hi = acquisition_window(first, last, cfg.timezone, dating=prod.dating)  # local dates (§3.4)
            if lc.source == "stac":  # scenes from the STAC catalogue, read by dask chunks (issue #10)
                from .stac.loader import highres_scenes as stac_scenes

                found = stac_scenes(cfg, prod, tile, lo, hi)
            else:
                found = list_scenes(root, prod.collection, lo, hi)
            if tile.s2_tiles:  # the tile's MGRS tiles only (S2 tiles overlap: no acquisition twice)
                found = [s for s in found if str(s.properties.get("MGRS_TILE", "")) in tile.s2_tiles
                         or "MGRS_TILE" not in s.properties]
            for s in found:
                d = acquisition_day(s.time_start, cfg.timezone, dating=prod.dating)
                if not period.covers(d):
                    continue
                avail.found[prod.key] += 1
                avail.latest[prod.key] = max(s.time_start.isoformat(), avail.latest.get(prod.key, ""))
                if folder is not None:
                    r = stage_highres(s, prod, tile.grid, mask, lc, root, cfg.timezone, folder, window)
                else:
                    r = preprocess_highres(s, prod, tile.grid, mask, lc, root, cfg.timezone, window)
                if isinstance(r, Dropped):
                    avail.dropped.append(r)
                else:
                    out.append(r)
                    avail.used[prod.key] += 1
    return sorted(out, key=lambda p: (p.time_start, p.scene_id)), avail


def local_composite(cfg: Config, dekad: Dekad, images: list[Processed], land: np.ndarray) -> Composite:
    """The tile's composite with window widening, in memory (small grids, tests)."""
    return local_dekad_composite(images, dekad, land, cfg.local_chain.thresholds.composite_nan_max)


def write_local_composite(cfg: Config, dekad: Dekad, tile: LocalTile, images: list[Observation], land: LandMask,
                          paths: dict[str, Path], window: int | None = WINDOW) -> Composite:
    """Choose the widening level, then write the tile's composites (one file per index in ``paths``)
    window by window. Nothing is written when no scene is usable even over the whole month."""
    # the widening looks at NDVI and NDWI whatever is written (DOMAIN.md §1.5; the Earth Engine graph does too)
    choice = choose_window(images, dekad, land, cfg.local_chain.thresholds.composite_nan_max, ("NDVI", "NDWI"), window)
    if not choice.images:
        raise NoDataError(f"local chain, tile {tile.id}, {dekad.label}: no usable Sentinel-2 or "
                          "Landsat scene even over the whole month; nothing written")
    return write_composite(choice, dekad, tile.grid, paths, window)
