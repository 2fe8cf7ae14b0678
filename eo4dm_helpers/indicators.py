"""Drought indicators against a historical reference (DOMAIN.md §1.6, §1.8, §2).

EO4DM convention: VCI from NDWI on 0-1, TCI from LST, VHI = α·VCI + (1-α)·TCI, VAI = z-score of NDWI.
Differences from EO4DM, on purpose (DOMAIN.md §1.10): QSCORE divides by the true number of days of
the period (not 10 or 30); its historical part uses every reference year (EO4DM dropped the last,
item 4); the reference is chosen from the dekad's year, never from the wall clock (item 5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .archive import Month, Period
from .config import Reference
from .dekads import Dekad, month_ndays

CLASS_NAMES = ("Extreme", "Severe", "Moderate", "Near normal", "No drought")  # codes 1..5, 0 = no data
CLASS_COLOURS = ("#000000", "#e31a1c", "#fd8d3c", "#fed976", "#ffffff")  # DOMAIN.md §1.8: black/red/orange/yellow/white
VHI_BREAKS = (0.0, 0.1, 0.2, 0.3, 0.4, 1.0)  # DOMAIN.md §1.8
VAI_BREAKS = (-3.0, -2.0, -1.5, -1.0, 0.0, 3.0)  # DOMAIN.md §1.8


class IndicatorUnavailable(RuntimeError):
    """The indicator cannot be produced (too few reference years...); the message says why."""


def period_ndays(period: Period) -> int:
    """True number of days of a dekad (8-11) or month (28-31) (DOMAIN.md §3.1)."""
    return period.ndays if isinstance(period, Dekad) else month_ndays(period.year, period.month)


def same_period(period: Period, year: int) -> Period:
    return Dekad(year, period.month, period.index) if isinstance(period, Dekad) else Month(year, period.month)


def reference_years(period: Period, available: Iterable[int], ref: Reference) -> list[int]:
    """Years of the reference: all years before the period's year (EO4DM), or a fixed baseline.

    Raises :class:`IndicatorUnavailable` when fewer than ``ref.min_years`` are available.
    """
    avail = sorted(set(available))
    if ref.mode == "previous_years":
        years = [y for y in avail if y < period.year]
        wanted = f"years before {period.year}"
    else:
        years = [y for y in avail if ref.start_year <= y <= ref.end_year]  # type: ignore[operator]
        wanted = f"years {ref.start_year}-{ref.end_year}"
    if len(years) < ref.min_years:
        raise IndicatorUnavailable(
            f"only {len(years)} reference year(s) ({', '.join(map(str, years)) or 'none'}) among {wanted}; "
            f"at least {ref.min_years} needed (indicators.reference.min_years)")
    return years


@dataclass
class RefStats:
    """Per-pixel statistics of the reference, accumulated in one streaming pass."""

    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # population std (ddof 0, as np.nanstd in EO4DM)
    n: np.ndarray  # years with a value
    qscore: np.ndarray  # mean of count / ndays over the reference years


class RefAccumulator:
    """Adds one reference year at a time (value, count): min, max, mean, std, n, QSCORE.

    Sums are taken in float32 on values shifted by the mean of the first year (the "shifted data"
    variance algorithm): the variance keeps float32 precision (error ~1e-5 relative for LST ~ 28 ± 2 °C
    over 24 years, where unshifted float32 sums lose ~3e-4) at half the memory traffic of float64.
    """

    def __init__(self, shape: tuple[int, ...]):
        self.mn = np.full(shape, np.inf, np.float32)
        self.mx = np.full(shape, -np.inf, np.float32)
        self.shift: np.float32 | None = None
        self.s = np.zeros(shape, np.float32)
        self.ss = np.zeros(shape, np.float32)
        self.n = np.zeros(shape, np.int16)
        self.q = np.zeros(shape, np.float32)
        self._tmp = np.empty(shape, np.float32)
        self.years = 0

    def add(self, value: np.ndarray, count: np.ndarray, ndays: int) -> None:
        if self.shift is None:
            with np.errstate(all="ignore"):
                m = np.nanmean(value) if np.isfinite(value).any() else 0.0
            self.shift = np.float32(m)
        d = value - self.shift
        ok = d == d  # not NaN
        self.n += ok
        np.fmin(self.mn, value, out=self.mn)  # fmin/fmax ignore NaN
        np.fmax(self.mx, value, out=self.mx)
        np.nan_to_num(d, copy=False)  # a year without a value adds nothing
        self.s += d
        d *= d
        self.ss += d
        np.fmax(count, 0, out=self._tmp)  # NaN counts count as 0
        self._tmp *= np.float32(1.0 / ndays)
        self.q += self._tmp
        self.years += 1

    def finish(self, min_years: int = 1) -> RefStats:
        """Statistics; NaN where fewer than ``min_years`` years have a value (a min/max or a standard
        deviation from one or two values is not a reference)."""
        enough = self.n >= max(min_years, 1)
        n = np.where(enough, self.n, 0).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = self.s / n
            var = np.maximum(self.ss / n - m * m, 0.0)
        nan = np.float32(np.nan)
        shift = self.shift if self.shift is not None else np.float32(0)
        return RefStats(min=np.where(enough, self.mn, nan), max=np.where(enough, self.mx, nan),
                        mean=np.where(enough, shift + m, nan), std=np.where(enough, np.sqrt(var), nan),
                        n=n, qscore=self.q / np.float32(max(self.years, 1)))


def reference_stats(files: Mapping[int, Path], period: Period, min_years: int = 1, window=None) -> RefStats:
    """min/max/mean/std of band 1 and mean QSCORE of band 2 over the reference files (by year), for
    one window of the grid (``None``: the whole grid). Each file is read once; the next year is read
    while the current one is accumulated (reads release the GIL), so the pass runs near the I/O floor."""
    from .blocks import read_window

    items = sorted(files.items())
    if not items:
        raise IndicatorUnavailable("no reference file")
    acc = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(read_window, items[0][1], window, (1, 2))
        for k, (year, _path) in enumerate(items):
            data = nxt.result()
            if k + 1 < len(items):
                nxt = pool.submit(read_window, items[k + 1][1], window, (1, 2))
            if acc is None:
                acc = RefAccumulator(data.shape[1:])
            acc.add(data[0], data[1], period_ndays(same_period(period, year)))
    return acc.finish(min_years)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den == 0 (a flat reference), without warnings."""
    out = np.full(num.shape, np.nan, dtype=np.float32)
    ok = (den != 0) & ~np.isnan(den) & ~np.isnan(num)
    out[ok] = num[ok] / den[ok]
    return out


