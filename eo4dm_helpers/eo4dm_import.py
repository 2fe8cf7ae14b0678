"""Import an existing EO4DM historical store into our archive so the record continues (DOMAIN.md §1.2).

EO4DM keeps its record in ``DATA_HISTO/<Territory>/`` (DOMAIN.md §1.2)::

    0_INDICES/MODIS/{DECADE,MONTH}/MODIS_{NDWI|NDVI|LST}_{YYYYMM}_{COMPD1|COMPD2|COMPD3|COMPM}.tif   b1 mean, b2 count
    0_INDICES/LANDSAT_SENTINEL2/DECADE/LANDSAT_SENTINEL2_0{tile}_{YYYYMM}_{NDWI|NDVI}_{type}.tif
    0_INDICES/ASCAT/...                                   ALERT chain input: not imported
    1_INDICATEURS/GLOBAL/{DECADE,MONTH}/{VCI|TCI|VHI}_{YYYYMM}{D1|D2|D3|M}.tif              b1 value, b2 QSCORE
    1_INDICATEURS/LOCAL/DECADE/VAI_0{tile}_{YYYYMM}D{d}.tif
    1_INDICATEURS/{GLOBAL,LOCAL,ALERT}/STATS/*.csv, 1_INDICATEURS/ALERT/...   not imported

Local composite names are accepted in both orders, ``*_{NDWI|NDVI}_{YYYYMM}_{type}.tif`` (DOMAIN.md
§1.2) and ``*_{YYYYMM}_{NDWI|NDVI}_{type}.tif`` (what the EO4DM code writes); the tile comes from a
per-tile sub-folder or from a name field holding the Landsat tile (``82075``, or ``082075`` as EO4DM
writes it). ``type`` is one of the §1.5 composite types (``COMPD{d}``, ``COMPD{d}e/m/M``, ``DAY{d}e/m/M``),
kept in the tag ``COMPOSITE_TYPE``. A file that cannot be placed is listed as skipped with the reason.
Files skipped by design (statistics tables, ALERT products, GDAL sidecars, duplicates) are only listed;
files that cannot be placed (a name not recognised, no tile, outside the layout) are listed too and make
the command exit 1 once the rest is imported, unless ``--ignore-unplaced``: nothing is skipped silently.

Every file to import is validated before anything is written (readable GeoTIFF with no truncated
block, a CRS, float data, the expected bands, one grid per chain and tile, the grid of the archive's
existing files and, from the command line, the grid of the parameters). Files are then copied
atomically under the archive's run lock; existing archive files are kept unless ``overwrite``.

Two EO4DM outputs need a decision, made visibly in the plan:

* a composite made from a single image has **one band** in EO4DM (GEE_compositing_functions: the
  image itself, no count): it is imported with b2 = 1 where b1 is valid, 0 elsewhere, exactly how
  EO4DM reads it (DROUGHT_local_functions.extractVAI, ``COUNT = ~isnan``); tag ``COUNT_DERIVED``;
* the local month composites of the Landsat-only years (types ``COMPM``, ``DAY``) have no dekad:
  skipped unless ``local_months=True``, which copies each into the three dekads of its month,
  the way EO4DM pooled them into every dekad's VAI reference (DOMAIN.md §1.6).

Command line::

    python -m eo4dm_helpers.eo4dm_import SOURCE --params PARAMS [--overwrite] [--dry-run] [--local-months] [--quick]
        [--ignore-unplaced]

Exit status: 0 done, 1 done but some files could not be placed (listed), 2 nothing written (an error).
"""

from __future__ import annotations

import argparse
import filecmp
import math
import re
import shutil
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Literal

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from .archive import GLOBAL_SENSORS, SOURCE_IMPORT, SOURCE_TAG, Archive, Month, Period
from .config import Config, ConfigError, Grid, load_config
from .dekads import Dekad
from .storage import TMP_PREFIX, LockError, atomic_path, run_lock

__all__ = ["Action", "EO4DMImportError", "ImportPlan", "ImportReport", "config_grids", "main", "plan_import",
           "run_import"]

Op = Literal["copy", "keep", "skip"]

