"""Reliability figures (issues #9 and #13): the crash campaigns, the injected write faults and the bad-input corpus.

Builds the reduced demo (as the tests' ``small_demo``), runs ``run_all.py --dekad 2024-03-D2`` once
uninterrupted (the reference archive), then ``--trials`` times: a fresh copy, the same run killed with
SIGKILL (with its notebook kernels) at a point spread over the run, and a rerun to completion whose
archive must equal the reference byte for byte, with no temporary file or lock left. Then a full disk
while committing (and a rerun), a read-only archive and output folder, and every case of
tests/bad_inputs/cases.yaml. Prints the figures; exits 1 if anything was not recovered or not clear.

First (issue 13), ``--trials`` trials of each run kind of ``eo4dm_helpers.reliability.RUN_KINDS``: auto mode,
a two-dekad range and ``--backfill``, each on a workspace prepared so that it completes dekads, killed at
seeded-random times and at commit/write/report points with SIGKILL (the whole tree), SIGTERM or SIGINT
(run_all.py alone: a clean stop, exit 6), then recovered (the same command; ``--since-failure`` for the
range). Per kind: trials, kills by method, clean stops, recovered, dekads left incomplete, archive
mismatches, leftovers, secrets found (a fake key file and Copernicus password given to every run).

    .venv/bin/python bench/reliability.py                 # 20 trials each (make reliability), about 1 h here
    .venv/bin/python bench/reliability.py --trials 3 --no-corpus
    .venv/bin/python bench/reliability.py --trials 5 --no-classic --no-faults --no-corpus --kinds range
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("NO_GCE_CHECK", "true")  # before ee is imported
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eo4dm_helpers import reliability as RL  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20, help="crash trials, and trials per run kind (default: "
                                                           "%(default)s)")
    ap.add_argument("--kinds", default=",".join(sorted(RL.RUN_KINDS)),
                    help="run kinds of the issue-13 campaign, comma-separated, or 'none' (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=RL.SEED, help="seed of the kill times (default: %(default)s)")
    ap.add_argument("--no-classic", action="store_true", help="skip the SIGKILL campaign of --dekad 2024-03-D2")
    ap.add_argument("--no-corpus", action="store_true", help="skip the bad-input corpus")
    ap.add_argument("--no-faults", action="store_true", help="skip the injected disk-full and read-only faults")
    ap.add_argument("--workdir", type=Path, help="keep everything there (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    kinds_run = [k for k in args.kinds.split(",") if k and k != "none"]
    unknown = [k for k in kinds_run if k not in RL.RUN_KINDS]
    if unknown:
        ap.error(f"--kinds: unknown {unknown} (known: {', '.join(sorted(RL.RUN_KINDS))})")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eo4dm-reliability-") as tmp:
        work = args.workdir or Path(tmp)
        print(f"building the reduced demo in {work / 'base'} ...", flush=True)
        base = RL.build_base(work / "base")
        log = lambda m: print(m, flush=True)  # noqa: E731
        by_kind = []
        for k in kinds_run:  # first: the figures of issue 13
            by_kind.append(RL.run_kind_campaign(base, work / f"kind-{k}", k, args.trials, seed=args.seed, log=log,
                                                keep=args.workdir is not None))
            print_kind(by_kind[-1])
        camp = RL.Campaign(RL.Reference({}, 0.0, 0, 0)) if args.no_classic else \
            RL.run_campaign(base, work / "crash", args.trials, log=log, keep=args.workdir is not None)
        faults: list[RL.FaultTrial] = []
        if not args.no_faults:
            if args.no_classic:  # the disk-full trial converges on the classic run's archive
                camp.reference = RL.run_reference(base, work / "crash" / "reference")
            faults.append(RL.disk_full_trial(base, work / "fault-enospc", camp.reference))
            faults += [RL.read_only_trial(base, work / f"fault-ro-{f}", f) for f in ("archive", "output")]
            for f in faults:
                print(f"fault: {f.kind}: exit {f.exit}, {'recovered' if f.recovered else 'NOT RECOVERED'}"
                      + (f" ({'; '.join(f.problems + f.mismatches + f.leftovers)})" if not f.recovered else ""),
                      flush=True)
        cases: list[RL.CaseResult] = []
        if not args.no_corpus:
            for case in RL.load_corpus():
                r = RL.run_case(base, case, work / "inputs" / case["id"])
                cases.append(r)
                print(f"bad input {r.id}: exit {r.exit}, " + ("clear" if r.clear else f"NOT CLEAR: {r.problems}"),
                      flush=True)

    kinds = camp.faults + Counter(
        {"ENOSPC while committing": sum("ENOSPC" in f.kind for f in faults),
         "EROFS (read-only folder)": sum("EROFS" in f.kind for f in faults),
         "stale lock of a killed run": sum(t.stale_lock for t in camp.trials)})
    failed_runs = [t for t in camp.trials if t.killed] + [f for f in faults if f.rerun_exit is not None]
    recovered = sum(t.recovered for t in camp.trials) + sum(f.recovered for f in faults if f.rerun_exit is not None)
    mismatched = camp.mismatched + sum(bool(f.mismatches) for f in faults)
    print()
    kinds_ok = all([print_kind(c) for c in by_kind])  # every kind printed
    if by_kind:
        trials = sum(len(c.trials) for c in by_kind)
        print(f"all run kinds:           {trials} trials, {sum(c.recovered for c in by_kind)} recovered, "
              f"{sum(c.incomplete_dekads for c in by_kind)} dekad(s) left incomplete, "
              f"{sum(c.count('mismatches') for c in by_kind)} archive mismatch(es), "
              f"{sum(c.secrets_found for c in by_kind)} secret(s) found, "
              f"{sum(c.count('stop_problems') for c in by_kind)} unclean stop(s)")
        print()
    if not args.no_classic:
        print(f"reference run:           {camp.reference.duration:.1f} s, {camp.reference.changed} archive file(s) "
              "written")
        print(f"crash trials run:        {len(camp.trials)} (SIGKILL of run_all.py and its kernels, then a rerun)")
    print("faults injected by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if v))
    print(f"runs recovered:          {recovered} of {len(failed_runs)} interrupted runs (rerun: exit 0, archive "
          "identical, nothing left)")
    print(f"read-only folders:       {sum(f.recovered for f in faults if f.rerun_exit is None)} of "
          f"{sum(f.rerun_exit is None for f in faults)} stopped in one line, archive unchanged")
    print(f"archive mismatches:      {mismatched}")
    print(f"bad inputs tried:        {len(cases)}")
    print(f"clear errors given:      {sum(r.clear for r in cases)} of {len(cases)} (documented exit code, one line, "
          "no traceback, archive unchanged)")
    print(f"took:                    {(time.perf_counter() - t0) / 60:.1f} min")
    ok = recovered == len(failed_runs) and mismatched == 0 and all(r.clear for r in cases) and \
        all(f.recovered for f in faults) and kinds_ok
    return 0 if ok else 1


def print_kind(c: RL.KindCampaign) -> bool:
    """Print one run kind's figures; True when everything was recovered and every stop was clean."""
    signalled = [t for t in c.trials if t.killed and t.method != "SIGKILL"]
    recoveries = Counter(t.recovery if t.recovery == "--since-failure" else "the same command" for t in c.trials)
    print(f"run kind {c.kind.name}: {c.kind.what}")
    print(f"  reference run:         {c.reference.duration:.1f} s, {c.reference.changed} archive file(s) written, "
          f"{len(c.reference_incomplete)} dekad(s) left incomplete")
    print(f"  trials:                {len(c.trials)}; killed by SIGKILL {c.methods['SIGKILL']}, SIGTERM "
          f"{c.methods['SIGTERM']}, SIGINT {c.methods['SIGINT']}; at "
          + ", ".join(f"{k} {v}" for k, v in sorted(c.points.items()))
          + (f"; {sum(not t.killed for t in c.trials)} ended before their kill point" if not all(
              t.killed for t in c.trials) else ""))
    print(f"  clean stops:           {sum(not t.stop_problems for t in signalled)} of {len(signalled)} SIGTERM/SIGINT "
          "(exit 6, one line, no traceback, lock released, state interrupted, no kernel left)")
    for t in signalled:
        if t.stop_problems:
            print(f"    trial {t.index + 1}, {t.method} {t.point}: {'; '.join(t.stop_problems)}")
    print(f"  recovered:             {c.recovered} of {len(c.trials)} (recovery: "
          + ", ".join(f"{k} {v}" for k, v in sorted(recoveries.items())) + "; exit 0, archive identical, complete)")
    print(f"  dekads left incomplete: {c.incomplete_dekads}")
    print(f"  archive mismatches:    {c.count('mismatches')}")
    print(f"  leftovers:             {c.count('leftovers')}")
    print(f"  secrets found:         {c.secrets_found}")
    for t in c.trials:
        if not t.recovered:
            print(f"    trial {t.index + 1}, {t.method} {t.point}: exit {t.rerun_exit}; "
                  + "; ".join(t.mismatches[:5] + t.leftovers[:5] + t.incomplete + t.secrets[:5]))
    return c.recovered == len(c.trials) and not c.count("stop_problems") and not c.reference_incomplete and \
        c.secrets_found == 0


if __name__ == "__main__":
    sys.exit(main())
