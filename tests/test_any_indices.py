"""Any set of indices, optional parts optional (issue 15): an NDVI-only global archive without LST, no local
chain and no scene store, through the EO4DM importer, ``run_all.py --backfill --mode drought``, auto mode and
the bulletin; an NDWI-only configuration; an all-NaN composite as a dekad without data."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import Affine

from eo4dm_helpers import completeness as C
from eo4dm_helpers import eo4dm_import as E
from eo4dm_helpers.archive import Archive, Month, read_raster, write_raster
from eo4dm_helpers.capabilities import capabilities
from eo4dm_helpers.config import ConfigError, Grid, load_config
from eo4dm_helpers.dekads import Dekad

from .conftest import _run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

W, H = 8, 6
GRID = {"crs": "EPSG:4326", "x0": 163.4375, "y0": -19.4375, "resolution": 0.03125, "width": W, "height": H}
TRANSFORM = Affine(0.03125, 0, 163.4375, 0, -0.03125, -19.4375)
YEARS = (2021, 2022, 2023, 2024)


def params(tmp: Path, global_chain: dict | None = None, **top) -> Path:
    """A parameter file with a tiny global grid, no LST, no local chain (the section absent), no scenes."""
    data = {
        "territory": {"name": "Testland", "code": "TL", "timezone": "Pacific/Noumea",
                      "bbox": [163.4629, -22.8619, 168.3033, -19.4449]},
        "backend": "local",
        "as_of": "2024-04-01",  # latest complete dekad: 2024-03-D3
        "history_start": "2024-03-01",
        "paths": {"archive": str(tmp / "archive"), "output": str(tmp / "output")},
        "global_chain": global_chain or {"enabled": True, "grid": GRID, "ndwi_sensors": [
            {"name": "MODIS", "start": "2000-02-24"}], "lst_sensors": [], "indices": ["NDVI"]},
        "indicators": {"convention": "standard", "reference": {"mode": "previous_years", "min_years": 3}},
        **top,
    }
    p = tmp / "params.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def ndvi(year: int, d: int) -> np.ndarray:
    """The store's NDVI: a pixel pattern that moves with the year (one pixel masked in every file)."""
    rng = np.random.default_rng(100 * year + d)
    a = (0.2 + 0.5 * rng.random((H, W))).astype(np.float32)
    a[0, 0] = np.nan
    return a


def tif(path: Path, bands: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=len(bands), dtype="float32",
                       crs="EPSG:4326", transform=TRANSFORM, nodata=np.nan) as dst:
        dst.write(np.stack(bands))


def build_store(tmp: Path) -> Path:
    """DATA_HISTO/Testland: MODIS NDVI dekad composites of March 2021-2024 and their month composites;
    2024-03-D3 has no valid pixel (every value NaN, count 0)."""
    modis = tmp / "DATA_HISTO" / "Testland" / "0_INDICES" / "MODIS"
    for y in YEARS:
        for d in (1, 2, 3):
            v = np.full((H, W), np.nan, np.float32) if (y, d) == (2024, 3) else ndvi(y, d)
            tif(modis / "DECADE" / f"MODIS_NDVI_{y}03_COMPD{d}.tif", [v, np.where(np.isnan(v), 0, 3).astype("f4")])
        tif(modis / "MONTH" / f"MODIS_NDVI_{y}03_COMPM.tif", [ndvi(y, 0), np.full((H, W), 9, np.float32)])
    return tmp / "DATA_HISTO"


def vci_expected(d: int) -> np.ndarray:
    """Kogan's VCI from first principles (DOMAIN.md §2.1): 100 (x - min) / (max - min) over the three years
    before 2024, pixel by pixel."""
    ref = np.stack([ndvi(y, d) for y in (2021, 2022, 2023)])
    with np.errstate(invalid="ignore"):  # clipped to the documented range (indicators.vci)
        return np.clip(100 * (ndvi(2024, d) - ref.min(axis=0)) / (ref.max(axis=0) - ref.min(axis=0)), 0, 100)