_ROW_CHUNK = 256  # rows per window when decoding or rewriting (bounded memory on 10 m tiles)


def _version() -> str:
    """The importer's version (eo4dm's), kept on every imported file with ``SOURCE=EO4DM-import``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eo4dm")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


class EO4DMImportError(RuntimeError):
    """The store cannot be imported as it is; the message names the file. Nothing was written."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}; nothing was written")


# ------------------------------------------------------------------------------------------------
# Plan and report
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """What happens to one EO4DM file (a local month composite may give up to three actions)."""

    source: Path
    rel: str  # path inside the territory folder, for messages
    op: Op
    reason: str = ""  # why skipped or kept; for a copy, the conversion applied if any
    target: Path | None = None
    family: str = ""  # reporting family, e.g. "MODIS NDWI dekad", "VAI 82075"
    tags: tuple[tuple[str, str], ...] = ()  # tags set on the archive copy
    band_names: tuple[str, str] = ("", "")
    rewrite: bool = False  # written band by band (1-band composite, finite nodata, .aux.xml sidecar)
    nodata: float | None = None  # finite b1 nodata of the source, turned into NaN
    stamp: tuple[int, int] = (0, 0)  # source (size, mtime_ns) when planned


@dataclass
class ImportPlan:
    """Every file of the store and what :func:`run_import` does with it."""

    source: Path  # the territory folder (DATA_HISTO/<Territory>)
    archive: Path
    actions: list[Action]

    def _ops(self, op: Op) -> list[Action]:
        return [a for a in self.actions if a.op == op]

    @property
    def copies(self) -> list[Action]:
        return self._ops("copy")

    @property
    def keeps(self) -> list[Action]:
        return self._ops("keep")

    @property
    def skips(self) -> list[Action]:
        return self._ops("skip")

    @property
    def unplaced(self) -> list[Action]:
        """Skipped files the importer could not place (not skipped by design): the command exits 1."""
        return [a for a in self.skips if not _by_design(a.reason)]

    def summary(self, overwrite: bool = False) -> str:
        """Short text: per family what would be written or kept, then the skipped files by reason."""
        write, keep = Counter(), Counter()
        for a in self.actions:
            if a.op == "copy" or (a.op == "keep" and overwrite):
                write[a.family] += 1
            elif a.op == "keep":
                keep[a.family] += 1
        head = f"EO4DM store {self.source} -> archive {self.archive} (plan, nothing written)"
        return _summary(head, "would write", write, keep, self.skips)


@dataclass
class ImportReport:
    """What :func:`run_import` did, counted per family."""

    archive: Path
    written: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    skipped: list[Action] = field(default_factory=list)

    @property
    def n_written(self) -> int:
        return sum(self.written.values())

    @property
    def n_kept(self) -> int:
        return sum(self.kept.values())

    def summary(self) -> str:
        return _summary(f"EO4DM import into {self.archive}", "written", self.written, self.kept, self.skipped)


def _summary(head: str, verb: str, write: Counter[str], keep: Counter[str], skipped: Sequence[Action]) -> str:
    lines = [head]
    fams = sorted(set(write) | set(keep))
    width = max([len(f) for f in fams] + [6])
    for f in fams:
        lines.append(f"  {f:<{width}}  {verb} {write[f]:>5}  kept {keep[f]:>5}")
    by_reason: dict[str, list[str]] = defaultdict(list)
    for a in skipped:
        by_reason[a.reason].append(a.rel)
    if skipped:
        lines.append(f"  skipped {len(skipped)} file(s):")
        for k, (reason, rels) in enumerate(sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))):
            if k == 10:
                lines.append(f"    ... and {len(by_reason) - 10} more reason(s)")
                break
            eg = ", ".join(rels[:3]) + (", ..." if len(rels) > 3 else "")
            lines.append(f"    {len(rels):>5} {reason} [{eg}]")
    lines.append(f"total: {sum(write.values())} {verb}, {sum(keep.values())} kept (already in the archive), "
                 f"{len(skipped)} skipped")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Names -> archive paths (DOMAIN.md §1.2, §1.5)
