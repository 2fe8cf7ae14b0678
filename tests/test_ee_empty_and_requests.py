"""Issue 14 on the Earth Engine route: an empty window or dekad never breaks a graph, a dekad without
a valid day becomes a no-data record (as on the local engine), the download fill stays float32, and the
global chain's NDWI, NDVI and LST of a period come in one ``computePixels`` request per tile."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eo4dm_helpers import completeness as C
from eo4dm_helpers.archive import Archive, Month, write_raster
from eo4dm_helpers.composites import choose_window
from eo4dm_helpers.config import Grid, load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.ee import graphs
from eo4dm_helpers.ee.fakes import FakeEarthEngine
from eo4dm_helpers.ee.pixels import FILL, download_expression, fetch_expression
from eo4dm_helpers.ee.plan import plan_dekad
from eo4dm_helpers.ee.steps import download
from eo4dm_helpers.ee.transfer import download_dekad
from eo4dm_helpers.local.land import LandMask
from eo4dm_helpers.workflow import Context

from . import ee_graph as G

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cfg(tmp_path):
    c = load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)
    return replace(c, paths=replace(c.paths, archive=tmp_path / "archive", output=tmp_path / "out"),
                   local_chain=replace(c.local_chain, enabled=False))


# --------------------------------------------------------------------------------------------
# Empty collections
# --------------------------------------------------------------------------------------------
def test_mean_count_merges_a_fully_masked_float_template(ee_offline):
    t = G.tree(graphs.mean_count(ee_offline.ImageCollection([]), ("NDVI", "NDWI")))
    for reducer in ("reduce.mean", "reduce.count"):
        [r] = G.calls(t, reducer)
        merge = r["args"]["collection"]
        assert merge["fn"] == "ImageCollection.merge"
        [template] = merge["args"]["collection2"]["args"]["images"]
        assert template["fn"] == "Image.updateMask" and template["args"]["mask"]["args"]["value"] == 0  # all masked
        typed = template["args"]["image"]
        assert typed["fn"] == "Image.toFloat" and typed["args"]["value"]["args"]["names"] == ["NDVI", "NDWI"]


def test_every_widening_window_and_the_global_composite_survive_an_empty_collection(ee_offline, cfg):
    local = G.tree(graphs.local_dekad_composite(cfg, cfg.local_chain.tiles[0], Dekad(2024, 3, 2)))
    assert len({id(n) for n in G.calls(local, "ImageCollection.merge")
                if n["args"]["collection2"].get("fn") == "ImageCollection.fromImages"}) >= 4  # 4 windows
    glob = G.tree(graphs.global_composite(cfg, date(2024, 3, 11), date(2024, 3, 20)))
    names = [n["args"]["collection"]["args"]["collection2"]["args"]["images"][0]["args"]["image"]["args"]["value"]
             ["args"]["names"] for n in G.calls(glob, "reduce.mean")
             if n["args"]["collection"]["fn"] == "ImageCollection.merge"]
    assert names == [["NDWI", "NDVI", "LST"]]


def test_local_engine_widens_past_an_empty_window():
    """Mirror: an empty dekad window has a NaN-score of 1 and is widened (DOMAIN.md §1.5)."""
    class Obs:
        scene_id, day = "a", date(2024, 3, 31)  # in the month window only (D2 11-20, ±10 d: 1-30)

        def read(self, names, win):
            return {n: np.full(win.shape, 0.4, dtype=np.float32) for n in names}

    land = LandMask(Grid("EPSG:32758", 0.0, 0.0, 10.0, 4, 3), array=np.ones((3, 4), dtype=bool))
    choice = choose_window([Obs()], Dekad(2024, 3, 2), land, 0.5, window=None)
    assert choice.level == "M" and choice.scores[""] == 1.0 and choice.scores["M"] == 0.0


# --------------------------------------------------------------------------------------------
# No valid day: a no-data record, not a failure
# --------------------------------------------------------------------------------------------
class CountingEngine(FakeEarthEngine):
    """The fake computePixels plus the one ``describe`` request: image counts per product."""

    def __init__(self, images: dict[str, int]) -> None:
        super().__init__()
        self.images = images
        self.values: list[object] = []

    def compute_value(self, obj):
        self.values.append(obj)
        return {p: {"images": n} for p, n in self.images.items()}


def _arrays(plans, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for p in plans:
        a = rng.normal(0.3, 0.2, (2, p.grid.height, p.grid.width)).astype(np.float32)
        a[:, :50, :70] = np.nan
        out[p.product] = a
    return out


def test_a_dekad_without_a_valid_day_is_recorded_as_no_data(ee_offline, cfg, tmp_path):
    d = Dekad(2024, 3, 3)
    plans = plan_dekad(cfg, d)
    assert len(plans) == 6  # NDWI, NDVI, LST of the dekad and of the month
    fake = CountingEngine({p.product: 0 if "COMPD" in p.product else 12 for p in plans})
    g = cfg.global_chain.grid
    stale = write_raster(Archive(cfg.paths.archive).global_composite("MODIS", "NDWI", d),  # an earlier run's
                         [np.zeros((g.height, g.width)), np.ones((g.height, g.width))], ["NDWI", "count"], g)
    out = download(Context(cfg, d, tmp_path / "work", "run-1", None), fake)
    record = C.nodata_path(cfg.paths.archive, "global", d)
    assert out == [record] and len(fake.values) == 1 and fake.pixel_requests == []
    assert "no usable MODIS/VIIRS day" in json.loads(record.read_text())["no_data"]
    assert not stale.exists()  # a composite of the dekad no longer holds


def test_a_dekad_with_data_downloads_and_drops_an_old_record(ee_offline, cfg, tmp_path):
    d = Dekad(2024, 3, 2)
    plans = plan_dekad(cfg, d)
    fake = CountingEngine({p.product: 7 for p in plans})
    for p in plans:
        fake.add(p, _arrays([p])[p.product])
    record = C.nodata_path(cfg.paths.archive, "global", d)
    record.parent.mkdir(parents=True)
    record.write_text(C.nodata_record("no usable MODIS/VIIRS day"))
    out = download(Context(cfg, d, tmp_path / "work", "run-1", None), fake)
    assert sorted(out) == sorted(p.archive_path for p in plans) and not record.exists()


# --------------------------------------------------------------------------------------------
# Requests: float32 fill, one request for the global products of a period
# --------------------------------------------------------------------------------------------
def test_download_fill_keeps_float32(ee_offline, cfg):
    plans = plan_dekad(cfg, Dekad(2024, 3, 2))
    for expr in (download_expression(plans[0]), fetch_expression(plans)[0]):
        t = G.tree(expr)
        assert t["fn"] == "Image.toFloat"  # unmask with a double constant would promote to float64
        fill = t["args"]["value"]
        assert fill["fn"] == "Image.unmask" and fill["args"]["value"]["args"]["value"] == FILL


@pytest.mark.parametrize("dekad,requests", [(Dekad(2024, 3, 2), 1), (Dekad(2024, 3, 3), 2)])
def test_global_products_of_a_period_come_in_one_request(ee_offline, cfg, tmp_path, dekad, requests):
    plans = plan_dekad(cfg, dekad)
    fake = FakeEarthEngine()
    arrays = _arrays(plans)
    for p in plans:
        fake.add(p, arrays[p.product])
    out = download_dekad(plans, tmp_path / "work", cfg.paths.archive, fake, method="direct", log=lambda m: None)
    assert len(fake.pixel_requests) == requests  # one per period (the global grid fits one request)
    assert [len(r["bandIds"]) for r in fake.pixel_requests] == [6] * requests
    for p, path in zip(plans, out, strict=True):
        with rasterio.open(path) as src:
            assert src.descriptions == p.bands and src.dtypes == ("float32", "float32")
            np.testing.assert_array_equal(src.read(), arrays[p.product])
    if dekad.index == 3:
        assert Archive(cfg.paths.archive).global_composite("MODIS", "LST", Month(2024, 3)) in out
