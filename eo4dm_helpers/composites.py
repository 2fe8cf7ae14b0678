"""Dekad and month composites: per-pixel mean of valid observations + valid count (DOMAIN.md §1.5).

Composites are computed window by window over images that can be read by window (``Observation``:
preprocessed scenes in memory or staged on disk), so memory depends on the window, not on the tile
or the number of acquisitions. The local chain's window widening needs the NaN-score of the whole
tile for each candidate window: a first pass counts, per level, the land pixels that have a value;
the second pass writes the chosen level's composite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

import numpy as np

from .archive import SOURCE_LOCAL, SOURCE_TAG
from .config import Grid
from .dekads import WINDOW_LEVELS, Dekad, widened_window
from .local.land import LandMask
from .local.rasters import ARCHIVED, FileBand, RasterWriter, gdal_env
from .local.windows import WINDOW, Window, iter_windows, map_ordered


class Observation(Protocol):
    """A preprocessed acquisition readable by window (``Processed``, ``Staged``)."""

    scene_id: str
    day: date

    def read(self, names: Sequence[str], win: Window) -> dict[str, np.ndarray]: ...


@dataclass
class Composite:
    mean: Mapping[str, np.ndarray | FileBand]  # float32, NaN where no valid observation
    count: Mapping[str, np.ndarray | FileBand]  # float32 valid-observation count (0 where none)
    images: list[str] = field(default_factory=list)
    window: tuple[date, date] | None = None
    level: str = ""  # '', 'e', 'm', 'M' (DOMAIN.md §1.5 window widening)
    paths: dict[str, Path] = field(default_factory=dict)  # written files, per index

    @property
    def n_images(self) -> int:
        return len(self.images)

    def composite_type(self, dekad: Dekad) -> str:
        """EO4DM composite type name: COMPD{d}[e|m|M] or DAY{d}[e|m|M] for a single image."""
        return f"{'COMP' if self.n_images != 1 else 'DAY'}D{dekad.index}{self.level}"


def accumulate(images: Iterable[Observation], names: Sequence[str], win: Window
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Mean and count of valid (non-NaN) observations over ``win``: ``collection.mean()`` and
    ``collection.count().unmask(0)`` (DOMAIN.md §1.5 extractComposite)."""
    total = {n: np.zeros(win.shape, dtype=np.float64) for n in names}
    count = {n: np.zeros(win.shape, dtype=np.int32) for n in names}
    for img in images:
        for n, v in img.read(names, win).items():
            ok = ~np.isnan(v)
            total[n][ok] += v[ok]
            count[n] += ok
    mean = {}
    for n in names:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[n] = np.where(count[n] > 0, total[n] / np.maximum(count[n], 1), np.nan).astype(np.float32)
    return mean, {n: c.astype(np.float32) for n, c in count.items()}


def composite(images: Iterable[Observation], names: Sequence[str], shape: tuple[int, int]) -> Composite:
    """The composite of ``images`` over a whole (small) grid, in memory."""
    images = list(images)
    mean, count = accumulate(images, names, Window(0, 0, *shape))
    return Composite(mean, count, [im.scene_id for im in images])


def nan_score(values: np.ndarray, land: np.ndarray) -> float:
    """Share of land pixels without a value (DOMAIN.md §1.3 computeNanScores)."""
    n = int(land.sum())
    return 1.0 if n == 0 else 1.0 - np.count_nonzero(~np.isnan(values) & land) / n


@dataclass
class WindowChoice:
    """The widening level chosen for a dekad and the images it takes (DOMAIN.md §1.5)."""

    level: str
    window: tuple[date, date]
    images: list[Observation]
    scores: dict[str, float]  # level -> NaN-score on land (max over the indices)