# ------------------------------------------------------------------------------------------------
_EXT = re.compile(r"\.tiff?$", re.IGNORECASE)
_YM = r"(?P<ym>\d{6})"
_SENSORS = "|".join(GLOBAL_SENSORS)
_GLOBAL_COMP = re.compile(rf"^(?P<sensor>{_SENSORS})_(?P<index>NDWI|NDVI|LST)_{_YM}_COMP(?:D(?P<d>[123])|M)$")
_GLOBAL_IND = re.compile(rf"^(?P<name>VCI|TCI|VHI)_{_YM}(?:D(?P<d>[123])|M)$")
_VAI = re.compile(rf"^VAI_(?:(?P<tile>[^_]+)_)?{_YM}(?:D(?P<d>[123])|(?P<month>M))$")
_LTYPE = r"(?P<type>COMPD[123][emM]?|DAY[123][emM]?|COMPM|DAY)"  # DOMAIN.md §1.5 (+ COMPM/DAY of the month)
_LOCAL_DOC = re.compile(rf"^(?:(?P<pre>.+)_)?(?P<index>NDWI|NDVI)_{_YM}_{_LTYPE}$")  # order of DOMAIN.md §1.2
_LOCAL_CODE = re.compile(rf"^(?:(?P<pre>.+)_)?{_YM}_(?P<index>NDWI|NDVI)_{_LTYPE}$")  # order of the EO4DM code
_TILE = re.compile(r"^0?(\d{5})$")  # Landsat WRS-2 path+0+row; EO4DM prefixes a 0 in file names

_GLOBAL_COMP_NAMES = "{MODIS|VIIRS}_{NDWI|NDVI|LST}_YYYYMM_COMPD{1|2|3}.tif or ..._COMPM.tif"
_LOCAL_NAMES = "*_{NDWI|NDVI}_YYYYMM_{COMPD|DAY}{d}[e|m|M].tif or *_YYYYMM_{NDWI|NDVI}_<type>.tif"
_NO_SLOT = "no slot in our archive"


_DESIGN = ("hidden or temporary file", "GDAL metadata sidecar", "statistics table", "local month composite",
           "duplicate of ", "the dekad composite ")


def _by_design(reason: str) -> bool:
    """Whether a skip reason is a decision of the importer (not a file it failed to place)."""
    return reason.startswith(_DESIGN) or _NO_SLOT in reason


@dataclass(frozen=True)
class _Placement:
    target: Path
    family: str
    group: str  # grid group: "global" or "local <tile>"
    kind: Literal["composite", "indicator"]
    band_names: tuple[str, str]
    tags: tuple[tuple[str, str], ...] = ()
    from_month: bool = False  # a local month composite copied into a dekad (local_months)


def _period(ym: str, d: str | None) -> Period | None:
    year, month = int(ym[:4]), int(ym[4:])
    if not (1 <= month <= 12 and 1900 <= year <= 2999):
        return None
    return Dekad(year, month, int(d)) if d else Month(year, month)


def _tile(token: str) -> str | None:
    m = _TILE.match(token)
    return m.group(1) if m else None


def _one_tile(name_tokens: Sequence[str], folders: Sequence[str]) -> str:
    """The tile from the name fields and the sub-folders, or a skip reason starting with '!'."""
    from_name = {t for t in map(_tile, name_tokens) if t}
    from_dirs = {t for t in map(_tile, folders) if t}
    tiles = from_name | from_dirs
    if len(tiles) > 1:
        return f"!conflicting Landsat tiles {'/'.join(sorted(tiles))} in the folder and file names"
    if not tiles:
        return "!no Landsat tile: expected a per-tile sub-folder (e.g. 82075/) or the tile as a name field"
    return tiles.pop()


