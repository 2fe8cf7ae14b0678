"""Rebuild the real-file samples of ``tests/data`` from their public sources (see README.md there).

Pixel values are copied, never resampled or rescaled: a window of each source raster is written to a
GeoTIFF with the source's data type, CRS, nodata and the window's own geotransform. HDF4 layers are
written in the Earth Engine band layout (one GeoTIFF per band, named after the Earth Engine band), with
the layer's HDF attributes kept beside them in a JSON file.

    python tests/data/extract_samples.py --rio-tiler-pds <checkout> --amadeus <checkout>

``<checkout>`` is a clone of github.com/cogeotiff/rio-tiler-pds (commit f8b93f3) and of
github.com/NIEHS/amadeus (commit bb0cd5d). Needs rasterio and pyhdf (the ``test`` extras).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent

LANDSAT_ID = "LC08_L2SP_001062_20201031_20201106_02_T2"
LANDSAT_DIR = ("tests/fixtures/usgs-landsat/collection02/level-2/standard/oli-tirs/2020/001/062/"
               f"{LANDSAT_ID}")
LANDSAT_BANDS = ("SR_B4", "SR_B5", "SR_B6", "QA_PIXEL", "QA_RADSAT", "SR_QA_AEROSOL")
LANDSAT_WINDOW = Window(col_off=232, row_off=46, width=128, height=128)  # fill, cloud, cirrus, shadow

MOD11A1_ID = "MOD11A1.A2021227.h11v05.061.2021228105320"
MOD11A1_FILE = f"tests/testdata/modis/{MOD11A1_ID}.hdf"
MOD11A1_BANDS = ("LST_Day_1km", "QC_Day")
MOD11A1_WINDOW = Window(col_off=192, row_off=32, width=128, height=128)  # half LST, half "not produced"
# MODIS sinusoidal grid: sphere of radius 6371007.181 m (the file's ProjParams)
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"


def _write(path: Path, array: np.ndarray, crs: object, transform: Affine, nodata: float | None,
           tags: dict[str, str]) -> None:
    profile = dict(driver="GTiff", width=array.shape[1], height=array.shape[0], count=1, dtype=array.dtype,
                   crs=crs, transform=transform, nodata=nodata, compress="deflate", predictor=2)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
        dst.update_tags(**tags)


def landsat(repo: Path) -> None:
    out = HERE / "landsat_c2l2"
    out.mkdir(exist_ok=True)
    src_dir = repo / LANDSAT_DIR
    for band in LANDSAT_BANDS:
        name = f"{LANDSAT_ID}_{band}.TIF"
        with rasterio.open(src_dir / name) as src:
            array = src.read(1, window=LANDSAT_WINDOW)
            _write(out / name, array, src.crs, src.window_transform(LANDSAT_WINDOW), src.nodata,
                   {"SOURCE": f"cogeotiff/rio-tiler-pds {LANDSAT_DIR}/{name}",
                    "WINDOW": "col_off=232 row_off=46 width=128 height=128"})
    shutil.copyfile(src_dir / f"{LANDSAT_ID}_MTL.txt", out / f"{LANDSAT_ID}_MTL.txt")


def _grid(struct_metadata: str) -> tuple[float, float, float, float]:
    ul = re.search(r"UpperLeftPointMtrs=\(([-\d.]+),([-\d.]+)\)", struct_metadata)
    lr = re.search(r"LowerRightMtrs=\(([-\d.]+),([-\d.]+)\)", struct_metadata)
    assert ul and lr
    return float(ul[1]), float(ul[2]), float(lr[1]), float(lr[2])


def mod11a1(repo: Path) -> None:
    from pyhdf.SD import SD

    out = HERE / "mod11a1"
    out.mkdir(exist_ok=True)
    sd = SD(str(repo / MOD11A1_FILE))
    try:
        x0, y0, x1, y1 = _grid(sd.attributes()["StructMetadata.0"])
        attrs = {}
        for band in MOD11A1_BANDS:
            sds = sd.select(band)
            full = sds.get()
            px, py = (x1 - x0) / full.shape[1], (y0 - y1) / full.shape[0]
            w = MOD11A1_WINDOW
            transform = Affine(px, 0.0, x0 + w.col_off * px, 0.0, -py, y0 - w.row_off * py)
            array = np.ascontiguousarray(full[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width])
            _write(out / f"{MOD11A1_ID}.{band}.tif", array, MODIS_SINUSOIDAL, transform, None,
                   {"SOURCE": f"NIEHS/amadeus {MOD11A1_FILE} SDS {band}",
                    "WINDOW": "col_off=192 row_off=32 width=128 height=128"})
            attrs[band] = {k: (v.rstrip("\x00") if isinstance(v, str) else v) for k, v in sds.attributes().items()}
    finally:
        sd.end()
    (out / f"{MOD11A1_ID}.attributes.json").write_text(json.dumps(attrs, indent=1, sort_keys=True) + "\n",
                                                      encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rio-tiler-pds", type=Path, required=True)
    ap.add_argument("--amadeus", type=Path, required=True)
    args = ap.parse_args()
    landsat(args.rio_tiler_pds)
    mod11a1(args.amadeus)


if __name__ == "__main__":
    main()
