#!/usr/bin/env python3
"""Run the eo4dm drought routine headlessly: every notebook through papermill, one HTML report per dekad.

Examples:
  python run_all.py --params params/demo.yaml                      # auto: every incomplete dekad
  python run_all.py --params params/demo.yaml --dekad 2024-03-D1   # manual: one dekad
  python run_all.py --params params/demo.yaml --start 2024-02-D1 --end 2024-03-D2
  python run_all.py --params params/demo.yaml --mode drought --dekad 2024-03-D2   # indicators + report only
  python run_all.py --params params/demo.yaml --backfill           # build the reference first
  python run_all.py --params params/demo.yaml --backfill --replace-imported   # rebuild imported EO4DM dekads too
  python run_all.py --params params/demo.yaml --check-availability
  python run_all.py --params params/demo.yaml --since-failure      # resume what the last run left
  python run_all.py --params params/new_caledonia.yaml --dekad 2024-03-D2 --dry-run --plan-dir plan/

Modes: auto (every dekad from history_start, else the archive's first dekad, to the latest complete one that
lacks a product it must have: composites, indicators, zone statistics, and a bulletin from the first dekad
the routine ran; dekads before that are completed in-process, the others through the notebooks; plus the
provisional dekads to recompute), manual (--dekad or --start/--end, inclusive), indices (composites only),
drought (indicators and report only, from the archive).

Exit codes: 0 done, or nothing to do; 1 a notebook or step failed (its name and cell are printed) or an
archive file is unreadable; 2 bad parameters or arguments (also: the archive or output folder cannot be
written or is not a folder, the scene store does not exist, a damaged run state); 3 another run holds the
archive lock (or the lock is not a file); 4 Earth Engine error (credentials missing or rejected, export or
download failed); 5 waiting for late products (run again later); 6 interrupted by SIGTERM, SIGHUP or SIGINT
(the archive is consistent and the lock released: run again, or --since-failure, to resume).
An error is one line on stderr starting with "error: " (a failed download adds one line per product), a
warning one line "warning: ". Every run writes a log to <output>/logs/ and its state to
<output>/state/last_run.json (from its start, updated after every dekad).
"""

from __future__ import annotations

import os
import signal
import sys


def _stopped_while_starting(signum: int, _frame) -> None:
    """A signal before the routine's own handlers are in place (importing takes seconds): nothing was
    written yet, so the clean stop is to say so and leave."""
    try:
        os.write(2, f"error: interrupted by {signal.Signals(signum).name} while starting; nothing was changed\n"
                 .encode())
    finally:
        os._exit(6)


if __name__ == "__main__":
    for _s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(_s, _stopped_while_starting)

# Imported after the handlers above (pyproject: E402 ignored here): a stop while importing is clean.
import argparse
import contextlib
import errno
import logging
import shutil
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from eo4dm_helpers import completeness as C
from eo4dm_helpers import interrupt, runs
from eo4dm_helpers import routine as R
from eo4dm_helpers.config import ConfigError, load_config, parse_dekad
from eo4dm_helpers.dekads import Dekad, dekad_range, latest_complete_dekad
from eo4dm_helpers.drought import provisional_dekads
from eo4dm_helpers.ee.session import AuthError
from eo4dm_helpers.interrupt import Interrupted
from eo4dm_helpers.redact import redact
from eo4dm_helpers.runner import NOTEBOOKS, StepFailed, kill_kernels, run_dekad
from eo4dm_helpers.storage import LockError, clean_temporaries, run_lock
from eo4dm_helpers.workflow import check_backend


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
                   help="first complete, in-process, every dekad from the parameters' history_start up to the dekad "
                        "before the first one run (composites, indicators, zone statistics; no notebooks)")
    p.add_argument("--replace-imported", action="store_true",
                   help="with --backfill: also rebuild the history dekads whose composites were imported from EO4DM "
                        "(tag SOURCE=EO4DM-import: other masks and binning), so the reference is homogeneous; "
                        "their indicators are recomputed")
    p.add_argument("--check-availability", action="store_true",
                   help="print the latency table (latest acquisition per product) and, per dekad to run, the "
                        "products found against expected, the decision (process / wait) and the archive "
                        "products it lacks; process nothing")
    p.add_argument("--since-failure", action="store_true",
                   help="run again the dekads the last run did not finish (from <output>/state/last_run.json); "
                        "not with --dekad/--start/--end")
    p.add_argument("--no-wait", action="store_true",
                   help="process even when products are missing (no availability check)")
    p.add_argument("--dry-run", action="store_true",
                   help="build the Earth Engine graphs of every output product and write them to --plan-dir "
                        "(<product>.json from serialize() and a readable <product>.txt: region, CRS, transform, "
                        "scale, bands, download method); needs no credentials and no network")
    p.add_argument("--plan-dir", type=Path, default=Path("plan"), help="folder of the dry run, default: %(default)s")
    return p.parse_args(argv)


