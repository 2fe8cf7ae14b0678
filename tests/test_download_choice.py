"""Which route each product takes: the global dekad goes direct, a 10 m tile goes by Drive export unless
the user forces direct; the dry-run summary shows it."""

from pathlib import Path

import pytest

from eo4dm_helpers.config import load_config
from eo4dm_helpers.ee.plan import ExportPlan
from eo4dm_helpers.ee.transfer import DIRECT_MAX_REQUESTS, choose_method

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def grids():
    cfg = load_config(ROOT / "params" / "new_caledonia.yaml", check_layers=False)
    return cfg.global_chain.grid, cfg.local_chain.tiles[0].grid


def _plan(ee, grid, name="p"):
    return ExportPlan(name, Path("/archive") / f"{name}.tif", ee.Image.constant([0, 0]).toFloat(), grid,
                      ("NDWI", "NDWI_count"))


def test_global_dekad_goes_direct_and_a_10m_tile_by_drive(ee_offline, grids):
    glob, tile = grids
    assert (glob.width, glob.height) == (1162, 821) and (tile.width, tile.height) == (21979, 21600)
    method, reason = choose_method(_plan(ee_offline, glob))
    assert method == "direct" and "1 computePixels request" in reason
    method, reason = choose_method(_plan(ee_offline, tile))
    assert method == "drive" and f"direct up to {DIRECT_MAX_REQUESTS}" in reason and "force 'direct'" in reason


def test_the_user_can_force_either_route(ee_offline, grids):
    glob, tile = grids
    forced = choose_method(_plan(ee_offline, tile), force="direct")
    assert forced.method == "direct" and "forced" in forced.reason and "request(s)" in forced.reason
    assert choose_method(_plan(ee_offline, glob), force="drive").method == "drive"
    with pytest.raises(ValueError, match="method must be"):
        choose_method(_plan(ee_offline, glob), force="ftp")


def test_dry_run_summary_shows_the_method(ee_offline, grids):
    glob, tile = grids
    assert "\nmethod:     direct: 1 computePixels request" in _plan(ee_offline, glob).summary()
    assert "\nmethod:     drive: " in _plan(ee_offline, tile).summary()
