"""Static maps and tables for the per-dekad HTML report (ARCHITECTURE.md §6: PNG maps, no widgets)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch
from shapely.geometry import shape

from .config import Grid
from .indicators import CLASS_COLOURS, CLASS_NAMES
from .zones import Zone, reproject


def _geoms_in(grid: Grid, geoms: list) -> list:
    """Lon/lat geometries in the grid's CRS (copies shifted by 360° on a lon/lat grid past 180°)."""
    from .geo import on_grid_lons

    if grid.crs.upper() in ("EPSG:4326", "OGC:CRS84"):
        return [on_grid_lons(g, grid) for g in geoms]
    return [reproject(g, "EPSG:4326", grid.crs) for g in geoms]


def _draw_lines(ax, geom, **kw) -> None:
    polys = getattr(geom, "geoms", [geom])
    for p in polys:
        if hasattr(p, "exterior"):
            x, y = p.exterior.xy
            ax.plot(x, y, **kw)


def load_outline(path: Path | None) -> list:
    if path is None or not Path(path).exists():
        return []
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    feats = data.get("features", [data]) if data.get("type") == "FeatureCollection" else [data]
    return [shape(f.get("geometry", f)) for f in feats]


def _scale_bar(ax, grid: Grid) -> None:
    x0, y0, x1, y1 = grid.bounds
    geographic = grid.crs.upper() in ("EPSG:4326", "OGC:CRS84")
    m_per_unit = 111_320 * np.cos(np.deg2rad((y0 + y1) / 2)) if geographic else 1.0
    width_m = (x1 - x0) * m_per_unit
    nice = [1, 2, 5]
    target = width_m / 5
    exp = 10 ** np.floor(np.log10(target))
    length_m = max(n * exp for n in nice if n * exp <= target) if target >= 1 else target
    length_u = length_m / m_per_unit
    bx, by = x0 + 0.05 * (x1 - x0), y0 + 0.06 * (y1 - y0)
    ax.plot([bx, bx + length_u], [by, by], color="k", lw=3, solid_capstyle="butt")
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    ax.text(bx + length_u / 2, by + 0.02 * (y1 - y0), label, ha="center", va="bottom", fontsize=8)
    ax.annotate("N", xy=(0.95, 0.93), xytext=(0.95, 0.80), xycoords="axes fraction", ha="center", fontsize=10,
                fontweight="bold", arrowprops=dict(arrowstyle="-|>", color="k", lw=1.5))


def class_map(values: np.ndarray, grid: Grid, breaks: tuple[float, ...], title: str, *,
              outline: list | None = None, zones: list[Zone] | None = None, status: str = "", ax=None):
    """An indicator map in the drought class colours of DOMAIN.md §1.8, with legend, coastline,
    zone outlines and names, scale bar and north arrow."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=100)
    cmap = ListedColormap(CLASS_COLOURS)
    cmap.set_bad("#cfe3f3")  # sea / no data
    lo, hi = breaks[0], breaks[-1]
    norm = BoundaryNorm(list(breaks), cmap.N)
    x0, y0, x1, y1 = grid.bounds
    ax.imshow(np.clip(values, lo, hi), cmap=cmap, norm=norm, extent=(x0, x1, y0, y1), interpolation="nearest")
    for g in _geoms_in(grid, outline or []):
        _draw_lines(ax, g, color="#333333", lw=0.6)
    for z, g in zip(zones or [], _geoms_in(grid, [z.geometry for z in zones or []]), strict=True):
        _draw_lines(ax, g, color="#555555", lw=0.5, ls="--")
        c = g.representative_point()
        if x0 <= c.x <= x1 and y0 <= c.y <= y1:
            ax.text(c.x, c.y, z.name, fontsize=7, ha="center", color="#222222",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.6))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.ticklabel_format(useOffset=False, style="plain")  # projected grids: metres, not "1e6 + ..."
    ax.set_title(f"{title}{'  [' + status + ']' if status else ''}", fontsize=10)
    ax.tick_params(labelsize=7)
    labels = class_labels(breaks)
    handles = [Patch(facecolor=c, edgecolor="#777777", label=lab) for c, lab in zip(CLASS_COLOURS, labels, strict=True)]
    handles.append(Patch(facecolor="#cfe3f3", edgecolor="#777777", label="sea / no data"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.9)
    _scale_bar(ax, grid)
    return fig or ax.figure


def class_labels(breaks: tuple[float, ...]) -> list[str]:
    """Legend labels of a class scheme: "Extreme (≤ 0.1)" .. "No drought (> 0.4)" for EO4DM's right-closed
    breaks, "Extreme (< 10)" .. "No drought (≥ 40)" for Kogan's left-closed ones (indicators.ClassScheme)."""
    names = getattr(breaks, "names", CLASS_NAMES)
    lo, hi = ("<", "≥") if getattr(breaks, "closed", "right") == "left" else ("≤", ">")
    return [f"{n} ({lo if i < 4 else hi} {breaks[i + 1] if i < 4 else breaks[4]:g})" for i, n in enumerate(names)]