class Log:
    """Prints and appends to the run's log file; a closed terminal (SIGHUP) or a full disk never stops it."""

    def __init__(self, path: Path | None):
        self.fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def __call__(self, msg: str, err: bool = False) -> None:
        if err:  # errors may quote what a library said: never a credential (structural redaction)
            msg = redact(msg)
        with contextlib.suppress(OSError, ValueError):  # the terminal is gone (SIGHUP): the log file keeps it
            print(msg, file=sys.stderr if err else sys.stdout, flush=True)
        if self.fh:
            try:
                self.fh.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {'ERROR ' if err else ''}{msg}\n")
                self.fh.flush()
            except OSError:  # a full disk must not hide the message it is reporting (printed above)
                pass

    def close(self) -> None:
        if self.fh:
            with contextlib.suppress(OSError):
                self.fh.close()


@dataclass
class Job:
    """What a run does: ``history`` dekads completed in-process (no bulletin), then ``routine`` dekads
    through the notebooks (``notebooks[d]``: those a dekad needs, None for the mode's)."""

    mode: str
    routine: list[Dekad] = field(default_factory=list)
    history: list[Dekad] = field(default_factory=list)
    notebooks: dict[Dekad, tuple[str, ...] | None] = field(default_factory=dict)
    missing: dict[Dekad, list[C.Product]] = field(default_factory=dict)
    auto: bool = False  # planned from the archive's completeness (re-planned under the lock)
    replace: dict[Dekad, set[str]] = field(default_factory=dict)  # --replace-imported: chains to rebuild


def resolve(args: argparse.Namespace, cfg) -> Job:
    """The mode and the dekads to run, from the arguments (auto runs are planned from the archive)."""
    today = cfg.today()
    if args.since_failure and (args.dekad or args.start or args.end):
        raise ConfigError("--since-failure: resumes the last run's own dekads; do not give --dekad/--start/--end")
    if args.dekad and (args.start or args.end):
        raise ConfigError("--dekad: give either --dekad or --start/--end, not both")
    if getattr(args, "replace_imported", False) and not args.backfill:
        raise ConfigError("--replace-imported: rebuilds imported history dekads, so it needs --backfill")
    if bool(args.start) != bool(args.end):
        raise ConfigError("--start/--end: both are needed for a period")
    mode = args.mode or ("manual" if (args.dekad or args.start) else "auto")
    if args.since_failure:
        resume = R.since_failure(cfg)
        if resume.routine is None:
            return Job("auto", auto=True)
        return Job(resume.mode, routine=resume.routine, history=resume.history)
    if args.start:
        first, last = parse_dekad(args.start, "--start"), parse_dekad(args.end, "--end")
        if last < first:
            raise ConfigError(f"--end: {last} is before --start {first}")
        dekads = dekad_range(first, last)
    elif args.dekad:
        dekads = [parse_dekad(args.dekad, "--dekad")]
    elif mode == "manual":
        raise ConfigError("--dekad: manual mode needs --dekad or --start/--end")
    else:
        return Job(mode, auto=True)  # auto (and indices/drought without dekads): planned under the lock
    for d in dekads:
        if d.end >= today:
            if args.start:  # name the argument given: the period's end
                raise ConfigError(f"--end: {dekads[-1]} is not complete on {today} (the latest complete dekad "
                                  f"is {latest_complete_dekad(today)})")
            raise ConfigError(f"--dekad: {d} is not complete on {today} (it ends {d.end})")
    return Job(mode, routine=dekads)