def _place(rel: PurePath, arch: Archive, local_months: bool) -> list[_Placement] | str:
    """Archive placements of one store file, or the reason it is skipped."""
    dirs = [p.upper() for p in rel.parts[:-1]]
    name = rel.name
    if name.startswith("."):
        return "hidden or temporary file"
    if name.lower().endswith(".aux.xml"):
        return "GDAL metadata sidecar (a GeoTIFF that has one is rewritten with that metadata embedded)"
    if "STATS" in dirs:
        return "statistics table (STATS): not imported, the routine recomputes zone statistics"
    ext = _EXT.search(name)
    if not ext:
        return f"not a GeoTIFF ({Path(name).suffix or 'no extension'})"
    stem = name[: ext.start()]
    if len(dirs) < 2 or dirs[0] not in ("0_INDICES", "1_INDICATEURS"):
        return "outside the EO4DM layout (0_INDICES/<product>/..., 1_INDICATEURS/<chain>/...)"
    top, product, sub = dirs[0], dirs[1], list(rel.parts[2:-1])
    if top == "0_INDICES":
        if product in GLOBAL_SENSORS:
            return _place_global_composite(stem, arch)
        if product == "LANDSAT_SENTINEL2":
            return _place_local_composite(stem, sub, arch, local_months)
        if product == "ASCAT":
            return f"ASCAT soil water index (ALERT chain input, DOMAIN.md §1.7): {_NO_SLOT}"
        return f"unknown product folder 0_INDICES/{rel.parts[1]}"
    if product == "GLOBAL":
        return _place_global_indicator(stem, arch)
    if product == "LOCAL":
        return _place_vai(stem, sub, arch)
    if product == "ALERT":
        return f"ALERT chain product (MAI, alert levels, DOMAIN.md §1.7): {_NO_SLOT}"
    return f"unknown indicator folder 1_INDICATEURS/{rel.parts[1]}"


def _place_global_composite(stem: str, arch: Archive) -> list[_Placement] | str:
    m = _GLOBAL_COMP.match(stem)
    if not m:
        return f"name not recognised as a global composite ({_GLOBAL_COMP_NAMES})"
    period = _period(m["ym"], m["d"])
    if period is None:
        return f"impossible date {m['ym']}"
    kind = "dekad" if isinstance(period, Dekad) else "month"
    return [_Placement(arch.global_composite(m["sensor"], m["index"], period), f"{m['sensor']} {m['index']} {kind}",
                       "global", "composite", (m["index"], "count"))]


def _place_global_indicator(stem: str, arch: Archive) -> list[_Placement] | str:
    m = _GLOBAL_IND.match(stem)
    if not m:
        return "name not recognised as a global indicator ({VCI|TCI|VHI}_YYYYMM{D1|D2|D3|M}.tif)"
    period = _period(m["ym"], m["d"])
    if period is None:
        return f"impossible date {m['ym']}"
    kind = "dekad" if isinstance(period, Dekad) else "month"
    return [_Placement(arch.global_indicator(m["name"], period), f"{m['name']} {kind}", "global", "indicator",
                       (m["name"], "QSCORE"))]


def _place_vai(stem: str, sub: Sequence[str], arch: Archive) -> list[_Placement] | str:
    m = _VAI.match(stem)
    if not m:
        return "name not recognised as a local indicator (VAI_{tile}_YYYYMMD{d}.tif)"
    if m["month"]:
        return f"monthly VAI (not produced by EO4DM's local chain, DOMAIN.md §1.5): {_NO_SLOT}"
    if m["tile"] and not _tile(m["tile"]):
        return f"unrecognised tile field {m['tile']!r} (expected a 5-digit Landsat tile such as 82075)"
    tile = _one_tile([m["tile"]] if m["tile"] else [], sub)
    if tile.startswith("!"):
        return tile[1:]
    period = _period(m["ym"], m["d"])
    if period is None:
        return f"impossible date {m['ym']}"
    assert isinstance(period, Dekad)
    return [_Placement(arch.local_indicator(tile, "VAI", period), f"VAI {tile}", f"local {tile}", "indicator",
                       ("VAI", "QSCORE"))]


