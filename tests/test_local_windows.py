"""Window-by-window processing gives the whole-array result, on the demo tile with small windows.

The S2 shadow projection needs a 130 px halo aligned on its 100 m blocks, the L7 gap fill 25 px; the
composites' window widening needs tile-wide NaN-scores. With windows much smaller than those reaches,
every staged scene and every composite must still be bit-identical to one whole-grid window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from eo4dm_helpers import chains
from eo4dm_helpers.composites import choose_window, local_dekad_composite, write_composite
from eo4dm_helpers.config import Grid, load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.local.highres import Staged
from eo4dm_helpers.local.land import LandMask, land_mask, worldcover_scenes
from eo4dm_helpers.local.rasters import RasterWriter, read_window
from eo4dm_helpers.local.scenes import SceneReader
from eo4dm_helpers.local.windows import Window, full, iter_windows, map_ordered, with_halo

DEKAD = Dekad(2021, 3, 1)  # S2 scenes, L8, and L7 SLC-off (gap fill) in the widened window


@pytest.fixture(scope="module")
def demo(small_demo):
    cfg = load_config(small_demo)
    tile = cfg.local_chain.tiles[0]
    return cfg, tile, land_mask(cfg.paths.scenes, tile.grid)


def _equal(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(a, b)  # NaN == NaN for assert_array_equal


def test_land_mask_by_windows_and_staged_equals_whole(demo, tmp_path):
    cfg, tile, land = demo
    assert 0.2 < land.mean() < 0.95
    _equal(land_mask(cfg.paths.scenes, tile.grid, window=17), land)
    staged = LandMask.staged(cfg.paths.scenes, tile.grid, tmp_path / "land.tif", window=64)
    _equal(staged.as_array(), land)


def test_cross_crs_reads_are_the_same_by_windows(demo):
    """The demo's global WorldCover is EPSG:4326; reading it onto the UTM tile by 23 px windows gives
    the pixels of one whole read (exact transformer, not GDAL's window-dependent approximation)."""
    cfg, tile, _ = demo
    scene = next(s for ss in worldcover_scenes(cfg.paths.scenes).values() for s in ss if "global" in s.index)
    with SceneReader(scene, tile.grid) as r:
        whole = r.read(["Map"])["Map"]
        parts = np.zeros_like(whole)
        for win in iter_windows(whole.shape, 23):
            parts[win.slices] = r.read(["Map"], win.rio)["Map"]
    assert len(np.unique(whole)) > 1
    _equal(parts, whole)


@pytest.fixture(scope="module")
def scenes(demo):
    cfg, tile, land = demo
    whole, avail = chains.highres_scenes(cfg, tile, DEKAD, ("S2", "L7", "L8", "L9"), land, window=None)
    assert {"S2", "L7", "L8"} <= {p.product for p in whole}
    assert any(p.product == "L7" for p in whole)  # SLC-off: gap filled
    return whole, avail


def test_scenes_by_small_windows_equal_whole_array(demo, scenes):
    cfg, tile, land = demo
    whole, avail = scenes
    small, avail_small = chains.highres_scenes(cfg, tile, DEKAD, ("S2", "L7", "L8", "L9"), land, window=40)
    assert [p.scene_id for p in small] == [p.scene_id for p in whole]
    assert [d.reason for d in avail_small.dropped] == [d.reason for d in avail.dropped]
    for a, b in zip(small, whole, strict=True):
        assert a.notes == b.notes
        for n in ("NDVI", "NDWI"):
            _equal(a.values[n], b.values[n])


def test_staged_files_written_by_windows_equal_whole_array(demo, scenes, tmp_path):
    cfg, tile, land = demo
    whole, _ = scenes
    mask = LandMask.staged(cfg.paths.scenes, tile.grid, tmp_path / "land.tif", window=64)
    staged, _ = chains.highres_scenes(cfg, tile, DEKAD, ("S2", "L7", "L8", "L9"), mask, tmp_path / "scenes",
                                      window=48)
    assert all(isinstance(s, Staged) for s in staged)
    by_id = {p.scene_id: p for p in whole}
    for s in staged:
        again = Staged.from_file(s.path)
        assert (again.day, again.product, again.scene_id) == (s.day, s.product, s.scene_id)
        data = read_window(s.path, [1, 2])
        _equal(data[0], by_id[s.scene_id].values["NDVI"])
        _equal(data[1], by_id[s.scene_id].values["NDWI"])
    assert not list((tmp_path / "scenes").glob(".tmp-*"))


def test_composite_written_by_windows_equals_whole_array(demo, scenes, tmp_path):
    cfg, tile, land = demo
    whole_images, _ = scenes
    nan_max = cfg.local_chain.thresholds.composite_nan_max
    whole = local_dekad_composite(whole_images, DEKAD, land, nan_max)
    mask = LandMask(tile.grid, array=land)
    choice = choose_window(whole_images, DEKAD, mask, nan_max, window=33)
    paths = {n: tmp_path / f"{n}.tif" for n in ("NDVI", "NDWI")}
    comp = write_composite(choice, DEKAD, tile.grid, paths, window=33)
    assert (comp.level, comp.window, comp.images) == (whole.level, whole.window, whole.images)
    for n in ("NDVI", "NDWI"):
        data = read_window(paths[n], [1, 2])
        _equal(data[0], whole.mean[n])
        _equal(data[1], whole.count[n])
        _equal(np.asarray(comp.mean[n]), whole.mean[n])  # the returned bands read the files
    with rasterio.open(paths["NDWI"]) as src:
        assert src.tags()["COMPOSITE_TYPE"] == whole.composite_type(DEKAD)
        assert src.descriptions == ("NDWI", "count")


def test_writer_leaves_unwritten_windows_nan_and_nothing_on_error(tmp_path):
    grid = Grid("EPSG:32758", 0.0, 0.0, 10.0, 300, 260)
    with RasterWriter(tmp_path / "a.tif", grid, ["x", "count"], {"K": 1}) as w:
        w.write(Window(0, 0, 256, 256), [np.ones((256, 256)), np.zeros((256, 256))])
        w.tags["LATE"] = "set at the end"
    data = read_window(tmp_path / "a.tif", [1, 2])
    assert (data[0, :256, :256] == 1).all() and np.isnan(data[0, 256:, :]).all() and np.isnan(data[1, :, 256:]).all()
    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.tags()["LATE"] == "set at the end" and src.block_shapes[0] == (256, 256)
    with pytest.raises(RuntimeError), RasterWriter(tmp_path / "b.tif", grid, ["x"]) as w:
        w.write(Window(0, 0, 10, 10), [np.ones((10, 10))])
        raise RuntimeError("stop")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["a.tif"]


def test_windows_partition_the_grid_and_halos_align():
    wins = list(iter_windows((100, 70), 32))
    cover = np.zeros((100, 70), int)
    for w in wins:
        cover[w.slices] += 1
    assert (cover == 1).all() and len(wins) == 12
    assert list(iter_windows((100, 70), None)) == [Window(0, 0, 100, 70)]
    h = with_halo(Window(32, 32, 32, 32), 13, (100, 70), align=10)
    assert h == Window(10, 10, 70, 60)  # start rounded down, end up (and clipped at the grid) to 10 px
    assert Window(32, 32, 32, 32).within(h) == (slice(22, 54), slice(22, 54))
    assert full(Grid("EPSG:4326", 0, 0, 1, 7, 5)) == Window(0, 0, 5, 7)


def test_map_ordered_keeps_the_order():
    assert list(map_ordered(lambda x: x * x, range(50), workers=3)) == [x * x for x in range(50)]
    assert list(map_ordered(str, [1, 2], workers=1)) == ["1", "2"]
