"""Reliability figures (issue #9): the crash campaign, the injected write faults and the bad-input corpus.

Builds the reduced demo (as the tests' ``small_demo``), runs ``run_all.py --dekad 2024-03-D2`` once
uninterrupted (the reference archive), then ``--trials`` times: a fresh copy, the same run killed with
SIGKILL (with its notebook kernels) at a point spread over the run, and a rerun to completion whose
archive must equal the reference byte for byte, with no temporary file or lock left. Then a full disk
while committing (and a rerun), a read-only archive and output folder, and every case of
tests/bad_inputs/cases.yaml. Prints the figures; exits 1 if anything was not recovered or not clear.

    .venv/bin/python bench/reliability.py                 # 20 trials (make reliability), about 20 min here
    .venv/bin/python bench/reliability.py --trials 3 --no-corpus
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
    ap.add_argument("--trials", type=int, default=20, help="crash trials (default: %(default)s)")
    ap.add_argument("--no-corpus", action="store_true", help="skip the bad-input corpus")
    ap.add_argument("--no-faults", action="store_true", help="skip the injected disk-full and read-only faults")
    ap.add_argument("--workdir", type=Path, help="keep everything there (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eo4dm-reliability-") as tmp:
        work = args.workdir or Path(tmp)
        print(f"building the reduced demo in {work / 'base'} ...", flush=True)
        base = RL.build_base(work / "base")
        camp = RL.run_campaign(base, work / "crash", args.trials, log=lambda m: print(m, flush=True),
                               keep=args.workdir is not None)
        faults: list[RL.FaultTrial] = []
        if not args.no_faults:
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
    print(f"reference run:           {camp.reference.duration:.1f} s, {camp.reference.changed} archive file(s) written")
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
        all(f.recovered for f in faults)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