def _place_local_composite(stem: str, sub: Sequence[str], arch: Archive,
                           local_months: bool) -> list[_Placement] | str:
    m = _LOCAL_DOC.match(stem) or _LOCAL_CODE.match(stem)
    if not m:
        return f"name not recognised as a local composite ({_LOCAL_NAMES})"
    tile = _one_tile(m["pre"].split("_") if m["pre"] else [], sub)
    if tile.startswith("!"):
        return tile[1:]
    ctype, index = m["type"], m["index"]
    month = _period(m["ym"], None)
    if month is None:
        return f"impossible date {m['ym']}"
    family, group, bands = f"local {index} {tile}", f"local {tile}", (index, "count")
    tags = (("COMPOSITE_TYPE", ctype),)
    if ctype in ("COMPM", "DAY"):  # one composite for the whole month (Landsat-only years)
        if not local_months:
            return (f"local month composite ({ctype}): our archive holds local dekads only; EO4DM pooled it into "
                    "the VAI reference of each dekad of its month (DOMAIN.md §1.6), use local_months "
                    "(--local-months) to import it that way")
        return [_Placement(arch.local_composite(tile, index, Dekad(month.year, month.month, d)), family, group,
                           "composite", bands, tags, from_month=True) for d in (1, 2, 3)]
    d = int(re.search(r"[123]", ctype).group())  # type: ignore[union-attr]
    return [_Placement(arch.local_composite(tile, index, Dekad(month.year, month.month, d)), family, group,
                       "composite", bands, tags)]


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Info:
    grid: Grid
    count: int
    nodata: float | None  # finite nodata of b1, None when absent or NaN
    sidecar: bool
    stamp: tuple[int, int]


def _grid(src: rasterio.io.DatasetReader) -> Grid:
    return Grid.from_affine(src.crs, src.transform, src.width, src.height)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _row_windows(width: int, height: int) -> list[Window]:
    return [Window(0, r, width, min(_ROW_CHUNK, height - r)) for r in range(0, height, _ROW_CHUNK)]


def _truncation(src: rasterio.io.DatasetReader, size: int) -> str | None:
    """Where a block of the file lies beyond its end (a truncated copy), else None."""
    for b in range(1, src.count + 1):
        bh, bw = src.block_shapes[b - 1]
        for by in range(math.ceil(src.height / bh)):
            for bx in range(math.ceil(src.width / bw)):
                off = src.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=b)
                n = src.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=b)
                if off and n and int(off) + int(n) > size:
                    return f"band {b} block ({bx}, {by}) ends at byte {int(off) + int(n)} of a {size}-byte file"
    return None


