"""SL_2_LST swaths: reading, the product's flags, resampling onto the global grid, °C, downloads with the
Copernicus Data Space token (eo4dm_helpers.stac.slstr, loader.SlstrScene; DOMAIN.md §4.6)."""

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from eo4dm_helpers.config import Grid
from eo4dm_helpers.sample.world import truth, truth_on_grid
from eo4dm_helpers.stac import offline as O
from eo4dm_helpers.stac.assets import ASSET_MAPS
from eo4dm_helpers.stac.slstr import CONFIDENCE_MEANINGS, SwathError, lst_celsius, read_swath, resample

GRID = Grid("EPSG:4326", 163.4375, -19.4375, 0.03125, 156, 110)  # the demo global grid
BBOX = (163.4629, -22.8619, 168.3033, -19.4449)
DAY = date(2024, 3, 12)
BIT = {m: 1 << i for i, m in enumerate(CONFIDENCE_MEANINGS)}


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    return O.write_slstr_product(tmp_path_factory.mktemp("s3") / "a.SEN3", DAY, "sentinel-3a", BBOX, spacing_km=2.0,
                                 cloud_fraction=0.3)


def _flags(files):
    with xr.open_dataset(files["flags"], engine="h5netcdf") as ds:
        return ds["confidence_in"].values.astype(np.uint32), ds["bayes_in"].values


def test_reads_lst_in_kelvin_with_geolocation_and_masks_flagged_pixels(product):
    sw = read_swath(product)
    conf, bayes = _flags(product)
    with xr.open_dataset(product["LST"], engine="h5netcdf") as ds:
        unc = ds["LST_uncertainty"].values
    cloud = (conf & BIT["summary_cloud"]) != 0
    assert cloud.mean() > 0.2 and np.isnan(sw.lst[cloud]).all()
    assert np.isnan(sw.lst[(bayes & 2) != 0]).all()  # bayes_in single_moderate
    assert np.isnan(sw.lst[unc > 3]).all()  # LST_uncertainty > 3 K
    tr = truth(sw.lon, sw.lat, DAY)
    ok = np.isfinite(sw.lst)
    assert ok.sum() > 1000
    assert np.abs(sw.lst[ok] - 273.15 - tr.lst[ok]).mean() < 0.4  # Kelvin, decoded from the packed int16
    assert sw.masked["summary_cloud"] > 0 and sw.masked["uncertainty > 3 K"] > 0


def test_without_qc_clouds_are_kept_but_never_night_or_fill(product, tmp_path):
    sw = read_swath(product, qc=False)
    conf, _ = _flags(product)
    cloud = (conf & BIT["summary_cloud"]) != 0
    assert np.isfinite(sw.lst[cloud & ((conf & BIT["land"]) != 0)]).mean() > 0.99
    night = O.write_slstr_product(tmp_path / "n.SEN3", DAY, "sentinel-3a", BBOX, spacing_km=4.0, night=True)
    assert np.isnan(read_swath(night, qc=False).lst).all()  # no "day" bit: daytime LST only (DOMAIN.md §1.3)


def test_bit_positions_come_from_flag_meanings_else_the_documented_ones(product, tmp_path):
    conf, _ = _flags(product)
    # the same flags without their attributes: the documented positions give the same mask
    with xr.open_dataset(product["flags"], engine="h5netcdf") as ds:
        bare = xr.Dataset({k: (v.dims, v.values) for k, v in ds.data_vars.items()})
    plain = dict(product, flags=tmp_path / "flags_in.nc")
    bare.to_netcdf(plain["flags"], engine="h5netcdf")
    assert np.array_equal(np.isnan(read_swath(plain).lst), np.isnan(read_swath(product).lst))
    # bits declared elsewhere by flag_meanings are followed (here summary_cloud on bit 6, a spare bit)
    meanings = list(CONFIDENCE_MEANINGS)
    meanings[6], meanings[14] = "summary_cloud", "spare"
    moved = np.where((conf & BIT["summary_cloud"]) != 0, (conf & ~np.uint32(BIT["summary_cloud"])) | 64, conf)
    bare["confidence_in"] = (("rows", "columns"), moved.astype(np.uint16),
                             {"flag_masks": np.array([1 << i for i in range(16)], np.uint16),
                              "flag_meanings": " ".join(meanings)})
    bare = bare.drop_vars("bayes_in")
    other = dict(product, flags=tmp_path / "moved.nc")
    bare.to_netcdf(other["flags"], engine="h5netcdf")
    assert np.isnan(read_swath(other).lst[(moved & 64) != 0]).all()