def vci(ndwi: np.ndarray, ref: RefStats) -> np.ndarray:
    """VCI = (NDWI - min) / (max - min) on NDWI, 0-1 (DOMAIN.md §1.6, §2.1).

    The reference excludes the current year, so a value can fall outside the reference extremes;
    it is clipped to the documented 0-1 range (EO4DM left it unbounded, which made zone means
    meaningless: one pixel at -4 outweighs dozens of normal ones).
    """
    return np.clip(_ratio(ndwi - ref.min, ref.max - ref.min), 0.0, 1.0)


def tci(lst: np.ndarray, ref: RefStats) -> np.ndarray:
    """TCI = (LST_max - LST) / (LST_max - LST_min), clipped to 0-1 like VCI (DOMAIN.md §1.6)."""
    return np.clip(_ratio(ref.max - lst, ref.max - ref.min), 0.0, 1.0)


def vhi(vci_: np.ndarray, tci_: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """VHI = α·VCI + (1 - α)·TCI (DOMAIN.md §1.6, α = 0.5)."""
    return (alpha * vci_ + (1 - alpha) * tci_).astype(np.float32)


def vai(ndwi: np.ndarray, ref: RefStats) -> np.ndarray:
    """VAI = (NDWI - mean) / std, the standardized anomaly (DOMAIN.md §1.6)."""
    return _ratio(ndwi - ref.mean, ref.std)


def qscore(count: np.ndarray, period: Period, ref: RefStats) -> np.ndarray:
    """QSCORE = mean(reference QSCORE, count / ndays), 0 where the period has no observation
    (DOMAIN.md §1.6, with the true number of days)."""
    comp = np.nan_to_num(count) / period_ndays(period)
    return np.where(np.nan_to_num(count) > 0, (ref.qscore + comp) / 2, 0.0).astype(np.float32)


def qscore_vhi(q_vci: np.ndarray, q_tci: np.ndarray) -> np.ndarray:
    """mean of both, 0 if either is 0 (DOMAIN.md §1.6)."""
    return np.where((q_vci > 0) & (q_tci > 0), (q_vci + q_tci) / 2, 0.0).astype(np.float32)


def classify(values: np.ndarray, breaks: tuple[float, ...]) -> np.ndarray:
    """Drought class codes 1 (Extreme) .. 5 (No drought), 0 = no data.

    Plain break tuples (EO4DM, DOMAIN.md §1.7-§1.8) are closed on the right: a value exactly on a break
    falls in the drier class, so "VHI <= 0.3" and "VAI <= -1" (EO4DM's stress/deficit thresholds) are
    exactly Moderate or worse. A :class:`ClassScheme` closed on the left (Kogan: "VHI < 40") puts a value
    on a break in the wetter class. Values beyond the outer breaks go to the outer classes.
    """
    inner = np.asarray(breaks[1:-1], dtype=np.float64)
    side = "right" if getattr(breaks, "closed", "right") == "left" else "left"
    codes = np.searchsorted(inner, values, side=side) + 1
    return np.where(np.isnan(values), 0, codes).astype(np.uint8)


def class_shares(codes: np.ndarray, within: np.ndarray | None = None,
                 names: tuple[str, ...] = CLASS_NAMES) -> dict[str, float]:
    """Share (0-1) of valid pixels in each class (``names``: the scheme's, e.g. ``conv.vhi_breaks.names``)."""
    sel = codes[within] if within is not None else codes.ravel()
    sel = sel[sel > 0]
    n = sel.size
    return {name: (float(np.count_nonzero(sel == i + 1)) / n if n else float("nan"))
            for i, name in enumerate(names)}


# VAI vegetation filter (indicators.vai_bare_soil_ndvi / vai_dense_vegetation_ndvi), on the reference mean NDVI.
# EO4DM has no such filter on VAI (extractVAI masks nothing but std = 0, DOMAIN.md §1.6); its nearest rules are
# the per-observation water mask NDVI >= 0.03 (GEE_generic_functions.py) and the ESRI land-cover "NoTrees_NoBuild"
# mask of its zone statistics (DOMAIN.md §1.7). Sources for the defaults:
# - bare soil 0.2: NASA Earth Observatory, Measuring Vegetation (Weier & Herring 2000): NDVI <= 0.1 barren rock,
#   sand or snow, 0.2-0.3 shrub and grassland (https://earthobservatory.nasa.gov/features/MeasuringVegetation);
#   GIMMS NDVI3g users mask pixels whose long-term mean NDVI < 0.2 as bare ground (R package greenbrown,
#   Forkel et al. 2013, https://rdrr.io/rforge/greenbrown/man/ndvimap.html). 0.2 is that long-term-mean rule;
#   0.1 keeps sparse shrubland (0.1-0.2) too.
# - dense vegetation 0.8: NDVI of closed forests is 0.6-0.8 and above (NASA Earth Observatory, same page) and it
#   saturates over dense canopies (Huete et al. 2002, Remote Sens. Environ. 83:195-213; Huete et al. 1997,
#   RSE 59:440-451), where EO4DM's zone statistics also set trees apart ("NoTrees" mask, DOMAIN.md §1.7).
VAI_FILTER_SOURCES = (
    "NASA Earth Observatory, Measuring Vegetation: NDVI <= 0.1 barren, 0.2-0.3 shrub/grass, 0.6-0.8 forest "
    "(https://earthobservatory.nasa.gov/features/MeasuringVegetation)",
    "greenbrown (Forkel et al. 2013): long-term mean NDVI < 0.2 masked as bare ground "
    "(https://rdrr.io/rforge/greenbrown/man/ndvimap.html)",
    "Huete et al. 2002, Remote Sens. Environ. 83:195-213: NDVI saturates over dense canopies",
)


VEG_KEPT, VEG_BARE, VEG_DENSE = 0.0, 1.0, 2.0  # band VEG_FILTER of VAI files; NaN: no reference NDVI
VEG_BAND = "VEG_FILTER"


def veg_filter_tag(bare_soil: float, dense: float) -> str:
    """Tag VEG_FILTER of a VAI file: the thresholds it was filtered with (read back by the bulletin)."""
    return f"bare soil: reference NDVI < {bare_soil:g}; dense vegetation: > {dense:g}"


def vai_filter_band(ndvi_ref_mean: np.ndarray, bare_soil: float, dense: float) -> np.ndarray:
    """What the VAI vegetation filter did per pixel: VEG_BARE where the reference mean NDVI < ``bare_soil``,
    VEG_DENSE where > ``dense`` (the complement of :func:`vai_vegetation_filter`'s keep rule), VEG_KEPT
    otherwise, NaN where there is no reference NDVI (sea, never observed)."""
    out = np.full(np.shape(ndvi_ref_mean), np.nan, np.float32)
    ok = ~np.isnan(ndvi_ref_mean)
    out[ok] = VEG_KEPT
    out[ok & (ndvi_ref_mean < bare_soil)] = VEG_BARE
    out[ok & (ndvi_ref_mean > dense)] = VEG_DENSE
    return out


def vai_vegetation_filter(vai_: np.ndarray, ndvi_ref_mean: np.ndarray, bare_soil: float, dense: float) -> np.ndarray:
    """Mask VAI where the reference NDVI says bare soil or dense vegetation (local chain)."""
    keep = (ndvi_ref_mean >= bare_soil) & (ndvi_ref_mean <= dense)
    return np.where(keep, vai_, np.nan).astype(np.float32)


# "Beyond the record" (band RECORD of VCI and TCI files): the current value against every reference year.
# VCI/TCI are clipped to 0-1 (or 0-100), which hides a record: the mark keeps it. Codes, in indicator terms:
RECORD_LOW, RECORD_WITHIN, RECORD_HIGH = -1.0, 0.0, 1.0  # worse than every year / within / better than every year
RECORD_BAND = "RECORD"
RECORD_TAG = ("band 3: -1 below every reference year (unclipped index < 0), +1 above every reference year "
              "(unclipped index > its maximum), 0 within, NaN no value or no reference")


def beyond_record(current: np.ndarray, ref: RefStats, *, inverted: bool = False) -> np.ndarray:
    """-1 where the indicator is below every reference year (unclipped VCI < 0: NDWI or NDVI below the reference
    minimum; with ``inverted`` (TCI): LST above the reference maximum, unclipped TCI < 0), +1 where above every
    year (unclipped > 1 or > 100), 0 in between (a value equal to a reference extreme ties with the record, it
    does not beat it), NaN where there is no current value or no reference (fewer than ``min_years`` years).

    Compared with the reference extremes, not through the index: a flat reference (max = min, where VCI is
    undefined) still tells whether the current value is below or above every reference year.
    """
    out = np.full(np.shape(current), np.nan, np.float32)
    ok = ~np.isnan(current) & ~np.isnan(ref.min) & ~np.isnan(ref.max)
    with np.errstate(invalid="ignore"):
        below, above = current < ref.min, current > ref.max
    low, high = (above, below) if inverted else (below, above)
    out[ok] = RECORD_WITHIN
    out[ok & low] = RECORD_LOW
    out[ok & high] = RECORD_HIGH
    return out


class ClassScheme(tuple):
    """Class breaks (a plain tuple for every caller: ``breaks[3]``, ``BoundaryNorm(list(breaks))``) that also
    know their class names, which end of each interval is closed, how many of the driest classes count as
    drought, an optional "affected" threshold (FAO ASIS) and the sources they follow."""

    names: tuple[str, ...]
    closed: str  # "right": a value on a break is in the drier class (<=); "left": in the wetter one (<)
    drought: int  # the ``drought`` driest classes are "in drought"
    affected: float | None  # FAO ASIS: a pixel is affected when VHI < affected (None: not reported)
    sources: tuple[str, ...]

    def __new__(cls, breaks, names=CLASS_NAMES, closed="right", drought=3, affected=None, sources=()):
        self = super().__new__(cls, tuple(float(b) for b in breaks))
        if len(self) != len(names) + 1 or closed not in ("left", "right") or not 0 < drought <= len(names):
            raise ValueError(f"class scheme: {len(self)} breaks for {len(names)} classes, closed={closed!r}, "
                             f"drought={drought}")
        self.names, self.closed, self.drought, self.affected, self.sources = \
            tuple(names), closed, int(drought), affected, tuple(sources)
        return self

    def __reduce__(self):  # pickled with its attributes (multiprocessing, xdist)
        return (ClassScheme, (tuple(self), self.names, self.closed, self.drought, self.affected, self.sources))

    @property
    def threshold(self) -> float:
        """Upper break of the drought classes: 0.3 (EO4DM, "VHI <= 0.3") or 40 (Kogan, "VHI < 40")."""
        return self[self.drought]

    def rule(self, name: str = "VHI") -> str:
        """The drought rule in words, e.g. ``"VHI ≤ 0.3"`` or ``"VHI < 40"``."""
        return f"{name} {'≤' if self.closed == 'right' else '<'} {self.threshold:g}"

    def in_drought(self, codes: np.ndarray) -> np.ndarray:
        return (codes > 0) & (codes <= self.drought)

    def affected_mask(self, values: np.ndarray) -> np.ndarray:
        """FAO ASIS "affected" pixels (VHI < 35, strict); all False when the scheme reports none."""
        if self.affected is None:
            return np.zeros(np.shape(values), bool)
        with np.errstate(invalid="ignore"):
            return np.asarray(values) < self.affected


KOGAN_NAMES = ("Extreme", "Severe", "Moderate", "Mild", "No drought")
SOURCES = {
    "eo4dm": "EO4DM notebooks (DOMAIN.md §1.8) and ALERT stress rule VHI <= 0.3 (§1.7, detect_Deficits)",
    # VHI < 40 = drought with sub-classes 0-10/10-20/20-30/30-40 as DOMAIN.md §2.2 reports them (marked there as
    # not checked against the paper's text; the same 10/20/30/40 breaks as EO4DM's maps, §1.8)
    "kogan": "Kogan F.N. 1995, Application of vegetation index and brightness temperature for drought "
             "detection, Adv. Space Res. 15(11):91-100 (VHI < 40 = drought; sub-classes 0-10/10-20/20-30/30-40, "
             "DOMAIN.md §2.2); NOAA STAR VHP https://www.star.nesdis.noaa.gov/smcd/emb/vci/VH/index.php "
             "(0 = extremely poor .. 100 = excellent, https://resourcewatch.org/data/explore/"
             "4828c405-06a2-4460-a78c-90969bce582b)",
    "fao_asis": "FAO GIEWS ASIS: a pixel is affected when VHI < 35 (Kogan 1995 critical threshold), "
                "https://data.apps.fao.org/catalog/dataset/agricultural-stress-index-system-asis-fao-global-"
                "agricultural-drought-monitoring-system, https://data.amerigeoss.org/dataset/"
                "2afba815-0402-400a-bcf8-cf0959f19421 (DOMAIN.md §2.2)",
}
# EO4DM: breaks 0/0.1/0.2/0.3/0.4/1 closed on the right, so "VHI <= 0.3" (the ALERT stress rule) is exactly
# Moderate or worse (DOMAIN.md §1.7, §1.8); drought = the 3 driest classes.
EO4DM_SCHEME = ClassScheme(VHI_BREAKS, CLASS_NAMES, "right", 3, None, (SOURCES["eo4dm"],))
# Kogan 1995 on 0-100: drought is "VHI < 40" (strict), so intervals are closed on the left: [0,10) Extreme,
# [10,20) Severe, [20,30) Moderate, [30,40) Mild, [40,100] No drought; drought = the 4 driest classes.
# FAO ASIS "affected": VHI < 35 (strict), reported as its own share (DOMAIN.md §2.2).
KOGAN_SCHEME = ClassScheme((0.0, 10.0, 20.0, 30.0, 40.0, 100.0), KOGAN_NAMES, "left", 4, 35.0,
                           (SOURCES["kogan"], SOURCES["fao_asis"]))


@dataclass(frozen=True)
class Convention:
    """How VCI/TCI/VHI are expressed (DOMAIN.md §1.6 EO4DM, §2.1-§2.2 Kogan / FAO) and classed."""

    name: str
    vci_index: str  # composite the VCI is computed from
    scale: float  # 1 (0-1) or 100 (0-100)
    vhi_breaks: ClassScheme  # the class scheme (breaks, names, closure, drought classes, sources)

    @property
    def stress(self) -> float:
        """VHI below which (Kogan, "< 40") or at or below which (EO4DM, "<= 0.3", DOMAIN.md §1.7) vegetation
        is stressed: the upper break of the drought classes."""
        return self.vhi_breaks.threshold

    @property
    def scheme(self) -> ClassScheme:
        return self.vhi_breaks


CONVENTIONS = {
    # EO4DM: VCI from NDWI, 0-1, stress at VHI <= 0.3 (DOMAIN.md §1.6, §1.7, §1.8)
    "eo4dm": Convention("eo4dm", "NDWI", 1.0, EO4DM_SCHEME),
    # Kogan / FAO: VCI from NDVI, 0-100, Kogan's classes, drought < 40, FAO ASIS share < 35 (DOMAIN.md §2.1, §2.2)
    "standard": Convention("standard", "NDVI", 100.0, KOGAN_SCHEME),
}


def undefined_share(values: np.ndarray, denominator: np.ndarray) -> int:
    """Pixels with a value but a zero reference range (or std): the indicator is NaN there."""
    return int(np.count_nonzero(~np.isnan(values) & (denominator == 0)))
