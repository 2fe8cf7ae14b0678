"""The whole notebook suite through papermill on the (reduced) demo archive."""

import re

import numpy as np
import pytest

from eo4dm_helpers import indicators as I
from eo4dm_helpers.archive import Archive, read_raster
from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.sample import in_drought

from .conftest import _run, demo_params, production_params

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _pixel_lonlat(grid):
    from pyproj import Transformer

    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    x = grid.x0 + cols * grid.resolution
    y = grid.y0 - rows * grid.resolution
    if grid.crs != "EPSG:4326":
        x, y = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return x, y


def test_report_is_written_and_its_path_printed(demo_run):
    params, res = demo_run
    cfg = load_config(params)
    report = cfg.paths.output / "reports" / "2024-03-D2" / "index.html"
    assert f"2024-03-D2: report {report}" in res.stdout
    html = report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64") >= 5  # VHI, VCI, TCI, QSCORE, VAI maps embedded
    assert "Drought bulletin" in html and "Centre-Ouest" in html
    assert "from eo4dm_helpers" not in html  # inputs hidden
    # the headline's share in drought is the index page's figure for the dekad (one computation, one rounding)
    share = re.search(r"([\d.]+) % of land in drought", html)
    index = (cfg.paths.output / "reports" / "index.html").read_text(encoding="utf-8")
    row = re.search(r"<tr><td>2024-03-D2</td><td>[^<]*</td><td>([^<]*)</td>", index)
    assert share and row and row.group(1) == share.group(1), (share and share.group(1), row and row.group(1))
    for nb in ("01_medium_resolution", "06_indicators", "07_report"):
        assert (cfg.paths.output / "runs" / "2024-03-D2" / f"{nb}.ipynb").exists()
    assert not (cfg.paths.output / "work" / "2024-03-D2").exists()  # work folder cleaned


def test_injected_drought_is_found_where_and_when_it_was_injected(demo_run):
    params, _ = demo_run
    cfg = load_config(params)
    arch = Archive(cfg.paths.archive)
    vhi, _ = read_raster(arch.global_indicator("VHI", Dekad(2024, 3, 2)))
    grid = cfg.global_chain.grid
    lon, lat = _pixel_lonlat(grid)
    codes = I.classify(vhi[0], I.VHI_BREAKS)
    valid = codes > 0
    inside = in_drought(lon, lat) & valid
    outside = ~in_drought(lon, lat) & valid
    assert inside.sum() > 50 and outside.sum() > 500
    assert np.mean(codes[inside] <= 2) > 0.9  # Severe or worse in the drought region
    assert np.mean(codes[outside] == 5) > 0.9  # No drought elsewhere
    assert np.mean(codes[outside] >= 4) > 0.99

    vai, _ = read_raster(arch.local_indicator("DEMO", "VAI", Dekad(2024, 3, 2)))
    tile = cfg.local_chain.tiles[0].grid
    lon, lat = _pixel_lonlat(tile)
    v = vai[0]
    inside = in_drought(lon, lat) & ~np.isnan(v)
    outside = ~in_drought(lon, lat) & ~np.isnan(v)
    assert inside.sum() > 1000 and outside.sum() > 1000
    assert np.mean(v[inside] <= -1.5) > 0.9
    assert np.mean(v[outside] <= -1.5) < 0.05


def test_no_drought_before_it_was_injected(small_demo):
    from eo4dm_helpers.drought import run_indicators
    from eo4dm_helpers.workflow import open_context

    cfg = load_config(small_demo)
    ctx = open_context(small_demo, "2024-02-D1", cfg.paths.output / "work" / "test-2024-02-D1")
    sets = run_indicators(ctx)
    assert "VHI" in sets["global"].produced and "VAI" in sets["local_DEMO"].produced
    arch = Archive(cfg.paths.archive)
    vhi, _ = read_raster(arch.global_indicator("VHI", Dekad(2024, 2, 1)))
    lon, lat = _pixel_lonlat(cfg.global_chain.grid)
    codes = I.classify(vhi[0], I.VHI_BREAKS)
    inside = in_drought(lon, lat) & (codes > 0)
    assert inside.sum() > 50 and np.mean(codes[inside] <= 2) < 0.05  # the region is not in drought yet
    assert arch.zone_stats(Dekad(2024, 2, 1)).exists()


def test_missing_data_fails_with_notebook_and_cell_and_changes_nothing(small_demo, tmp_path):
    cfg = load_config(small_demo)
    before = sorted(p.relative_to(cfg.paths.archive) for p in cfg.paths.archive.rglob("*") if p.is_file())
    res = _run("--params", str(small_demo), "--dekad", "2023-06-D1")  # outside the reduced archive
    assert res.returncode == 1
    assert "notebook 01_medium_resolution.ipynb failed at cell" in res.stderr
    assert "NoDataError" in res.stderr and "no usable MODIS/VIIRS day" in res.stderr
    after = sorted(p.relative_to(cfg.paths.archive) for p in cfg.paths.archive.rglob("*") if p.is_file())
    assert after == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dekad", "2024-13-D4"], "--dekad: '2024-13-D4' is not a valid dekad"),
        (["--dekad", "2024-03-D3"], "not complete on 2024-03-21"),
        (["--start", "2024-03-D1", "--end", "2024-02-D1"], "--end: 2024-02-D1 is before --start"),
        (["--start", "2024-03-D1"], "--start/--end: both are needed"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, message):
    res = _run("--params", str(demo_params(tmp_path)), *args)
    assert res.returncode == 2
    assert message in res.stderr and res.stderr.count("\n") == 1


def test_bad_parameter_file_exits_2(tmp_path):
    p = demo_params(tmp_path, colour="blue")
    res = _run("--params", str(p), "--dekad", "2024-03-D1")
    assert res.returncode == 2 and "colour: unknown key" in res.stderr


def test_help_documents_every_option():
    res = _run("--help")
    assert res.returncode == 0
    for opt in ("--params", "--dekad", "--start", "--end", "--backfill", "Exit codes"):
        assert opt in res.stdout


def test_production_parameters_without_credentials_stop_before_any_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no stored Earth Engine credentials
    monkeypatch.delenv("EO4DM_EE_KEY", raising=False)
    res = _run("--params", str(production_params(tmp_path)), "--dekad", "2024-03-D2")
    assert res.returncode == 4, res.stderr
    assert "no Earth Engine credentials: set credentials.ee_key_file" in res.stderr
    assert "notebook" not in res.stderr and "Traceback" not in res.stderr