def test_resampled_onto_the_grid_in_celsius_without_filling_cloud_holes(product):
    c = lst_celsius(product, GRID, 1500.0)
    assert c.shape == (GRID.height, GRID.width) and c.dtype == np.float32
    tr = truth_on_grid(GRID, DAY)
    ok = np.isfinite(c) & np.isfinite(tr.lst)
    assert ok.sum() > 500 and np.abs(c[ok] - tr.lst[ok]).mean() < 0.6
    # the clouds are 15 K colder in the file: none of that reaches the grid (without the flags, it does)
    assert np.mean((c - tr.lst)[ok] < -10) == 0
    raw = lst_celsius(product, GRID, 1500.0, qc=False)
    assert np.mean((raw - tr.lst)[np.isfinite(raw) & np.isfinite(tr.lst)] < -10) > 0.1
    sw = read_swath(product)
    assert np.isfinite(resample(sw, GRID, 1500.0)).sum() < np.isfinite(resample(read_swath(product, qc=False), GRID,
                                                                                  1500.0)).sum()


def test_a_swath_missing_a_variable_names_it(product, tmp_path):
    with xr.open_dataset(product["geodetic"], engine="h5netcdf", mask_and_scale=False) as ds:
        ds[["latitude_in"]].load().to_netcdf(tmp_path / "geodetic_in.nc", engine="h5netcdf")
    with pytest.raises(SwathError, match="longitude_in"):
        read_swath(dict(product, geodetic=tmp_path / "geodetic_in.nc"))


def test_slstr_scene_downloads_with_the_token_and_never_shows_the_password(tmp_path, monkeypatch):
    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.local.scenes import read_bands
    from eo4dm_helpers.stac.credentials import CredentialsError
    from eo4dm_helpers.stac.loader import slstr_scenes

    from .stac_world import PASSWORD, USER, stac_params

    pa = ASSET_MAPS["cdse"].product("SLSTR")
    cat = O.write_catalogue(tmp_path / "cat", {pa.collection: O.slstr_items(tmp_path / "cat", [DAY], BBOX, pa, 2.0)})
    monkeypatch.setenv("EO4DM_CDSE_USER", USER)
    monkeypatch.setenv("EO4DM_CDSE_PASSWORD", PASSWORD)
    with O.LoopbackStacApi(cat, credentials=(USER, PASSWORD), protected=(pa.collection,)) as api:
        cfg = load_config(stac_params(tmp_path, Path("/nonexistent"), api.url))
        lo, hi = datetime(2024, 3, 11, 13, tzinfo=UTC), datetime(2024, 3, 12, 13, tzinfo=UTC)
        scenes = slstr_scenes(cfg, lo, hi)
        assert [s.time_start.date() for s in scenes] == [date(2024, 3, 11)]  # ~10:00 local = 23:00 UTC the day before
        lst = read_bands(scenes[0], ["LST"], GRID)["LST"]
        assert lst.dtype == np.float32 and (lst == 0).any() and 280 < lst[lst > 0].mean() < 320  # K, 0 = masked
        files = [r for r in api.requests if r[1].startswith("/files/")]
        assert files and all(auth for _, _, auth in files)  # every download carried the token
        assert sum(1 for r in api.requests if r[1] == "/token") == 1
        cached = list((cfg.paths.output / "cache" / "stac").rglob("*.nc"))
        assert len(cached) == 3
        # a refused password: the message names the endpoint and status, never the password
        monkeypatch.setenv("EO4DM_CDSE_PASSWORD", "wrong-" + PASSWORD)
        (tmp_path / "b").mkdir()
        cfg2 = load_config(stac_params(tmp_path / "b", Path("/nonexistent"), api.url))
        with pytest.raises(CredentialsError) as exc:
            read_bands(slstr_scenes(cfg2, lo, hi)[0], ["LST"], GRID)
        assert "HTTP 401" in str(exc.value) and PASSWORD not in str(exc.value) and USER not in str(exc.value)
