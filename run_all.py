#!/usr/bin/env python3
"""Run the eo4dm drought routine headlessly: every notebook through papermill, one HTML report per dekad.

Examples:
  python run_all.py --params params/demo.yaml                      # auto: every new complete dekad
  python run_all.py --params params/demo.yaml --dekad 2024-03-D1   # manual: one dekad
  python run_all.py --params params/demo.yaml --start 2024-02-D1 --end 2024-03-D2
  python run_all.py --params params/demo.yaml --mode drought --dekad 2024-03-D2   # indicators + report only
  python run_all.py --params params/demo.yaml --backfill           # build the reference first
  python run_all.py --params params/demo.yaml --check-availability
  python run_all.py --params params/demo.yaml --since-failure      # resume what the last run left
  python run_all.py --params params/new_caledonia.yaml --dekad 2024-03-D2 --dry-run --plan-dir plan/

Modes: auto (from the dekad after the last one in the archive to the latest complete dekad, plus the
provisional dekads to recompute), manual (--dekad or --start/--end, inclusive), indices (composites only),
drought (indicators and report only, from the archive).

Exit codes: 0 done, or nothing to do; 1 a notebook failed (its name and cell are printed) or an
archive file is unreadable; 2 bad parameters or arguments (also: the archive or output folder cannot be
written, the scene store does not exist); 3 another run holds the archive lock; 4 Earth Engine error
(credentials missing or rejected, export or download failed); 5 waiting for late products (run again
later). An error is one line on stderr starting with "error: " (a failed download adds one line per
product), a warning one line "warning: ".
Every run writes a log to <output>/logs/ and its outcome to <output>/state/last_run.json.
"""

from __future__ import annotations

import argparse
import errno
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

from eo4dm_helpers import routine as R
from eo4dm_helpers.config import ConfigError, load_config, parse_dekad
from eo4dm_helpers.dekads import Dekad, dekad_range, latest_complete_dekad
from eo4dm_helpers.drought import backfill_indicators, provisional_dekads
from eo4dm_helpers.ee.session import AuthError
from eo4dm_helpers.runner import NOTEBOOKS, StepFailed, run_dekad
from eo4dm_helpers.storage import LockError, clean_temporaries, run_lock
from eo4dm_helpers.workflow import backfill, check_backend


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", type=Path, default=Path("params/new_caledonia.yaml"),
                   help="parameter file (YAML), default: %(default)s")
    p.add_argument("--mode", choices=["auto", "manual", "indices", "drought"],
                   help="what to run (default: manual with --dekad/--start, else auto)")
    p.add_argument("--dekad", help="one dekad YYYY-MM-Dn")
    p.add_argument("--start", help="first dekad of a period YYYY-MM-Dn (with --end)")
    p.add_argument("--end", help="last dekad of a period YYYY-MM-Dn, inclusive (with --start)")
    p.add_argument("--backfill", action="store_true",
                   help="first build the historical composites and indicators missing from the archive, from the "
                        "parameters' history_start up to the dekad before the first one run (no notebooks)")
    p.add_argument("--check-availability", action="store_true",
                   help="print the latency table (latest acquisition per product) and, per dekad to run, the "
                        "products found against expected and the decision (process / wait); process nothing")
    p.add_argument("--since-failure", action="store_true",
                   help="run again the dekads the last run did not finish (from <output>/state/last_run.json)")
    p.add_argument("--no-wait", action="store_true",
                   help="process even when products are missing (no availability check)")
    p.add_argument("--dry-run", action="store_true",
                   help="build the Earth Engine graphs of every output product and write them to --plan-dir "
                        "(<product>.json from serialize() and a readable <product>.txt: region, CRS, transform, "
                        "scale, bands, download method); needs no credentials and no network")
    p.add_argument("--plan-dir", type=Path, default=Path("plan"), help="folder of the dry run, default: %(default)s")
    return p.parse_args(argv)


class Log:
    """Prints and appends to the run's log file."""

    def __init__(self, path: Path | None):
        self.fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def __call__(self, msg: str, err: bool = False) -> None:
        print(msg, file=sys.stderr if err else sys.stdout, flush=True)
        if self.fh:
            try:
                self.fh.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {'ERROR ' if err else ''}{msg}\n")
                self.fh.flush()
            except OSError:  # a full disk must not hide the message it is reporting (printed above)
                pass

    def close(self) -> None:
        if self.fh:
            self.fh.close()


