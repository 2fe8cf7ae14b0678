"""Done means complete: what a dekad must have under the parameters, and what it lacks.

One walk of the archive's product folders gives an :class:`Inventory` (file names parsed once). A file
named after a dekad later than the latest complete one, or whose name does not parse, is a
:class:`Stray`: reported, never counted as progress. :func:`expected` lists every product a dekad must
have: the composites of each enabled chain, tile and index (with the month composites on D3), the
indicators whose reference holds enough years, the zone statistics when zones are configured, and the
bulletin when asked. A chain that had no usable acquisition for a dekad leaves a no-data record
(``nodata/...``) in place of its composites and indicators.

Auto mode, ``--backfill``, ``--since-failure``, ``--check-availability`` and the index page all ask this
module, so "nothing to do" always means "every dekad is complete".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from . import indicators as I
from .archive import Archive, Month, Period
from .config import Config
from .dekads import Dekad, DekadError, dekad_range, latest_complete_dekad
from .storage import TMP_PREFIX

# Kinds of product, in the order a dekad's processing makes them.
COMPOSITE, MONTH_COMPOSITE, INDICATOR, MONTH_INDICATOR, ZONE_STATS, BULLETIN = (
    "composite", "month composite", "indicator", "month indicator", "zone statistics", "bulletin")
DERIVED = (INDICATOR, MONTH_INDICATOR, ZONE_STATS, BULLETIN)

_YM = r"(?P<y>\d{4})(?P<m>\d{2})"
_NAMES: dict[str, re.Pattern[str]] = {  # archive.Archive's layout (DOMAIN.md §1.2 names)
    "composites/global/dekad": re.compile(rf"^(?P<sensor>[A-Z0-9]+)_(?P<index>[A-Z]+)_{_YM}_COMPD(?P<d>\d)\.tif$"),
    "composites/global/month": re.compile(rf"^(?P<sensor>[A-Z0-9]+)_(?P<index>[A-Z]+)_{_YM}_COMPM\.tif$"),
    "composites/local/dekad": re.compile(rf"^LS2_(?P<index>[A-Z]+)_{_YM}_COMPD(?P<d>\d)\.tif$"),
    "indicators/global/dekad": re.compile(rf"^(?P<name>[A-Z]+)_{_YM}D(?P<d>\d)\.tif$"),
    "indicators/global/month": re.compile(rf"^(?P<name>[A-Z]+)_{_YM}M\.tif$"),
    "indicators/local/dekad": re.compile(rf"^(?P<name>[A-Z]+)_(?P<tile>[^_]+)_{_YM}D(?P<d>\d)\.tif$"),
    "stats": re.compile(r"^zones\.(csv|json)$"),
    "nodata": re.compile(r"^(?P<label>\d{4}-\d{2}-D\d)\.json$"),
}
_SIDECARS = (".aux.xml", ".ovr", ".msk")  # GDAL's own files next to a raster: not products


@dataclass(frozen=True)
class Product:
    """One file a dekad must have."""

    kind: str
    name: str  # e.g. "MODIS NDWI", "VHI", "VAI 82075", "zones", "bulletin"
    path: Path

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Stray:
    """A file of a product folder that is not a product of any complete dekad."""

    path: Path
    reason: str

    def message(self) -> str:
        return f"{self.path}: {self.reason}; ignored (move or delete it)"


@dataclass
class Inventory:
    """The archive's product files, parsed once: every path, and per-period history by kind."""

    root: Path
    today: date
    files: set[Path] = field(default_factory=set)
    strays: list[Stray] = field(default_factory=list)
    dekads: set[Dekad] = field(default_factory=set)  # dekads with at least one composite or no-data record

    @classmethod
    def scan(cls, cfg: Config, today: date | None = None) -> Inventory:
        """Walk the product folders of ``cfg.paths.archive`` (composites, indicators, stats, nodata)."""
        today = today or cfg.today()
        inv = cls(Path(cfg.paths.archive), today)
        last = latest_complete_dekad(today)
        for top in ("composites", "indicators", "stats", "nodata"):
            base = inv.root / top
            if not base.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for fn in filenames:
                    if fn.startswith(".") or fn.endswith(_SIDECARS):  # temporaries, the lock, GDAL sidecars
                        continue
                    inv._add(Path(dirpath) / fn, last)
        return inv

    def _add(self, path: Path, last: Dekad) -> None:
        rel = path.relative_to(self.root).parts
        period, problem = _parse(rel)
        if problem:
            self.strays.append(Stray(path, problem))
            return
        d = period if isinstance(period, Dekad) else Dekad(period.year, period.month, 3)  # type: ignore[union-attr]
        if d > last:
            what = period.label if isinstance(period, Dekad | Month) else str(period)
            self.strays.append(Stray(path, f"named after {what}, later than the latest complete dekad "
                                           f"{last.label} (today is {self.today})"))
            return
        self.files.add(path)
        if rel[0] in ("composites", "nodata"):
            self.dekads.add(d)

    def add(self, paths: Iterable[Path]) -> None:
        """Record files just written (a commit) without walking the archive again."""
        last = latest_complete_dekad(self.today)
        for p in paths:
            p = Path(p)
            if p.is_relative_to(self.root) and p.relative_to(self.root).parts[0] in (
                    "composites", "indicators", "stats", "nodata"):
                self.files.discard(p)
                self._add(p, last)

    def discard(self, paths: Iterable[Path]) -> None:
        for p in paths:
            self.files.discard(Path(p))

    def has(self, path: Path) -> bool:
        return path in self.files

    def first_dekad(self) -> Dekad | None:
        return min(self.dekads) if self.dekads else None

    def last_dekad(self) -> Dekad | None:
        return max(self.dekads) if self.dekads else None

    # -- history (the reference of an indicator) ---------------------------------------------------
    def global_history(self, index: str, period: Period, sensors: Iterable[str]) -> dict[int, Path]:
        """Composites of ``period``'s calendar dekad or month for every year, by year (first sensor wins)."""
        arch, out = Archive(self.root), {}
        for year in self._years():
            for s in sensors:
                p = arch.global_composite(s, index, I.same_period(period, year))
                if p in self.files:
                    out[year] = p
                    break
        return out

    def local_history(self, tile: str, index: str, dekad: Dekad) -> dict[int, Path]:
        arch = Archive(self.root)
        out = {}
        for year in self._years():
            p = arch.local_composite(tile, index, dekad.same_dekad_in(year))
            if p in self.files:
                out[year] = p
        return out

    def _years(self) -> range:
        if not self.dekads:
            return range(0)
        return range(min(self.dekads).year, max(self.dekads).year + 1)


