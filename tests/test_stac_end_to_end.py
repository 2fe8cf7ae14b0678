"""``run_all.py`` with LST from Sentinel-3 SLSTR and the local chain's scenes from a STAC API, against an
offline catalogue served on 127.0.0.1 (issue #10): the routine runs a dekad end to end, and the dry run
lists the STAC searches it would make without making them.

The reference (3 years, ``min_years: 3`` as in production) is built by ``workflow.backfill`` for the same
dekad of 2021-2023 from the same catalogue: the indicators of a dekad only need that dekad of earlier
years (DOMAIN.md §1.6), so three dekads of history are enough to exercise the real rule rather than a
lowered ``min_years``.
"""

import numpy as np
import pytest
import rasterio

from eo4dm_helpers import indicators as I
from eo4dm_helpers.archive import Archive, read_raster
from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.sample import in_drought
from eo4dm_helpers.stac.offline import LoopbackStacApi
from eo4dm_helpers.workflow import backfill

from .conftest import _run
from .stac_world import PASSWORD, USER, build_world, stac_params
from .test_run_all import _pixel_lonlat

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
SLSTR_COLLECTION = "sentinel-3-sl-2-lst-ntc"


def test_slstr_lst_and_stac_scenes_run_a_dekad_end_to_end(small_demo, tmp_path, monkeypatch):
    store = load_config(small_demo).paths.scenes  # MODIS NDWI and WorldCover stay in the scene store
    cat = build_world(store, tmp_path / "cat", (2021, 2022, 2023, 2024), ((3, 1), (3, 31)), ((3, 11), (3, 20)))
    monkeypatch.setenv("EO4DM_CDSE_USER", USER)
    monkeypatch.setenv("EO4DM_CDSE_PASSWORD", PASSWORD)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with LoopbackStacApi(cat, credentials=(USER, PASSWORD), protected=(SLSTR_COLLECTION,)) as api:
        params = stac_params(tmp_path, store, api.url)
        cfg = load_config(params)
        for year in (2021, 2022, 2023):
            assert backfill(cfg, Dekad(year, 3, 2), Dekad(year, 3, 2), log=lambda m: None) == 1

        n = len(api.requests)
        dry = _run("--params", str(params), "--dekad", "2024-03-D2", "--dry-run", "--plan-dir", str(tmp_path / "plan"))
        assert dry.returncode == 0, dry.stderr[-2000:]
        assert len(api.requests) == n  # the dry run lists the searches, it does not make them
        assert "4 STAC search(es)" in dry.stdout
        assert (f"SLSTR: {api.url} collection={SLSTR_COLLECTION} bbox=[163.4375, -22.8750, 168.3125, -19.4375] "
                "datetime=2024-03-10T13:00:00Z/2024-03-20T13:00:00Z") in dry.stdout
        for text in ("S2: ", "collection=sentinel-2-l2a", "L8: ", "L9: ", "collection=landsat-c2-l2"):
            assert text in dry.stdout
        assert (tmp_path / "plan" / "stac_searches.txt").read_text().strip() in dry.stdout

        check = _run("--params", str(params), "--dekad", "2024-03-D2", "--check-availability")
        assert check.returncode == 0, check.stderr[-2000:]
        rows = {line.split()[0]: line.split() for line in check.stdout.splitlines() if line.startswith("SL_2_LST")}
        assert rows["SL_2_LST"][2:4] == ["10", "10"]  # one SLSTR day per day of the dekad, found in the catalogue
        assert "2024-03-D2: process" in check.stdout

        res = _run("--params", str(params), "--dekad", "2024-03-D2")
        assert res.returncode == 0, res.stderr[-3000:]

    report = cfg.paths.output / "reports" / "2024-03-D2" / "index.html"
    assert f"2024-03-D2: report {report}" in res.stdout and report.exists()
    arch = Archive(cfg.paths.archive)
    d = Dekad(2024, 3, 2)
    assert arch.global_composite("SLSTR", "LST", d).exists() and not arch.global_composite("MODIS", "LST", d).exists()
    for name in ("TCI", "VCI", "VHI"):
        assert arch.global_indicator(name, d).exists(), name
    with rasterio.open(arch.global_indicator("TCI", d)) as src:  # the TCI reference: SLSTR only (DOMAIN.md §1.9)
        assert src.tags()["REFERENCE_YEARS"] == "2021,2022,2023"
    assert sorted(p.name for p in (cfg.paths.archive / "composites" / "global" / "dekad").glob("*_LST_*")) == \
        [f"SLSTR_LST_{y}03_COMPD2.tif" for y in (2021, 2022, 2023, 2024)]

    # the injected drought (hotter, drier west coast) is seen through the SLSTR LST and the STAC scenes
    grid = cfg.global_chain.grid
    lon, lat = _pixel_lonlat(grid)
    tci, _ = read_raster(arch.global_indicator("TCI", d))
    ok = ~np.isnan(tci[0])
    inside, outside = in_drought(lon, lat) & ok, ~in_drought(lon, lat) & ok
    assert inside.sum() > 50 and outside.sum() > 500
    assert np.median(tci[0][inside]) < 0.2 < 0.5 < np.median(tci[0][outside])
    vhi, _ = read_raster(arch.global_indicator("VHI", d))
    codes = I.classify(vhi[0], I.VHI_BREAKS)
    assert np.mean(codes[in_drought(lon, lat) & (codes > 0)] <= 2) > 0.8
    vai, _ = read_raster(arch.local_indicator("DEMO", "VAI", d))
    tlon, tlat = _pixel_lonlat(cfg.local_chain.tiles[0].grid)
    v = vai[0]
    assert np.mean(v[in_drought(tlon, tlat) & ~np.isnan(v)] <= -1.5) > 0.8

    # every SL_2_LST file was fetched with the token; the password is nowhere in what the run wrote
    files = [r for r in api.requests if SLSTR_COLLECTION in r[1] and r[1].startswith("/files/")]
    assert files and all(auth for _, _, auth in files)
    for p in cfg.paths.output.rglob("*"):
        if p.is_file() and p.suffix in (".ipynb", ".html", ".log", ".json", ".txt"):
            assert PASSWORD not in p.read_text(encoding="utf-8", errors="ignore"), p
