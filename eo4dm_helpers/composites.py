"""Dekad and month composites: per-pixel mean of valid observations + valid count (DOMAIN.md §1.5).

The accumulation streams over images (running sum and count), so memory does not grow with the
number of acquisitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from .dekads import WINDOW_LEVELS, Dekad, widened_window
from .local.preprocess import Processed


@dataclass
class Composite:
    mean: dict[str, np.ndarray]  # float32, NaN where no valid observation
    count: dict[str, np.ndarray]  # float32 valid-observation count (0 where none)
    images: list[str] = field(default_factory=list)
    window: tuple[date, date] | None = None
    level: str = ""  # '', 'e', 'm', 'M' (DOMAIN.md §1.5 window widening)

    @property
    def n_images(self) -> int:
        return len(self.images)

    def composite_type(self, dekad: Dekad) -> str:
        """EO4DM composite type name: COMPD{d}[e|m|M] or DAY{d}[e|m|M] for a single image."""
        return f"{'COMP' if self.n_images != 1 else 'DAY'}D{dekad.index}{self.level}"


def composite(images: Iterable[Processed], names: Sequence[str], shape: tuple[int, int]) -> Composite:
    """Mean and count of valid (non-NaN) observations: ``collection.mean()`` and
    ``collection.count().unmask(0)`` (DOMAIN.md §1.5 extractComposite)."""
    total = {n: np.zeros(shape, dtype=np.float64) for n in names}
    count = {n: np.zeros(shape, dtype=np.int32) for n in names}
    ids = []
    for img in images:
        ids.append(img.scene_id)
        for n in names:
            v = img.values[n]
            ok = ~np.isnan(v)
            total[n][ok] += v[ok]
            count[n] += ok
    mean = {}
    for n in names:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[n] = np.where(count[n] > 0, total[n] / np.maximum(count[n], 1), np.nan).astype(np.float32)
    return Composite(mean, {n: c.astype(np.float32) for n, c in count.items()}, ids)


def nan_score(values: np.ndarray, land: np.ndarray) -> float:
    """Share of land pixels without a value (DOMAIN.md §1.3 computeNanScores)."""
    n = int(land.sum())
    return 1.0 if n == 0 else 1.0 - np.count_nonzero(~np.isnan(values) & land) / n


def local_dekad_composite(images: Sequence[Processed], dekad: Dekad, land: np.ndarray,
                          nan_max: float = 0.5, names: Sequence[str] = ("NDVI", "NDWI")) -> Composite:
    """Local chain composite with window widening (DOMAIN.md §1.5): the dekad, then ±5 days, ±10 days,
    then the whole month, while the NaN-score on land of NDWI or NDVI exceeds ``nan_max``.
    The widest window is kept if none reaches the threshold."""
    best: Composite | None = None
    for level in WINDOW_LEVELS:
        lo, hi = widened_window(dekad, level)
        chosen = [im for im in images if lo <= im.day <= hi]
        comp = composite(chosen, names, land.shape)
        comp.window, comp.level = (lo, hi), level
        best = comp
        if max(nan_score(comp.mean[n], land) for n in names) <= nan_max:
            break
    assert best is not None
    return best


def days_in(images: Iterable[Processed], first: date, last: date) -> list[Processed]:
    return [im for im in images if first <= im.day <= last]