def continuous_map(values: np.ndarray, grid: Grid, title: str, *, vmin: float = 0, vmax: float = 1,
                   cmap: str = "viridis", outline: list | None = None, label: str = ""):
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=100)
    x0, y0, x1, y1 = grid.bounds
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, extent=(x0, x1, y0, y1), interpolation="nearest")
    for g in _geoms_in(grid, outline or []):
        _draw_lines(ax, g, color="#333333", lw=0.6)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    _scale_bar(ax, grid)
    return fig


def series_panels(series: list, title: str, unit: str = "", ncols: int = 3):
    """Small multiples: per zone, the current year's dekad values against the reference envelope."""
    n = len(series)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.2 * nrows), dpi=100, sharex=True, squeeze=False)
    for ax, s in zip(axes.ravel(), series, strict=False):
        x = np.asarray(s.dekads)
        ax.fill_between(x, s.env_min, s.env_max, color="#c6dbef", label="reference min-max", step="mid")
        ax.plot(x, s.env_mean, color="#6baed6", lw=1, label="reference mean")
        ax.plot(x, s.current, color="#d94801", lw=1.8, marker="o", ms=2.5, label="this year")
        ax.set_title(s.zone, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xticks([1, 10, 19, 28, 36], ["Jan", "Apr", "Jul", "Oct", "Dec"])
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{title}{' (' + unit + ')' if unit else ''}", fontsize=9)
    fig.tight_layout()
    return fig


def timeline_figure(rows: list[dict], stress: float, breaks: tuple[float, ...], name: str = "VHI"):
    """Territory ``name`` (VHI, VCI or VAI: rows of series.indicator_timeline) per dekad, with the class
    bands behind it."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    from .dekads import Dekad, dekad_range

    fig, ax = plt.subplots(figsize=(9, 2.8), dpi=100)
    by = {r["dekad"]: r.get("value", r.get(name)) for r in rows}
    labels = [Dekad.parse(r["dekad"]) for r in rows]
    every = dekad_range(min(labels), max(labels)) if labels else []
    x = [d.start for d in every]  # every dekad: a gap in the archive is a gap in the line, not a straight join
    for lo, hi, c in zip(breaks[:-1], breaks[1:], CLASS_COLOURS, strict=True):
        ax.axhspan(lo, hi, color=c, alpha=0.25, lw=0)
    ax.plot(x, [by.get(d.label, np.nan) for d in every], color="#08519c", lw=1.2, marker=".", ms=3)
    rule = breaks.rule(name) if hasattr(breaks, "rule") else f"{name} ≤ {stress:g}"
    ax.axhline(stress, color="#e31a1c", lw=0.8, ls="--", label=f"stress ({rule})")
    ax.set_ylim(breaks[0], breaks[-1])
    ax.set_ylabel(f"territory {name}", fontsize=8)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def figure_png_base64(fig) -> str:
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")
