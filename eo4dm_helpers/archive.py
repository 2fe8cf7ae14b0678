"""The historical store: composites and indicators per period, one GeoTIFF each (ARCHITECTURE.md §4).

Layout (names follow EO4DM, DOMAIN.md §1.2)::

    composites/global/dekad/{SENSOR}_{NDWI|NDVI|LST}_{YYYYMM}_COMPD{d}.tif    b1 mean, b2 valid count
    composites/global/month/{SENSOR}_{NDWI|NDVI|LST}_{YYYYMM}_COMPM.tif
    composites/local/{tile}/dekad/LS2_{NDWI|NDVI}_{YYYYMM}_COMPD{d}.tif  tag COMPOSITE_TYPE (COMPD2e, DAY2m...)
    indicators/global/{dekad|month}/{VCI|TCI|VHI}_{YYYYMM}{D1|D2|D3|M}.tif  b1 value, b2 QSCORE
    indicators/local/{tile}/dekad/VAI_{tile}_{YYYYMM}D{d}.tif
    stats/{YYYY-MM-Dn}/zones.csv

Every write is atomic (temporary file + rename), so the store never holds half a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

from .config import Grid
from .dekads import Dekad
from .storage import atomic_path

GLOBAL_SENSORS = ("MODIS", "VIIRS")
# Provenance of a composite (tag SOURCE): computed by eo4dm on Earth Engine or with the local engine, or
# imported from an EO4DM store (other masks and binning: no LST QC, UTC dates, the S2 AOT bug).
SOURCE_TAG = "SOURCE"
SOURCE_EE, SOURCE_LOCAL, SOURCE_IMPORT = "eo4dm-ee", "eo4dm-local", "EO4DM-import"
SOURCE_UNKNOWN = "eo4dm"  # written by an eo4dm version that did not tag its composites
# Float rasters of the store: ZSTD with the floating-point predictor writes ~5x faster than DEFLATE at
# the same size and reads ~2x faster (bench/indicators.py); GDAL >= 2.3 reads it.
CODEC = {"compress": "zstd", "zstd_level": 3}


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @property
    def yyyymm(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


Period = Dekad | Month


def _suffix(period: Period) -> str:
    return f"D{period.index}" if isinstance(period, Dekad) else "M"


class Archive:
    """Paths and atomic reads/writes of the historical store rooted at ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------------
    def global_composite(self, sensor: str, index: str, period: Period) -> Path:
        kind = "dekad" if isinstance(period, Dekad) else "month"
        comp = f"COMP{_suffix(period)}"
        return self.root / "composites" / "global" / kind / f"{sensor}_{index}_{period.yyyymm}_{comp}.tif"

    def local_composite(self, tile: str, index: str, dekad: Dekad) -> Path:
        name = f"LS2_{index}_{dekad.yyyymm}_COMPD{dekad.index}.tif"
        return self.root / "composites" / "local" / tile / "dekad" / name

    def global_indicator(self, name: str, period: Period) -> Path:
        kind = "dekad" if isinstance(period, Dekad) else "month"
        return self.root / "indicators" / "global" / kind / f"{name}_{period.yyyymm}{_suffix(period)}.tif"

    def local_indicator(self, tile: str, name: str, dekad: Dekad) -> Path:
        return self.root / "indicators" / "local" / tile / "dekad" / f"{name}_{tile}_{dekad.yyyymm}D{dekad.index}.tif"

    def zone_stats(self, dekad: Dekad) -> Path:
        return self.root / "stats" / dekad.label / "zones.csv"

    # -- history -------------------------------------------------------------------------------
    def global_history(self, index: str, period: Period, sensors: Sequence[str] = GLOBAL_SENSORS) -> dict[int, Path]:
        """Composites of the same calendar period (month and dekad number) for every year, by year.

        ``sensors`` restricts the reference, e.g. LST from one sensor only (DOMAIN.md §1.9).
        """
        out: dict[int, Path] = {}
        kind = "dekad" if isinstance(period, Dekad) else "month"
        folder = self.root / "composites" / "global" / kind
        pat = re.compile(rf"^({'|'.join(sensors)})_{index}_(\d{{4}}){period.month:02d}_COMP{_suffix(period)}\.tif$")
        for p in sorted(folder.glob(f"*_{index}_*.tif")) if folder.is_dir() else []:
            m = pat.match(p.name)
            if m:
                out[int(m.group(2))] = p
        return out

    def local_history(self, tile: str, index: str, dekad: Dekad) -> dict[int, Path]:
        folder = self.root / "composites" / "local" / tile / "dekad"
        pat = re.compile(rf"^LS2_{index}_(\d{{4}}){dekad.month:02d}_COMPD{dekad.index}\.tif$")
        out: dict[int, Path] = {}
        for p in sorted(folder.glob(f"LS2_{index}_*.tif")) if folder.is_dir() else []:
            m = pat.match(p.name)
            if m:
                out[int(m.group(1))] = p
        return out

    def latest_global_dekad(self, indices: Sequence[str] = ("NDWI", "NDVI", "LST")) -> Dekad | None:
        """The latest dekad with a global composite of any of ``indices`` (an NDVI-only archive counts)."""
        folder = self.root / "composites" / "global" / "dekad"
        found = []
        for p in folder.glob("*_COMPD*.tif") if folder.is_dir() else []:
            m = re.search(rf"_({'|'.join(indices)})_(\d{{4}})(\d{{2}})_COMPD(\d)\.tif$", p.name)
            if m:
                found.append(Dekad(int(m.group(2)), int(m.group(3)), int(m.group(4))))
        return max(found) if found else None


