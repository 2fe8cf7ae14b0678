#!/usr/bin/env python3
"""Run the eo4dm drought routine headlessly: every notebook through papermill, one HTML report per dekad.

Examples:
  python run_all.py --params params/demo.yaml                      # latest complete dekad
  python run_all.py --params params/demo.yaml --dekad 2024-03-D1
  python run_all.py --params params/demo.yaml --start 2024-02-D1 --end 2024-03-D2
  python run_all.py --params params/demo.yaml --backfill           # build the reference first
  python run_all.py --params params/new_caledonia.yaml --dekad 2024-03-D2 --dry-run --plan-dir plan/

Exit codes: 0 done; 1 a notebook failed (its name and cell are printed); 2 bad parameters;
3 another run holds the archive lock; 4 Earth Engine credentials missing or rejected.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eo4dm_helpers.config import ConfigError, load_config, parse_dekad
from eo4dm_helpers.dekads import Dekad, dekad_range, latest_complete_dekad
from eo4dm_helpers.drought import backfill_indicators, provisional_dekads
from eo4dm_helpers.ee.session import AuthError
from eo4dm_helpers.runner import StepFailed, run_dekad
from eo4dm_helpers.storage import LockError, clean_temporaries, run_lock
from eo4dm_helpers.workflow import backfill, check_backend


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", type=Path, default=Path("params/new_caledonia.yaml"),
                   help="parameter file (YAML), default: %(default)s")
    p.add_argument("--dekad", help="one dekad YYYY-MM-Dn (default: the latest complete dekad on the "
                                   "parameters' as_of date, or today)")
    p.add_argument("--start", help="first dekad of a period YYYY-MM-Dn (with --end)")
    p.add_argument("--end", help="last dekad of a period YYYY-MM-Dn, inclusive (with --start)")
    p.add_argument("--backfill", action="store_true",
                   help="first build the historical composites missing from the archive, from the parameters' "
                        "history_start up to the dekad before the first one run (no notebooks, no reports)")
    p.add_argument("--dry-run", action="store_true",
                   help="build the Earth Engine graphs of every output product and write them to --plan-dir "
                        "(<product>.json from serialize() and a readable <product>.txt: region, CRS, transform, "
                        "scale, bands); needs no credentials and no network")
    p.add_argument("--plan-dir", type=Path, default=Path("plan"), help="folder of the dry run, default: %(default)s")
    return p.parse_args(argv)


def dry_run(cfg, dekads: list[Dekad], folder: Path) -> int:
    from eo4dm_helpers.ee.plan import plan_dekad, write_plan
    from eo4dm_helpers.ee.session import initialize_offline

    initialize_offline()
    for d in dekads:
        target = folder / d.label if len(dekads) > 1 else folder
        files = write_plan(plan_dekad(cfg, d), target)
        print(f"{d.label}: {len(files)} product(s) planned in {target}")
    return 0


def dekads_to_run(args: argparse.Namespace, today) -> list[Dekad]:
    if args.dekad and (args.start or args.end):
        raise ConfigError("--dekad: give either --dekad or --start/--end, not both")
    if bool(args.start) != bool(args.end):
        raise ConfigError("--start/--end: both are needed for a period")
    if args.start:
        first, last = parse_dekad(args.start, "--start"), parse_dekad(args.end, "--end")
        if last < first:
            raise ConfigError(f"--end: {last} is before --start {first}")
        out = dekad_range(first, last)
    else:
        out = [parse_dekad(args.dekad, "--dekad") if args.dekad else latest_complete_dekad(today)]
    for d in out:
        if d.end >= today:
            raise ConfigError(f"--dekad: {d} is not complete on {today} (it ends {d.end})")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.params)
        dekads = dekads_to_run(args, cfg.today())
        if args.dry_run:
            return dry_run(cfg, dekads, args.plan_dir)
        check_backend(cfg)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    try:
        with run_lock(cfg.paths.archive):
            clean_temporaries(cfg.paths.archive)
            # provisional dekads left by earlier runs (not the ones backfilled now) are recomputed
            refresh = [d for d in provisional_dekads(cfg, dekads[0]) if d not in dekads]
            if args.backfill:
                if cfg.history_start is None:
                    print("error: history_start: needed by --backfill", file=sys.stderr)
                    return 2
                print(f"backfill: building the historical composites from {cfg.history_start} ...", flush=True)
                first = Dekad.containing(cfg.history_start)
                n = backfill(cfg, first, dekads[0].previous(),
                             log=lambda m: print(m, flush=True) if m.endswith("-12-D3: done") else None)
                n_ind = backfill_indicators(cfg, first, dekads[0].previous(), log=lambda m: None)
                print(f"backfill: {n} dekad(s) of historical composites and {n_ind} of indicators built")
            if refresh:
                print(f"recomputing provisional dekad(s): {', '.join(d.label for d in refresh)}")
            for d in refresh + dekads:
                run = run_dekad(cfg, args.params.resolve(), d)
                print(f"{d.label}: report {run.report}")
    except LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
