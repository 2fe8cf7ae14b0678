"""One lossless grid type: shape, full affine and CRS, read back from the raster, compared exactly."""

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from eo4dm_helpers.archive import grid_of, write_raster
from eo4dm_helpers.config import Grid
from eo4dm_helpers.ee.plan import output_grid

GRID = Grid("EPSG:32758", 600000.0, 7600000.0, 10.0, 40, 30)


def _raster(path, crs, transform, width=40, height=30):
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32", crs=crs,
                       transform=transform) as dst:
        dst.write(np.zeros((1, height, width), np.float32))
    return path


def test_the_archive_reads_its_grid_back_losslessly(tmp_path):
    p = write_raster(tmp_path / "a.tif", [np.zeros(GRID.shape)], ["x"], GRID)
    assert grid_of(p) == GRID and grid_of(p).same_as(GRID)
    odd = Affine(10.0, 0.5, 600000.0, 0.25, -20.0, 7600000.0)
    g = grid_of(_raster(tmp_path / "b.tif", "EPSG:32758", odd))
    assert g.affine == odd and g.shape == (30, 40) and g.y_resolution == 20.0 and g.rotation == (0.5, 0.25)


@pytest.mark.parametrize("crs, transform, why", [
    ("EPSG:32758", Affine(10.0, 0, 600000.0, 0, -20.0, 7600000.0), "transform e"),  # same x size, other y size
    ("EPSG:32758", Affine(10.0, 0, 600005.0, 0, -10.0, 7600000.0), "transform c"),  # origin
    ("EPSG:32758", Affine(10.0, 0, 600000.0, 0, -10.0, 7600010.0), "transform f"),
    ("EPSG:32758", Affine(10.0, 0.001, 600000.0, 0, -10.0, 7600000.0), "transform b"),  # rotation
    ("EPSG:32759", Affine(10.0, 0, 600000.0, 0, -10.0, 7600000.0), "CRS"),
])
def test_the_guard_catches_any_other_grid(tmp_path, crs, transform, why):
    p = _raster(tmp_path / "other.tif", crs, transform)
    with pytest.raises(ValueError, match="must not change") as exc:
        output_grid(GRID, p)
    assert why in str(exc.value)


def test_the_guard_accepts_the_same_grid_however_its_crs_is_written(tmp_path):
    p = _raster(tmp_path / "same.tif", "EPSG:32758", GRID.affine)
    wkt = rasterio.crs.CRS.from_epsg(32758).to_wkt()
    assert output_grid(Grid(wkt, 600000.0, 7600000.0, 10.0, 40, 30), p).same_as(GRID)
    with pytest.raises(ValueError, match="shape"):
        output_grid(Grid("EPSG:32758", 600000.0, 7600000.0, 10.0, 41, 30), p)


def test_geobox_round_trip():
    gbox = GRID.geobox
    assert gbox.shape == (30, 40) and gbox.affine == GRID.affine
    assert Grid.from_geobox(gbox) == GRID
