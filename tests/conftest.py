import os

os.environ.setdefault("NO_GCE_CHECK", "true")  # before any import of ee (ARCHITECTURE.md §5)

import subprocess  # noqa: E402
import sys  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT / ".." / "shared" / "realdata"
DATA = Path(__file__).resolve().parent / "data"  # small real samples shipped with the tests (data/README.md)
REQUIRE_REALDATA = os.environ.get("EO4DM_REQUIRE_REALDATA") == "1"


def realdata(*paths: Path) -> pytest.MarkDecorator:
    """Mark for tests on the project notes' real files (``REALDATA`` or the given paths): a skip with its
    reason when one is missing, or, with ``EO4DM_REQUIRE_REALDATA=1`` (CI that has the files), a failure."""
    missing = [p for p in (paths or (REALDATA,)) if not p.exists()]
    if not missing:
        return pytest.mark.realdata
    reason = f"real test data not found at {', '.join(str(p) for p in missing)}"
    return pytest.mark.realdata_missing(reason) if REQUIRE_REALDATA else pytest.mark.skip(reason=reason)


# The longest scopes (module, or class) first: `make test` hands scopes to its xdist workers in collection
# order (pyproject: --dist=loadscope --no-loadscope-reorder), so that the end of the run is not one
# worker alone on a campaign that started last. Longest first, from `--durations` of make test; the
# first two build the shared demos (built_once) on two workers at once. The others keep their order.
SLOW_FIRST = (
    "tests/test_reliability.py::TestCrashCampaign",  # the reliability base (RL.build_base)
    "tests/test_run_all.py",  # small_demo, demo_run
    "tests/test_reliability_campaign.py::TestRange",
    "tests/test_reliability_campaign.py::TestAutoMode",
    "tests/test_reliability_campaign.py::TestBackfill",
    "tests/test_reliability_inputs.py",
    "tests/test_reliability_campaign.py",  # its module-level tests
    "tests/test_routine_recovery.py",
    "tests/test_reliability.py",  # the rest of it
    "tests/test_reliability_ee.py",
    "tests/test_reliability_secrets.py",
    "tests/test_report.py",
    "tests/test_routine.py",
    "tests/test_calibration.py",
)


def _slow_rank(nodeid: str) -> int:
    for i, prefix in enumerate(SLOW_FIRST):
        if nodeid == prefix or nodeid.startswith(prefix + "::"):
            return i
    return len(SLOW_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _slow_rank(item.nodeid))  # stable: each scope's own order is kept


@pytest.fixture(autouse=True)
def _fail_on_missing_realdata(request):
    """With ``EO4DM_REQUIRE_REALDATA=1``, a test marked by ``realdata`` whose files are missing fails."""
    mark = request.node.get_closest_marker("realdata_missing")
    if mark is not None:
        pytest.fail(f"EO4DM_REQUIRE_REALDATA=1: {mark.args[0]}", pytrace=False)


def zone_layer(path: Path) -> Path:
    """The demo's zone layer at ``path``, written unless it is there (``load_config`` checks
    ``territory.zones``; the demo generator writes the same layer into its scene store)."""
    if not path.exists():
        import json

        from eo4dm_helpers.sample.territory import zones_geojson

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(zones_geojson()), encoding="utf-8")
    return path


def demo_params(tmp: Path, **overrides) -> Path:
    """A copy of params/demo.yaml whose scenes, archive and output live under ``tmp``, with the demo's zone
    layer beside it (the scene store is left as it is: missing until the demo is built in it)."""
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"scenes": str(tmp / "scenes"), "archive": str(tmp / "archive"), "output": str(tmp / "output")}
    data["territory"]["zones"] = str(zone_layer(tmp / "zones.geojson"))
    data["territory"]["outline"] = str(tmp / "scenes" / "outline.geojson")
    for k, v in overrides.items():
        data[k] = v
    p = tmp / "params.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def production_params(tmp: Path) -> Path:
    """A copy of params/new_caledonia.yaml with its data folders under ``tmp`` and the demo's zone layer
    (its own, ``data/zones/nc_communes.geojson``, is deployment data, not in the repository)."""
    data = yaml.safe_load((ROOT / "params" / "new_caledonia.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"archive": str(tmp / "archive"), "output": str(tmp / "output")}
    data["territory"]["zones"] = str(zone_layer(tmp / "zones.geojson"))
    data["territory"]["zone_name_field"] = "name"
    p = tmp / "production.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` once per test session, by whichever xdist worker asks first (the others wait for
    it on a file lock, then find it built): the reduced demo takes a minute to build, and every worker
    needs it. Returns ``folder``, in the session's temporary folder (shared by its workers)."""
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # pytest-N/, or popen-gwX/'s parent
    folder = root / f"built-{name}"
    with open(root / f"built-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed (also if this worker dies)
        if not (folder / ".built").exists():
            if folder.exists():  # a build that failed half way
                shutil.rmtree(folder)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


def _build_small_demo(tmp: Path) -> None:
    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.dekads import Dekad
    from eo4dm_helpers.drought import backfill_indicators
    from eo4dm_helpers.sample import build_demo_archive
    from eo4dm_helpers.workflow import backfill

    cfg = load_config(demo_params(tmp))
    for year in (2021, 2022, 2023, 2024):
        build_demo_archive(cfg, start=date(year, 1, 21), end=date(year, 3, 31))
        for first, last in ((Dekad(year, 2, 1), Dekad(year, 2, 1)), (Dekad(year, 3, 1), Dekad(year, 3, 2))):
            backfill(cfg, first, last if year < 2024 else min(last, Dekad(2024, 3, 1)), log=lambda m: None)
    backfill_indicators(cfg, Dekad(2024, 2, 1), Dekad(2024, 3, 1), log=lambda m: None)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The demo archive reduced to 21 January - March of 2021-2024 (enough for 2024-02-D1, before the
    injected drought, and the March dekads in it, with a 3-year reference), with the reference
    composites built by ``backfill``. Built once per session (``built_once``); each xdist worker gets a
    copy of its own, which its tests may change (``demo_run`` adds 2024-03-D2)."""
    import shutil

    built = built_once(tmp_path_factory, "small-demo", _build_small_demo)
    tmp = tmp_path_factory.mktemp("demo")
    for name in ("scenes", "archive", "output"):
        if (built / name).exists():
            shutil.copytree(built / name, tmp / name, symlinks=True)
    return demo_params(tmp)  # the paths are the copy's; nothing else in the tree names its folder


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "run_all.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.fixture(scope="session")
def demo_run(small_demo):
    """``run_all.py`` on ``small_demo`` for 2024-03-D2, once per session (tests/test_run_all.py,
    tests/test_report_browser.py): ``(params, completed process)``."""
    res = _run("--params", str(small_demo), "--dekad", "2024-03-D2")
    assert res.returncode == 0, res.stderr[-3000:]
    return small_demo, res


@pytest.fixture
def ee_offline():
    """earthengine-api initialised with its bundled signatures: graphs build, requests fail."""
    import ee

    from eo4dm_helpers.ee.session import initialize_offline

    saved = ee.data.computeValue, ee.data.getAlgorithms
    initialize_offline()
    yield ee
    ee.data.computeValue, ee.data.getAlgorithms = saved
    ee.Reset()