def resolve(args: argparse.Namespace, cfg) -> tuple[str, list[Dekad]]:
    """The mode and the dekads to run, from the arguments."""
    today = cfg.today()
    if args.dekad and (args.start or args.end):
        raise ConfigError("--dekad: give either --dekad or --start/--end, not both")
    if bool(args.start) != bool(args.end):
        raise ConfigError("--start/--end: both are needed for a period")
    mode = args.mode or ("manual" if (args.dekad or args.start) else "auto")
    if args.since_failure:
        dekads, mode = R.since_failure(cfg)
        return mode, dekads
    if args.start:
        first, last = parse_dekad(args.start, "--start"), parse_dekad(args.end, "--end")
        if last < first:
            raise ConfigError(f"--end: {last} is before --start {first}")
        dekads = dekad_range(first, last)
    elif args.dekad:
        dekads = [parse_dekad(args.dekad, "--dekad")]
    elif mode == "manual":
        raise ConfigError("--dekad: manual mode needs --dekad or --start/--end")
    elif args.backfill:  # the history is built in-process; the notebooks run the latest dekad only
        dekads = [latest_complete_dekad(today)]
    else:
        dekads = R.auto_period(cfg, today)
    for d in dekads:
        if d.end >= today:
            if args.start:  # name the argument given: the period's end
                raise ConfigError(f"--end: {dekads[-1]} is not complete on {today} (the latest complete dekad "
                                  f"is {latest_complete_dekad(today)})")
            raise ConfigError(f"--dekad: {d} is not complete on {today} (it ends {d.end})")
    return mode, dekads


def dry_run(cfg, dekads: list[Dekad], folder: Path, log) -> int:
    from eo4dm_helpers.ee.plan import plan_global, plan_local, write_plan
    from eo4dm_helpers.ee.session import initialize_offline
    from eo4dm_helpers.stac.search import plan_searches

    initialize_offline()
    for d in dekads:
        target = folder / d.label if len(dekads) > 1 else folder
        searches = plan_searches(cfg, d)  # STAC sources (issue #10): what is searched, no request
        plans = ([] if searches.global_lst else plan_global(cfg, d)) + \
            ([] if cfg.local_chain.source == "stac" else plan_local(cfg, d))
        files = write_plan(plans, target)
        log(f"{d.label}: {len(files)} Earth Engine product(s) planned in {target}")
        if searches.searches:
            (target / "stac_searches.txt").write_text(searches.summary() + "\n", encoding="utf-8")
            log(searches.summary())
    return R.EXIT_DONE


