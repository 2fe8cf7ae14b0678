"""Availability is counted per tile (``availability.s2_min`` / ``landsat_min`` are per tile, DOMAIN.md §1.2):
a tile with too few scenes waits even when the territory as a whole has enough, in both engines."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np

from eo4dm_helpers import products as P
from eo4dm_helpers import routine as R
from eo4dm_helpers.config import AvailabilityRules, Grid, LocalTile, SensorPeriod, load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.local.scenes import write_scene

from .conftest import demo_params

D = Dekad(2024, 3, 2)
WEST = LocalTile("WEST", Grid("EPSG:32758", 500000.0, 7600000.0, 10.0, 20, 20), ("58KEB",))
EAST = LocalTile("EAST", Grid("EPSG:32758", 700000.0, 7600000.0, 10.0, 20, 20), ("58KGB",))


def _cfg(tmp_path, backend="local"):
    cfg = load_config(demo_params(tmp_path))
    lc = replace(cfg.local_chain, tiles=(WEST, EAST), sensors=(SensorPeriod("S2", date(2017, 3, 28)),))
    return replace(cfg, backend=backend, global_chain=replace(cfg.global_chain, enabled=False), local_chain=lc,
                   availability=AvailabilityRules(s2_min=5, landsat_min=2, max_wait_days=15))


def _s2(cfg, tile, day, mgrs):
    t = datetime(2024, 3, day, 23, 20, tzinfo=UTC) - timedelta(days=1)  # the morning of ``day`` in Noumea
    write_scene(cfg.paths.scenes, P.S2.collection, f"{t:%Y%m%dT%H%M%S}_T{mgrs}", t, {"MGRS_TILE": mgrs},
                {"": {"B4": np.ones((20, 20), np.uint16)}}, tile.grid)


def test_local_engine_a_tile_short_of_scenes_waits_though_the_territory_has_enough(tmp_path):
    cfg = _cfg(tmp_path)
    for day in (11, 12, 13, 14, 15):
        _s2(cfg, WEST, day, "58KEB")
    for day in (16, 17):
        _s2(cfg, EAST, day, "58KGB")
    _s2(cfg, EAST, 18, "58KHB")  # over EAST but of an MGRS tile it does not list: not counted
    counts = {c.tile: c.found for c in R.count_products(cfg, D) if c.product == "S2"}
    assert counts == {"WEST": 5, "EAST": 2}  # the territory has 8
    a = R.check_availability(cfg, D, date(2024, 3, 22))
    assert a.decision == "wait" and "S2 (2/5)" in a.reason


def test_earth_engine_counts_each_tile_over_its_own_grid_and_mgrs_tiles(tmp_path, ee_offline):
    cfg = _cfg(tmp_path, backend="earthengine")
    sent = []

    def compute_value(obj):
        sent.append(obj)
        return [5, 2]  # WEST has enough, EAST too few (the territory: 7)

    ee_offline.data.computeValue = compute_value
    a = R.check_availability(cfg, D, date(2024, 3, 22))
    assert len(sent) == 1 and a.decision == "wait" and "S2 (2/5)" in a.reason
    text = json.dumps(ee_offline.serializer.encode(sent[0], for_cloud_api=True))
    for tile in (WEST, EAST):  # each tile's count is over its own rectangle and of its own MGRS tiles
        assert f"{tile.grid.x0:g}" in text.replace(".0,", ",") and tile.s2_tiles[0] in text
    assert "MGRS_TILE" in text and f"{_cfg(tmp_path).global_chain.grid.x0}" not in text  # not the territory's grid
