"""The index page of the reports: every dekad with a bulletin, and the timeline of the territory's best
indicator (VHI, else VCI, else VAI: eo4dm_helpers.capabilities), named in its column."""

from __future__ import annotations

import html
import math
from pathlib import Path

from .capabilities import capabilities
from .config import Config
from .indicators import CONVENTIONS, VAI_BREAKS
from .report import figure_png_base64, timeline_figure
from .series import indicator_timeline
from .storage import write_text_atomic

_STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1000px;
color:#222}table{border-collapse:collapse;font-size:14px}td,th{padding:3px 10px;border-bottom:1px solid #ddd;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}"""


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
    return html.escape(str(v))


def _pct(v: object) -> str:
    """A share in % with one decimal, as the bulletin's headline writes it."""
    return f"{v:.1f}" if isinstance(v, float) and not math.isnan(v) else "" if isinstance(v, float) else _fmt(v)


def render_index(cfg: Config) -> Path:
    """Write ``<output>/reports/index.html`` (self-contained: the timeline PNG is embedded)."""
    root = cfg.paths.output / "reports"
    cap = capabilities(cfg)
    name = cap.headline or "VHI"
    rows = indicator_timeline(cfg, name)
    conv = CONVENTIONS[cfg.indicators.convention]
    breaks = VAI_BREAKS if name == "VAI" else conv.vhi_breaks
    reports = {p.parent.name for p in root.glob("*/index.html")}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Drought bulletins — "
             f"{html.escape(cfg.territory.name)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Drought bulletins — {html.escape(cfg.territory.name)}</h1>"]
    if rows:
        fig = timeline_figure(rows, breaks[3], breaks, name)  # stress: top of Moderate (DOMAIN.md §1.7, §1.8)
        parts.append(f"<img alt='territory {name} per dekad' src='data:image/png;base64,{figure_png_base64(fig)}'>")
    if name != "VHI":
        parts.append(f"<p>Territory indicator: {html.escape(cap.headline_label())}.</p>")
    parts.append(f"<table><tr><th>dekad</th><th>territory {name}</th><th>% in drought</th><th>status</th>"
                 "<th>bulletin</th></tr>")
    by_dekad = {r["dekad"]: r for r in rows}
    for label in sorted(set(by_dekad) | reports, reverse=True):
        r = by_dekad.get(label, {})
        link = f"<a href='{label}/index.html'>open</a>" if label in reports else ""
        parts.append(f"<tr><td>{label}</td><td>{_fmt(r.get('value', ''))}</td><td>{_pct(r.get('% in drought', ''))}"
                     f"</td><td>{_fmt(r.get('status', ''))}</td><td>{link}</td></tr>")
    parts.append("</table></body></html>")
    return write_text_atomic(root / "index.html", "\n".join(parts))
