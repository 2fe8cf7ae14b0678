"""Local-engine throughput and peak memory on a generated Landsat-tile-sized dekad (run on demand).

    .venv/bin/python bench/preprocess.py                 # 18,500² px output grid at 10 m (minutes)
    .venv/bin/python bench/preprocess.py --size 4096     # a quicker, smaller run

Generates into a temporary folder (kept with --keep) a scene store with 3 Landsat-like scenes at 30 m
(L8, L9 and an SLC-off L7 that triggers the gap fill), 2 Sentinel-2-like tiles at 10 m (20 m SCL,
B11, AOT and cloud probability) and WorldCover, all as tiled GeoTIFFs indexed by sidecars. Then, each
in a child process whose peak resident memory (``resource.getrusage`` maxrss) is reported:

1. plain read: every band of every input file read once, window by window (the I/O floor);
2. the chain: land mask, the 5 scenes preprocessed and staged, the dekad composite with window
   widening written to the archive layout.

Prints the output grid size, the time and Mpx/s of each step, peak MB, and the ratio of the chain's
time to the plain read's.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from eo4dm_helpers import products as P
from eo4dm_helpers.config import Calibration, Grid, LocalChain, LocalTile, SensorPeriod
from eo4dm_helpers.local.scenes import register_scene, scene_from_files
from eo4dm_helpers.local.windows import WINDOW, iter_windows

CRS = "EPSG:32758"
X0, Y0 = 500_000.0, 7_700_000.0
DEKAD = "2024-03-D2"
CAL = {"S2": Calibration((0.98, 0.07), (0.91, 0.11)), "L9": Calibration((0.95, 0.02), (0.97, 0.03)),
       "L7": Calibration((0.97, 0.04), (0.96, 0.07))}


# --------------------------------------------------------------------------------------------
# Synthetic inputs (smooth vegetation, sea to the west, cloud blobs; QA bits as DOMAIN.md §4)
# --------------------------------------------------------------------------------------------
def _fields(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    v = 0.5 + 0.3 * np.sin(x / 700.0 + seed) * np.cos(y / 900.0)
    cloud = np.sin(x / 2300.0 + 1.7 * seed) * np.sin(y / 1900.0 + seed) > 0.8
    sea = x - X0 < 2500 + 1500 * np.sin((Y0 - y) / 9000.0)
    return {"red": 0.05 + 0.05 * (1 - v), "nir": 0.25 + 0.2 * v, "swir": 0.15 + 0.05 * (1 - v),
            "cloud": cloud, "sea": sea, "v": v}


def _write(path: Path, shape: tuple[int, int], res: float, x0: float, y0: float, dtype: str, nbands: int,
           fill) -> None:
    prof = dict(driver="GTiff", width=shape[1], height=shape[0], count=nbands, dtype=dtype, crs=CRS,
                transform=from_origin(x0, y0, res, res), tiled=True, blockxsize=512, blockysize=512,
                compress="deflate", zlevel=1, predictor=2)
    with rasterio.open(path, "w", **prof) as dst:
        for win in iter_windows(shape, 2048):
            r, c = np.mgrid[win.row:win.row + win.height, win.col:win.col + win.width]
            x, y = x0 + (c + 0.5) * res, y0 - (r + 0.5) * res
            dst.write(np.stack(fill(x, y)).astype(dtype), window=win.rio)


def _landsat(folder: Path, key: str, day: date, n: int, seed: int) -> dict[str, tuple]:
    res, x0, y0 = 30.0, X0 - 300, Y0 + 300
    l7 = key == "L7"
    sr = ("SR_B3", "SR_B4", "SR_B5") if l7 else ("SR_B4", "SR_B5", "SR_B6")

    def bands(x, y):
        f = _fields(x, y, seed)
        dn = [((f[b] + 0.2) / 2.75e-5).round() for b in ("red", "nir", "swir")]  # §4.3 scale/offset
        qa = np.where(f["cloud"], 1 << 3, 1 << 6).astype(np.uint16)  # bit 3 cloud, 6 clear
        qa = np.where(f["sea"], qa | (1 << 7), qa)  # bit 7 water
        if l7:  # SLC-off: diagonal stripes of fill (QA_PIXEL bit 0, bands 0)
            gap = ((x - x0) / res + 0.2 * (y0 - y) / res) % 35 < 10
            dn = [np.where(gap, 0, d) for d in dn]
            qa = np.where(gap, 1, qa)
        return [*dn, qa, np.zeros_like(qa)]

    main = folder / f"{key}_{day:%Y%m%d}.tif"
    _write(main, (n, n), res, x0, y0, "uint16", 5, bands)
    files = {b: (main, i + 1) for i, b in enumerate(sr)}
    files.update({"QA_PIXEL": (main, 4), "QA_RADSAT": (main, 5)})
    extra = folder / f"{key}_{day:%Y%m%d}.u8.tif"
    _write(extra, (n, n), res, x0, y0, "uint8", 1, lambda x, y: [np.zeros(x.shape, np.uint8)])
    if l7:
        op = folder / f"{key}_{day:%Y%m%d}.i16.tif"
        _write(op, (n, n), res, x0, y0, "int16", 1, lambda x, y: [np.full(x.shape, 100, np.int16)])
        files.update({"SR_CLOUD_QA": (extra, 1), "SR_ATMOS_OPACITY": (op, 1)})
    else:
        files["SR_QA_AEROSOL"] = (extra, 1)
    return files


def _s2(folder: Path, day: date, x0: float, y0: float, n10: int, seed: int) -> tuple[dict, dict]:
    n20 = n10 // 2

    def b10(x, y):
        f = _fields(x, y, seed)
        return [(f["red"] * 1e4).round(), (f["nir"] * 1e4).round()]  # §4.1 SR × 1e-4

    def b20(x, y):
        f = _fields(x, y, seed)
        scl = np.where(f["cloud"], 9, np.where(f["sea"], 6, 4))  # §4.1 SCL classes
        return [(f["swir"] * 1e4).round(), np.full(x.shape, 120), scl]

    ten, twenty = folder / f"S2_{day:%Y%m%d}.tif", folder / f"S2_{day:%Y%m%d}.20m.tif"
    _write(ten, (n10, n10), 10.0, x0, y0, "uint16", 2, b10)
    _write(twenty, (n20, n20), 20.0, x0, y0, "uint16", 3, b20)
    prob = folder / f"S2CP_{day:%Y%m%d}.tif"
    _write(prob, (n20, n20), 20.0, x0, y0, "uint8", 1,
           lambda x, y: [np.where(_fields(x, y, seed)["cloud"], 90, 5)])
    s2 = {"B4": (ten, 1), "B8": (ten, 2), "B11": (twenty, 1), "AOT": (twenty, 2), "SCL": (twenty, 3)}
    return s2, {"probability": (prob, 1)}


def generate(root: Path, size: int) -> None:
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    t = lambda d: datetime(d.year, d.month, d.day, 0, 0, tzinfo=UTC)  # noqa: E731
    n30 = size // 3 + 20
    for coll in P.WORLDCOVER:
        f = files / f"{coll.replace('/', '_')}.tif"
        _write(f, (size, size), 10.0, X0, Y0, "uint8", 1,
               lambda x, y: [np.where(_fields(x, y, 0)["sea"], P.WORLDCOVER_WATER, 10)])
        register_scene(root, scene_from_files(coll, f.stem, datetime(2021, 1, 1, tzinfo=UTC), {"Map": f}))
    for key, day, seed in (("L8", date(2024, 3, 12), 1), ("L9", date(2024, 3, 15), 2), ("L7", date(2024, 3, 19), 3)):
        prod = P.HIGH_RES[key][0]
        props = {"CLOUD_COVER_LAND": 10.0, "SENSOR_MODE_SLC": "OFF" if key == "L7" else "ON"}
        register_scene(root, scene_from_files(prod.collection, f"{key}_{day:%Y%m%d}", t(day),
                                              _landsat(files, key, day, n30, seed), props))
    # two S2 MGRS-like tiles (10980 px at 10 m on the full-size grid: 109.8 of 185 km) overlapping the
    # Landsat tile at opposite corners
    n10 = size * 10980 // 18500 // 2 * 2
    span, s2span = size * 10.0, n10 * 10.0
    for day, x0, y0, seed in ((date(2024, 3, 13), X0 - 0.3 * span, Y0 + 0.3 * span, 4),
                              (date(2024, 3, 18), X0 + 0.7 * span - s2span, Y0 - 0.7 * span + s2span, 5)):
        s2, cp = _s2(files, day, x0, y0, n10, seed)
        idx = f"{day:%Y%m%d}T000000_{day:%Y%m%d}T000000_T58KXX"
        props = {"CLOUDY_PIXEL_PERCENTAGE": 10.0, "MEAN_SOLAR_AZIMUTH_ANGLE": 60.0}
        register_scene(root, scene_from_files(P.S2.collection, idx, t(day), s2, props))
        register_scene(root, scene_from_files(P.S2_CLOUD_PROBABILITY, idx, t(day), cp))


def input_files(root: Path) -> list[Path]:
    return sorted((root / "files").glob("*.tif"))


# --------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------
def plain_read(root: Path) -> dict:
    t0, px = time.perf_counter(), 0
    with rasterio.Env(GDAL_CACHEMAX=256 * 2**20):
        for f in input_files(root):
            with rasterio.open(f) as src:
                for win in iter_windows((src.height, src.width), WINDOW):
                    px += src.read(window=win.rio).size
    return {"seconds": time.perf_counter() - t0, "band_px": px}


def chain(root: Path, size: int, window: int) -> dict:
    from eo4dm_helpers.composites import choose_window, write_composite
    from eo4dm_helpers.dekads import Dekad
    from eo4dm_helpers.local.highres import Staged, stage_highres
    from eo4dm_helpers.local.land import LandMask
    from eo4dm_helpers.local.scenes import list_scenes

    grid = Grid(CRS, X0, Y0, 10.0, size, size)
    lc = LocalChain(True, (LocalTile("BENCH", grid),), tuple(SensorPeriod(k, date(1999, 1, 1)) for k in P.HIGH_RES),
                    s2_cloud_source="s2cloudless", calibration=CAL)
    dekad = Dekad.parse(DEKAD)
    out, times = root / "out", {}
    t0 = time.perf_counter()
    land = LandMask.staged(root, grid, out / "land.tif", window)
    times["land mask"] = time.perf_counter() - t0
    staged: list[Staged] = []
    lo, hi = datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    for key in ("S2", "L8", "L9", "L7"):
        prod = P.HIGH_RES[key][0]
        for s in list_scenes(root, prod.collection, lo, hi):
            t = time.perf_counter()
            r = stage_highres(s, prod, grid, land, lc, root, "UTC", out / "scenes", window)
            times[f"scene {key} {s.index[:8]}"] = time.perf_counter() - t
            assert isinstance(r, Staged), r
            staged.append(r)
    t = time.perf_counter()
    choice = choose_window(staged, dekad, land, lc.thresholds.composite_nan_max, ("NDVI", "NDWI"), window)
    times["composite: widening pass"] = time.perf_counter() - t
    t = time.perf_counter()
    paths = {n: out / "archive" / f"LS2_{n}_{dekad.yyyymm}_COMPD{dekad.index}.tif" for n in ("NDVI", "NDWI")}
    write_composite(choice, dekad, grid, paths, window)
    times["composite: write"] = time.perf_counter() - t
    return {"seconds": time.perf_counter() - t0, "steps": times, "level": choice.level or "dekad",
            "images": len(choice.images)}


def _child(step: str, root: Path, size: int, window: int) -> None:
    res = plain_read(root) if step == "read" else chain(root, size, window)
    res["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps(res))


def _run_child(step: str, root: Path, size: int, window: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", step, "--root", str(root), "--size", str(size),
                           "--window", str(window)], capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"{step} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=18_500, help="output grid side in 10 m pixels (default 18500)")
    ap.add_argument("--window", type=int, default=WINDOW, help=f"processing window side (default {WINDOW})")
    ap.add_argument("--workdir", type=Path, help="where to generate (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--child", choices=("read", "chain"), help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(a.child, a.root, a.size, a.window)
        return
    root = Path(tempfile.mkdtemp(prefix="eo4dm-bench-", dir=a.workdir))
    try:
        t = time.perf_counter()
        generate(root, a.size)
        gb = sum(f.stat().st_size for f in input_files(root)) / 1e9
        print(f"generated {len(input_files(root))} input files ({gb:.1f} GB compressed) in "
              f"{time.perf_counter() - t:.0f} s under {root}")
        mpx = a.size * a.size / 1e6
        rd = _run_child("read", root, a.size, a.window)
        ch = _run_child("chain", root, a.size, a.window)
        print(f"output grid {a.size} x {a.size} px at 10 m = {mpx:.0f} Mpx; 5 scenes (S2 x2, L8, L9, L7 SLC-off); "
              f"window {a.window} px")
        print(f"plain read of the inputs: {rd['seconds']:.1f} s, {rd['band_px'] / 1e6 / rd['seconds']:.0f} "
              f"band-Mpx/s, peak {rd['peak_mb']:.0f} MB")
        for k, v in ch["steps"].items():
            print(f"  {k:<28} {v:7.1f} s  {mpx / v:7.1f} Mpx/s")
        print(f"chain (land + 5 scenes + composite, level {ch['level']}, {ch['images']} images): "
              f"{ch['seconds']:.1f} s, {mpx / ch['seconds']:.2f} Mpx/s of output grid, peak {ch['peak_mb']:.0f} MB")
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"ratio to the plain read (I/O floor): {ch['seconds'] / rd['seconds']:.1f}x; largest child peak "
              f"(getrusage RUSAGE_CHILDREN): {children:.0f} MB")
    finally:
        if a.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
