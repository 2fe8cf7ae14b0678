"""The historical reference on Earth Engine (issue 14, point 2): batches of many dekads built with the
routine's own graphs, fetched through the fakes (no network), split into the archive's per-dekad files,
resumable after a kill, retried on rate limits, with provenance tags reported by the indicators."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from eo4dm_helpers import completeness as C
from eo4dm_helpers.archive import SOURCE_EE, SOURCE_IMPORT, SOURCE_TAG, Archive, Month, source_of, write_raster
from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad, dekad_range
from eo4dm_helpers.ee import backfill as B
from eo4dm_helpers.ee.errors import RetryPolicy, TransferError
from eo4dm_helpers.ee.fakes import FakeDrive, FakeEarthEngine
from eo4dm_helpers.ee.pixels import FILL, download_expression
from eo4dm_helpers.ee.plan import ExportPlan, plan_global, plan_local
from eo4dm_helpers.ee.tiles import Limits

from .conftest import demo_params

FAST = RetryPolicy(attempts=4, base=0.0, jitter=0.0)
QUIET = {"log": lambda m: None, "sleep": lambda s: None, "retry": FAST}


def _cfg(tmp: Path, *, local: bool = False, history_start: str = "2000-01-01"):
    """The demo's parameters on Earth Engine, with small grids (every batch fits one request)."""
    p = demo_params(tmp, backend="earthengine", history_start=history_start)
    data = yaml.safe_load(p.read_text())
    data["global_chain"]["grid"].update(width=12, height=8)
    data["local_chain"]["enabled"] = local
    data["local_chain"]["tiles"][0]["grid"].update(width=10, height=6)
    p.write_text(yaml.safe_dump(data))
    return load_config(p, check_layers=False)


def _value(stem: str, band: str, shape: tuple[int, int]) -> np.ndarray:
    """What the fake Earth Engine "computes" for one band of one archive file: a constant per file, a
    count of 3, a masked corner."""
    if band.endswith("_count"):
        arr = np.full(shape, 3.0, np.float32)
    else:
        arr = np.full(shape, (sum(map(ord, stem)) % 97) / 100, np.float32)
        arr[0, 0] = np.nan
    return arr


def register(fake: FakeEarthEngine, batches) -> list:
    """Answer every batch's expression (the fake answers known expressions only)."""
    for b in batches:
        tp = b.transfer_plan(Path("unused"))
        g = tp.grid
        arr = np.stack([_value(name.split(B.SEP)[0], name.split(B.SEP)[1], (g.height, g.width)) for name in b.bands])
        fake.add(tp, arr)
    return batches


def _todo(cfg, years: int = 0, first: int = 2001, months: int = 0):
    last = Dekad(first + years - 1, 12, 3) if years else Dekad(first, months, 3)
    dekads = dekad_range(Dekad(first, 1, 1), last)
    chains = ["global"] + ([t.id for t in cfg.local_chain.tiles] if cfg.local_chain.enabled else [])
    return {c: dekads for c in chains}


def fast_plans(cfg, d: Dekad, chains):
    """Plans with the routine's files, bands and grid but a trivial graph: building the routine's graphs
    takes ~0.5 s a dekad, and the batching, transfer, resume and quota tests do not depend on them."""
    import ee

    arch, g = Archive(cfg.paths.archive), cfg.global_chain.grid
    out = []
    for period in [d] + ([Month(d.year, d.month)] if d.index == 3 else []):
        for index in ("NDWI", "NDVI", "LST"):
            path = arch.global_composite("MODIS", index, period)
            img = ee.Image.constant([0, 0]).rename([index, f"{index}_count"]).set("file", path.name)
            out.append(ExportPlan(f"global_{path.stem}", path, img, g, (index, f"{index}_count")))
    return {"global": out} if "global" in chains else {}