@pytest.fixture(scope="module")
def ndvi_run(tmp_path_factory):
    """The store imported, then ``run_all.py --backfill --mode drought`` for 2024-03-D3 (one routine dekad
    through the notebooks, the all-NaN one; D1 and D2 completed in-process): (params, result)."""
    tmp = tmp_path_factory.mktemp("ndvi_only")
    p = params(tmp)
    assert E.main([str(build_store(tmp)), "--params", str(p)]) == 0
    res = _run("--params", str(p), "--backfill", "--mode", "drought", "--start", "2024-03-D3", "--end", "2024-03-D3")
    return p, res


# ------------------------------------------------------------------------------------------------
def test_capabilities_follow_the_configured_indices(tmp_path):
    cfg = load_config(params(tmp_path))
    cap = capabilities(cfg)
    assert cfg.local_chain.enabled is False and cfg.paths.scenes is None  # both absent from the file
    assert cap.global_indices == ("NDVI",) and cap.global_indicators == ("VCI",)
    assert cap.headline == "VCI" and cap.headline_label() == "VCI (no LST configured)"
    demo = load_config(Path(__file__).resolve().parents[1] / "params" / "demo.yaml", check_layers=False)
    full = capabilities(demo)  # an existing parameter file: unchanged
    assert full.global_indices == ("NDWI", "LST") and full.global_indicators == ("VCI", "TCI", "VHI")
    assert full.vai_index == "NDWI" and full.vai_filter and full.headline == "VHI"


