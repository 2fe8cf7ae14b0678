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


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The demo archive reduced to 21 January - March of 2021-2024 (enough for 2024-02-D1, before the
    injected drought, and the March dekads in it, with a 3-year reference), with the reference
    composites built by ``backfill``."""
    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.dekads import Dekad
    from eo4dm_helpers.drought import backfill_indicators
    from eo4dm_helpers.sample import build_demo_archive
    from eo4dm_helpers.workflow import backfill

    tmp = tmp_path_factory.mktemp("demo")
    params = demo_params(tmp)
    cfg = load_config(params)
    for year in (2021, 2022, 2023, 2024):
        build_demo_archive(cfg, start=date(year, 1, 21), end=date(year, 3, 31))
        for first, last in ((Dekad(year, 2, 1), Dekad(year, 2, 1)), (Dekad(year, 3, 1), Dekad(year, 3, 2))):
            backfill(cfg, first, last if year < 2024 else min(last, Dekad(2024, 3, 1)), log=lambda m: None)
    backfill_indicators(cfg, Dekad(2024, 2, 1), Dekad(2024, 3, 1), log=lambda m: None)
    return params


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