def _inspect(path: Path, rel: str, full: bool) -> _Info | str:
    """Grid, bands and nodata of a store file, or the problem that stops the import."""
    try:
        stamp = _stamp(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # said below as "no CRS"
            src = rasterio.open(path)
        with src:
            if src.driver != "GTiff":
                return f"{rel}: not a GeoTIFF (GDAL reads it as {src.driver})"
            cut = _truncation(src, stamp[0])
            if cut:
                return f"{rel}: truncated or corrupt GeoTIFF ({cut})"
            if src.crs is None:
                return f"{rel}: no CRS, cannot be placed on a grid"
            if np.dtype(src.dtypes[0]).kind != "f":
                return (f"{rel}: band 1 is {src.dtypes[0]}, expected floating point (the store records no scale "
                        "factor for integer data)")
            if full:  # decode every block: catches damaged compressed data too
                for win in _row_windows(src.width, src.height):
                    src.read(window=win)
            nd = src.nodatavals[0]
            return _Info(_grid(src), src.count,
                         None if nd is None or math.isnan(nd) else float(nd),
                         Path(f"{path}.aux.xml").exists(), stamp)
    except Exception as exc:  # any failure to read is a problem to report, not a crash
        msg = " ".join(str(exc).split()) or exc.__class__.__name__
        return f"{rel}: corrupt or unreadable GeoTIFF ({msg})"


def _existing_grid(arch: Archive, group: str) -> tuple[Grid, str] | None:
    """Grid of one file the archive already holds for a grid group, to keep the archive on one grid."""
    if group == "global":
        folders = [arch.root / "composites" / "global", arch.root / "indicators" / "global"]
    else:
        tile = group.split(" ", 1)[1]
        folders = [arch.root / "composites" / "local" / tile, arch.root / "indicators" / "local" / tile]
    for folder in folders:
        for p in sorted(folder.glob("*/*.tif")) if folder.is_dir() else []:
            if p.name.startswith(TMP_PREFIX):
                continue
            try:
                with rasterio.open(p) as src:
                    return _grid(src), str(p)
            except Exception:  # an unreadable archive file is not ours to judge here
                continue
    return None


# ------------------------------------------------------------------------------------------------
# Planning
# ------------------------------------------------------------------------------------------------
def _store_root(source: Path) -> Path:
    """The territory folder: SOURCE itself, or its only sub-folder in the EO4DM layout (DATA_HISTO)."""
    def is_territory(p: Path) -> bool:
        return any(c.is_dir() and c.name.upper() in ("0_INDICES", "1_INDICATEURS") for c in p.iterdir())

    if not source.is_dir():
        raise EO4DMImportError([f"{source}: no such folder"])
    if is_territory(source):
        return source
    found = [d for d in sorted(source.iterdir()) if d.is_dir() and is_territory(d)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise EO4DMImportError([f"{source}: no 0_INDICES or 1_INDICATEURS folder in it or in one of its sub-folders "
                                "(expected DATA_HISTO/<Territory>/0_INDICES/..., DOMAIN.md §1.2)"])
    raise EO4DMImportError([f"{source} holds several territories ({', '.join(d.name for d in found)}): "
                            "pass the folder of one of them"])


def plan_import(source: Path, archive: Path, *, local_months: bool = False, full_check: bool = True,
                expected_grids: Mapping[str, Grid] | None = None) -> ImportPlan:
    """List what importing the EO4DM store ``source`` into ``archive`` does, after validating every file.

    ``source`` is ``DATA_HISTO`` (with one territory) or ``DATA_HISTO/<Territory>``. ``full_check``
    decodes every pixel (otherwise the block layout is checked, which catches truncated files).
    ``expected_grids`` maps ``"global"`` / ``"local <tile>"`` to the grids the routine writes.
    Raises :class:`EO4DMImportError` naming the file(s) that stop the import; writes nothing.
    """
    root = _store_root(Path(source))
    arch = Archive(Path(archive))
    skips: list[Action] = []
    placed: list[tuple[Path, str, _Placement]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        res = _place(rel, arch, local_months)
        if isinstance(res, str):
            skips.append(Action(path, rel.as_posix(), "skip", res))
        else:
            placed.extend((path, rel.as_posix(), pl) for pl in res)

    problems: list[str] = []
    chosen: list[tuple[Path, str, _Placement]] = []
    by_target: dict[Path, list[tuple[Path, str, _Placement]]] = defaultdict(list)
    for item in placed:
        by_target[item[2].target].append(item)
    for target, items in by_target.items():
        direct = [it for it in items if not it[2].from_month] or items
        first = direct[0]
        for it in direct[1:]:
            if filecmp.cmp(first[0], it[0], shallow=False):
                skips.append(Action(it[0], it[1], "skip", f"duplicate of {first[1]}"))
            else:
                problems.append(f"{first[1]} and {it[1]} both map to {target.relative_to(arch.root)}: "
                                "remove one of them from the store")
        for it in items:
            if it[2].from_month and it not in direct:
                skips.append(Action(it[0], it[1], "skip",
                                    f"the dekad composite {first[1]} takes precedence in {target.name}"))
        chosen.append(first)

    infos: dict[Path, _Info] = {}
    seen: set[Path] = set()
    for path, rel, _ in chosen:
        if path not in seen:
            seen.add(path)
            info = _inspect(path, rel, full_check)
            if isinstance(info, str):
                problems.append(info)
            else:
                infos[path] = info
    for path, rel, pl in chosen:
        info = infos.get(path)
        if info is None:
            continue
        allowed = (1, 2) if pl.kind == "composite" else (2,)
        if info.count not in allowed:
            what = "b1 index mean, b2 valid count" if pl.kind == "composite" else "b1 value, b2 QSCORE"
            problems.append(f"{rel}: {info.count} band(s), expected 2 ({what}, DOMAIN.md §1.2)")
            infos.pop(path)
    problems += _grid_problems(chosen, infos, arch, expected_grids or {})
    if problems:
        raise EO4DMImportError(problems)

    actions = list(skips)
    for path, rel, pl in chosen:
        info = infos[path]
        notes = []
        if info.count == 1:
            notes.append("single-image composite: b2 count derived as 1 where b1 is valid (as EO4DM reads it)")
        if info.nodata is not None:
            notes.append(f"nodata {info.nodata:g} turned into NaN")
        if info.sidecar:
            notes.append(".aux.xml sidecar metadata embedded")
        tags = (("EO4DM_SOURCE", rel), (SOURCE_TAG, SOURCE_IMPORT), ("IMPORTER_VERSION", _version())) + pl.tags
        if info.count == 1:
            tags += (("COUNT_DERIVED", "1 where b1 is valid (single-image EO4DM composite)"),)
        exists = pl.target.exists()
        actions.append(Action(path, rel, "keep" if exists else "copy",
                              "already in the archive" if exists else "; ".join(notes), pl.target, pl.family,
                              tags, pl.band_names, rewrite=bool(notes), nodata=info.nodata, stamp=info.stamp))
    actions.sort(key=lambda a: (a.rel, str(a.target)))
    return ImportPlan(root, arch.root, actions)


def _grid_problems(chosen: Sequence[tuple[Path, str, _Placement]], infos: Mapping[Path, _Info], arch: Archive,
                   expected: Mapping[str, Grid]) -> list[str]:
    """One grid per chain and tile (DOMAIN.md §1.3: EO4DM reuses the first file's transform), equal to
    the archive's existing files and to the parameters' grid."""
    problems: list[str] = []
    first: dict[str, tuple[Grid, str]] = {}
    for path, rel, pl in chosen:
        info = infos.get(path)
        if info is None:
            continue
        if pl.group not in first:
            first[pl.group] = (info.grid, rel)
        elif not info.grid.same_as(first[pl.group][0]):
            ref, ref_rel = first[pl.group]
            problems.append(f"{rel}: grid {info.grid} differs from {ref_rel} ({ref}); all {pl.group} files must "
                            "share one grid")
    for group, (sig, rel) in first.items():
        have = _existing_grid(arch, group)
        if have and not sig.same_as(have[0]):
            problems.append(f"{rel}: grid {sig} differs from the archive's existing {group} files "
                            f"({have[1]}: {have[0]})")
        if group in expected and not sig.same_as(expected[group]):
            key = "global_chain.grid" if group == "global" else f"local_chain.tiles[{group.split()[1]}].grid"
            problems.append(f"{rel}: the store's {group} grid ({sig}) differs from the parameters' {key} "
                            f"({expected[group]}); set {key} to the store's grid so new "
                            "products line up with the imported record")
    return problems


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------
def _rewrite(action: Action, tmp: Path) -> None:
    """Write the source as a float32 2-band GeoTIFF: NaN nodata, b2 derived for 1-band composites."""
    with rasterio.open(action.source) as src:
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=2, dtype="float32", crs=src.crs,
                       transform=src.transform, nodata=np.nan, compress="deflate", predictor=3)
        if src.width >= 256 and src.height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.update_tags(**src.tags())
            for win in _row_windows(src.width, src.height):
                b1 = src.read(1, window=win).astype(np.float32)
                if action.nodata is not None:
                    b1[b1 == np.float32(action.nodata)] = np.nan
                if src.count >= 2:
                    b2 = src.read(2, window=win).astype(np.float32)
                else:  # EO4DM single-image composite: one valid observation where b1 has a value
                    b2 = np.isfinite(b1).astype(np.float32)
                dst.write(np.stack([b1, b2]), window=win)


def _write(action: Action, grid: Grid | None) -> None:
    """Copy one file into the archive atomically, with the import tags, and check the copy."""
    assert action.target is not None
    with atomic_path(action.target) as tmp:
        if action.rewrite:
            _rewrite(action, tmp)
        else:
            shutil.copyfile(action.source, tmp)
        with rasterio.open(tmp, "r+") as dst:
            dst.update_tags(**dict(action.tags))
            for i, n in enumerate(action.band_names, start=1):
                dst.set_band_description(i, n)
        sidecar = Path(f"{tmp}.aux.xml")
        if sidecar.exists():  # metadata GDAL could not embed would not follow the rename
            sidecar.unlink()
            raise OSError(f"{action.rel}: GDAL wrote the tags beside the copy instead of into it")
        with rasterio.open(tmp) as chk:
            sig = _grid(chk)
            if chk.count != 2 or (grid is not None and not sig.same_as(grid)):
                raise OSError(f"{action.rel}: the copy does not have the source's 2 bands and grid")


def run_import(plan: ImportPlan, *, overwrite: bool = False) -> ImportReport:
    """Copy the planned files into the archive under its run lock; keep existing ones unless ``overwrite``.

    Idempotent: a second run keeps everything. Raises :class:`EO4DMImportError` before writing anything
    if a source file changed since the plan, :class:`~eo4dm_helpers.storage.LockError` if another run
    holds the archive.
    """
    report = ImportReport(plan.archive, skipped=plan.skips)
    todo = [a for a in plan.actions if a.op != "skip"]
    with run_lock(plan.archive):
        changed = []
        for a in todo:
            try:
                if _stamp(a.source) != a.stamp:
                    changed.append(f"{a.rel}: changed since the plan, plan the import again")
            except OSError:
                changed.append(f"{a.rel}: gone since the plan, plan the import again")
        if changed:
            raise EO4DMImportError(sorted(set(changed)))
        grids: dict[Path, Grid] = {}
        for a in todo:
            assert a.target is not None
            if a.target.exists() and not overwrite:
                report.kept[a.family] += 1
                continue
            if a.source not in grids:
                with rasterio.open(a.source) as src:
                    grids[a.source] = _grid(src)
            _write(a, grids[a.source])
            report.written[a.family] += 1
    return report


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def config_grids(cfg: Config) -> dict[str, Grid]:
    """The grids the routine writes, by grid group, for :func:`plan_import`'s ``expected_grids``."""
    out: dict[str, Grid] = {}
    if cfg.global_chain.enabled:
        out["global"] = cfg.global_chain.grid
    if cfg.local_chain.enabled:
        out.update({f"local {t.id}": t.grid for t in cfg.local_chain.tiles})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eo4dm_helpers.eo4dm_import",
                                description="Import an EO4DM historical store (DATA_HISTO) into the archive "
                                            "of a parameter file.")
    p.add_argument("source", type=Path, help="EO4DM DATA_HISTO folder, or DATA_HISTO/<Territory>")
    p.add_argument("--params", required=True, type=Path, help="parameter file (its paths.archive is the target)")
    p.add_argument("--overwrite", action="store_true", help="replace archive files that already exist")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan, write nothing")
    p.add_argument("--local-months", action="store_true",
                   help="copy local month composites (COMPM, DAY) into the three dekads of their month")
    p.add_argument("--quick", action="store_true",
                   help="check each file's structure (truncation) without decoding every pixel")
    p.add_argument("--ignore-unplaced", action="store_true",
                   help="exit 0 even when some files of the store could not be placed (they are listed)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.params)
        plan = plan_import(args.source, cfg.paths.archive, local_months=args.local_months,
                           full_check=not args.quick, expected_grids=config_grids(cfg))
        if args.dry_run:
            print(plan.summary(overwrite=args.overwrite))
        else:
            print(run_import(plan, overwrite=args.overwrite).summary())
    except (ConfigError, EO4DMImportError, LockError, OSError, rasterio.errors.RasterioError) as exc:
        from .redact import redact

        print(f"eo4dm_import: {redact(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    unplaced = plan.unplaced
    if unplaced and not args.ignore_unplaced:
        eg = ", ".join(a.rel for a in unplaced[:3]) + (", ..." if len(unplaced) > 3 else "")
        print(f"eo4dm_import: {len(unplaced)} file(s) of the store could not be placed ({eg}; reasons listed "
              "above): rename or move them, or pass --ignore-unplaced", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
