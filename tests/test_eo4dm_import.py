"""Import of an EO4DM historical store (DATA_HISTO layout, DOMAIN.md §1.2, §1.5, §1.6)."""

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from eo4dm_helpers import eo4dm_import as E
from eo4dm_helpers.archive import Archive, Month, grid_of, read_raster
from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.storage import LockError, run_lock

from .conftest import demo_params

# the demo's global grid, so the command line's check against the parameters passes
GLOBAL = ("EPSG:4326", Affine(0.03125, 0, 163.4375, 0, -0.03125, -19.4375), 156, 110)
LOCAL = ("EPSG:32758", Affine(10, 0, 600000, 0, -10, 7600000), 8, 6)
YEARS = (2021, 2022, 2023)


def tif(path: Path, bands, grid=GLOBAL, dtype="float32", nodata=np.nan, crs=True, **opts) -> Path:
    crs_, transform, w, h = grid
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.stack([np.broadcast_to(np.asarray(b, dtype=dtype), (h, w)) for b in bands])
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=len(bands), dtype=dtype,
                       crs=crs_ if crs else None, transform=transform, nodata=nodata, **opts) as dst:
        dst.write(arr)
    return path


def with_hole(value: float, grid=GLOBAL) -> np.ndarray:
    a = np.full((grid[3], grid[2]), value, dtype="float32")
    a[0, 0] = np.nan  # a masked pixel
    return a


def ndwi(y: int, d: int) -> float:
    return 0.1 * (y - 2020) + 0.01 * d


def build_store(tmp: Path, grid=GLOBAL) -> Path:
    """DATA_HISTO/New_Caledonia_Fr with composites of March 2021-2023, indicators, one Landsat tile
    (named the three ways EO4DM stores use) and files that cannot be imported."""
    root = tmp / "DATA_HISTO" / "New_Caledonia_Fr"
    modis = root / "0_INDICES" / "MODIS"
    for y in YEARS:
        for d in (1, 2):
            tif(modis / "DECADE" / f"MODIS_NDWI_{y}03_COMPD{d}.tif", [with_hole(ndwi(y, d), grid), d + 3], grid)
            tif(modis / "DECADE" / f"MODIS_LST_{y}03_COMPD{d}.tif", [with_hole(20 + y - 2020 + d, grid), d], grid)
        tif(modis / "MONTH" / f"MODIS_NDWI_{y}03_COMPM.tif", [ndwi(y, 0), 20], grid)
        tif(modis / "MONTH" / f"MODIS_LST_{y}03_COMPM.tif", [25.0, 20], grid)
    # a dekad with a single valid day: EO4DM exports the image itself, one band (no count)
    tif(modis / "DECADE" / "MODIS_LST_202203_COMPD2.tif", [with_hole(24.5, grid)], grid)
    ind = root / "1_INDICATEURS" / "GLOBAL"
    for name, v in (("VCI", 0.4), ("TCI", 0.6), ("VHI", 0.5)):
        tif(ind / "DECADE" / f"{name}_202303D1.tif", [v, 0.7], grid)
    tif(ind / "MONTH" / "VHI_202303M.tif", [0.45, 0.8], grid)
    (ind / "STATS").mkdir(parents=True)
    (ind / "STATS" / "VHI_STATS_202303D1.csv").write_text("commune,mean\nNoumea,0.5\n")
    loc = root / "0_INDICES" / "LANDSAT_SENTINEL2" / "DECADE"
    tif(loc / "LANDSAT_SENTINEL2_082075_202103_NDWI_COMPD1.tif", [0.31, 2], LOCAL)  # as the EO4DM code names it
    tif(loc / "82075_NDWI_202203_COMPD1e.tif", [0.32, 3], LOCAL)  # tile as first field, DOMAIN.md §1.2 order
    tif(loc / "82075" / "LS2_NDWI_202303_DAY1m.tif", [0.33, 1], LOCAL)  # per-tile sub-folder
    tif(loc / "LANDSAT_SENTINEL2_082075_202303_NDVI_COMPD1.tif", [0.6, 2], LOCAL)
    tif(loc / "LANDSAT_SENTINEL2_082075_202003_NDWI_COMPM.tif", [0.30, 4], LOCAL)  # Landsat-only month
    tif(loc / "LS2_NDWI_202303_COMPD2.tif", [0.5, 1], LOCAL)  # no tile anywhere
    tif(root / "1_INDICATEURS" / "LOCAL" / "DECADE" / "VAI_082075_202303D1.tif", [-1.2, 0.3], LOCAL)
    # not importable
    tif(root / "0_INDICES" / "ASCAT" / "MONTH" / "ASCAT_SWI_202303.tif", [0.4, 30], grid)
    tif(root / "1_INDICATEURS" / "ALERT" / "MONTH" / "MAI_202303M.tif", [0.1, 1], grid)
    tif(modis / "DECADE" / "MODIS_NDWI_2023-03_COMPD3.tif", [0.1, 1], grid)
    return root


