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
from .series import territory_figures, territory_values, zone_series
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
                p = self.ctx.archive.global_indicator(name, dk)  # read as the index page reads it (series)
                v = territory_values(p)[0] if p.exists() else None
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
            names = getattr(breaks, "names", I.CLASS_NAMES)[:getattr(breaks, "drought", 3)]  # the drought classes
            share = rows[0]["_drought"]  # unrounded, as on the index page (not a sum of rounded class shares)
            rule = breaks.rule(name) if hasattr(breaks, "rule") else f"{name} ≤ {breaks[3]:g}"
            display(Markdown(f"Territory-wide {label} **{rows[0][col]:.2f}** "
                             f"({'+' if change >= 0 else ''}{change:.2f} since the previous dekad); "
                             f"{share:.1f} % of land in drought ({rule}: "
                             f"{', '.join(n.lower() for n in reversed(names))})."))
        _show(pd.DataFrame(rows).drop(columns=["_drought"], errors="ignore"))
        for line in self.class_notes():  # Kogan / FAO ASIS shares, beyond the record, VAI vegetation filter
            display(Markdown(line))
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

    def class_notes(self) -> list[str]:
        """Sentences under the headline: the Kogan drought and FAO ASIS "affected" shares (standard
        convention), the land beyond the record (VCI, TCI) and the land the VAI vegetation filter removed,
        with a warning for each zone (or tile) it removes more than half of."""
        return self.scheme_lines() + self.record_lines() + self.vai_filter_lines()

    def scheme_lines(self) -> list[str]:
        """Under a scheme with an "affected" threshold (standard: Kogan 1995, FAO ASIS): the share of land in
        drought by Kogan's rule (VHI < 40) and the share FAO ASIS counts as affected (VHI < 35)."""
        cfg = self.ctx.cfg
        scheme = I.CONVENTIONS[cfg.indicators.convention].vhi_breaks
        if not cfg.global_chain.enabled or scheme.affected is None:
            return []
        v, _ = self._global("VHI")
        valid = ~np.isnan(v) if v is not None else None
        if v is None or not valid.any():
            return []
        drought = 100 * float(np.mean(scheme.in_drought(I.classify(v[valid], scheme))))
        affected = 100 * float(np.mean(scheme.affected_mask(v[valid])))
        return [f"Kogan drought ({scheme.rule()}: extreme, severe, moderate or mild): **{drought:.1f} %** of land; "
                f"FAO ASIS affected (VHI < {scheme.affected:g}): **{affected:.1f} %** of land "
                "(Kogan 1995, Adv. Space Res. 15(11):91-100; FAO GIEWS ASIS)."]

    def record_lines(self) -> list[str]:
        """The share of land whose vegetation index (VCI) or LST (TCI) lies beyond every reference year, from the
        RECORD band of the VCI and TCI files (files written before that band existed say nothing)."""
        cfg = self.ctx.cfg
        if not cfg.global_chain.enabled:
            return []
        conv = I.CONVENTIONS[cfg.indicators.convention]
        top = f"{conv.scale:g}"
        parts, old, years = [], [], ""
        for name, index, low, high in (("VCI", conv.vci_index, "below", "above"), ("TCI", "LST", "above", "below")):
            path = self.ctx.archive.global_indicator(name, self.ctx.dekad)
            r = _named_band(path, I.RECORD_BAND)
            if r is None and path.exists():
                old.append(name)
            if r is None or not (~np.isnan(r)).any():
                continue
            r = r[~np.isnan(r)]
            worse, better = (100 * float(np.mean(r == k)) for k in (I.RECORD_LOW, I.RECORD_HIGH))
            parts.append(f"{index} {low} every reference year on **{worse:.1f} %** of land ({name} < 0 before "
                         f"clipping), {high} on {better:.1f} % ({name} > {top})")
            years = years or _tag(path, "REFERENCE_YEARS")
        n = len([y for y in years.split(",") if y]) if parts else 0
        # with n reference years, a year of no trend beats them all with probability 1/(n+1) on each side
        return ([f"Beyond the record (against {n} reference year{'s' if n != 1 else ''}): " + "; ".join(parts)
                 + "."] if parts else []) + \
            ([f"*Beyond the record: not recorded in this dekad's {' and '.join(old)} file(s) (written before the "
              "RECORD band existed, or imported from EO4DM); recomputing the dekad's indicators adds it.*"]
             if old else [])

    def vai_filter_lines(self, warn_above: float = 50.0) -> list[str]:
        """Per tile: "VAI not computed on N % of land (bare soil: reference NDVI < x; dense vegetation: > y)",
        from the VEG_FILTER band of the VAI file (land = pixels with a reference NDVI); a warning for the tile
        and for each zone (zone statistics) the filter removes more than ``warn_above`` % of."""
        import rasterio

        from .blocks import block_windows, read_window

        cfg, out = self.ctx.cfg, []
        if not cfg.local_chain.enabled:
            return out
        for tile in cfg.local_chain.tiles:
            p = self.ctx.archive.local_indicator(tile.id, "VAI", self.ctx.dekad)
            if not p.exists():
                continue
            with rasterio.open(p) as src:
                band = list(src.descriptions).index(I.VEG_BAND) + 1 if I.VEG_BAND in src.descriptions else None
                rule = src.tags().get(I.VEG_BAND, "")
            if band is None or rule.startswith("not applied"):
                continue
            n = np.zeros(3, np.int64)  # land, bare soil, dense vegetation
            for win in block_windows(tile.grid):  # window by window: a 10 m tile never has to fit in memory
                f = read_window(p, win, (band,))[0]
                n += [np.count_nonzero(~np.isnan(f)), np.count_nonzero(f == I.VEG_BARE),
                      np.count_nonzero(f == I.VEG_DENSE)]
            if not n[0]:
                continue
            bare, dense = 100 * n[1] / n[0], 100 * n[2] / n[0]
            out.append(f"VAI (tile {tile.id}) not computed on **{bare + dense:.1f} %** of land ({rule}); "
                       f"bare soil {bare:.1f} %, dense vegetation {dense:.1f} %.")
            if bare + dense > warn_above:
                out.append(f"*Warning: the VAI vegetation filter removes {bare + dense:.1f} % of tile {tile.id}'s "
                           "land: VAI says nothing there (indicators.vai_bare_soil_ndvi / vai_dense_vegetation_ndvi)."
                           "*")
        for r in self._zone_rows():
            if not r.get("indicator", "").startswith("VAI") or not r.get("% VAI filtered (bare soil)"):
                continue
            removed = float(r["% VAI filtered (bare soil)"]) + float(r.get("% VAI filtered (dense vegetation)") or 0)
            if removed > warn_above:
                out.append(f"*Warning: the VAI vegetation filter removes {removed:.1f} % of zone {r['zone']} "
                           f"({r['chain']}): its VAI statistics describe the rest only.*")
        return out

    def _zone_rows(self) -> list[dict[str, str]]:
        p = self.ctx.archive.zone_stats(self.ctx.dekad)
        if not p.exists():
            return []
        with open(p, encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

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
        df = pd.DataFrame(rows)
        extra = [c for c in df.columns if c.endswith("(FAO ASIS)") or "record" in c or c.startswith("% VAI filtered")]
        _show(df[cols + extra])  # extra: columns of this dekad's statistics only (older ones lack them)
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
    fig = territory_figures(v, breaks)  # the index page's figures (series.territory_figures)
    shares = {k: round(s, 1) for k, s in fig.items() if k.startswith("% ") and k != "% in drought"}
    return {**row, col: round(fig["mean"], 3), **shares, "_drought": fig["% in drought"]}


def _named_band(path, name: str) -> np.ndarray | None:
    """The band called ``name`` of a raster (None when the file or the band does not exist)."""
    import rasterio

    if not path.exists():
        return None
    from .blocks import read_window

    with rasterio.open(path) as src:
        if name not in src.descriptions:
            return None
        band = list(src.descriptions).index(name) + 1
    return read_window(path, None, (band,))[0]


def _tag(path, key: str) -> str:
    import rasterio

    with rasterio.open(path) as src:
        return src.tags().get(key, "")


def _show(df: pd.DataFrame) -> None:
    """A table without the row index (the bulletin's readers do not need 0, 1, 2...)."""
    display(HTML(df.to_html(index=False, classes="dataframe", na_rep="", border=0)))


def _yaml(obj) -> str:
    import yaml

    return html.escape(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


__all__ = ["Bulletin", "Month"]
