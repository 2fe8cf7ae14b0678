"""Sentinel-3 SLSTR L2 LST (SL_2_LST) swaths: read, flag, resample onto a grid (DOMAIN.md §4.6).

What is relied on, and where it was checked:

* Files of an SL_2_LST product (``.SEN3`` folder): ``LST_in.nc`` (variable ``LST`` in Kelvin,
  ``LST_uncertainty``), ``flags_in.nc`` (``confidence_in``, ``cloud_in``, ``bayes_in``), ``geodetic_in.nc``
  (``latitude_in``, ``longitude_in``) on the 1 km nadir ("in") grid, dimensions (rows, columns).
  Confirmed: the Planetary Computer collection (``LST_in.nc``; assets lst-in, slstr-flags-in,
  slstr-geodetic-in) and several public readers; the product format specification itself was not read.
* ``confidence_in`` bits (flag_meanings): coastline ocean tidal land inland_water unfilled spare spare
  cosmetic duplicate day twilight sun_glint snow summary_cloud summary_pointing (bit 0 ... 15).
  ``bayes_in`` bits: single_low single_moderate dual_low dual_moderate. ``cloud_in`` bits: visible
  1.37_threshold 1.6_small_histogram 1.6_large_histogram 2.25_small_histogram 2.25_large_histogram
  11_spatial_coherence gross_cloud thin_cirrus medium_high fog_low_stratus 11_12_view_difference
  3.7_11_view_difference thermal_histogram spare spare. Confirmed from a CEOS-ARD (CARD4L) self-assessment
  of SL_2_LST quoting the files' ncdump (third-party copy) and public readers; the bit positions are read
  from each file's ``flag_masks``/``flag_meanings`` when present, these positions are the fallback.
* Which flags make a pixel unusable is **our choice** (no ESA recommendation was read): unfilled,
  duplicate, summary_pointing always; with ``global_chain.lst_qc_mask`` also summary_cloud (the CARD4L
  text names it and bayes_in single_moderate as the cloud masks) and bayes single_moderate, and
  ``LST_uncertainty`` > 3 K (as the MOD11A1 rule "LST error > 3 K", DOMAIN.md §4.4). Only daytime
  pixels (``day`` bit) are kept: the TCI uses daytime LST like MODIS LST_Day (DOMAIN.md §1.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Grid

KELVIN = 273.15
LST_UNCERTAINTY_MAX_K = 3.0  # DOMAIN.md §4.4 analogue: MOD11A1 QC_Day "LST error > 3 K" is masked

# Documented bit positions (fallback when a file has no flag_masks/flag_meanings).
CONFIDENCE_MEANINGS = ("coastline", "ocean", "tidal", "land", "inland_water", "unfilled", "spare", "spare", "cosmetic",
                       "duplicate", "day", "twilight", "sun_glint", "snow", "summary_cloud", "summary_pointing")
CONFIDENCE_BITS = {name: i for i, name in enumerate(CONFIDENCE_MEANINGS) if name != "spare"}
BAYES_BITS = {"single_low": 0, "single_moderate": 1, "dual_low": 2, "dual_moderate": 3}
ALWAYS_MASKED = ("unfilled", "duplicate", "summary_pointing")
CLOUD_MASKED = ("summary_cloud",)


class SwathError(RuntimeError):
    """A swath file is missing, unreadable or lacks a variable."""


@dataclass
class Swath:
    """One SL_2_LST swath: geolocation, LST (K, NaN where masked) and what the flags removed."""

    lat: np.ndarray
    lon: np.ndarray
    lst: np.ndarray  # Kelvin, float32, NaN = fill or flagged
    masked: dict[str, int]  # pixels removed per reason (before resampling), for the report
    fill: np.ndarray | None = None  # no retrieval at all (outside the product, sea): not a resampling source


def _bit_masks(var, documented: Mapping[str, int]) -> dict[str, int]:
    """name -> mask from the variable's flag_masks/flag_meanings, else the documented positions."""
    meanings = str(var.attrs.get("flag_meanings", "")).split()
    masks = var.attrs.get("flag_masks")
    if meanings and masks is not None and len(np.atleast_1d(masks)) == len(meanings):
        return {m: int(v) for m, v in zip(meanings, np.atleast_1d(masks), strict=True) if m != "spare"}
    return {k: 1 << b for k, b in documented.items()}


def _open(path: Path):
    import xarray as xr

    try:
        return xr.open_dataset(path, engine="h5netcdf", mask_and_scale=True)
    except (OSError, ValueError) as exc:
        raise SwathError(f"{path}: unreadable NetCDF ({exc.__class__.__name__}: {exc})") from None


def _var(ds, name: str, path: Path):
    if name not in ds.variables:
        raise SwathError(f"{path}: no variable {name!r} (an SL_2_LST {path.name} has it)")
    return ds[name]


