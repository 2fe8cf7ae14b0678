"""The ``eo4dm`` console script (pyproject.toml ``[project.scripts]``).

    eo4dm new-territory --name Fiji --code FJ --timezone Pacific/Fiji --bbox 176.85 -21.1 -178.15 -15.65 \\
        --tiles 74072,74073,75072 --out params/fiji.yaml

``new-territory`` writes a parameter file from a name, a boundary (a GeoJSON file of the land, or a bbox)
and a time zone: the global grid (1/240°, EO4DM's, snapped over the bbox; past 180° when the territory
crosses it, eo4dm_helpers.geo), the Landsat WRS-2 tiles over the territory with their UTM zone, 10 m grid
and Sentinel-2 MGRS tiles (eo4dm_helpers.territory_tiles), and the sensors by date. It never overwrites a
file without ``--force``. Usage errors: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from . import geo

GLOBAL_RESOLUTION = 1 / 240  # ~463 m, EO4DM's MODIS grid (params/new_caledonia.yaml)


class UsageError(ValueError):
    """A bad argument: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints the usage too)
        self.exit(2, f"error: {message}\n")


def _slug(name: str) -> str:
    s = "".join(c.lower() if c.isalnum() else "_" for c in name.split("(")[0].strip())
    return "_".join(p for p in s.split("_") if p) or "territory"