def _parse(rel: tuple[str, ...]) -> tuple[Dekad | Month | None, str]:
    """The period a product file is named after, or why its name is not a product name."""
    name = rel[-1]
    if rel[0] == "stats":
        if len(rel) != 3 or not _NAMES["stats"].match(name):
            return None, "not a zone statistics file (stats/<YYYY-MM-Dn>/zones.csv)"
        try:
            return Dekad.parse(rel[1]), ""
        except DekadError:
            return None, f"statistics folder {rel[1]!r} is not a dekad label YYYY-MM-Dn"
    if rel[0] == "nodata":
        m = _NAMES["nodata"].match(name)
        if not m or len(rel) not in (3, 4):
            return None, "not a no-data record (nodata/<chain>/[<tile>/]<YYYY-MM-Dn>.json)"
        try:
            return Dekad.parse(m.group("label")), ""
        except DekadError as exc:
            return None, f"malformed name ({exc})"
    if len(rel) == 4 and rel[1] == "global":
        key = f"{rel[0]}/global/{rel[2]}"
    elif len(rel) == 5 and rel[1] == "local" and rel[3] == "dekad":
        key = f"{rel[0]}/local/dekad"
    else:
        return None, "not in a product folder of the archive layout"
    pat = _NAMES.get(key)
    m = pat.match(name) if pat else None
    if not m:
        return None, "malformed name (not a product name of the archive layout)"
    if key == "indicators/local/dekad" and m.group("tile") != rel[2]:
        return None, f"malformed name (tile {m.group('tile')} in the folder of tile {rel[2]})"
    try:
        year, month = int(m.group("y")), int(m.group("m"))
        if "d" in m.groupdict() and m.group("d") is not None:
            return Dekad(year, month, int(m.group("d"))), ""
        if not 1 <= month <= 12:
            raise DekadError(f"month must be 1-12, got {month}")
        return Month(year, month), ""
    except DekadError as exc:
        return None, f"malformed name ({exc})"