def read_swath(files: Mapping[str, Path], qc: bool = True) -> Swath:
    """Read the swath of ``files`` ({"LST": LST_in.nc, "flags": flags_in.nc, "geodetic": geodetic_in.nc})
    and mask it with the product's flags (module docstring). ``qc=False`` keeps cloudy pixels
    (``global_chain.lst_qc_mask: false``), never fill, duplicates, bad pointing or night."""
    paths = {k: Path(v) for k, v in files.items()}
    with _open(paths["LST"]) as ds:
        lst = np.asarray(_var(ds, "LST", paths["LST"]).values, dtype=np.float32)
        unc = np.asarray(ds["LST_uncertainty"].values, dtype=np.float32) if "LST_uncertainty" in ds else None
    with _open(paths["geodetic"]) as ds:
        lat = np.asarray(_var(ds, "latitude_in", paths["geodetic"]).values, dtype=np.float64)
        lon = np.asarray(_var(ds, "longitude_in", paths["geodetic"]).values, dtype=np.float64)
    with _open(paths["flags"]) as ds:
        conf_var = _var(ds, "confidence_in", paths["flags"])
        conf = np.nan_to_num(np.asarray(conf_var.values, dtype=np.float64)).astype(np.uint32)
        cbits = _bit_masks(conf_var, CONFIDENCE_BITS)
        bayes = bbits = None
        if "bayes_in" in ds:
            bayes = np.nan_to_num(np.asarray(ds["bayes_in"].values, dtype=np.float64)).astype(np.uint32)
            bbits = _bit_masks(ds["bayes_in"], BAYES_BITS)
    if not (lst.shape == lat.shape == lon.shape == conf.shape):
        raise SwathError(f"{paths['LST'].parent}: LST {lst.shape}, geolocation {lat.shape} and flags {conf.shape} "
                         "differ in shape")
    masked: dict[str, int] = {}
    bad = ~np.isfinite(lst) | ~np.isfinite(lat) | ~np.isfinite(lon)
    masked["fill"] = int(bad.sum())

    def drop(name: str, where: np.ndarray) -> None:
        nonlocal bad
        new = where & ~bad
        masked[name] = int(new.sum())
        bad |= where

    if "day" in cbits:
        drop("not day", (conf & cbits["day"]) == 0)
    for name in ALWAYS_MASKED + (CLOUD_MASKED if qc else ()):
        if name in cbits:
            drop(name, (conf & cbits[name]) != 0)
    if qc and bayes is not None and bbits and "single_moderate" in bbits:
        drop("bayes single_moderate", (bayes & bbits["single_moderate"]) != 0)
    if qc and unc is not None:
        drop(f"uncertainty > {LST_UNCERTAINTY_MAX_K:g} K", np.nan_to_num(unc, nan=0.0) > LST_UNCERTAINTY_MAX_K)
    fill = ~np.isfinite(lst) | ~np.isfinite(lat) | ~np.isfinite(lon)
    lst = np.where(bad, np.nan, lst).astype(np.float32)
    return Swath(lat, lon, lst, masked, fill)


def area_of(grid: Grid):
    """The pyresample AreaDefinition of ``grid`` (same extent, shape and CRS)."""
    from pyresample.geometry import AreaDefinition

    x0, y0, x1, y1 = grid.bounds
    return AreaDefinition("eo4dm", "output grid", "eo4dm", grid.crs, grid.width, grid.height, (x0, y0, x1, y1))


def resample(swath: Swath, grid: Grid, radius_m: float) -> np.ndarray:
    """LST (K) of the nearest swath pixel within ``radius_m`` of each grid pixel centre, NaN elsewhere
    (nearest neighbour as everywhere in the chains, DOMAIN.md §1.3). Flagged pixels stay NaN: a cloud
    hole is not filled from its neighbours."""
    from pyresample import kd_tree
    from pyresample.geometry import SwathDefinition

    # Sources: every pixel with a retrieval, flagged ones included (as NaN) so that flags make holes.
    ok = np.isfinite(swath.lat) & np.isfinite(swath.lon)
    if swath.fill is not None:
        ok &= ~swath.fill
    if grid.crs.upper() in ("EPSG:4326", "OGC:CRS84"):  # keep what can reach the grid (speed)
        x0, y0, x1, y1 = grid.bounds
        m = radius_m / 100_000.0 + grid.resolution
        ok &= (swath.lon >= x0 - m) & (swath.lon <= x1 + m) & (swath.lat >= y0 - m) & (swath.lat <= y1 + m)
    if not ok.any():
        return np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    src = SwathDefinition(lons=swath.lon[ok], lats=swath.lat[ok])
    out = kd_tree.resample_nearest(src, swath.lst[ok].astype(np.float32), area_of(grid), radius_of_influence=radius_m,
                                   fill_value=np.nan)
    return np.asarray(out, dtype=np.float32)


def lst_celsius(files: Mapping[str, Path], grid: Grid, radius_m: float, qc: bool = True) -> np.ndarray:
    """The swath's LST in °C on ``grid`` (NaN outside the swath or where flagged)."""
    return resample(read_swath(files, qc), grid, radius_m) - np.float32(KELVIN)


__all__ = ["Swath", "SwathError", "area_of", "lst_celsius", "read_swath", "resample"]