def _boundary(path: Path) -> tuple[geo.BBox, Any]:
    """The lon/lat bbox (RFC 7946 form) of a GeoJSON boundary and its polygons in continuous longitudes
    (parts west of -180 + the box's width moved by +360 when the territory crosses 180°)."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--boundary: cannot read {path} ({exc.strerror})") from None
    except ValueError:
        raise UsageError(f"--boundary: {path} is not JSON (a GeoJSON file in lon/lat is expected)") from None
    feats = doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else [doc]
    try:
        parts = [p for f in feats or [] for g in [shape(f.get("geometry", f))] for p in getattr(g, "geoms", [g])]
    except Exception as exc:
        raise UsageError(f"--boundary: {path}: not a GeoJSON geometry ({exc.__class__.__name__})") from None
    parts = [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        raise UsageError(f"--boundary: {path} holds no polygon")
    x0, y0, x1, y1 = unary_union(parts).bounds
    if not (x0 >= -180 and x1 <= 180 and y0 >= -90 and y1 <= 90):
        raise UsageError(f"--boundary: {path}: coordinates outside lon/lat ranges (give it in EPSG:4326, -180..180)")
    if x1 - x0 > 180:  # the polygons sit on both sides of 180°: unwrap the western ones
        from shapely import affinity

        parts = [affinity.translate(p, xoff=360) if p.bounds[2] <= 0 else p for p in parts]
    area = unary_union(parts)
    return geo.wrapped(area.bounds), area


def build(name: str, code: str, timezone: str, bbox: geo.BBox, *, area: Any = None, bbox_crs: str = "EPSG:4326",
          given_bbox: Sequence[float] | None = None, local_chain: bool = True, tiles: Sequence[str] | None = None,
          outline: str | None = None, zones: str | None = None, zone_name_field: str = "name",
          command: str = "") -> str:
    """The parameter file's text (YAML with comments) for a territory; ``bbox`` in lon/lat (RFC 7946 form)."""
    from zoneinfo import ZoneInfo

    from . import territory_tiles as T

    try:
        ZoneInfo(timezone)
    except Exception:
        raise UsageError(f"--timezone: unknown time zone {timezone!r} (an IANA name, e.g. Pacific/Fiji)") from None
    grid = geo.snapped_grid(bbox, GLOBAL_RESOLUTION)
    lines = [f"# {name}: parameters written by `eo4dm new-territory` on {date.today()}",
             f"#   {command}" if command else "#",
             "# Relative paths are relative to this file's folder. Check the bbox, the zone layer and the tiles",
             "# (README, \"New territory\"); the grids must never change once the archive holds products."]
    shown = list(given_bbox) if given_bbox is not None else [round(v, 6) for v in bbox]
    lines += ["territory:", f"  name: {json.dumps(name)}", f"  code: {json.dumps(code)}",
              f"  timezone: {timezone}  # dekads are binned by local date in this zone (DOMAIN.md §3.4)"]
    cross = " (lon_min > lon_max: across the 180° meridian, RFC 7946 §5.2)" if geo.crosses(bbox) else ""
    if bbox_crs.upper() != "EPSG:4326":
        lines += [f"  bbox: {shown}  # in bbox_crs; in lon/lat: {[round(v, 4) for v in bbox]}{cross}",
                  f"  bbox_crs: {json.dumps(bbox_crs)}"]
    else:
        lines.append(f"  bbox: {shown}  # lon_min, lat_min, lon_max, lat_max{cross}")
    lines.append(f"  zones: {zones or f'../data/zones/{_slug(name)}_zones.geojson'}  # supplied by the observatory")
    lines.append(f"  zone_name_field: {zone_name_field}")
    if outline:
        lines.append(f"  outline: {outline}")
    slug = _slug(name)
    lines += ["", "backend: earthengine", "binning: local", "as_of: null", "", "paths:",
              f"  archive: ../data/{slug}/archive", f"  output: ../data/{slug}/output", ""]
    past = " (continues past 180°: x up to " + f"{grid.bounds[2]:.4f})" if geo.grid_crosses(grid) else ""
    lines += ["global_chain:", "  enabled: true",
              f"  # ~463 m (1/240 degree) grid snapped over the bbox{past}: {grid.width} x {grid.height} px;",
              "  # never changes once the archive exists.",
              f"  grid: {{crs: \"EPSG:4326\", x0: {grid.x0!r}, y0: {grid.y0!r}, resolution: {grid.resolution!r}, "
              f"width: {grid.width}, height: {grid.height}}}",
              "  ndwi_sensors:", "    - {name: MODIS, start: 2000-02-24, end: 2025-12-31}",
              "    - {name: VIIRS, start: 2026-01-01}",
              "  lst_sensors:", "    - {name: MODIS, start: 2000-02-24, end: 2025-12-31}",
              "    - {name: VIIRS, start: 2026-01-01}", ""]
    found = T.wrs2_tiles_over(bbox, area)
    if tiles:
        ids = [str(t).strip() for t in tiles]
        for t in ids:
            try:
                T.wrs2_path_row(t)
            except T.TileError as exc:
                raise UsageError(f"--tiles: {exc}") from None
        far = [t for t in ids if t not in found]
        if far:
            raise UsageError(f"--tiles: {', '.join(far)} not over the territory (the tile model finds "
                             f"{', '.join(found)})")
    else:
        ids = found
    lines += ["local_chain:", f"  enabled: {'true' if local_chain else 'false'}"]
    if local_chain:
        mgrs = T.mgrs_tiles_over(bbox, area)
        lines += [f"  # Landsat WRS-2 tiles: {'those given, of' if tiles else 'all'} the {len(found)} that the WRS-2 "
                  f"model finds over the {'boundary' if area is not None else 'bbox'}:"]
        lines += [f"  #   {', '.join(found[i:i + 12])}" for i in range(0, len(found), 12)]
        lines += ["  # each with its 10 m grid (the nominal scene's bounds in the UTM zone of its centre, snapped to",
                  "  # 10 m) and the Sentinel-2 MGRS tiles over it (eo4dm_helpers.territory_tiles.local_tiles). Delete",
                  "  # the list to use the tiles discovered over the territory (python -m eo4dm_helpers.ee.discovery).",
                  "  tiles:"]
        for t in T.local_tiles(ids, mgrs):
            g = t.grid
            lines += [f"    - id: \"{t.id}\"  # UTM {_utm_name(g.crs)}",
                      f"      grid: {{crs: \"{g.crs}\", x0: {g.x0!r}, y0: {g.y0!r}, resolution: {g.resolution!r}, "
                      f"width: {g.width}, height: {g.height}}}",
                      f"      s2_tiles: [{', '.join(t.s2_tiles)}]"]
    else:
        lines += ["  # no local (10 m) chain: EO4DM runs only the global chain here (docker-compose.yml);",
                  "  # `eo4dm new-territory --local-chain` lists the tiles"]
    lines += ["  sensors:", "    - {name: S2, start: 2017-03-28}", "    - {name: L8, start: 2013-03-18}",
              "    - {name: L9, start: 2021-10-31}", "    - {name: L7, start: 1999-05-28, end: 2022-04-06}",
              "  s2_cloud_source: cloud_score_plus",
              "  calibration:             # to Landsat-8, EO4DM's coefficients (DOMAIN.md §1.4)",
              "    S2: {ndwi: [0.98, 0.07], ndvi: [0.91, 0.11]}",
              "    L9: {ndwi: [0.95, 0.02], ndvi: [0.97, 0.03]}",
              "    L7: {ndwi: [0.97, 0.04], ndvi: [0.96, 0.07]}", "",
              "availability:              # EO4DM: every daily granule, >= 5 S2 and >= 2 Landsat scenes per tile",
              "  s2_min: 5", "  landsat_min: 2", "  max_wait_days: 15", "",
              "download:                  # direct tiled download when it fits a few requests, else Drive export",
              "  method: auto", "  concurrency: 4", "", "indicators:", "  convention: eo4dm", "  alpha: 0.5",
              "  reference: {mode: previous_years, min_years: 3}", "  provisional_dekads: 3", "",
              "credentials:", "  ee_key_file: null", "  ee_project: null", ""]
    return "\n".join(lines)