# --------------------------------------------------------------------------------------------
# What a dekad must have
# --------------------------------------------------------------------------------------------
def nodata_path(root: Path, chain: str, dekad: Dekad) -> Path:
    """The no-data record of ``chain`` ("global", or a local tile id) for ``dekad``."""
    if chain == "global":
        return Path(root) / "nodata" / "global" / f"{dekad.label}.json"
    return Path(root) / "nodata" / "local" / chain / f"{dekad.label}.json"


def nodata_hint(cfg: Config, chain: str, dekad: Dekad) -> str:
    """How an operator records by hand that a dekad truly has no product (so the routine moves on)."""
    return f"write {nodata_path(cfg.paths.archive, chain, dekad)} containing {{\"no_data\": \"<why>\"}}"


def nodata_record(reason: str, superseded: list[str] | None = None) -> str:
    """The text of a no-data record (deterministic: a rerun writes the same bytes). ``superseded``: the
    archive files (relative paths) it replaces, when not every composite of its chain and dekad (an all-NaN
    composite found by the indicators step: the month's composites on D3 stay)."""
    doc: dict[str, object] = {"no_data": reason}
    if superseded is not None:
        doc["superseded"] = superseded
    return json.dumps(doc, indent=1) + "\n"


def nodata_reason(path: Path) -> str:
    """Why a no-data record says its dekad has no data."""
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("no_data", "no usable acquisition"))
    except (OSError, ValueError, AttributeError):
        return "no usable acquisition"


def superseded_by(cfg: Config, dekad: Dekad, chain: str, record: Path) -> list[Path]:
    """The composites a no-data record about to be committed replaces: those it names, else every composite
    of its chain and dekad (with the month's on D3)."""
    try:
        names = json.loads(Path(record).read_text(encoding="utf-8")).get("superseded")
    except (OSError, ValueError, AttributeError):
        names = None
    if isinstance(names, list):
        return [Path(cfg.paths.archive) / str(n) for n in names]
    return composites_of(cfg, dekad, chain)


def stats_sidecar(path: Path) -> Path:
    """The record next to ``stats/<dekad>/zones.csv`` naming the zone layer it was computed with."""
    return path.with_suffix(".json")


_DIGESTS: dict[tuple[str, int, int], str] = {}


