"""Benchmark: requests and exports of the Earth Engine backfill per year of history, and the round trips
of one routine dekad (issue 14). No network: the fakes of eo4dm_helpers.ee.fakes answer.

1. Executed: ``ee.backfill.backfill`` through ``FakeEarthEngine`` (and ``FakeDrive`` for exports) for 1, 6,
   12 and 24 years of the global chain on a small grid, direct and Drive; every computePixels request,
   export start, task poll and Drive call is counted. The per-dekad plans are stand-ins with the
   routine's files, bands and grid but trivial graphs (building the routine's graphs costs ~0.5 s a dekad
   client-side and no request; tests/test_backfill_ee.py checks the real graphs).
2. Planned: the same batching on the production grids of params/new_caledonia.yaml (global ~463 m grid,
   every 10 m Landsat tile), against the routine run dekad by dekad (one product = one request set or
   one export).
3. The round trips of one routine dekad (notebooks 01-05 and the availability check).

    .venv/bin/python bench/backfill.py
    .venv/bin/python bench/backfill.py --years 1 6 --max-dekads 12
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NO_GCE_CHECK", "true")  # before ee is imported
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from eo4dm_helpers.archive import Archive, Month  # noqa: E402
from eo4dm_helpers.config import load_config  # noqa: E402
from eo4dm_helpers.dekads import Dekad, dekad_range  # noqa: E402
from eo4dm_helpers.ee import backfill as B  # noqa: E402
from eo4dm_helpers.ee.errors import RetryPolicy  # noqa: E402
from eo4dm_helpers.ee.fakes import FakeDrive, FakeEarthEngine  # noqa: E402
from eo4dm_helpers.ee.plan import ExportPlan  # noqa: E402
from eo4dm_helpers.ee.tiles import plan_tiles  # noqa: E402
from eo4dm_helpers.ee.transfer import choose_method  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def stand_in_plans(cfg, d: Dekad, chains) -> dict[str, list[ExportPlan]]:
    """The routine's files, bands and grids for ``d`` (global: NDWI, NDVI, LST, + the month on D3; local:
    NDWI, NDVI per tile) with trivial, distinct graphs."""
    import ee

    arch, out = Archive(cfg.paths.archive), {}
    if "global" in chains and cfg.global_chain.enabled:
        ps = []
        for period in [d] + ([Month(d.year, d.month)] if d.index == 3 else []):
            shared = ee.Image.constant([0] * 6).set("period", str(period))  # as plan_global: one image a period
            for index in ("NDWI", "NDVI", "LST"):
                p = arch.global_composite("MODIS", index, period)
                img = ee.Image.constant([0, 0]).rename([index, f"{index}_count"]).set("file", p.name)
                ps.append(ExportPlan(f"global_{p.stem}", p, img, cfg.global_chain.grid, (index, f"{index}_count"),
                                     shared=shared))
        out["global"] = ps
    for t in cfg.local_chain.tiles if cfg.local_chain.enabled else ():
        if t.id in chains:
            out[t.id] = [ExportPlan(f"local_{t.id}_{i}", arch.local_composite(t.id, i, d),
                                    ee.Image.constant([0, 0]).rename([i, f"{i}_count"]).set("f", f"{t.id}{d}{i}"),
                                    t.grid, (i, f"{i}_count")) for i in ("NDWI", "NDVI")]
    return out


def routine_cost(plans: list[ExportPlan]) -> tuple[int, int]:
    """(computePixels requests, Drive exports) of the routine's download of ``plans``, as
    ``transfer.download_dekad`` does it: method per plan, direct plans sharing an image fetched together."""
    from eo4dm_helpers.ee.transfer import fetched_together

    direct = [p for p in plans if choose_method(p).method == "direct"]
    requests = sum(len(plan_tiles(g[0].grid.width, g[0].grid.height, ["float32"] * sum(len(p.bands) for p in g)))
                   for g in fetched_together(direct))
    return requests, len(plans) - len(direct)


class Counting(FakeEarthEngine):
    """The fake, answering any batch with constant pixels and counting every call."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.polls = 0

    def task_status(self, task):
        self.polls += 1
        return super().task_status(task)


def executed(years: int, method: str, max_dekads: int, tmp: Path) -> dict[str, int]:
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    data["backend"] = "earthengine"
    data["history_start"] = "2000-01-01"
    data["paths"] = {"archive": str(tmp / "archive"), "output": str(tmp / "output"), "scenes": str(tmp / "scenes")}
    data["territory"]["zones"] = None
    data["global_chain"]["grid"].update(width=8, height=6)
    data["local_chain"]["enabled"] = False
    (tmp / "p.yaml").write_text(yaml.safe_dump(data))
    cfg = load_config(tmp / "p.yaml", check_layers=False)
    todo = {"global": dekad_range(Dekad(2001, 1, 1), Dekad(2000 + years, 12, 3))}
    policy = B.BatchPolicy(max_dekads=max_dekads, method=method)  # type: ignore[arg-type]
    drive = FakeDrive()
    fake = Counting(drive=drive, polls_to_finish=2)
    for b in B.plan_batches(cfg, todo, policy, stand_in_plans):
        g = b.plans[0].grid
        fake.add(b.transfer_plan(Path("x")), np.ones((len(b.bands), g.height, g.width), np.float32))
    out = B.backfill(cfg, todo, fake, policy=policy, plans=stand_in_plans, log=lambda m: None,
                     sleep=lambda s: None, clock=lambda: 0.0, retry=RetryPolicy(attempts=2, base=0.0))
    files = sum(1 for _ in (tmp / "archive").rglob("*.tif"))
    return {"dekads": len(todo["global"]), "batches": out.batches, "requests": len(fake.pixel_requests),
            "exports": len(fake.export_calls), "polls": fake.polls,
            "drive calls": len(drive.calls), "files": files}


