#!/usr/bin/env python3
"""Benchmark: indicators against a 24-year reference, streamed by windows vs. load-everything numpy.

    python bench/indicators.py [--size 4096] [--years 24] [--block 1024]

Writes a reference stack (2-band float32 composites, tiled deflate GeoTIFFs as in the archive) to a
temporary folder, then runs, each in its own process so peak memory is measured separately:
  * eo4dm   this package: one streaming pass over the reference per window (reference_stats,
            vci, vai, qscore), outputs written window by window;
  * naive   EO4DM-style: stack every year in memory, np.nanmin/nanmax/nanmean/nanstd over axis 0;
  * read    the I/O floor: read every input band, no computation.
Prints throughput (reference megapixels per second), peak memory and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eo4dm_helpers import indicators as I  # noqa: E402
from eo4dm_helpers.archive import write_raster  # noqa: E402
from eo4dm_helpers.blocks import BlockWriter, block_windows, read_window  # noqa: E402
from eo4dm_helpers.config import Grid  # noqa: E402
from eo4dm_helpers.dekads import Dekad  # noqa: E402

D = Dekad(2024, 3, 2)


def grid_of(size: int) -> Grid:
    return Grid("EPSG:32758", 500000.0, 7700000.0, 10.0, size, size)


def generate(folder: Path, size: int, years: int) -> None:
    g = grid_of(size)
    rng = np.random.default_rng(0)
    base = rng.normal(0.25, 0.05, (size, size)).astype(np.float32)
    for k, y in enumerate(range(2024 - years, 2025)):
        v = base + rng.normal(0, 0.02, (size, size)).astype(np.float32)
        v[: size // 8, : size // 8] = np.nan  # sea
        c = rng.integers(0, 11, (size, size)).astype(np.float32)
        write_raster(folder / f"NDWI_{y}.tif", [v, c], ["NDWI", "count"], g)
        print(f"  generated year {k + 1}/{years + 1}", end="\r", flush=True)
    print()


def files(folder: Path, years: int) -> tuple[dict[int, Path], Path]:
    ref = {y: folder / f"NDWI_{y}.tif" for y in range(2024 - years, 2024)}
    return ref, folder / "NDWI_2024.tif"


def run_eo4dm(folder: Path, years: int, size: int, block: int) -> None:
    ref, cur = files(folder, years)
    out = {"VCI": (folder / "out_VCI.tif", ["VCI", "QSCORE"]), "VAI": (folder / "out_VAI.tif", ["VAI", "QSCORE"])}
    with BlockWriter(out, grid_of(size)) as w:
        for win in block_windows(grid_of(size), block):
            stats = I.reference_stats(ref, D, 3, win)
            c = read_window(cur, win, (1, 2))
            q = I.qscore(c[1], D, stats)
            w.write("VCI", win, [I.vci(c[0], stats), q])
            w.write("VAI", win, [I.vai(c[0], stats), q])


def run_naive(folder: Path, years: int, size: int, block: int) -> None:
    ref, cur = files(folder, years)
    stack = np.stack([read_window(p, None, (1,))[0] for p in ref.values()])
    counts = np.stack([read_window(p, None, (2,))[0] for p in ref.values()])
    c = read_window(cur, None, (1, 2))
    with np.errstate(all="ignore"):
        mn, mx = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        mean, std = np.nanmean(stack, axis=0), np.nanstd(stack, axis=0)
        vci = (c[0] - mn) / (mx - mn)
        vai = (c[0] - mean) / std
        q = (np.nanmean(counts / 10, axis=0) + c[1] / 10) / 2
    g = grid_of(size)
    write_raster(folder / "naive_VCI.tif", [vci, q], ["VCI", "QSCORE"], g)
    write_raster(folder / "naive_VAI.tif", [vai, q], ["VAI", "QSCORE"], g)


def run_read(folder: Path, years: int, size: int, block: int) -> None:
    ref, cur = files(folder, years)
    for p in [*ref.values(), cur]:
        for win in block_windows(grid_of(size), block):
            read_window(p, win, (1, 2))


MODES = {"eo4dm": run_eo4dm, "naive": run_naive, "read": run_read}


def child(mode: str, folder: Path, years: int, size: int, block: int) -> None:
    t0 = time.perf_counter()
    MODES[mode](folder, years, size, block)
    dt = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "peak_mb": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=4096, help="grid side in pixels (default 4096)")
    ap.add_argument("--years", type=int, default=24, help="reference years (default 24)")
    ap.add_argument("--block", type=int, default=1024, help="window side in pixels (default 1024)")
    ap.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.dir, a.years, a.size, a.block)
        return
    with tempfile.TemporaryDirectory(prefix="eo4dm-bench-") as tmp:
        folder = Path(tmp)
        print(f"reference: {a.years} years + current, {a.size} x {a.size} px, 2 bands float32 "
              f"({(a.years + 1) * a.size * a.size * 8 / 2**30:.1f} GiB uncompressed), window {a.block}")
        generate(folder, a.size, a.years)
        res = {}
        for mode in ("read", "eo4dm", "naive"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--dir", str(folder), "--size",
                                  str(a.size), "--years", str(a.years), "--block", str(a.block)],
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{mode} failed:\n{out.stderr[-2000:]}")
            res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        mpx = a.size * a.size * (a.years + 1) / 1e6
        for mode, r in res.items():
            print(f"{mode:6s} {r['seconds']:8.2f} s  {mpx / r['seconds']:8.1f} Mpx/s  peak {r['peak_mb']:8.0f} MB")
        e, n, r = res["eo4dm"], res["naive"], res["read"]
        print(f"speed-up vs naive:        {n['seconds'] / e['seconds']:.2f}x  (aim >= 3)")
        print(f"peak memory vs naive:     {e['peak_mb'] / n['peak_mb']:.2f}  (aim <= 0.25)")
        print(f"time vs I/O floor (read): {e['seconds'] / r['seconds']:.2f}x  (aim <= 1.5)")


if __name__ == "__main__":
    main()