def zone_layer_digest(cfg: Config) -> str | None:
    """sha256 of the zone layer (with a shapefile's .dbf/.prj) and the name field; None without zones."""
    if cfg.territory.zones is None:
        return None
    path = Path(cfg.territory.zones)
    parts = [path] + ([path.with_suffix(s) for s in (".dbf", ".prj", ".shx")] if path.suffix.lower() == ".shp"
                      else [])
    h = hashlib.sha256(cfg.territory.zone_name_field.encode() + b"\0")
    for p in parts:
        try:
            st = p.stat()
        except OSError:
            continue
        key = (str(p), st.st_mtime_ns, st.st_size)
        if key not in _DIGESTS:
            _DIGESTS[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        h.update(p.suffix.encode() + _DIGESTS[key].encode())
    return h.hexdigest()


def _global_sensors(cfg: Config, day: date) -> tuple[str, str | None] | None:
    """(reflectance sensor, LST sensor or None without LST) on ``day``; None when a configured product has no
    sensor for that date (nothing is expected then)."""
    from .capabilities import capabilities
    from .chains import sensor_for

    gc = cfg.global_chain
    n, t = sensor_for(gc.ndwi_sensors, day), sensor_for(gc.lst_sensors, day)
    if capabilities(cfg).lst:
        return (n, t) if n and t else None
    return (n, None) if n else None


def _reference_ok(cfg: Config, period: Period, years: Iterable[int]) -> bool:
    try:
        I.reference_years(period, years, cfg.indicators.reference)
    except I.IndicatorUnavailable:
        return False
    return True


def expected(cfg: Config, dekad: Dekad, inv: Inventory, *, bulletin: bool) -> list[Product]:
    """Every product ``dekad`` must have under ``cfg``, given what the archive holds (the references)."""
    from .capabilities import capabilities

    arch = Archive(cfg.paths.archive)
    cap = capabilities(cfg)
    out: list[Product] = []
    stats_needed = False
    gc, lc = cfg.global_chain, cfg.local_chain
    sensors = _global_sensors(cfg, dekad.start) if gc.enabled else None
    if sensors and not inv.has(nodata_path(arch.root, "global", dekad)):
        ndwi_s, lst_s = sensors
        periods: list[Period] = [dekad] + ([Month(dekad.year, dekad.month)] if dekad.index == 3 else [])
        for period in periods:
            month = isinstance(period, Month)
            for index in cap.global_indices:
                s = lst_s if index == "LST" else ndwi_s
                out.append(Product(MONTH_COMPOSITE if month else COMPOSITE, f"{s} {index}",
                                   arch.global_composite(s, index, period)))
            ok = {"VCI": cap.vci_index is not None and _reference_ok(
                      cfg, period, inv.global_history(cap.vci_index, period, ("MODIS", "VIIRS"))),
                  "TCI": lst_s is not None and _reference_ok(cfg, period, inv.global_history("LST", period, (lst_s,)))}
            ok["VHI"] = ok["VCI"] and ok["TCI"]
            for name in cap.global_indicators:
                if ok[name]:
                    out.append(Product(MONTH_INDICATOR if month else INDICATOR, name,
                                       arch.global_indicator(name, period)))
                    stats_needed = stats_needed or not month
    if lc.enabled:
        for tile in lc.tiles:
            if inv.has(nodata_path(arch.root, tile.id, dekad)):
                continue
            for index in cap.local_indices:
                out.append(Product(COMPOSITE, f"{tile.id} {index}", arch.local_composite(tile.id, index, dekad)))
            if cap.vai_index and _reference_ok(cfg, dekad, inv.local_history(tile.id, cap.vai_index, dekad)):
                out.append(Product(INDICATOR, f"VAI {tile.id}", arch.local_indicator(tile.id, "VAI", dekad)))
                stats_needed = True
    if stats_needed and cfg.territory.zones is not None:
        out.append(Product(ZONE_STATS, "zones", arch.zone_stats(dekad)))
    if bulletin:
        out.append(Product(BULLETIN, "bulletin", bulletin_path(cfg, dekad)))
    return out


def bulletin_path(cfg: Config, dekad: Dekad) -> Path:
    return cfg.paths.output / "reports" / dekad.label / "index.html"


def missing(cfg: Config, dekad: Dekad, inv: Inventory, *, bulletin: bool) -> list[Product]:
    """The expected products of ``dekad`` that the archive (or the output, for the bulletin) lacks. Zone
    statistics computed with another zone layer count as missing (they are recomputed)."""
    out = []
    digest = None
    for p in expected(cfg, dekad, inv, bulletin=bulletin):
        if p.kind == BULLETIN:
            present = p.path.is_file()
        elif p.kind == ZONE_STATS:
            present = inv.has(p.path) and _stats_current(p.path, digest := digest or zone_layer_digest(cfg))
        else:
            present = inv.has(p.path)
        if not present:
            out.append(p)
    return out


def _stats_current(path: Path, digest: str | None) -> bool:
    try:
        meta = json.loads(stats_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("zone_layer_sha256") == digest


def is_complete(cfg: Config, dekad: Dekad, inv: Inventory, *, bulletin: bool) -> bool:
    return not missing(cfg, dekad, inv, bulletin=bulletin)


def span(cfg: Config, inv: Inventory, today: date) -> list[Dekad]:
    """The dekads the archive must hold: from ``history_start`` (else the archive's first dekad) to the
    latest complete dekad; just the latest complete dekad for an empty archive without history_start."""
    last = latest_complete_dekad(today)
    first = Dekad.containing(cfg.history_start) if cfg.history_start is not None else inv.first_dekad() or last
    return dekad_range(min(first, last), last)


def summary(products: Iterable[Product], limit: int = 4) -> str:
    """``"indicator VHI, zone statistics zones and 3 more"``."""
    items = [str(p) for p in products]
    head = ", ".join(items[:limit])
    return head + (f" and {len(items) - limit} more" if len(items) > limit else "")


def composites_missing(products: Iterable[Product]) -> bool:
    return any(p.kind in (COMPOSITE, MONTH_COMPOSITE) for p in products)


def derived_of(cfg: Config, dekad: Dekad, chains: Iterable[str]) -> list[Path]:
    """Archive files computed from ``chains``' composites of ``dekad`` ("global" or tile ids): removed
    before those composites are replaced, so that no indicator or statistic outlives its inputs."""
    arch = Archive(cfg.paths.archive)
    out: list[Path] = []
    for chain in chains:
        if chain == "global":
            out += [arch.global_indicator(n, dekad) for n in ("VCI", "TCI", "VHI")]
            if dekad.index == 3:
                out += [arch.global_indicator(n, Month(dekad.year, dekad.month)) for n in ("VCI", "TCI", "VHI")]
        else:
            out.append(arch.local_indicator(chain, "VAI", dekad))
    stats = arch.zone_stats(dekad)
    return out + [stats, stats_sidecar(stats)]


def product_of(rel: Path) -> tuple[Dekad | None, str]:
    """(dekad, chain) of an archive file given relative to the archive root: chain "global" or a tile id;
    a month product belongs to its third dekad. (None, "") for what is not a product."""
    parts = Path(rel).parts
    if not parts or parts[0] not in ("composites", "indicators", "stats", "nodata"):
        return None, ""
    period, problem = _parse(parts)
    if problem or period is None:
        return None, ""
    d = period if isinstance(period, Dekad) else Dekad(period.year, period.month, 3)
    if parts[0] == "stats":
        return d, ""
    if parts[0] == "nodata":
        return d, "global" if parts[1] == "global" else parts[2]
    return d, "global" if parts[1] == "global" else parts[2]


def composites_of(cfg: Config, dekad: Dekad, chain: str) -> list[Path]:
    """The archive's composites of ``chain`` for ``dekad`` (with the month's on D3), any sensor or index:
    superseded when a no-data record of the same dekad is committed."""
    arch = Archive(cfg.paths.archive)
    if chain == "global":
        out = list(arch.global_composite("*", "*", dekad).parent.glob(arch.global_composite("*", "*", dekad).name))
        if dekad.index == 3:
            m = arch.global_composite("*", "*", Month(dekad.year, dekad.month))
            out += list(m.parent.glob(m.name))
        return sorted(out)
    p = arch.local_composite(chain, "*", dekad)
    return sorted(p.parent.glob(p.name))


def is_temporary(path: Path) -> bool:
    return path.name.startswith(TMP_PREFIX)
