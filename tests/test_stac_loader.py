"""STAC items as scenes of the local engine (eo4dm_helpers.stac.loader): asset names mapped onto the
specification's bands, Sentinel-2 DN harmonized (DOMAIN.md §4.1), dask chunks read per window, and the
same pixels as the local scene store for the same scenes."""

from datetime import UTC, date, datetime
from types import SimpleNamespace

import numpy as np
import pytest

from eo4dm_helpers import chains
from eo4dm_helpers import products as P
from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.local.highres import preprocess_highres
from eo4dm_helpers.local.scenes import list_scenes, read_bands
from eo4dm_helpers.stac import offline as O
from eo4dm_helpers.stac.assets import ASSET_MAPS
from eo4dm_helpers.stac.loader import PROBABILITY, StacReader, ee_properties, highres_scenes, s2_dn_shift

from .stac_world import build_world, stac_params

LO, HI = datetime(2024, 2, 29, 13, tzinfo=UTC), datetime(2024, 3, 20, 13, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(small_demo, tmp_path_factory):
    """The reduced demo store, a STAC copy of its 2024-02-19..03-31 S2/Landsat scenes on 127.0.0.1 and
    parameters reading the local chain from it."""
    store = load_config(small_demo).paths.scenes
    root = tmp_path_factory.mktemp("stacl")
    cat = build_world(store, root / "cat", (2024,), ((2, 19), (3, 31)), ((3, 11), (3, 11)), ("S2", "L8", "L9"))
    with O.LoopbackStacApi(cat) as api:
        cfg = load_config(stac_params(root, store, api.url))
        yield SimpleNamespace(store=store, cfg=cfg, tile=cfg.local_chain.tiles[0], api=api, root=root)


def _pairs(w, product):
    stac = {s.index: s for s in highres_scenes(w.cfg, product, w.tile, LO, HI)}
    local = {s.index: s for s in list_scenes(w.store, product.collection, LO, HI)}
    assert stac and set(stac) == set(local)
    return [(stac[k], local[k]) for k in sorted(stac)]


def test_sentinel2_bands_equal_the_scene_store_after_harmonization(world):
    pairs = _pairs(world, P.S2)
    grid = world.tile.grid
    for st, loc in pairs:
        assert st.item.properties["s2:processing_baseline"] == "05.10"  # DN stored +1000 in the catalogue
        assert s2_dn_shift(st.item, "red") == 1000
        a, b = read_bands(st, P.S2.bands, grid), read_bands(loc, P.S2.bands, grid)
        for band in P.S2.bands:
            assert a[band].dtype == b[band].dtype and np.array_equal(a[band], b[band]), band
        assert st.properties["MEAN_SOLAR_AZIMUTH_ANGLE"] == pytest.approx(loc.properties["MEAN_SOLAR_AZIMUTH_ANGLE"])
        aux = st.auxiliary(P.S2_CLOUD_PROBABILITY)
        assert aux is not None and st.auxiliary(P.S2_CLOUD_SCORE_PLUS) is None
        from eo4dm_helpers.local.scenes import find_scene

        cp = find_scene(world.store, P.S2_CLOUD_PROBABILITY, loc.index, loc.time_start.year)
        assert np.array_equal(read_bands(aux, [PROBABILITY], grid)[PROBABILITY],
                              read_bands(cp, [PROBABILITY], grid)[PROBABILITY])


@pytest.mark.parametrize("product", [P.S2, P.L8, P.L9])
def test_preprocessed_scenes_are_the_same_pixels_from_stac_and_from_the_store(world, product):
    from eo4dm_helpers.workflow import land_for

    grid = world.tile.grid
    land = land_for(world.cfg, grid)
    for st, loc in _pairs(world, product):
        a = preprocess_highres(st, product, grid, land, world.cfg.local_chain, world.store, world.cfg.timezone, 64)
        b = preprocess_highres(loc, product, grid, land, world.cfg.local_chain, world.store, world.cfg.timezone, 64)
        assert type(a) is type(b)
        if hasattr(a, "values"):
            for n in ("NDVI", "NDWI"):
                assert np.array_equal(a.values[n], b.values[n], equal_nan=True), (st.index, n)
            assert a.day == b.day


def test_scenes_are_dask_arrays_chunked_on_the_output_grid_and_read_per_window(world):
    import dask
    from rasterio.windows import Window

    st = highres_scenes(world.cfg, P.S2, world.tile, LO, HI)[0]
    r = StacReader(st, world.tile.grid)
    ds = r._dataset()
    red = ds["red"].data
    assert isinstance(red, dask.array.Array) and red.chunksize[1:] == (128, 128)  # stac.chunk
    assert red.shape[1:] == (world.tile.grid.height, world.tile.grid.width)
    window = red[0, 0:16, 0:16]
    whole = red[0]
    (window,), (whole,) = dask.optimize(window), dask.optimize(whole)
    n_window, n_whole = len(dict(window.__dask_graph__())), len(dict(whole.__dask_graph__()))
    assert n_window < n_whole  # a window computes only the chunks under it (2 x 2 chunks of 128 px here)
    got = r.read(["B4", "SCL"], Window(10, 20, 30, 5))
    full = read_bands(st, ["B4", "SCL"], world.tile.grid)
    assert got["B4"].shape == (5, 30) and np.array_equal(got["B4"], full["B4"][20:25, 10:40])


def test_the_loader_runs_on_a_dask_distributed_cluster(world):
    distributed = pytest.importorskip("distributed")
    from eo4dm_helpers.workflow import land_for

    grid = world.tile.grid
    land = land_for(world.cfg, grid)
    st, loc = _pairs(world, P.S2)[0]
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        a = preprocess_highres(st, P.S2, grid, land, world.cfg.local_chain, world.store, world.cfg.timezone, 64)
        assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks) >= 0) is not None
    b = preprocess_highres(loc, P.S2, grid, land, world.cfg.local_chain, world.store, world.cfg.timezone, 64)
    assert np.array_equal(a.values["NDWI"], b.values["NDWI"], equal_nan=True)