N_GLOBAL_COMP, N_GLOBAL_IND, N_LOCAL_COMP, N_VAI = 18, 4, 4, 1
N_COPY = N_GLOBAL_COMP + N_GLOBAL_IND + N_LOCAL_COMP + N_VAI


def skip_reason(plan: E.ImportPlan, name: str) -> str:
    (a,) = [a for a in plan.skips if a.rel.endswith(name)]
    return a.reason


def archive_files(archive: Path) -> list[Path]:
    return sorted(p for p in archive.rglob("*") if p.is_file()) if archive.exists() else []


# ------------------------------------------------------------------------------------------------
def test_plan_places_every_file_or_says_why_not(tmp_path):
    root = build_store(tmp_path)
    plan = E.plan_import(tmp_path / "DATA_HISTO", tmp_path / "archive")  # DATA_HISTO with one territory
    assert plan.source == root
    assert len(plan.copies) == N_COPY and not plan.keeps
    assert not (tmp_path / "archive").exists()  # planning writes nothing
    assert "ASCAT" in skip_reason(plan, "ASCAT_SWI_202303.tif")
    assert "ALERT" in skip_reason(plan, "MAI_202303M.tif")
    assert "STATS" in skip_reason(plan, "VHI_STATS_202303D1.csv")
    assert "not recognised" in skip_reason(plan, "MODIS_NDWI_2023-03_COMPD3.tif")
    assert "no Landsat tile" in skip_reason(plan, "LS2_NDWI_202303_COMPD2.tif")
    assert "local_months" in skip_reason(plan, "LANDSAT_SENTINEL2_082075_202003_NDWI_COMPM.tif")
    assert len(plan.skips) == 6
    # skipped by design (ASCAT, ALERT, STATS, a month composite without local_months) vs. not placeable
    assert sorted(a.rel.rsplit("/", 1)[-1] for a in plan.unplaced) == ["LS2_NDWI_202303_COMPD2.tif",
                                                                        "MODIS_NDWI_2023-03_COMPD3.tif"]
    one_band = [a for a in plan.copies if a.rel.endswith("MODIS_LST_202203_COMPD2.tif")][0]
    assert one_band.rewrite and "single-image" in one_band.reason
    text = plan.summary()
    assert "MODIS NDWI dekad" in text and "would write" in text and "total: 27 would write" in text