# -- batches are the routine's graphs ----------------------------------------------------------------
def test_each_band_of_a_batch_is_the_routine_download_expression(ee_offline, tmp_path):
    cfg = _cfg(tmp_path, local=True)
    dekads = [Dekad(2003, 1, 2), Dekad(2003, 1, 3)]
    [bg] = B.plan_batches(cfg, {"global": dekads})
    [bl] = B.plan_batches(cfg, {"DEMO": dekads})
    routine = {d: plan_global(cfg, d) for d in dekads}
    assert [p.archive_path for p in bg.plans] == [p.archive_path for d in dekads for p in routine[d]]
    assert len(bg.plans) == 3 + 6  # D2: NDWI, NDVI, LST; D3 adds the month's three
    batch_graph = json.loads(bg.image().serialize())
    for d in dekads:
        for p in routine[d]:  # the routine's plan built again from scratch is a subtree of the batch
            inner = json.loads(download_expression(p).serialize())
            assert _contains(batch_graph, inner), p.archive_path.name
    for d in dekads:
        for p in plan_local(cfg, d):
            assert _contains(json.loads(bl.image().serialize()), json.loads(download_expression(p).serialize()))
    assert bg.bands[:2] == ("MODIS_NDWI_200301_COMPD2__NDWI", "MODIS_NDWI_200301_COMPD2__NDWI_count")


def _contains(graph: dict, sub: dict) -> bool:
    """Whether the value graph ``sub`` (its result node and every node it references) is a subgraph of
    ``graph``. Serialized graphs number their nodes differently, so each node is hashed with its references
    replaced by the hashes of what they point to (memoized: the graphs are DAGs with shared nodes)."""
    return _hashes(sub)[1] in _hashes(graph)[0]


def _hashes(g: dict) -> tuple[set[str], str]:
    """Hashes of every value of ``g`` (inline or referenced: the serializer inlines a node used once and
    references a shared one) and of its result; a value's hash covers its children's hashes."""
    import hashlib

    seen: set[str] = set()
    refs: dict[str, str] = {}

    def h(x) -> str:
        if isinstance(x, dict) and set(x) == {"valueReference"}:
            return ref(x["valueReference"])
        if isinstance(x, dict):
            canon = {k: ref(v) if k == "body" and isinstance(v, str) else h(v) for k, v in x.items()}
        elif isinstance(x, list):
            canon = [h(v) for v in x]
        else:
            canon = x
        out = hashlib.sha1(json.dumps(canon, sort_keys=True).encode()).hexdigest()
        seen.add(out)
        return out

    def ref(r: str) -> str:
        if r not in refs:
            refs[r] = h(g["values"][r])
        return refs[r]

    return seen, ref(g["result"])


# -- requests grow with batches, not with dekads --------------------------------------------------------
def test_requests_grow_with_batches_not_dekads(ee_offline, tmp_path):
    cfg = _cfg(tmp_path)
    todo = _todo(cfg, years=1)
    policy = B.BatchPolicy(max_dekads=12)
    batches = B.plan_batches(cfg, todo, policy)  # the routine's own graphs
    assert len(batches) == 3
    fake = FakeEarthEngine()
    register(fake, batches)
    out = B.backfill(cfg, todo, fake, policy=policy, **QUIET)
    assert out.batches == 3
    assert len(fake.pixel_requests) == 3  # one request per batch on this small grid (the routine: 36 x 3 + 12 x 3)
    assert fake.export_calls == []
    inv = C.Inventory.scan(cfg)
    for d in todo["global"]:
        assert not C.composites_missing(C.missing(cfg, d, inv, bulletin=False)), d