def plan_auto(job: Job, cfg, inv: C.Inventory, *, record: bool) -> Job:
    """Fill an auto job from the archive: every incomplete dekad (completeness.missing)."""
    if record:
        R.bulletins_from(cfg, inv, cfg.today(), record=True)
    plan = R.auto_plan(cfg, cfg.today(), inv)
    job.history, job.routine, job.missing = plan.history, plan.routine, plan.missing
    job.notebooks = dict(plan.notebooks)
    if job.mode in ("indices", "drought"):  # auto in a restricted mode: the mode's notebooks only
        job.notebooks = dict.fromkeys(job.routine, R.MODE_NOTEBOOKS[job.mode])
        job.history = [] if job.mode == "indices" else job.history
    return job


def with_backfill(job: Job, cfg, inv: C.Inventory, *, replace_imported: bool = False) -> Job:
    """``--backfill``: every incomplete dekad from history_start to the one before the first to run; with
    ``replace_imported``, also those whose composites were imported from EO4DM (``job.replace``)."""
    from eo4dm_helpers.history import imported_chains

    if cfg.history_start is None:
        raise ConfigError("history_start: needed by --backfill")
    first = Dekad.containing(cfg.history_start)
    before = job.routine[0] if job.routine else latest_complete_dekad(cfg.today()).next()
    todo = []
    for d in dekad_range(first, before.previous()):
        if replace_imported and (chains := imported_chains(cfg, d, inv)):
            job.replace[d] = chains
            todo.append(d)
        elif d not in job.history and C.missing(cfg, d, inv, bulletin=False):
            todo.append(d)
    job.history = sorted(set(job.history) | set(todo))
    return job


def dry_run(cfg, job: Job, folder: Path, log) -> int:
    from eo4dm_helpers.ee.plan import plan_global, plan_local, write_plan
    from eo4dm_helpers.ee.session import initialize_offline
    from eo4dm_helpers.stac.search import plan_searches

    dekads = job.routine or [latest_complete_dekad(cfg.today())]
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--plan-dir: {folder} is a file, not a folder")
    initialize_offline()
    for d in dekads:
        target = folder / d.label if len(dekads) > 1 else folder
        searches = plan_searches(cfg, d)  # STAC sources (issue #10): what is searched, no request
        plans = ([] if searches.global_lst else plan_global(cfg, d)) + \
            ([] if cfg.local_chain.source == "stac" else plan_local(cfg, d))
        try:
            files = write_plan(plans, target)
            if searches.searches:
                (target / "stac_searches.txt").write_text(searches.summary() + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--plan-dir: cannot write {exc.filename or target} "
                              f"({exc.strerror or exc.__class__.__name__})") from None
        log(f"{d.label}: {len(files)} Earth Engine product(s) planned in {target}")
        if searches.searches:
            log(searches.summary())
    return R.EXIT_DONE


def check_only(cfg, job: Job, log) -> int:
    import pandas as pd

    today = cfg.today()
    if job.auto:
        inv = C.Inventory.scan(cfg, today)
        _report_strays(inv, log)
        plan_auto(job, cfg, inv, record=False)
        if job.history:
            log(f"{len(job.history)} dekad(s) to complete in-process (no bulletin): {_span(job.history)}")
    log(f"latency on {today} (latest acquisition available per product):")
    log(pd.DataFrame(R.latency_table(cfg, today)).to_string(index=False))
    if job.auto and not job.routine:
        log(f"\nevery dekad up to {latest_complete_dekad(today)} has its bulletin")
    for d in job.routine:
        a = R.check_availability(cfg, d, today)
        lacks = job.missing.get(d)
        log(f"\n{d.label}: {a.decision} - {a.reason}" + (f"; lacks {C.summary(lacks)}" if lacks else ""))
        log(pd.DataFrame(a.rows()).to_string(index=False))
    return R.EXIT_DONE