def check_only(cfg, dekads: list[Dekad], log) -> int:
    import pandas as pd

    today = cfg.today()
    log(f"latency on {today} (latest acquisition available per product):")
    log(pd.DataFrame(R.latency_table(cfg, today)).to_string(index=False))
    for d in dekads:
        a = R.check_availability(cfg, d, today)
        log(f"\n{d.label}: {a.decision} - {a.reason}")
        log(pd.DataFrame(a.rows()).to_string(index=False))
    return R.EXIT_DONE


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.params)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return R.EXIT_CONFIG
    try:
        log = Log(None if args.dry_run else cfg.paths.output / "logs" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log")
    except OSError as exc:  # read-only or full output folder: say so in one line
        print(f"error: {_io_error(cfg, exc)}", file=sys.stderr)
        return R.EXIT_CONFIG
    # warnings (e.g. a key file readable by others) as one line each, in the run's log too
    warnings.showwarning = lambda message, *_a, **_k: log(f"warning: {message}", err=True)
    try:
        return _main(args, cfg, log)
    finally:
        log.close()


_WRITE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def _io_error(cfg, exc: OSError) -> str:
    """One line for a file that cannot be written or read, naming the parameter of its folder."""
    target = Path(exc.filename) if exc.filename else None
    key = next((k for k, folder in (("paths.archive", cfg.paths.archive), ("paths.output", cfg.paths.output))
                if target is not None and target.is_relative_to(folder)), None)
    if exc.errno in _WRITE_ERRNOS:
        text = f"cannot write {target or 'a file'} ({exc.strerror})"
    else:
        text = " ".join(str(exc).split())
    return f"{key}: {text}" if key else text


def _main(args: argparse.Namespace, cfg, log: Log) -> int:
    try:
        mode, dekads = resolve(args, cfg)
        if args.dry_run:
            return dry_run(cfg, dekads, args.plan_dir, log)
        check_backend(cfg)
        if args.check_availability:
            return check_only(cfg, dekads, log)
    except (ConfigError, ValueError) as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_CONFIG
    except AuthError as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_EARTH_ENGINE
    done: list[Dekad] = []
    current: Dekad | None = None
    code = R.EXIT_DONE
    try:
        with run_lock(cfg.paths.archive):
            clean_temporaries(cfg.paths.archive)
            clean_temporaries(cfg.paths.output)  # e.g. a bulletin half-written when a run was killed
            # provisional dekads left by earlier runs (not the ones backfilled now) are recomputed
            refresh = [d for d in provisional_dekads(cfg, dekads[0]) if d not in dekads] if dekads and \
                mode in ("auto", "manual") else []
            if args.backfill and dekads:
                code = _backfill(cfg, dekads[0], log)
                if code:
                    return code
            todo = refresh + dekads
            if not todo:
                log(f"nothing to do: the archive is up to date with the latest complete dekad ({mode} mode)")
                return R.EXIT_DONE
            if cfg.backend == "local" and mode != "drought" and not cfg.paths.scenes.is_dir():
                raise ConfigError(f"paths.scenes: {cfg.paths.scenes} is not a folder (the local backend reads its "
                                  "scenes there)")
            if refresh:
                log(f"recomputing provisional dekad(s): {', '.join(d.label for d in refresh)}")
            notebooks = R.MODE_NOTEBOOKS[mode] or NOTEBOOKS
            for d in todo:
                current = d
                notes = {}
                if mode != "drought" and not args.no_wait:
                    a = R.check_availability(cfg, d, cfg.today())
                    notes["availability_check"] = {"decision": a.decision, "reason": a.reason, "counts": a.rows()}
                    if a.decision == "wait":
                        log(f"{d.label}: {a.reason}; run again later")
                        code = R.EXIT_WAITING
                        break
                    if a.decision == "process-incomplete":
                        log(f"{d.label}: {a.reason}")
                run = run_dekad(cfg, args.params.resolve(), d, notebooks=notebooks, notes=notes,
                                log=lambda m: log(m))
                done.append(d)
                log(f"{d.label}: report {run.report}" if run.report else f"{d.label}: composites done")
            current = None
    except LockError as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_LOCKED
    except ConfigError as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_CONFIG
    except StepFailed as exc:
        log(f"error: {exc}", err=True)
        code = R.EXIT_EARTH_ENGINE if "TransferError" in str(exc) or "EEException" in str(exc) else \
            R.EXIT_STEP_FAILED
    except OSError as exc:  # a file of the archive or the output that cannot be written (read-only, full) or read
        log(f"error: {_io_error(cfg, exc)}", err=True)
        if current is None and exc.errno in _WRITE_ERRNOS:  # before any dekad: the parameters' folders are unusable
            return R.EXIT_CONFIG
        code = R.EXIT_STEP_FAILED
    try:
        R.save_state(cfg, dekads, done, current, mode, code)
    except OSError as exc:
        log(f"error: the run state was not saved: {_io_error(cfg, exc)}", err=True)
    return code


def _backfill(cfg, before: Dekad, log) -> int:
    if cfg.history_start is None:
        log("error: history_start: needed by --backfill", err=True)
        return R.EXIT_CONFIG
    log(f"backfill: building the historical composites from {cfg.history_start} ...")
    first = Dekad.containing(cfg.history_start)
    n = backfill(cfg, first, before.previous(), log=lambda m: log(m) if m.endswith("-12-D3: done") else None)
    n_ind = backfill_indicators(cfg, first, before.previous(), log=lambda m: None)
    log(f"backfill: {n} dekad(s) of historical composites and {n_ind} of indicators built")
    return R.EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