def write_raster(path: Path, bands: Sequence[np.ndarray], names: Sequence[str], grid: Grid,
                 tags: Mapping[str, object] | None = None, nodata: float = np.nan) -> Path:
    """Write float32 bands atomically as a tiled, compressed GeoTIFF on ``grid``."""
    stack = np.stack([np.asarray(b, dtype=np.float32) for b in bands])
    if stack.shape[1:] != (grid.height, grid.width):
        raise ValueError(f"{path.name}: array shape {stack.shape[1:]} does not match the grid "
                         f"{(grid.height, grid.width)}")
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=len(bands), dtype="float32",
                   crs=grid.crs, transform=Affine(*grid.transform), nodata=nodata, tiled=True, blockxsize=256,
                   blockysize=256, predictor=3, num_threads="all_cpus", **CODEC)
    if grid.width < 256 or grid.height < 256:
        profile.update(tiled=False)
        del profile["blockxsize"], profile["blockysize"]
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(stack)
        for i, n in enumerate(names, start=1):
            dst.set_band_description(i, n)
        if tags:
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return path


def read_raster(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    """All bands as a float32 array (bands, rows, cols) and the file's tags."""
    try:
        with rasterio.open(path) as src:
            return src.read().astype(np.float32), src.tags()
    except rasterio.errors.RasterioIOError as exc:
        raise OSError(f"{path}: unreadable raster ({exc})") from None


def source_of(path: Path) -> str:
    """The provenance of an archive composite (tag ``SOURCE``; an imported file without it is known by
    the importer's ``EO4DM_SOURCE`` tag). Reads the header only."""
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except rasterio.errors.RasterioIOError as exc:
        raise OSError(f"{path}: unreadable raster ({exc})") from None
    if tags.get(SOURCE_TAG):
        return tags[SOURCE_TAG]
    return SOURCE_IMPORT if "EO4DM_SOURCE" in tags else SOURCE_UNKNOWN


def grid_of(path: Path) -> Grid:
    """The raster's grid, lossless: CRS, full affine transform and shape."""
    with rasterio.open(path) as src:
        return Grid.from_affine(src.crs, src.transform, src.width, src.height)