def _utm_name(crs: str) -> str:
    code = int(crs.split(":")[1])
    return f"{code % 100}{'S' if code // 100 == 327 else 'N'}"


def new_territory(argv: Sequence[str]) -> int:
    p = _Parser(prog="eo4dm new-territory", description="Write the parameter file of a new territory.")
    p.add_argument("--name", required=True, help='territory name as shown in bulletins, e.g. "Fiji"')
    p.add_argument("--code", required=True, help="short code, e.g. FJ")
    p.add_argument("--timezone", required=True, help="IANA time zone the dekads are binned in, e.g. Pacific/Fiji")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--boundary", type=Path, help="GeoJSON of the land (lon/lat, -180..180): bbox, tiles, outline")
    where.add_argument("--bbox", nargs=4, type=float, metavar=("W", "S", "E", "N"),
                       help="bbox in --bbox-crs (lon/lat: W > E crosses the 180° meridian)")
    p.add_argument("--bbox-crs", default="EPSG:4326", help="CRS of --bbox, default %(default)s (e.g. EPSG:32760)")
    p.add_argument("--tiles", help="Landsat WRS-2 tiles to keep, e.g. 74072,74073,75072 (default: all over the "
                                   "territory)")
    p.add_argument("--local-chain", action=argparse.BooleanOptionalAction, default=True,
                   help="write the 10 m chain's tiles (default) or disable the chain")
    p.add_argument("--zones", help="zone layer path as written in the file (default "
                                   "../data/zones/<name>_zones.geojson)")
    p.add_argument("--zone-name-field", default="name",
                   help="zone name attribute (EO4DM KEY_STATS), default %(default)s")
    p.add_argument("--out", type=Path, help="parameter file to write, default params/<name>.yaml")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    a = p.parse_args(list(argv))
    out = a.out or Path("params") / f"{_slug(a.name)}.yaml"
    try:
        if out.exists() and not a.force:
            raise UsageError(f"--out: {out} exists; give --force to overwrite it")
        if out.exists() and not out.is_file():
            raise UsageError(f"--out: {out} is not a file")
        area, outline, given = None, None, None
        if a.boundary is not None:
            bbox, area = _boundary(a.boundary)
            outline = os.path.relpath(a.boundary.resolve(), out.resolve().parent)
        else:
            given = [v for v in a.bbox]
            if not all(math.isfinite(v) for v in given):
                raise UsageError("--bbox: four finite numbers W S E N")
            from .config import ConfigError, Territory, _check

            try:
                _check(Territory(a.name, a.code, a.timezone, tuple(given), bbox_crs=a.bbox_crs), "")
            except ConfigError as exc:
                raise UsageError(f"--{str(exc).split(':')[0].replace('_', '-')}:{str(exc).split(':', 1)[1]}") from None
            bbox = geo.lonlat_of(tuple(given), a.bbox_crs)  # type: ignore[arg-type]
        tiles = [t for t in a.tiles.split(",") if t.strip()] if a.tiles else None
        command = "eo4dm new-territory " + " ".join(_quote(x) for x in argv if x not in ("--force",))
        text = build(a.name, a.code, a.timezone, bbox, area=area, bbox_crs=a.bbox_crs, given_bbox=given,
                     local_chain=a.local_chain, tiles=tiles, outline=outline, zones=a.zones,
                     zone_name_field=a.zone_name_field, command=command)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        print(f"error: --out: cannot write {out} ({exc.strerror})", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s) if not s.startswith("-") or " " in s else s


COMMANDS = {"new-territory": new_territory}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: eo4dm <command> [options]\n\ncommands:\n  new-territory  write the parameter file of a new "
              "territory (eo4dm new-territory --help)")
        return 0 if args else 2
    cmd = COMMANDS.get(args[0])
    if cmd is None:
        print(f"error: unknown command {args[0]!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    return cmd(args[1:])


if __name__ == "__main__":
    sys.exit(main())