def test_chain_lists_stac_scenes_like_the_store(world):
    d = Dekad(2024, 3, 1)
    out, avail = chains.highres_scenes(world.cfg, world.tile, d, ("S2", "L8", "L9"))
    store_cfg = load_config(stac_params(world.root / "s", world.store, world.api.url)) \
        if (world.root / "s").mkdir(exist_ok=True) is None else None
    from dataclasses import replace

    store_cfg = replace(store_cfg, local_chain=replace(store_cfg.local_chain, source="scenes"))
    out2, avail2 = chains.highres_scenes(store_cfg, world.tile, d, ("S2", "L8", "L9"))
    assert avail.found == avail2.found and avail.used == avail2.used and len(out) == len(out2) > 0


def test_missing_cloud_probability_asset_falls_back_to_the_scl(world, tmp_path):
    pa = ASSET_MAPS["planetary-computer"].product("S2")  # no cloud probability asset in this map
    items = O.export_scenes(world.store, tmp_path, "S2", LO, HI, pa)
    cat = O.write_catalogue(tmp_path / "cat", {pa.collection: items})
    import yaml

    p = stac_params(tmp_path, world.store, str(cat))
    data = yaml.safe_load(p.read_text())
    data["stac"]["highres"]["assets"] = "planetary-computer"
    p.write_text(yaml.safe_dump(data))
    cfg = load_config(p)
    st = highres_scenes(cfg, P.S2, world.tile, LO, HI)[0]
    b = read_bands(st.auxiliary(P.S2_CLOUD_PROBABILITY), [PROBABILITY, "SCL"], world.tile.grid)
    assert set(np.unique(b[PROBABILITY])) <= {0, 100}
    assert np.array_equal(b[PROBABILITY] == 100, np.isin(b["SCL"], (8, 9, 10)))


def _item(props, offset=None, when=datetime(2023, 5, 1, tzinfo=UTC)):
    import pystac

    it = pystac.Item("x", None, None, when, dict(props))
    rb = {"data_type": "uint16", **({"offset": offset, "scale": 1e-4} if offset is not None else {})}
    it.add_asset("red", pystac.Asset("red.tif", extra_fields={"raster:bands": [rb]}))
    return it


def test_sentinel2_dn_shift_rules():
    assert s2_dn_shift(_item({"earthsearch:boa_offset_applied": True, "s2:processing_baseline": "05.10"}), "red") == 0
    assert s2_dn_shift(_item({}, offset=-0.1), "red") == 1000
    assert s2_dn_shift(_item({"s2:processing_baseline": "04.00"}), "red") == 1000
    assert s2_dn_shift(_item({"s2:processing_baseline": "03.01"}), "red") == 0
    assert s2_dn_shift(_item({}, when=datetime(2021, 5, 1, tzinfo=UTC)), "red") == 0  # DOMAIN.md §4.1 date rule
    assert s2_dn_shift(_item({}), "red") == 1000


def test_properties_in_earth_engine_names():
    t = datetime(2010, 1, 1, tzinfo=UTC)
    assert ee_properties("L7", {"landsat:cloud_cover_land": 12.0}, t) == {"CLOUD_COVER_LAND": 12.0,
                                                                          "SENSOR_MODE_SLC": "OFF"}
    assert ee_properties("L7", {}, datetime(2002, 1, 1, tzinfo=UTC))["SENSOR_MODE_SLC"] == "ON"
    assert ee_properties("S2", {"eo:cloud_cover": 3.0, "s2:mean_solar_azimuth": 61.0}, t) == {
        "CLOUDY_PIXEL_PERCENTAGE": 3.0, "MEAN_SOLAR_AZIMUTH_ANGLE": 61.0}
    assert date(2003, 5, 31) == P.L7_SLC_FAILURE


def test_s3_hrefs_need_the_s3_keys_and_downloads_prefer_the_https_alternate(world, tmp_path, monkeypatch):
    import pystac

    from eo4dm_helpers.stac.credentials import CredentialsError
    from eo4dm_helpers.stac.loader import Downloader, _configure_s3

    monkeypatch.delenv("EO4DM_CDSE_S3_KEY", raising=False)
    it = pystac.Item("S2X", None, None, datetime(2024, 3, 1, tzinfo=UTC), {})
    it.add_asset("red", pystac.Asset("s3://eodata/Sentinel-2/x/B04_10m.jp2"))
    with pytest.raises(CredentialsError, match="EO4DM_CDSE_S3_KEY"):
        _configure_s3(it, ["red"])
    src = world.cfg.stac.slstr
    nc = tmp_path / "LST_in.nc"
    nc.write_bytes(b"x")
    it.add_asset("LST_in", pystac.Asset("s3://eodata/S3/x/LST_in.nc",
                                        extra_fields={"alternate": {"https": {"href": nc.as_uri()}}}))
    assert Downloader(world.cfg, src).fetch(it, "LST_in", "c") == nc  # the https (here file) alternate, read in place
    it.add_asset("flags_in", pystac.Asset("s3://eodata/S3/x/flags_in.nc"))
    with pytest.raises(Exception, match="without an https alternate"):
        Downloader(world.cfg, src).fetch(it, "flags_in", "c")
