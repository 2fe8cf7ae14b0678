"""``python -m eo4dm_helpers.sample build --params params/demo.yaml [--force]``: build the demo archive."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from ..config import ConfigError, load_config
from ..redact import redact
from .build import build_demo_archive, read_manifest


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eo4dm_helpers.sample", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the synthetic scenes (skips those already written)")
    b.add_argument("--params", required=True, type=Path, help="parameter file (e.g. params/demo.yaml)")
    b.add_argument("--force", action="store_true", help="rewrite every scene")
    b.add_argument("--start", type=date.fromisoformat, help="first local date (default: 2020-01-01)")
    b.add_argument("--end", type=date.fromisoformat, help="last local date (default: 2024-03-20)")
    b.add_argument("--workers", type=int, help="worker processes (default: up to 2)")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.params, check_layers=False)  # the zone layer is one of the files it writes
    except ConfigError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    written = 0

    def progress(done: int, total: int) -> None:
        nonlocal written
        written = done

    try:
        root = build_demo_archive(cfg, progress=progress, start=args.start, end=args.end, force=args.force,
                                  workers=args.workers)
    except ValueError as exc:  # parameters the demo cannot use (no scene store, no local tile)
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    manifest = read_manifest(cfg) or {}
    n = sum(manifest.get("counts", {}).values())
    print(f"demo archive {root}: {n} scenes ({written} written) in {len(manifest.get('counts', {}))} "
          f"collections, {_size(root) / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