def _span(dekads: list[Dekad]) -> str:
    return dekads[0].label if len(dekads) == 1 else f"{dekads[0].label} to {dekads[-1].label}"


def _report_strays(inv: C.Inventory, log) -> None:
    for s in inv.strays:
        log(f"warning: {s.message()}", err=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # tasks cut short by a signal: no noise
    with interrupt.raising():
        try:
            return _entry(args)
        except Interrupted as exc:  # before the run had anything to clean up
            with contextlib.suppress(OSError, ValueError):
                print(f"error: interrupted by {exc.signame} before any work; nothing was changed", file=sys.stderr)
            return R.EXIT_INTERRUPTED


def _entry(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.params, check_layers=not args.dry_run)  # a dry run needs no zone layer
    except ConfigError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return R.EXIT_CONFIG
    try:
        R.check_folders(cfg)
        log = Log(None if args.dry_run else cfg.paths.output / "logs" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return R.EXIT_CONFIG
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
        job = resolve(args, cfg)
        if args.dry_run:
            return dry_run(cfg, job, args.plan_dir, log)
        if not _archive_only(job, args):  # --mode drought on given dekads reads the archive: no credentials
            check_backend(cfg)
        if args.check_availability:
            return check_only(cfg, job, log)
    except (ConfigError, ValueError) as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_CONFIG
    except AuthError as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_EARTH_ENGINE
    except OSError as exc:
        log(f"error: {_io_error(cfg, exc)}", err=True)
        return R.EXIT_CONFIG
    run_id = runs.new_run_id()
    run = Run(cfg, args, job, run_id, log)
    try:
        with run_lock(cfg.paths.archive) as holder:
            return run.execute(holder)
    except LockError as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_LOCKED
    except ConfigError as exc:
        log(f"error: {exc}", err=True)
        return R.EXIT_CONFIG
    except OSError as exc:  # the lock's folder cannot be made (read-only, a file in the way...)
        log(f"error: {_io_error(cfg, exc)}", err=True)
        return R.EXIT_CONFIG if exc.errno in _WRITE_ERRNOS or isinstance(exc, FileExistsError | NotADirectoryError) \
            else R.EXIT_STEP_FAILED
    finally:
        shutil.rmtree(runs.work_root(cfg.paths.output) / run_id, ignore_errors=True)


class Run:
    """One run under the archive lock: plan, record the state, work, and stop cleanly on a signal."""

    def __init__(self, cfg, args: argparse.Namespace, job: Job, run_id: str, log: Log):
        self.cfg, self.args, self.job, self.run_id, self.log = cfg, args, job, run_id, log
        self.state: R.RunState | None = None
        self.current: Dekad | None = None

    def execute(self, holder: str) -> int:
        cfg, log = self.cfg, self.log
        os.environ[runs.RUN_ENV], os.environ[runs.HOLDER_ENV] = self.run_id, holder  # this process and kernels
        try:
            return self._execute(holder)
        except Interrupted as exc:
            interrupt.ignore()
            kill_kernels()  # no kernel writes on once the lock is released
            for folder in (cfg.paths.archive, cfg.paths.output):
                clean_temporaries(folder)
            where = f" while processing {self.current.label}" if self.current else ""
            detail = f"interrupted by {exc.signame}{where}"
            self._finish(R.EXIT_INTERRUPTED, "interrupted", detail)
            log(f"error: {detail}; the archive is consistent and the lock released: run again (or "
                "--since-failure) to resume", err=True)
            return R.EXIT_INTERRUPTED
        finally:
            os.environ.pop(runs.RUN_ENV, None)
            os.environ.pop(runs.HOLDER_ENV, None)

    def _finish(self, code: int, status: str, detail: str = "") -> None:
        if self.state is None:
            return
        try:
            self.state.current = self.current
            self.state.finish(code, status, detail)
        except OSError as exc:
            self.log(f"error: the run state was not saved: {_io_error(self.cfg, exc)}", err=True)

    def _execute(self, holder: str) -> int:
        cfg, args, job, log = self.cfg, self.args, self.job, self.log
        try:
            clean_temporaries(cfg.paths.archive)
            clean_temporaries(cfg.paths.output)  # e.g. a bulletin half-written when a run was killed
            runs.clean_dead_work(cfg.paths.output, keep=self.run_id)  # never reuse a dead run's staged files
            inv = C.Inventory.scan(cfg)
            _report_strays(inv, log)
            if job.auto:
                plan_auto(job, cfg, inv, record=True)
            if args.backfill:
                with_backfill(job, cfg, inv, replace_imported=getattr(args, "replace_imported", False))
            # provisional dekads left by earlier runs (not the ones run now) are recomputed
            refresh = []
            if job.routine and job.mode in ("auto", "manual"):
                before = latest_complete_dekad(cfg.today()).next() if job.auto else job.routine[0]
                planned = set(job.routine) | set(job.history)  # history dekads are completed in-process
                refresh = [d for d in provisional_dekads(cfg, before, inv) if d not in planned]
            todo = sorted(refresh + job.routine)
            mode_notebooks = R.MODE_NOTEBOOKS[job.mode]
            self.state = R.RunState(cfg, job.mode, todo, mode_notebooks, self.run_id, history=job.history)
            self.state.save()
            if not todo and not job.history:
                log(f"nothing to do: every dekad up to {latest_complete_dekad(cfg.today())} is complete "
                    f"({job.mode} mode)")
                self._finish(R.EXIT_DONE, "done")
                return R.EXIT_DONE
            if cfg.backend == "local" and _needs_scenes(cfg, job, todo, inv) and \
                    not (cfg.paths.scenes and cfg.paths.scenes.is_dir()):
                raise ConfigError(f"paths.scenes: {cfg.paths.scenes} is not a folder (the local backend reads its "
                                  "scenes there)" if cfg.paths.scenes else
                                  "paths.scenes: the local backend needs the folder of local scenes to build "
                                  "composites (--mode drought, from existing composites, runs without it)")
            if job.history:
                self._history(inv)
            if refresh:
                log(f"recomputing provisional dekad(s): {', '.join(d.label for d in refresh)}")
            code = self._routine(todo, holder)
            interrupt.check()  # a signal whose exception was lost where it landed still stops the run
            self.current = None if code == R.EXIT_DONE else self.current
            self._finish(code, {R.EXIT_DONE: "done", R.EXIT_WAITING: "waiting"}.get(code, "failed"))
            return code
        except ConfigError as exc:
            log(f"error: {exc}", err=True)
            self._finish(R.EXIT_CONFIG, "failed", str(exc))
            return R.EXIT_CONFIG
        except StepFailed as exc:
            log(f"error: {exc}", err=True)
            code = R.EXIT_EARTH_ENGINE if "TransferError" in str(exc) or "EEException" in str(exc) else \
                R.EXIT_STEP_FAILED
            self._finish(code, "failed", str(exc))
            return code
        except OSError as exc:  # a file of the archive or the output that cannot be written (read-only, full) or read
            log(f"error: {_io_error(cfg, exc)}", err=True)
            code = R.EXIT_CONFIG if self.current is None and self.state is None and exc.errno in _WRITE_ERRNOS \
                else R.EXIT_STEP_FAILED
            self._finish(code, "failed", _io_error(cfg, exc))
            return code
        except Exception as exc:  # a step run in-process (history) failed: one line, like a notebook's
            from eo4dm_helpers.ee.errors import TransferError

            what = f"{self.current.label}: " if self.current else ""
            log(f"error: {what}{exc.__class__.__name__}: {' '.join(str(exc).split())}", err=True)
            code = R.EXIT_EARTH_ENGINE if isinstance(exc, TransferError | AuthError) else R.EXIT_STEP_FAILED
            self._finish(code, "failed", str(exc))
            return code

    def _history(self, inv: C.Inventory) -> None:
        """Complete the history dekads in-process, one line per dekad with an estimate of what is left."""
        from eo4dm_helpers.history import build_composites, build_indicators

        cfg, log, dekads = self.cfg, self.log, self.job.history
        log(f"completing {len(dekads)} dekad(s) in-process (no bulletin): {_span(dekads)}")
        if cfg.backend == "earthengine":  # every missing composite first, many dekads per request or export
            from eo4dm_helpers.history import build_composites_ee

            check_backend(cfg)  # not checked up front for an archive-only run (_archive_only)

            build_composites_ee(cfg, dekads, inv, log=log, replace=self.job.replace)
        t0 = time.monotonic()
        for k, d in enumerate(dekads, start=1):
            self.current = d
            todo = C.missing(cfg, d, inv, bulletin=False)
            replace = self.job.replace.get(d) if cfg.backend != "earthengine" else None
            if todo and C.composites_missing(todo) or replace:
                inv.add(build_composites(cfg, d, inv, log=log, replace=replace))
                todo = C.missing(cfg, d, inv, bulletin=False)
            if any(p.kind in C.DERIVED for p in todo):
                inv.add(build_indicators(cfg, d))
            left = (time.monotonic() - t0) / k * (len(dekads) - k)
            eta = f" (about {_duration(left)} left)" if k < len(dekads) else ""
            log(f"[{k}/{len(dekads)}] {d.label}: done{eta}")
            self.state.done.append(d)  # type: ignore[union-attr]
            self.state.save()  # type: ignore[union-attr]
            interrupt.check()
        self.current = None

    def _routine(self, todo: list[Dekad], holder: str) -> int:
        cfg, args, job, log = self.cfg, self.args, self.job, self.log
        t0 = time.monotonic()
        for k, d in enumerate(todo, start=1):
            self.current = d
            notes = {}
            notebooks = job.notebooks.get(d) or R.MODE_NOTEBOOKS[job.mode] or NOTEBOOKS
            if job.mode != "drought" and "01_medium_resolution" in notebooks and not args.no_wait:
                a = R.check_availability(cfg, d, cfg.today())
                notes["availability_check"] = {"decision": a.decision, "reason": a.reason, "counts": a.rows()}
                if a.decision == "wait":
                    log(f"{d.label}: {a.reason}; run again later")
                    return R.EXIT_WAITING
                if a.decision == "process-incomplete":
                    log(f"{d.label}: {a.reason}")
            if len(todo) > 1:  # "dekad k of N" with an estimate from the dekads done so far
                left = (time.monotonic() - t0) / (k - 1) * (len(todo) - k + 1) if k > 1 else None
                log(f"[{k}/{len(todo)}] {d.label}" + (f" (about {_duration(left)} left)" if left is not None else ""))
            run = run_dekad(cfg, self.args.params.resolve(), d, notebooks=notebooks, notes=notes,
                            log=lambda m: log(m), run_id=self.run_id, holder=holder)
            self.state.done.append(d)  # type: ignore[union-attr]
            self.state.save()  # type: ignore[union-attr]
            log(f"{d.label}: report {run.report}" if run.report else f"{d.label}: composites done")
            interrupt.check()
        return R.EXIT_DONE


def _archive_only(job: Job, args: argparse.Namespace) -> bool:
    """``--mode drought`` on given dekads without ``--backfill``: the indicators and bulletin notebooks read the
    archive only, so Earth Engine is not initialised (a history to complete initialises it when it needs to)."""
    return job.mode == "drought" and bool(job.routine) and not job.auto and not args.backfill


def _needs_scenes(cfg, job: Job, todo: list[Dekad], inv: C.Inventory) -> bool:
    """Whether the run builds composites (which read the scene store): a routine dekad run through a
    composite notebook, or a history dekad that lacks composites. Indicators and bulletins from the
    archive (``--mode drought``, auto mode's report-only dekads) need no scenes."""
    building = set(R.MODE_NOTEBOOKS["indices"])
    for d in todo:
        notebooks = job.notebooks.get(d) or R.MODE_NOTEBOOKS[job.mode] or NOTEBOOKS
        if building & set(notebooks):
            return True
    return any(C.composites_missing(C.missing(cfg, d, inv, bulletin=False)) or d in job.replace for d in job.history)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


if __name__ == "__main__":
    code = main()
    for _s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # done: a late signal changes nothing
        signal.signal(_s, signal.SIG_IGN)
    sys.exit(code)