def planned(cfg, years: int, max_dekads: int) -> dict[str, dict[str, int]]:
    """Requests and exports per chain: batched backfill against the routine dekad by dekad."""
    chains = ["global"] + [t.id for t in cfg.local_chain.tiles]
    dekads = dekad_range(Dekad(2001, 1, 1), Dekad(2000 + years, 12, 3))
    policy = B.BatchPolicy(max_dekads=max_dekads)
    out = {}
    for chain in chains:
        row = {"routine requests": 0, "routine exports": 0, "backfill requests": 0, "backfill exports": 0}
        for d in dekads:
            req, exp = routine_cost(stand_in_plans(cfg, d, [chain]).get(chain, []))
            row["routine requests"] += req
            row["routine exports"] += exp
        for b in B.plan_batches(cfg, {chain: dekads}, policy, stand_in_plans):
            tp = B._merged(b.chain, [(d, [p for p, o in zip(b.plans, b.owners, strict=True) if o == d])
                                     for d in b.dekads])
            if choose_method(tp).method == "direct":
                row["backfill requests"] += B._requests(b.plans, policy.limits)
            else:
                row["backfill exports"] += 1
        out[chain] = row
    return out


def routine_dekad(cfg, d: Dekad) -> list[tuple[str, str, int]]:
    """(step, kind, round trips) of one routine dekad on Earth Engine, from the steps' code: one
    value request per notebook summary and for the availability check; the download's requests and
    exports from the routine's own choice of method per product."""
    rows = [("availability check", "computeValue (collection sizes, one request)", 1),
            ("01_medium_resolution", "computeValue (describe)", 1),
            ("02_sentinel2", "computeValue (scene counts)", 1),
            ("03_landsat", "computeValue (scene counts)", 1),
            ("04_local_composite", "computeValue (describe)", 1)]
    chains = ["global"] + [t.id for t in cfg.local_chain.tiles]
    direct = exports = 0
    for chain in chains:
        req, exp = routine_cost(stand_in_plans(cfg, d, [chain]).get(chain, []))
        direct, exports = direct + req, exports + exp
    rows.append(("05_download", "computeValue (image counts: a chain without images gets its no-data record)", 1))
    rows.append(("05_download", "computePixels", direct))
    rows.append(("05_download", "Export.image.toDrive (+ polls, Drive list/download/delete)", exports))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--years", type=int, nargs="+", default=[1, 6, 12, 24], help="years of history planned")
    ap.add_argument("--run-years", type=int, nargs="+", default=[1, 6],
                    help="years of history executed through the fakes (each file is written and committed: "
                         "24 years take minutes)")
    ap.add_argument("--max-dekads", type=int, default=36, help="dekads per batch at most (default: a year)")
    args = ap.parse_args()
    from eo4dm_helpers.ee.session import initialize_offline

    initialize_offline()
    print(f"1. executed through the fakes (global chain, small grid, batches of up to {args.max_dekads} dekads)")
    print(f"{'years':>5} {'method':>6} {'dekads':>6} {'batches':>7} {'requests':>8} {'exports':>7} {'polls':>5} "
          f"{'Drive calls':>11} {'files':>6} {'requests/yr':>11} {'exports/yr':>10}")
    for years in args.run_years:
        for method in ("direct", "drive"):
            with tempfile.TemporaryDirectory() as tmp:
                r = executed(years, method, args.max_dekads, Path(tmp))
            print(f"{years:>5} {method:>6} {r['dekads']:>6} {r['batches']:>7} {r['requests']:>8} {r['exports']:>7} "
                  f"{r['polls']:>5} {r['drive calls']:>11} {r['files']:>6} {r['requests'] / years:>11.1f} "
                  f"{r['exports'] / years:>10.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        data = yaml.safe_load((ROOT / "params" / "new_caledonia.yaml").read_text())
        data["paths"] = {"archive": str(Path(tmp) / "a"), "output": str(Path(tmp) / "o")}
        data["territory"]["zones"] = None
        (Path(tmp) / "p.yaml").write_text(yaml.safe_dump(data))
        cfg = load_config(Path(tmp) / "p.yaml", check_layers=False)
        g = cfg.global_chain.grid
        t = cfg.local_chain.tiles[0].grid if cfg.local_chain.tiles else None
        print(f"\n2. planned on the production grids (global {g.width} x {g.height} px; "
              f"{len(cfg.local_chain.tiles)} local tile(s)" + (f" of {t.width} x {t.height} px" if t else "") +
              "), per year of history")
        print(f"{'years':>5} {'chain':>8} {'routine req/yr':>14} {'routine exp/yr':>14} {'backfill req/yr':>15} "
              f"{'backfill exp/yr':>15}")
        for years in args.years:
            for chain, row in planned(cfg, years, args.max_dekads).items():
                print(f"{years:>5} {chain:>8} {row['routine requests'] / years:>14.1f} "
                      f"{row['routine exports'] / years:>14.1f} {row['backfill requests'] / years:>15.1f} "
                      f"{row['backfill exports'] / years:>15.1f}")
        for d in (Dekad(2024, 3, 2), Dekad(2024, 3, 3)):
            print(f"\n3. round trips of one routine dekad ({d.label}, production parameters)")
            for step, kind, n in routine_dekad(cfg, d):
                print(f"  {step:<22} {kind:<60} {n:>3}")


if __name__ == "__main__":
    main()