def test_import_round_trips_paths_bands_values_and_tags(tmp_path):
    root = build_store(tmp_path)
    arch = Archive(tmp_path / "archive")
    report = E.run_import(E.plan_import(root, arch.root))
    assert report.n_written == N_COPY and report.n_kept == 0
    assert report.written["MODIS NDWI dekad"] == 6 and report.written["VAI 82075"] == 1
    assert report.written["local NDWI 82075"] == 3 and report.written["local NDVI 82075"] == 1

    src = root / "0_INDICES" / "MODIS" / "DECADE" / "MODIS_NDWI_202203_COMPD2.tif"
    dst = arch.global_composite("MODIS", "NDWI", Dekad(2022, 3, 2))
    data, tags = read_raster(dst)
    ref, _ = read_raster(src)
    np.testing.assert_array_equal(data, ref)  # bit for bit, NaN included
    assert data.shape == (2, 110, 156) and np.isnan(data[0, 0, 0]) and data[1, 5, 5] == 5
    assert tags["EO4DM_SOURCE"] == "0_INDICES/MODIS/DECADE/MODIS_NDWI_202203_COMPD2.tif"
    assert grid_of(dst) == grid_of(src)
    with rasterio.open(dst) as d:
        assert d.descriptions == ("NDWI", "count")

    assert read_raster(arch.global_composite("MODIS", "LST", Month(2023, 3)))[0][0, 3, 3] == 25.0
    vhi, _ = read_raster(arch.global_indicator("VHI", Dekad(2023, 3, 1)))
    np.testing.assert_allclose(vhi[:, 2, 2], [0.5, 0.7])
    assert read_raster(arch.global_indicator("VHI", Month(2023, 3)))[0][1, 0, 0] == pytest.approx(0.8)
    vai, _ = read_raster(arch.local_indicator("82075", "VAI", Dekad(2023, 3, 1)))
    np.testing.assert_allclose(vai[:, 0, 0], [-1.2, 0.3])

    # local composites: the three naming styles land on one tile, the EO4DM composite type in a tag
    expect = {Dekad(2021, 3, 1): ("COMPD1", 0.31), Dekad(2022, 3, 1): ("COMPD1e", 0.32),
              Dekad(2023, 3, 1): ("DAY1m", 0.33)}
    for d, (ctype, v) in expect.items():
        data, tags = read_raster(arch.local_composite("82075", "NDWI", d))
        assert tags["COMPOSITE_TYPE"] == ctype and data[0, 1, 1] == pytest.approx(v)
    assert read_raster(arch.local_composite("82075", "NDVI", Dekad(2023, 3, 1)))[1]["COMPOSITE_TYPE"] == "COMPD1"
    assert not [p for p in archive_files(arch.root) if p.suffix != ".tif"]  # no temporary, no sidecar, no lock


def test_single_band_composite_gets_the_count_eo4dm_reads_from_it(tmp_path):
    root = build_store(tmp_path)
    arch = Archive(tmp_path / "archive")
    E.run_import(E.plan_import(root, arch.root))
    data, tags = read_raster(arch.global_composite("MODIS", "LST", Dekad(2022, 3, 2)))
    assert data.shape[0] == 2 and "COUNT_DERIVED" in tags
    assert np.isnan(data[0, 0, 0]) and data[1, 0, 0] == 0  # masked pixel: no observation
    assert data[0, 4, 4] == pytest.approx(24.5) and data[1, 4, 4] == 1


def test_imported_years_serve_as_the_reference(tmp_path):
    arch = Archive(tmp_path / "archive")
    E.run_import(E.plan_import(build_store(tmp_path), arch.root))
    hist = arch.global_history("NDWI", Dekad(2024, 3, 1))
    assert sorted(hist) == list(YEARS)
    for y, p in hist.items():
        assert read_raster(p)[0][0, 7, 7] == pytest.approx(ndwi(y, 1))
    assert sorted(arch.global_history("LST", Month(2024, 3))) == list(YEARS)
    assert sorted(arch.local_history("82075", "NDWI", Dekad(2024, 3, 1))) == list(YEARS)
    assert arch.latest_global_dekad() == Dekad(2023, 3, 2)  # the routine continues from here