def choose_window(images: Sequence[Observation], dekad: Dekad, land: LandMask, nan_max: float = 0.5,
                  names: Sequence[str] = ("NDVI", "NDWI"), window: int | None = WINDOW) -> WindowChoice:
    """Local chain window widening (DOMAIN.md §1.5): the dekad, then ±5 days, ±10 days, then the
    whole month, while the NaN-score on land of NDWI or NDVI exceeds ``nan_max`` (COMP_NAN_THRESH).
    The widest window is kept if none reaches the threshold."""
    bounds = {lvl: widened_window(dekad, lvl) for lvl in WINDOW_LEVELS}
    members = {lvl: [i for i, im in enumerate(images) if lo <= im.day <= hi] for lvl, (lo, hi) in bounds.items()}
    used = sorted({i for m in members.values() for i in m})
    shape = (land.grid.height, land.grid.width)

    def counts(win: Window) -> tuple[int, dict[tuple[str, str], int]]:
        lw = land.window(win)
        if not lw.any() or not used:
            return int(lw.sum()), {}
        any_valid = {(lvl, n): np.zeros(win.shape, dtype=bool) for lvl in WINDOW_LEVELS for n in names}
        for i in used:
            seen = {n: ~np.isnan(v) for n, v in images[i].read(names, win).items()}
            for lvl in WINDOW_LEVELS:
                if i in members[lvl]:
                    for n in names:
                        any_valid[(lvl, n)] |= seen[n]
        return int(lw.sum()), {key: int((a & lw).sum()) for key, a in any_valid.items()}

    n_land = 0
    n_valid = {(lvl, n): 0 for lvl in WINDOW_LEVELS for n in names}
    with gdal_env():
        for nl, nv in map_ordered(counts, iter_windows(shape, window)):
            n_land += nl
            for key, v in nv.items():
                n_valid[key] += v
    scores = {lvl: max(1.0 if n_land == 0 else 1.0 - n_valid[(lvl, n)] / n_land for n in names)
              for lvl in WINDOW_LEVELS}
    level = next((lvl for lvl in WINDOW_LEVELS if scores[lvl] <= nan_max), WINDOW_LEVELS[-1])
    return WindowChoice(level, bounds[level], [images[i] for i in members[level]], scores)


def local_dekad_composite(images: Sequence[Observation], dekad: Dekad, land: np.ndarray | LandMask,
                          nan_max: float = 0.5, names: Sequence[str] = ("NDVI", "NDWI"),
                          window: int | None = None) -> Composite:
    """The local chain's composite with window widening, in memory (small grids, tests)."""
    mask = land if isinstance(land, LandMask) else LandMask(_grid_of(land), array=land)
    choice = choose_window(images, dekad, mask, nan_max, names, window)
    comp = composite(choice.images, names, (mask.grid.height, mask.grid.width))
    comp.window, comp.level = choice.window, choice.level
    return comp


def write_composite(choice: WindowChoice, dekad: Dekad, grid: Grid, paths: Mapping[str, Path],
                    window: int | None = WINDOW) -> Composite:
    """Write the chosen composite window by window: one file per index, b1 mean, b2 count, tags
    COMPOSITE_TYPE / IMAGES / WINDOW (the archive's layout, DOMAIN.md §1.2). The returned composite
    reads its bands from the files (``FileBand``)."""
    names = list(paths)
    comp = Composite({n: FileBand(paths[n], 1) for n in names}, {n: FileBand(paths[n], 2) for n in names},
                     [im.scene_id for im in choice.images], choice.window, choice.level, dict(paths))
    tags = {"COMPOSITE_TYPE": comp.composite_type(dekad), "IMAGES": comp.n_images,
            "WINDOW": f"{choice.window[0]}/{choice.window[1]}", SOURCE_TAG: SOURCE_LOCAL}
    with gdal_env(), contextlib.ExitStack() as stack:
        writers = [stack.enter_context(RasterWriter(paths[n], grid, [n, "count"], tags, codec=ARCHIVED))
                   for n in names]
        wins = iter_windows((grid.height, grid.width), window)
        for win, (mean, count) in map_ordered(lambda w: (w, accumulate(choice.images, names, w)), wins):
            for n, w in zip(names, writers, strict=True):
                w.write(win, [mean[n], count[n]])
    return comp


def days_in(images: Iterable[Observation], first: date, last: date) -> list[Observation]:
    return [im for im in images if first <= im.day <= last]


def _grid_of(land: np.ndarray) -> Grid:
    """A placeholder grid with the array's shape, for masks given as plain arrays."""
    return Grid("EPSG:4326", 0.0, 0.0, 1.0, land.shape[1], land.shape[0])
