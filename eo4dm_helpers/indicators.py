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

    Intervals are closed on the right: a value exactly on a break falls in the drier class, so
    "VHI <= 0.3" and "VAI <= -1" (EO4DM's stress/deficit thresholds, DOMAIN.md §1.7) are exactly
    Moderate or worse. Values beyond the outer breaks go to the outer classes.
    """
    inner = np.asarray(breaks[1:-1], dtype=np.float64)
    codes = np.searchsorted(inner, values, side="left") + 1
    return np.where(np.isnan(values), 0, codes).astype(np.uint8)


def class_shares(codes: np.ndarray, within: np.ndarray | None = None) -> dict[str, float]:
    """Share (0-1) of valid pixels in each class."""
    sel = codes[within] if within is not None else codes.ravel()
    sel = sel[sel > 0]
    n = sel.size
    return {name: (float(np.count_nonzero(sel == i + 1)) / n if n else float("nan"))
            for i, name in enumerate(CLASS_NAMES)}


def vai_vegetation_filter(vai_: np.ndarray, ndvi_ref_mean: np.ndarray, bare_soil: float, dense: float) -> np.ndarray:
    """Mask VAI where the reference NDVI says bare soil or dense vegetation (local chain)."""
    keep = (ndvi_ref_mean >= bare_soil) & (ndvi_ref_mean <= dense)
    return np.where(keep, vai_, np.nan).astype(np.float32)


@dataclass(frozen=True)
class Convention:
    """How VCI/TCI/VHI are expressed (DOMAIN.md §1.6 EO4DM, §2.1-§2.2 Kogan / FAO)."""

    name: str
    vci_index: str  # composite the VCI is computed from
    scale: float  # 1 (0-1) or 100 (0-100)
    vhi_breaks: tuple[float, ...]

    @property
    def stress(self) -> float:
        """VHI at or below which vegetation is stressed: 0.3 (EO4DM, DOMAIN.md §1.7) or 30 on 0-100."""
        return self.vhi_breaks[3]


CONVENTIONS = {
    # EO4DM: VCI from NDWI, 0-1, stress at VHI <= 0.3 (DOMAIN.md §1.6, §1.7, §1.8)
    "eo4dm": Convention("eo4dm", "NDWI", 1.0, VHI_BREAKS),
    # Kogan / FAO: VCI from NDVI, 0-100, classes 10/20/30/40 (DOMAIN.md §2.1, §2.2)
    "standard": Convention("standard", "NDVI", 100.0, tuple(b * 100 for b in VHI_BREAKS)),
}


def undefined_share(values: np.ndarray, denominator: np.ndarray) -> int:
    """Pixels with a value but a zero reference range (or std): the indicator is NaN there."""
    return int(np.count_nonzero(~np.isnan(values) & (denominator == 0)))