@pytest.mark.parametrize("chain, convention, message", [
    ({"lst_sensors": [], "indices": ["NDVI", "LST"]}, "standard",
     "global_chain.indices: lists LST but global_chain.lst_sensors is empty"),
    ({"lst_sensors": [], "indices": ["NDVI"]}, "eo4dm",
     "indicators.convention: eo4dm computes VCI from NDWI, which global_chain.indices (NDVI) does not list: "
     "set indicators.convention: standard"),
    ({"lst_sensors": [], "indices": ["NDWI"]}, "standard",
     "indicators.convention: standard computes VCI from NDVI, which global_chain.indices (NDWI) does not list: "
     "set indicators.convention: eo4dm"),
    ({"indices": ["EVI"]}, "standard", "global_chain.indices[0]: unknown index"),
])
def test_incoherent_indices_give_one_line(tmp_path, chain, convention, message):
    gc = {"enabled": True, "grid": GRID, "ndwi_sensors": [{"name": "MODIS", "start": "2000-02-24"}], **chain}
    p = params(tmp_path, gc, indicators={"convention": convention})
    with pytest.raises(ConfigError, match="^") as info:
        load_config(p)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_importer_takes_ndvi_composites_and_exits_1_on_files_it_cannot_place(tmp_path, capsys):
    store = build_store(tmp_path)
    p = params(tmp_path)
    odd = store / "Testland" / "0_INDICES" / "MODIS" / "DECADE" / "MODIS_EVI_202403_COMPD1.tif"
    tif(odd, [ndvi(2024, 1), ndvi(2024, 1)])
    assert E.main([str(store), "--params", str(p), "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "MODIS NDVI dekad" in out and "MODIS NDVI month" in out and "total: 16 would write" in out
    assert err.count("\n") == 1 and "1 file(s) of the store could not be placed (0_INDICES/MODIS/DECADE/" \
        "MODIS_EVI_202403_COMPD1.tif" in err
    assert E.main([str(store), "--params", str(p)]) == 1  # the rest is imported, the odd file said again
    arch = Archive(load_config(p).paths.archive)
    assert arch.global_composite("MODIS", "NDVI", Dekad(2023, 3, 2)).exists()
    assert arch.global_composite("MODIS", "NDVI", Month(2022, 3)).exists()
    assert arch.latest_global_dekad() == Dekad(2024, 3, 3)  # an NDVI-only archive is not empty
    capsys.readouterr()
    assert E.main([str(store), "--params", str(p), "--ignore-unplaced"]) == 0
    assert "total: 0 written, 16 kept" in capsys.readouterr().out


def test_an_ndvi_only_archive_is_complete_with_ndvi_composites_and_vci(tmp_path):
    store = build_store(tmp_path)
    p = params(tmp_path)
    assert E.main([str(store), "--params", str(p)]) == 0
    cfg = load_config(p)
    inv = C.Inventory.scan(cfg)
    exp = C.expected(cfg, Dekad(2024, 3, 2), inv, bulletin=False)
    assert [str(x) for x in exp] == ["composite MODIS NDVI", "indicator VCI"]
    third = C.missing(cfg, Dekad(2024, 3, 3), inv, bulletin=False)
    assert [str(x) for x in third] == ["indicator VCI", "month indicator VCI"]  # composites all there


def test_backfill_in_drought_mode_gives_vci_from_first_principles(ndvi_run):
    p, res = ndvi_run
    assert res.returncode == 0, res.stderr[-3000:]
    assert "error" not in res.stderr.lower()
    cfg = load_config(p)
    arch = Archive(cfg.paths.archive)
    assert "completing 2 dekad(s) in-process (no bulletin): 2024-03-D1 to 2024-03-D2" in res.stdout
    for d in (1, 2):  # the history, completed in-process
        vci, tags = read_raster(arch.global_indicator("VCI", Dekad(2024, 3, d)))
        np.testing.assert_allclose(vci[0], vci_expected(d), rtol=1e-5, atol=1e-4, equal_nan=True)
        assert np.isnan(vci[0][0, 0]) and tags["REFERENCE_YEARS"] == "2021,2022,2023"
        for name in ("TCI", "VHI"):
            assert not arch.global_indicator(name, Dekad(2024, 3, d)).exists()
    ref = np.stack([ndvi(y, 0) for y in (2021, 2022, 2023)])
    month, _ = read_raster(arch.global_indicator("VCI", Month(2024, 3)))  # the month survives an all-NaN D3
    with np.errstate(invalid="ignore"):
        expected = np.clip(100 * (ndvi(2024, 0) - ref.min(axis=0)) / (ref.max(axis=0) - ref.min(axis=0)), 0, 100)
    np.testing.assert_allclose(month[0], expected, rtol=1e-5, atol=1e-4, equal_nan=True)


def test_the_bulletin_heads_with_vci_and_mentions_no_tci_or_vhi_failure(ndvi_run):
    p, res = ndvi_run
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = load_config(p)
    page = (cfg.paths.output / "reports" / "2024-03-D3" / "index.html").read_text(encoding="utf-8")
    assert "Headline indicator: VCI (no LST configured)" in page
    assert "territory VCI" in page and "territory VHI" not in page
    vci, _ = read_raster(Archive(cfg.paths.archive).global_indicator("VCI", Dekad(2024, 3, 2)))
    assert f"<td>{round(float(np.nanmean(vci[0])), 3)}</td>" in page  # the previous dekad's territory VCI
    for failure in ("TCI (global) not produced", "VHI (global) not produced", "needs both VCI and TCI",
                    "no MODIS LST", "VHI (global)"):  # (the parameters, shown at the end, list lst_sensors: [])
        assert failure not in page
    index = (cfg.paths.output / "reports" / "index.html").read_text(encoding="utf-8")
    assert "territory VCI" in index and "VCI (no LST configured)" in index and "territory VHI" not in index
    assert "<td>2024-03-D2</td>" in index and "<td>2024-03-D1</td>" in index  # the timeline's dekads


def test_an_all_nan_composite_is_a_dekad_without_data(ndvi_run):
    p, res = ndvi_run
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = load_config(p)
    arch = Archive(cfg.paths.archive)
    d3 = Dekad(2024, 3, 3)
    record = C.nodata_path(cfg.paths.archive, "global", d3)
    doc = json.loads(record.read_text(encoding="utf-8"))
    assert "no valid pixel" in doc["no_data"]
    assert doc["superseded"] == ["composites/global/dekad/MODIS_NDVI_202403_COMPD3.tif"]
    assert not arch.global_composite("MODIS", "NDVI", d3).exists()  # replaced by the record
    assert arch.global_composite("MODIS", "NDVI", Month(2024, 3)).exists()  # the month's stays
    page = (cfg.paths.output / "reports" / "2024-03-D3" / "index.html").read_text(encoding="utf-8")
    assert "No global chain data for this dekad" in page and "no valid pixel" in page
    assert not C.missing(cfg, d3, C.Inventory.scan(cfg), bulletin=True)  # complete: nothing left to do
    # a rerun of its indicators finds the same no-data dekad and changes nothing
    from eo4dm_helpers.history import build_indicators

    before = record.read_bytes()
    written = build_indicators(cfg, d3)
    assert all("VCI_202403D3" not in str(f) and "nodata" not in str(f) for f in written)
    assert record.read_bytes() == before


def test_auto_mode_completes_an_ndvi_only_archive_without_scenes(ndvi_run):
    p, res = ndvi_run
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = load_config(p)
    arch = Archive(cfg.paths.archive)
    d1 = arch.global_indicator("VCI", Dekad(2024, 3, 1))
    d1.unlink()  # a dekad auto mode must take up again
    auto = _run("--params", str(p))
    assert auto.returncode == 0, auto.stderr[-3000:]
    assert d1.exists() and "paths.scenes" not in auto.stdout + auto.stderr
    again = _run("--params", str(p))
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_an_ndwi_only_local_chain_gives_vai_without_the_vegetation_filter(tmp_path):
    """NDWI-only configuration: global VCI from NDWI (EO4DM convention, no LST), a local tile with NDWI
    composites only: VAI = (x - mean) / std over the reference (DOMAIN.md §1.6), the NDVI filter skipped and
    said so."""
    from eo4dm_helpers.drought import run_indicators
    from eo4dm_helpers.history import _cleanup, _context

    local_grid = {"crs": "EPSG:32758", "x0": 600000.0, "y0": 7600000.0, "resolution": 10.0, "width": 5, "height": 4}
    gc = {"enabled": True, "grid": GRID, "ndwi_sensors": [{"name": "MODIS", "start": "2000-02-24"}],
          "indices": ["NDWI"]}
    lc = {"enabled": True, "indices": ["NDWI"], "sensors": [{"name": "S2", "start": "2017-03-28"}],
          "tiles": [{"id": "82075", "grid": local_grid}]}
    p = params(tmp_path, gc, local_chain=lc, indicators={"convention": "eo4dm"})
    cfg = load_config(p)
    cap = capabilities(cfg)
    assert cap.global_indicators == ("VCI",) and cap.vai_index == "NDWI" and not cap.vai_filter
    arch = Archive(cfg.paths.archive)
    tile = cfg.local_chain.tiles[0]
    d = Dekad(2024, 3, 1)
    rng = np.random.default_rng(7)
    values = {y: rng.normal(0.2, 0.05, (4, 5)).astype(np.float32) for y in YEARS}
    for y, v in values.items():
        write_raster(arch.local_composite(tile.id, "NDWI", Dekad(y, 3, 1)), [v, np.full_like(v, 2)], ["NDWI", "count"],
                     tile.grid)
        g = Grid(**GRID)
        write_raster(arch.global_composite("MODIS", "NDWI", Dekad(y, 3, 1)), [ndvi(y, 1), ndvi(y, 1) * 0 + 3],
                     ["NDWI", "count"], g)
    exp = [str(x) for x in C.expected(cfg, d, C.Inventory.scan(cfg), bulletin=False)]
    assert exp == ["composite MODIS NDWI", "indicator VCI", "composite 82075 NDWI", "indicator VAI 82075"]
    ctx = _context(cfg, d, "indicators")
    try:
        sets = run_indicators(ctx)
    finally:
        _cleanup(ctx)
    ref = np.stack([values[y] for y in (2021, 2022, 2023)])
    vai, tags = read_raster(arch.local_indicator(tile.id, "VAI", d))
    np.testing.assert_allclose(vai[0], (values[2024] - ref.mean(axis=0)) / ref.std(axis=0), rtol=1e-4, atol=1e-5)
    assert tags["INDEX"] == "NDWI"
    assert "filter not applied" in sets["local_82075"].warnings["VAI"]
    assert sorted(sets["global"].produced) == ["VCI"] and not sets["global"].missing


def test_earth_engine_graphs_without_lst_read_no_lst_and_export_the_configured_indices(ee_offline):
    from dataclasses import replace
    from datetime import date

    from eo4dm_helpers.ee import graphs
    from eo4dm_helpers.ee.plan import plan_dekad, plan_global

    from . import ee_graph as G

    nc = load_config(Path(__file__).resolve().parents[1] / "params" / "new_caledonia.yaml", check_layers=False)
    nc = replace(nc, local_chain=replace(nc.local_chain, tiles=nc.local_chain.tiles[:1]))  # one tile: fast
    cfg = replace(nc, global_chain=replace(nc.global_chain, lst_sensors=(), indices=("NDVI",)),
                  indicators=replace(nc.indicators, convention="standard"), local_chain=replace(
                      nc.local_chain, indices=("NDWI",)))
    t = G.tree(graphs.global_composite(cfg, date(2024, 3, 11), date(2024, 3, 20)))
    ids = {n["args"]["id"] for n in G.calls(t, "ImageCollection.load")}
    assert "MODIS/061/MOD09GA" in ids and not ids & {"MODIS/061/MOD11A1", "MODIS/061/MYD11A1"}
    assert "LST" not in G.constants(t) and "nan_NDWI" in G.constants(t)
    names = sorted(p.product for p in plan_dekad(cfg, Dekad(2024, 3, 3)))
    tile = cfg.local_chain.tiles[0].id
    assert [n for n in names if n.startswith("global_")] == ["global_MODIS_NDVI_202403_COMPD3",
                                                             "global_MODIS_NDVI_202403_COMPM"]
    assert f"local_{tile}_LS2_NDWI_202403_COMPD3" in names and f"local_{tile}_LS2_NDVI_202403_COMPD3" not in names
    full = sorted(p.product for p in plan_global(nc, Dekad(2024, 3, 2)))
    assert full == ["global_MODIS_LST_202403_COMPD2", "global_MODIS_NDVI_202403_COMPD2",
                    "global_MODIS_NDWI_202403_COMPD2"]  # an existing parameter file: unchanged


def test_the_local_engine_without_lst_keeps_every_reflectance_pixel_the_lst_mask_removed(tmp_path):
    """No LST configured: the daily NDVI is the one of the LST configuration without the common LST mask
    (DOMAIN.md §1.3 qmask_all needs LST): equal wherever LST was valid, and valid wherever it was, at least;
    the dekad writes the NDVI composite only."""
    from datetime import date

    from eo4dm_helpers import chains
    from eo4dm_helpers.history import build_composites
    from eo4dm_helpers.sample import build_demo_archive

    from .conftest import demo_params

    tile = {"id": "DEMO", "grid": {"crs": "EPSG:32758", "x0": 544400.0, "y0": 7613300.0, "resolution": 10.0,
                                   "width": 16, "height": 16}}  # a tiny tile: the scenes are written fast
    demo = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "demo.yaml").read_text(encoding="utf-8"))
    base = load_config(demo_params(tmp_path, local_chain={**demo["local_chain"], "tiles": [tile]}),
                       check_layers=False)
    build_demo_archive(base, start=date(2024, 3, 1), end=date(2024, 3, 4))  # four days: enough
    data = yaml.safe_load(base.source.read_text(encoding="utf-8"))
    data["global_chain"].update(lst_sensors=[], indices=["NDVI"])
    data["local_chain"]["enabled"] = False
    data["indicators"]["convention"] = "standard"
    p = tmp_path / "ndvi.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = load_config(p, check_layers=False)
    with_lst, _ = chains.global_days(base, date(2024, 3, 1), date(2024, 3, 4))
    without, avail = chains.global_days(cfg, date(2024, 3, 1), date(2024, 3, 4))
    assert not any("MOD11A1" in k or "MYD11A1" in k for k in avail.found)  # no LST product read
    assert without and {d.day for d in with_lst} <= {d.day for d in without}
    by_day = {d.day: d for d in without}
    for d in with_lst:
        a, b = d.values["NDVI"], by_day[d.day].values["NDVI"]
        assert "LST" not in by_day[d.day].values
        lst_valid = ~np.isnan(d.values["LST"])
        np.testing.assert_array_equal(a[lst_valid], b[lst_valid])
        assert np.all(~np.isnan(b[~np.isnan(a)])) and np.count_nonzero(~np.isnan(b)) >= np.count_nonzero(~np.isnan(a))
    written = build_composites(cfg, Dekad(2024, 3, 1), C.Inventory.scan(cfg), log=lambda m: None)
    assert [f.name for f in written] == ["MODIS_NDVI_202403_COMPD1.tif"]