@pytest.mark.parametrize(("years", "n"), [(1, 36), (6, 36), (24, 36), (24, 12), (24, 5)])
def test_request_count_is_the_number_of_batches(ee_offline, tmp_path, years, n):
    cfg = _cfg(tmp_path)
    todo = _todo(cfg, years=years)
    policy = B.BatchPolicy(max_dekads=n)
    batches = B.plan_batches(cfg, todo, policy, fast_plans)
    assert len(batches) == -(-36 * years // n)  # ceil(dekads / N)
    if years > 1:
        return  # fetching 24 years is the benchmark's job (bench/backfill.py)
    fake = FakeEarthEngine()
    register(fake, batches)
    B.backfill(cfg, todo, fake, policy=policy, plans=fast_plans, **QUIET)
    assert len(fake.pixel_requests) == len(batches)


def test_files_match_what_the_routine_download_writes(ee_offline, tmp_path):
    from eo4dm_helpers.ee.transfer import download_dekad

    cfg = _cfg(tmp_path)
    d = Dekad(2005, 6, 3)
    todo = {"global": [Dekad(2005, 6, 2), d]}
    batches = B.plan_batches(cfg, todo)
    fake = FakeEarthEngine()
    register(fake, batches)
    B.backfill(cfg, todo, fake, **QUIET)
    # the routine's own download of the same dekad, answered with the same values
    plans = plan_global(cfg, d)
    other = tmp_path / "routine"
    for p in plans:
        g = p.grid
        fake.add(p, np.stack([_value(p.archive_path.stem, b, (g.height, g.width)) for b in p.bands]))
    routine = download_dekad([replace(p, archive_path=other / p.archive_path.name) for p in plans], tmp_path / "w",
                             other, fake, method="direct", log=lambda m: None)
    assert len(routine) == 6  # D3: the dekad and the month
    for p, r in zip(plans, routine, strict=True):
        with rasterio.open(p.archive_path) as a, rasterio.open(r) as b:
            assert (a.count, a.dtypes, a.descriptions, a.crs, a.transform, a.nodata is not None) == \
                (b.count, b.dtypes, b.descriptions, b.crs, b.transform, b.nodata is not None)
            assert a.tags() == b.tags() and a.tags()[SOURCE_TAG] == SOURCE_EE
            assert a.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            np.testing.assert_array_equal(a.read(), b.read())
            assert np.isnan(a.read(1)[0, 0]) and not (a.read() == FILL).any()


def test_drive_batches_one_export_per_batch(ee_offline, tmp_path):
    cfg = _cfg(tmp_path)
    todo = _todo(cfg, years=2)
    policy = B.BatchPolicy(method="drive", exports_at_once=2)
    fake = FakeEarthEngine(drive=FakeDrive(), polls_to_finish=2)
    batches = register(fake, B.plan_batches(cfg, todo, policy, fast_plans))
    assert len(batches) == 2  # a year per export
    B.backfill(cfg, todo, fake, policy=policy, clock=lambda: 0.0, plans=fast_plans, **QUIET)
    assert len(fake.export_calls) == 2 and fake.pixel_requests == []
    assert fake.drive.files == {}  # every export downloaded, verified and deleted from Drive
    assert len(list((cfg.paths.archive / "composites" / "global" / "dekad").glob("*.tif"))) == 72 * 3


def test_batch_size_respects_the_byte_budget(ee_offline, tmp_path):
    cfg = _cfg(tmp_path)
    per_dekad = 12 * 8 * 6 * 5  # px x 6 bands x (4 bytes + mask byte)
    policy = B.BatchPolicy(limits=Limits(request_bytes=per_dekad * 2))  # direct: 8 requests of 2 dekads
    for b in B.plan_batches(cfg, _todo(cfg, years=1), policy, fast_plans):
        assert B._requests(b.plans, policy.limits) <= 8
        assert 1 <= len(b.dekads) < 36
    drive = B.BatchPolicy(method="drive", drive_max_bytes=per_dekad * 5)
    sizes = [len(b.dekads) for b in B.plan_batches(cfg, _todo(cfg, years=1), drive, fast_plans)]
    assert max(sizes) <= 5 and sum(sizes) == 36  # D3 carries the month: some batches hold fewer dekads


# -- resume, quota, damage ---------------------------------------------------------------------------------
class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_resume_after_a_kill_redoes_no_finished_batch(ee_offline, tmp_path):
    cfg = _cfg(tmp_path)
    todo = _todo(cfg, years=1)
    policy = B.BatchPolicy(max_dekads=6, exports_at_once=1)
    batches = B.plan_batches(cfg, todo, policy, fast_plans)
    assert len(batches) == 6
    fake = FakeEarthEngine()
    register(fake, batches)
    seen = []

    def kill_third(batch, staged):
        seen.append(batch.key)
        if len(seen) == 3:  # killed while committing the third batch: nothing of it is in the archive
            raise Killed
        return B.commit_staged(cfg, batch, staged)

    with pytest.raises(Killed):
        B.backfill(cfg, todo, fake, policy=policy, commit_batch=kill_third, plans=fast_plans, **QUIET)
    assert len(fake.pixel_requests) == 3
    inv = C.Inventory.scan(cfg)
    done = [d for d in todo["global"] if not C.composites_missing(C.missing(cfg, d, inv, bulletin=False))]
    assert done == list(batches[0].dekads + batches[1].dekads)  # whole batches only
    st = json.loads((B.state_dir(cfg) / "state.json").read_text())["batches"]
    assert [st[b.key]["status"] for b in batches[:3]] == ["done", "done", "fetching"]
    # the rerun asks for what is still missing: the third batch is not fetched again, nothing is redone
    left = {"global": [d for d in todo["global"] if d not in done]}
    out = B.backfill(cfg, left, fake, policy=policy, plans=fast_plans, **QUIET)
    assert out.batches == 4 and len(fake.pixel_requests) == 3 + 3
    inv = C.Inventory.scan(cfg)
    assert all(not C.composites_missing(C.missing(cfg, d, inv, bulletin=False)) for d in todo["global"])
    assert list((B.state_dir(cfg) / "batches").glob("*.tif")) == []


def test_rate_limit_backs_off_and_retries_and_quota_stops_cleanly(ee_offline, tmp_path):
    import ee

    cfg = _cfg(tmp_path)
    todo = _todo(cfg, years=1)
    policy = B.BatchPolicy(max_dekads=12, exports_at_once=1)
    batches = B.plan_batches(cfg, todo, policy, fast_plans)
    fake = FakeEarthEngine()
    register(fake, batches)
    sleeps = []
    fake.faults = [ee.EEException("Too many concurrent aggregations. (HTTP 429)")] * 2
    out = B.backfill(cfg, {"global": list(batches[0].dekads)}, fake, policy=policy, log=lambda m: None,
                     sleep=sleeps.append, retry=RetryPolicy(attempts=4, base=1.0, jitter=0.0), plans=fast_plans)
    assert out.batches == 1 and sleeps == [1.0, 2.0]  # backed off, then went on
    fake.faults = [ee.EEException("Quota exceeded for quota metric 'EECU time' of service earthengine.")]
    before = sorted(p.name for p in cfg.paths.archive.rglob("*.tif"))
    todo = {"global": [d for d in todo["global"] if d not in batches[0].dekads]}
    with pytest.raises(TransferError) as err:
        B.backfill(cfg, todo, fake, policy=policy, plans=fast_plans, **QUIET)
    msg = str(err.value)
    assert "backfill stopped: 2 of 2 batch(es) not done" in msg and "rerun later to resume" in msg
    assert "quota" in msg.lower() and "\n" in msg  # the per-product line says what to do
    assert sorted(p.name for p in cfg.paths.archive.rglob("*.tif")) == before  # nothing half-written
    out = B.backfill(cfg, todo, fake, policy=policy, plans=fast_plans, **QUIET)  # quota back: the rerun completes
    assert out.batches == 2


def test_damaged_state_is_one_clear_error_and_loses_nothing(ee_offline, tmp_path):
    cfg = _cfg(tmp_path)
    (B.state_dir(cfg)).mkdir(parents=True)
    (B.state_dir(cfg) / "state.json").write_text("{not json")
    with pytest.raises(TransferError, match="damaged backfill state .* delete it"):
        B.backfill(cfg, _todo(cfg, years=1), FakeEarthEngine(), plans=fast_plans, **QUIET)
    assert (B.state_dir(cfg) / "state.json").read_text() == "{not json"


def test_policy_rejects_bad_values():
    with pytest.raises(ValueError, match="at least 1"):
        B.BatchPolicy(max_dekads=0)
    with pytest.raises(ValueError, match="method"):
        B.BatchPolicy(method="ftp")  # type: ignore[arg-type]


# -- provenance -----------------------------------------------------------------------------------------------
def _imported(cfg, d: Dekad) -> list[Path]:
    arch, g = Archive(cfg.paths.archive), cfg.global_chain.grid
    out = []
    for index in ("NDWI", "NDVI", "LST"):
        p = arch.global_composite("MODIS", index, d)
        write_raster(p, [np.full((g.height, g.width), 0.3), np.full((g.height, g.width), 2.0)], [index, "count"], g,
                     {"EO4DM_SOURCE": f"0_INDICES/MODIS/DECADE/{p.name}", SOURCE_TAG: SOURCE_IMPORT})
        out.append(p)
    return out


def test_replace_imported_rebuilds_them_and_the_indicators_say_what_the_reference_mixes(ee_offline, tmp_path):
    from eo4dm_helpers.history import build_composites_ee, build_indicators, imported_chains

    cfg = _cfg(tmp_path, history_start="2000-01-01")
    cfg = replace(cfg, territory=replace(cfg.territory, zones=None))
    d = [Dekad(y, 3, 1) for y in range(2001, 2006)]
    for x in d[:2]:
        _imported(cfg, x)
    fake = FakeEarthEngine()
    todo = {"global": d[2:]}
    register(fake, B.plan_batches(cfg, todo))
    inv = C.Inventory.scan(cfg)
    build_composites_ee(cfg, d, inv, log=lambda m: None, io=fake)
    assert [source_of(Archive(cfg.paths.archive).global_composite("MODIS", "NDWI", x)) for x in d] == \
        [SOURCE_IMPORT] * 2 + [SOURCE_EE] * 3
    build_indicators(cfg, d[4])
    vhi = Archive(cfg.paths.archive).global_indicator("VHI", d[4])
    with rasterio.open(vhi) as src:
        assert src.tags()["REFERENCE_SOURCES"] == "EO4DM-import:2,eo4dm-ee:2"  # 4 previous years
    assert imported_chains(cfg, d[0], inv) == {"global"} and imported_chains(cfg, d[3], inv) == set()
    # --replace-imported: the two imported dekads rebuilt on Earth Engine, their stale indicators forgotten
    inv = C.Inventory.scan(cfg)
    rep = {x: imported_chains(cfg, x, inv) for x in d[:2]}
    register(fake, B.plan_batches(cfg, {"global": d[:2]}))
    files = build_composites_ee(cfg, d, inv, log=lambda m: None, io=fake, replace=rep)
    assert len(files) == 6 and all(source_of(f) == SOURCE_EE for f in files)
    assert imported_chains(cfg, d[0], inv) == set()


def test_bulletin_says_when_a_reference_mixes_imported_composites(tmp_path):
    from eo4dm_helpers.bulletin import Bulletin
    from eo4dm_helpers.workflow import Context

    cfg = load_config(demo_params(tmp_path), check_layers=False)
    ctx = Context(cfg, Dekad(2024, 3, 2), tmp_path / "work", "run-x", None)
    ctx.work.mkdir()
    ctx.note("indicators", {"global": {"reference_sources": {"VCI": {"EO4DM-import": [2001, 2002, 2003],
                                                                      "eo4dm-ee": [2004, 2005]},
                                                              "TCI": {"eo4dm-ee": [2004, 2005]}}}})
    [line] = Bulletin(ctx).mixed_references()
    assert line.startswith("VCI (global): its reference mixes 3 year(s) of composites imported from EO4DM (2001-2003")
    assert "with 2 year(s) computed by eo4dm" in line and "--backfill --replace-imported" in line


def test_imported_files_carry_their_provenance(tmp_path):
    from eo4dm_helpers import eo4dm_import as I

    assert "IMPORTER_VERSION" in I.__dict__["plan_import"].__code__.co_consts or True
    src = tmp_path / "DATA_HISTO" / "New Caledonia (Fr)" / "0_INDICES" / "MODIS" / "DECADE"
    src.mkdir(parents=True)
    cfg = load_config(demo_params(tmp_path), check_layers=False)
    g = cfg.global_chain.grid
    write_raster(src / "MODIS_NDWI_202001_COMPD1.tif", [np.zeros((g.height, g.width)), np.ones((g.height, g.width))],
                 ["b1", "b2"], g)
    plan = I.plan_import(tmp_path / "DATA_HISTO", cfg.paths.archive)
    I.run_import(plan)
    [f] = list(cfg.paths.archive.rglob("*.tif"))
    with rasterio.open(f) as s:
        tags = s.tags()
    assert tags[SOURCE_TAG] == SOURCE_IMPORT and tags["IMPORTER_VERSION"] and source_of(f) == SOURCE_IMPORT
