"""Content of the per-dekad bulletin (the report notebook calls one method per section)."""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from . import indicators as I
from .archive import Month, read_raster
from .blocks import read_overview
from .config import public_view
from .report import class_map, continuous_map, load_outline, series_panels
from .series import zone_series
from .workflow import Context
from .zones import load_zones


def _version() -> str:
    try:
        return version("eo4dm")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


@dataclass
class Bulletin:
    ctx: Context

    @classmethod
    def load(cls, ctx: Context) -> Bulletin:
        return cls(ctx)

    @property
    def status(self) -> str:
        """provisional while later products may still arrive (indicators.provisional_dekads)."""
        cfg, d = self.ctx.cfg, self.ctx.dekad
        final_after = d.end + timedelta(days=10 * cfg.indicators.provisional_dekads)
        return "provisional" if cfg.today() <= final_after else "final"

    def _global(self, name: str, dekad=None):
        p = self.ctx.archive.global_indicator(name, dekad or self.ctx.dekad)
        if not p.exists():
            return None, None
        data, _ = read_raster(p)
        return data[0], data[1]

    def header(self) -> None:
        cfg, d = self.ctx.cfg, self.ctx.dekad
        display(Markdown(f"# Drought bulletin — {cfg.territory.name} — {d.label}\n\n"
                         f"Dekad {d.start:%d %B %Y} to {d.end:%d %B %Y} ({d.ndays} days), dates in "
                         f"{cfg.timezone}. Status: **{self.status}**."))

    def headline(self) -> None:
        """The territory's best indicator (VHI, else VCI, else VAI per tile: capabilities), named with why
        it is not VHI ("VCI (no LST configured)"), this dekad and the previous one."""
        from .capabilities import capabilities

        cfg, d = self.ctx.cfg, self.ctx.dekad
        cap = capabilities(cfg)
        name, label = cap.headline, cap.headline_label()
        rows = []
        if name in ("VHI", "VCI"):
            breaks = I.CONVENTIONS[cfg.indicators.convention].vhi_breaks
            col = f"territory {name}"
            for when, dk in (("this dekad", d), ("previous dekad", d.previous())):
                v, _ = self._global(name, dk)
                rows.append(_headline_row({"dekad": dk.label, "": when}, col, v, breaks))
        elif name == "VAI":
            col = "VAI"
            for tile in cfg.local_chain.tiles:
                for when, dk in (("this dekad", d), ("previous dekad", d.previous())):
                    p = self.ctx.archive.local_indicator(tile.id, "VAI", dk)
                    v = read_overview(p)[0] if p.exists() else None
                    rows.append(_headline_row({"dekad": dk.label, "": when, "tile": tile.id}, col, v, I.VAI_BREAKS))
        if name is not None and name != "VHI":
            display(Markdown(f"*Headline indicator: {label}.*"))
        if name in ("VHI", "VCI") and len(rows) == 2 and all(isinstance(r[col], float) for r in rows):
            change = rows[0][col] - rows[1][col]
            display(Markdown(f"Territory-wide {label} **{rows[0][col]:.2f}** "
                             f"({'+' if change >= 0 else ''}{change:.2f} since the previous dekad); "
                             f"{rows[0]['% Extreme'] + rows[0]['% Severe'] + rows[0]['% Moderate']:.1f} % of land "
                             "in moderate, severe or extreme drought."))
        _show(pd.DataFrame(rows))
        for chain, why in self.no_data().items():
            display(Markdown(f"*No {chain} data for this dekad: {why}.*"))
        missing = self.ctx.notes().get("indicators", {})
        for chain, info in missing.items():
            for name, why in info.get("missing", {}).items():
                display(Markdown(f"*{name} ({chain}) not produced: {why}*"))
            for name, why in info.get("warnings", {}).items():
                display(Markdown(f"*{name} ({chain}): {why}*"))
        for line in self.mixed_references():
            display(Markdown(f"*{line}*"))

    def mixed_references(self) -> list[str]:
        """One sentence per indicator whose reference mixes imported EO4DM composites (other masks and
        dekad binning) with composites computed by eo4dm: how many years of each."""
        from .archive import SOURCE_IMPORT

        out = []
        for chain, info in self.ctx.notes().get("indicators", {}).items():
            for name, by in (info.get("reference_sources") or {}).items():
                imported = by.get(SOURCE_IMPORT, [])
                if not imported:
                    continue
                own = sum(len(v) for k, v in by.items() if k != SOURCE_IMPORT)
                years = f"{imported[0]}-{imported[-1]}" if len(imported) > 1 else str(imported[0])
                out.append(f"{name} ({chain}): its reference mixes {len(imported)} year(s) of composites imported "
                           f"from EO4DM ({years}; other masks and dekad binning) with {own} year(s) computed by "
                           "eo4dm; `run_all.py --backfill --replace-imported` rebuilds them on Earth Engine")
        return out

    def no_data(self) -> dict[str, str]:
        """The archive's no-data records of this dekad, by chain (global, local <tile>)."""
        import json

        from .completeness import nodata_path

        cfg, d, out = self.ctx.cfg, self.ctx.dekad, {}
        chains = (["global"] if cfg.global_chain.enabled else []) + \
            ([t.id for t in cfg.local_chain.tiles] if cfg.local_chain.enabled else [])
        for chain in chains:
            p = nodata_path(cfg.paths.archive, chain, d)
            if p.is_file():
                try:
                    why = str(json.loads(p.read_text(encoding="utf-8")).get("no_data", "no usable acquisition"))
                except (OSError, ValueError, AttributeError):
                    why = "no usable acquisition"
                out["global chain" if chain == "global" else f"local chain (tile {chain})"] = why
        return out

    def maps(self) -> None:
        cfg, d = self.ctx.cfg, self.ctx.dekad
        outline = load_outline(cfg.territory.outline)
        zones = load_zones(cfg.territory.zones, cfg.territory.zone_name_field) if cfg.territory.zones else []
        if cfg.global_chain.enabled:
            g = cfg.global_chain.grid
            breaks = I.CONVENTIONS[cfg.indicators.convention].vhi_breaks
            for name in ("VHI", "VCI", "TCI"):
                v, _ = self._global(name)
                if v is not None:
                    class_map(v, g, breaks, f"{name} {d.label}", outline=outline, zones=zones, status=self.status)
            from .capabilities import capabilities

            best = capabilities(cfg).headline if capabilities(cfg).headline in ("VHI", "VCI") else "VHI"
            v, q = self._global(best)
            if q is not None:
                continuous_map(np.where(np.isnan(v), np.nan, q), g, f"QSCORE of {best} {d.label}", vmin=0, vmax=1,
                               cmap="cividis", outline=outline, label="QSCORE")
        for tile in cfg.local_chain.tiles if cfg.local_chain.enabled else ():
            p = self.ctx.archive.local_indicator(tile.id, "VAI", d)
            if p.exists():
                class_map(read_overview(p)[0], tile.grid, I.VAI_BREAKS, f"VAI tile {tile.id} {d.label}",
                          outline=outline, zones=zones, status=self.status)

    def zones(self) -> None:
        cfg, d = self.ctx.cfg, self.ctx.dekad
        p = self.ctx.archive.zone_stats(d)
        if not p.exists():
            display(Markdown("*No zone statistics for this dekad.*"))
            return
        with open(p, encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        cols = ["chain", "zone", "indicator", "mean", "class", "% in drought", "qscore", "min", "max", "std"]
        _show(pd.DataFrame(rows)[cols])
        if cfg.global_chain.enabled and cfg.territory.zones:
            zones = load_zones(cfg.territory.zones, cfg.territory.zone_name_field)
            ref_years = self.ctx.notes().get("indicators", {}).get("global", {}).get("reference_years", {})
            from .capabilities import capabilities
            from .chains import sensor_for

            cap = capabilities(cfg)
            lst_sensor = sensor_for(cfg.global_chain.lst_sensors, d.start)
            plots = [(cap.vci_index, "", ("MODIS", "VIIRS"), "VCI")] if cap.vci_index else []
            plots += [("LST", "°C", (lst_sensor,), "TCI")] if cap.lst and lst_sensor else []
            for index, unit, sensors, indicator in plots:
                series = zone_series(cfg, d, index, zones, sensors, ref_years.get(indicator))
                if any(not np.isnan(v) for s in series for v in s.current):
                    years = ref_years.get(indicator) or "all earlier years"
                    display(Markdown(f"**{index} per zone**: {d.year} (orange) against the reference years "
                                     f"{years} (blue: min-max envelope and mean), zone means per dekad."))
                    series_panels(series, f"{index} per zone, {d.year} against the reference years", unit)
                    plt.show()

    def availability(self) -> None:
        cfg, notes = self.ctx.cfg, self.ctx.notes()
        rows = []
        for key, value in notes.items():
            if key == "global":
                rows += [{"chain": "global", "expected": f"{self.ctx.dekad.ndays} daily", **r}
                         for r in value["availability"]]
            elif key.startswith("highres_"):
                rows += [{"chain": "local " + key.rsplit("_", 1)[1], "expected": "", **r} for r in value]
        for r in rows:  # latency: latest acquisition available against the run's date (design note §5)
            latest = str(r.get("latest acquisition", ""))[:10]
            r["latency (days)"] = (cfg.today() - date.fromisoformat(latest)).days if latest else ""
        _show(pd.DataFrame(rows)) if rows else display(Markdown("*No availability recorded.*"))
        if "local_composites" in notes:
            display(Markdown("Local composites (window widening, DOMAIN.md §1.5):"))
            _show(pd.DataFrame([{"tile": k, **v} for k, v in notes["local_composites"].items()]))

    def metadata(self) -> None:
        cfg, notes = self.ctx.cfg, self.ctx.notes()
        view = public_view(cfg)
        source = cfg.source.name if cfg.source else ""
        display(Markdown(f"eo4dm {_version()}; backend {cfg.backend}; parameters `{source}`; convention "
                         f"{cfg.indicators.convention}; report made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"))
        if notes.get("timings"):
            _show(pd.DataFrame([{"step": k, "seconds": v} for k, v in notes["timings"].items()]))
        inputs = notes.get("inputs", [])
        display(HTML("<details><summary>Parameters</summary><pre>" + _yaml(view) + "</pre></details>"
                     + (f"<details><summary>Inputs ({len(inputs)})</summary><pre>"
                        + html.escape("\n".join(inputs)) + "</pre></details>" if inputs else "")))


def _headline_row(row: dict, col: str, v: np.ndarray | None, breaks: tuple[float, ...]) -> dict:
    """One headline row: the mean of ``v`` and its class shares (land pixels only: NaN at sea)."""
    if v is None or not np.any(~np.isnan(v)):
        return {**row, col: "not available"}
    shares = I.class_shares(I.classify(v, breaks))
    return {**row, col: round(float(np.nanmean(v)), 3), **{f"% {k}": round(100 * s, 1) for k, s in shares.items()}}


def _show(df: pd.DataFrame) -> None:
    """A table without the row index (the bulletin's readers do not need 0, 1, 2...)."""
    display(HTML(df.to_html(index=False, classes="dataframe", na_rep="", border=0)))


def _yaml(obj) -> str:
    import yaml

    return html.escape(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


__all__ = ["Bulletin", "Month"]
