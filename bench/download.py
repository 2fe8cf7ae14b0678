"""Benchmark: tiled direct download, parallel versus sequential, against a local fake pixel server.

The server listens on the loopback interface only, answers each ``computePixels``-like request after a
fixed latency and sends the body at a bounded bandwidth (per request, and optionally shared), serves a
bounded number of requests and stops by itself after a deadline. The same product is downloaded with
``concurrency=1`` and with ``--concurrency``; both files are checked against the expected pixels, and
the wall times and their ratio are printed.

    .venv/bin/python bench/download.py
    .venv/bin/python bench/download.py --latency 1.0 --bandwidth 5 --concurrency 8
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_GCE_CHECK", "true")  # before ee is imported

import numpy as np  # noqa: E402
import rasterio  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eo4dm_helpers.config import Grid  # noqa: E402
from eo4dm_helpers.ee.pixels import FILL, download_direct  # noqa: E402
from eo4dm_helpers.ee.plan import ExportPlan  # noqa: E402
from eo4dm_helpers.ee.tiles import Limits, plan_tiles  # noqa: E402

BANDS = ("NDWI", "NDWI_count")


def expected(grid: Grid, row: int, col: int, height: int, width: int, nbands: int) -> np.ndarray:
    """The pixels the server computes: distinct per band/row/col, a masked (NaN) corner."""
    r = np.arange(row, row + height, dtype=np.float64)[:, None]
    c = np.arange(col, col + width, dtype=np.float64)[None, :]
    out = np.stack([((r * grid.width + c) % 65536 + b * 0.5) for b in range(nbands)]).astype(np.float32)
    out[:, (r < grid.height // 8) & (c < grid.width // 8)] = np.nan
    return out


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 with latency, bandwidth, a request budget and a deadline."""

    def __init__(self, grid: Grid, latency: float, bandwidth: float, link: float, max_requests: int,
                 deadline: float) -> None:
        self.grid, self.latency, self.bandwidth, self.link = grid, latency, bandwidth, link
        self.max_requests, self.served = max_requests, 0
        self.lock = threading.Lock()
        self.link_lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                with outer.lock:
                    outer.served += 1
                    over = outer.served > outer.max_requests
                if over:
                    self.send_error(503, "request budget exhausted")
                    threading.Thread(target=outer.httpd.shutdown, daemon=True).start()
                    return
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body = outer.answer(req)
                time.sleep(outer.latency)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                outer.send(self.wfile, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/computePixels"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.timer = threading.Timer(deadline, self.httpd.shutdown)  # stops by itself
        self.timer.daemon = True

    def answer(self, req: dict[str, Any]) -> bytes:
        g = self.grid
        t, dims = req["grid"]["affineTransform"], req["grid"]["dimensions"]
        col = round((t["translateX"] - g.x0) / g.resolution)
        row = round((g.y0 - t["translateY"]) / g.resolution)
        bands = req["bandIds"]
        data = expected(g, row, col, dims["height"], dims["width"], len(BANDS))
        raw = np.empty((dims["height"], dims["width"]), dtype=[(b, "<f4") for b in bands])
        for b in bands:
            raw[b] = np.where(np.isnan(data[BANDS.index(b)]), FILL, data[BANDS.index(b)])
        buf = io.BytesIO()
        np.save(buf, raw, allow_pickle=False)
        return buf.getvalue()

    def send(self, out: Any, body: bytes, chunk: int = 64 * 1024) -> None:
        for i in range(0, len(body), chunk):
            part = body[i:i + chunk]
            shared = len(part) / self.link if self.link > 0 else 0.0
            if shared:  # a shared link: one chunk at a time at the link's rate
                with self.link_lock:
                    time.sleep(shared)
            if self.bandwidth > 0:  # a request never goes faster than its own bandwidth
                time.sleep(max(0.0, len(part) / self.bandwidth - shared))
            out.write(part)

    def __enter__(self) -> Server:
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()


class HttpPixelIO:
    """``PixelIO`` over the benchmark server (the expression stays here; the server knows the image)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def compute_pixels(self, request: dict[str, Any]) -> np.ndarray:
        body = json.dumps({"grid": request["grid"], "bandIds": request["bandIds"]}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return np.load(io.BytesIO(resp.read()), allow_pickle=False)


def run(args: argparse.Namespace) -> float:
    import ee

    from eo4dm_helpers.ee.session import initialize_offline

    initialize_offline()  # graphs only: the pixels come from the local server
    grid = Grid("EPSG:32758", 499980.0, 7700020.0, 10.0, args.width, args.height)
    limits = Limits(request_bytes=int(args.request_mb * 2**20))
    tiles = plan_tiles(grid.width, grid.height, ["float32"] * len(BANDS), limits)
    want = expected(grid, 0, 0, grid.height, grid.width, len(BANDS))
    image = ee.Image.constant([0, 0]).rename(list(BANDS)).toFloat()
    total_mb = sum(t.width * t.height for t in tiles) * len(BANDS) * 4 / 2**20
    print(f"grid {grid.width} x {grid.height} px, {len(BANDS)} float32 bands ({total_mb:.1f} MB); "
          f"{len(tiles)} tiles under a {args.request_mb:g} MB request limit")
    print(f"server: latency {args.latency:g} s per request, {args.bandwidth:g} MB/s per request"
          + (f", {args.link:g} MB/s shared link" if args.link else ", no shared cap"))
    times = {}
    with tempfile.TemporaryDirectory() as tmp, Server(grid, args.latency, args.bandwidth * 2**20, args.link * 2**20,
                                                      max_requests=2 * len(tiles) + 2, deadline=args.deadline) as srv:
        pix = HttpPixelIO(srv.url)
        for label, conc in (("sequential", 1), ("parallel", args.concurrency)):
            plan = ExportPlan(f"bench_{label}", Path(tmp) / "archive" / f"{label}.tif", image, grid, BANDS)
            t0 = time.perf_counter()
            out = download_direct(plan, Path(tmp) / "work", pix, concurrency=conc, limits=limits,
                                  log=lambda m: None)
            times[label] = time.perf_counter() - t0
            with rasterio.open(out) as src:
                assert np.array_equal(src.read(), want, equal_nan=True), f"{label}: wrong pixels"
            print(f"{label:>10} (concurrency {conc}): {times[label]:6.2f} s")
        served = srv.served
    ratio = times["sequential"] / times["parallel"]
    print(f"requests served: {served}; wall time sequential / parallel = {ratio:.2f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=2048)
    ap.add_argument("--request-mb", type=float, default=4.0, help="request size limit (Earth Engine: 48)")
    ap.add_argument("--latency", type=float, default=0.5, help="seconds before each answer (server compute)")
    ap.add_argument("--bandwidth", type=float, default=10.0, help="MB/s per request (0: unlimited)")
    ap.add_argument("--link", type=float, default=0.0, help="MB/s shared by all requests (0: no shared cap)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--deadline", type=float, default=300.0, help="the server stops by itself after this (s)")
    run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