def test_second_import_writes_nothing_and_overwrite_rewrites(tmp_path):
    root = build_store(tmp_path)
    arch = tmp_path / "archive"
    E.run_import(E.plan_import(root, arch))
    before = {p: p.stat().st_mtime_ns for p in archive_files(arch)}
    plan = E.plan_import(root, arch)
    assert not plan.copies and len(plan.keeps) == N_COPY
    report = E.run_import(plan)
    assert report.n_written == 0 and report.n_kept == N_COPY
    assert {p: p.stat().st_mtime_ns for p in archive_files(arch)} == before
    assert "total: 0 written" in report.summary()
    # overwrite: an archive file edited since is replaced by the store's
    target = Archive(arch).global_indicator("TCI", Dekad(2023, 3, 1))
    with rasterio.open(target, "r+") as d:
        d.write(np.zeros((2, 110, 156), dtype="float32"))
    report = E.run_import(E.plan_import(root, arch), overwrite=True)
    assert report.n_written == N_COPY
    assert read_raster(target)[0][0, 3, 3] == pytest.approx(0.6)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_tiff"])
@pytest.mark.parametrize("full_check", [True, False])
def test_corrupt_or_truncated_file_stops_the_import_before_any_write(tmp_path, damage, full_check):
    root = build_store(tmp_path)
    bad = root / "0_INDICES" / "MODIS" / "DECADE" / "MODIS_NDWI_202303_COMPD1.tif"
    raw = bad.read_bytes()
    if damage == "truncate":
        bad.write_bytes(raw[: len(raw) // 2])  # header intact, data cut: an interrupted copy
    elif damage == "garbage":
        bad.write_bytes(raw[:16] + os.urandom(len(raw) - 16))
    else:
        bad.write_text("<html>quota exceeded</html>")
    with pytest.raises(E.EO4DMImportError) as exc:
        E.plan_import(root, tmp_path / "archive", full_check=full_check)
    msg = str(exc.value)
    assert "0_INDICES/MODIS/DECADE/MODIS_NDWI_202303_COMPD1.tif" in msg and "nothing was written" in msg
    assert "\n" not in msg
    assert not (tmp_path / "archive").exists()


def test_grid_mismatch_is_refused(tmp_path):
    root = build_store(tmp_path)
    shifted = (GLOBAL[0], GLOBAL[1] @ Affine.translation(0.5, 0), GLOBAL[2], GLOBAL[3])  # half a pixel east
    tif(root / "1_INDICATEURS" / "GLOBAL" / "DECADE" / "VHI_202303D1.tif", [0.5, 0.7], shifted)
    with pytest.raises(E.EO4DMImportError, match=r"VHI_202303D1\.tif: grid .* differs .*share one grid"):
        E.plan_import(root, tmp_path / "archive")
    assert not (tmp_path / "archive").exists()


def test_store_on_another_grid_than_the_archive_is_refused(tmp_path):
    arch = Archive(tmp_path / "archive")
    E.run_import(E.plan_import(build_store(tmp_path / "a"), arch.root))
    other = ("EPSG:4326", Affine(0.03125, 0, 163.0, 0, -0.03125, -19.0), 156, 110)
    n = len(archive_files(arch.root))
    with pytest.raises(E.EO4DMImportError, match="differs from the archive's existing global files"):
        E.plan_import(build_store(tmp_path / "b", grid=other), arch.root)
    assert len(archive_files(arch.root)) == n


def test_wrong_bands_or_missing_crs_is_refused(tmp_path):
    root = build_store(tmp_path)
    ind = root / "1_INDICATEURS" / "GLOBAL" / "DECADE"
    tif(ind / "TCI_202303D1.tif", [0.6])  # an indicator always has b2 QSCORE
    with pytest.raises(E.EO4DMImportError, match=r"TCI_202303D1\.tif: 1 band\(s\), expected 2"):
        E.plan_import(root, tmp_path / "archive")
    tif(ind / "TCI_202303D1.tif", [0.6, 0.7, 0.1])
    with pytest.raises(E.EO4DMImportError, match=r"3 band\(s\)"):
        E.plan_import(root, tmp_path / "archive")
    tif(ind / "TCI_202303D1.tif", [0.6, 0.7], crs=False)
    with pytest.raises(E.EO4DMImportError, match=r"TCI_202303D1\.tif: no CRS"):
        E.plan_import(root, tmp_path / "archive")
    assert not (tmp_path / "archive").exists()


def test_local_month_composites_on_request(tmp_path):
    root = build_store(tmp_path)
    loc = root / "0_INDICES" / "LANDSAT_SENTINEL2" / "DECADE"
    tif(loc / "LANDSAT_SENTINEL2_082075_202003_NDWI_COMPD2.tif", [0.2, 1], LOCAL)  # a real dekad wins
    arch = Archive(tmp_path / "archive")
    plan = E.plan_import(root, arch.root, local_months=True)
    assert "takes precedence" in skip_reason(plan, "LANDSAT_SENTINEL2_082075_202003_NDWI_COMPM.tif")
    E.run_import(plan)
    for d, (ctype, v) in {1: ("COMPM", 0.30), 2: ("COMPD2", 0.2), 3: ("COMPM", 0.30)}.items():
        data, tags = read_raster(arch.local_composite("82075", "NDWI", Dekad(2020, 3, d)))
        assert tags["COMPOSITE_TYPE"] == ctype and data[0, 0, 0] == pytest.approx(v)
    assert 2020 in arch.local_history("82075", "NDWI", Dekad(2024, 3, 3))


def test_two_store_files_for_one_archive_file(tmp_path):
    root = build_store(tmp_path)
    loc = root / "0_INDICES" / "LANDSAT_SENTINEL2" / "DECADE"
    copy = loc / "82075" / "LS2_NDWI_202103_COMPD1.tif"
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes((loc / "LANDSAT_SENTINEL2_082075_202103_NDWI_COMPD1.tif").read_bytes())
    plan = E.plan_import(root, tmp_path / "archive")  # identical: one is kept, the other is a duplicate
    (dup,) = [a for a in plan.skips if a.reason.startswith("duplicate of")]
    assert {dup.rel.rsplit("/", 1)[1], dup.reason.rsplit("/", 1)[1]} == {
        "LS2_NDWI_202103_COMPD1.tif", "LANDSAT_SENTINEL2_082075_202103_NDWI_COMPD1.tif"}
    tif(copy, [0.99, 1], LOCAL)  # different content: which one is right is not ours to guess
    with pytest.raises(E.EO4DMImportError, match="both map to composites/local/82075/dekad/LS2_NDWI_202103"):
        E.plan_import(root, tmp_path / "archive")


def test_run_refuses_a_source_changed_since_the_plan_and_a_locked_archive(tmp_path):
    root = build_store(tmp_path)
    arch = tmp_path / "archive"
    plan = E.plan_import(root, arch)
    with run_lock(arch), pytest.raises(LockError):
        E.run_import(plan)
    tif(root / "1_INDICATEURS" / "GLOBAL" / "MONTH" / "VHI_202303M.tif", [0.1, 0.8])
    st = (root / "1_INDICATEURS" / "GLOBAL" / "MONTH" / "VHI_202303M.tif").stat()
    os.utime(root / "1_INDICATEURS" / "GLOBAL" / "MONTH" / "VHI_202303M.tif", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    with pytest.raises(E.EO4DMImportError, match="VHI_202303M.tif: changed since the plan"):
        E.run_import(plan)
    assert [p.name for p in archive_files(arch)] == []


def test_several_territories_must_be_chosen(tmp_path):
    build_store(tmp_path)
    (tmp_path / "DATA_HISTO" / "Fiji" / "0_INDICES").mkdir(parents=True)
    with pytest.raises(E.EO4DMImportError, match="several territories"):
        E.plan_import(tmp_path / "DATA_HISTO", tmp_path / "archive")
    with pytest.raises(E.EO4DMImportError, match="no 0_INDICES"):
        E.plan_import(tmp_path / "DATA_HISTO" / "Fiji" / "0_INDICES", tmp_path / "archive")


def test_command_line(tmp_path, capsys):
    build_store(tmp_path)
    params = demo_params(tmp_path)
    archive = load_config(params).paths.archive
    src = str(tmp_path / "DATA_HISTO")
    # two files cannot be placed (a malformed date, no tile): listed, and exit 1 once the rest is imported
    assert E.main([src, "--params", str(params), "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "total: 27 would write" in out and not archive.exists()
    assert err.count("\n") == 1 and "2 file(s) of the store could not be placed" in err
    assert "LS2_NDWI_202303_COMPD2.tif" in err and "MODIS_NDWI_2023-03_COMPD3.tif" in err
    assert E.main([src, "--params", str(params), "--quick"]) == 1
    out = capsys.readouterr().out
    assert "total: 27 written, 0 kept" in out and "skipped 6 file(s)" in out
    assert E.main([src, "--params", str(params), "--ignore-unplaced"]) == 0  # skipped by choice: exit 0
    assert "total: 0 written, 27 kept" in capsys.readouterr().out
    # errors: one line, exit 2
    bad = tmp_path / "DATA_HISTO" / "New_Caledonia_Fr" / "1_INDICATEURS" / "GLOBAL" / "MONTH" / "VHI_202303M.tif"
    bad.write_bytes(bad.read_bytes()[:300])
    assert E.main([src, "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "VHI_202303M.tif" in err
    assert E.main([src, "--params", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_command_line_refuses_a_store_off_the_parameters_grid(tmp_path, capsys):
    other = ("EPSG:4326", Affine(0.0625, 0, 163.4375, 0, -0.0625, -19.4375), 78, 55)
    build_store(tmp_path, grid=other)
    params = demo_params(tmp_path)
    assert E.main([str(tmp_path / "DATA_HISTO"), "--params", str(params), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "global_chain.grid" in err and err.count("\n") == 1


def test_damaged_block_data_is_caught_by_the_full_check(tmp_path):
    root = build_store(tmp_path)
    bad = root / "0_INDICES" / "MODIS" / "MONTH" / "MODIS_LST_202103_COMPM.tif"
    tif(bad, [with_hole(25.0), 20], compress="deflate")
    with rasterio.open(bad) as src:  # overwrite the middle of the first block's compressed bytes
        off = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        n = int(src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    with open(bad, "r+b") as fh:
        fh.seek(off + n // 4)
        fh.write(b"\xff" * (n // 2))
    with pytest.raises(E.EO4DMImportError, match=r"MODIS_LST_202103_COMPM\.tif: corrupt or unreadable"):
        E.plan_import(root, tmp_path / "archive")
    E.plan_import(root, tmp_path / "archive", full_check=False)  # the quick check only sees the layout


def test_finite_nodata_becomes_nan_and_integer_data_is_refused(tmp_path):
    root = build_store(tmp_path)
    f = root / "0_INDICES" / "MODIS" / "MONTH" / "MODIS_NDWI_202103_COMPM.tif"
    b1 = np.full((110, 156), 0.1, dtype="float32")
    b1[3, 3] = -9999
    tif(f, [b1, 20], nodata=-9999)
    arch = Archive(tmp_path / "archive")
    plan = E.plan_import(root, arch.root)
    assert "nodata -9999 turned into NaN" in [a for a in plan.copies if a.source == f][0].reason
    E.run_import(plan)
    data, _ = read_raster(arch.global_composite("MODIS", "NDWI", Month(2021, 3)))
    assert np.isnan(data[0, 3, 3]) and data[0, 3, 4] == pytest.approx(0.1) and data[1, 3, 3] == 20
    tif(root / "1_INDICATEURS" / "GLOBAL" / "DECADE" / "VCI_202303D1.tif", [40, 70], dtype="int16", nodata=None)
    with pytest.raises(E.EO4DMImportError, match=r"VCI_202303D1\.tif: band 1 is int16, expected floating point"):
        E.plan_import(root, tmp_path / "archive2")
