import os

os.environ.setdefault("NO_GCE_CHECK", "true")  # before any import of ee (ARCHITECTURE.md §5)

from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT / ".." / "shared" / "realdata"


def demo_params(tmp: Path, **overrides) -> Path:
    """A copy of params/demo.yaml whose scenes, archive and output live under ``tmp``."""
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"scenes": str(tmp / "scenes"), "archive": str(tmp / "archive"), "output": str(tmp / "output")}
    data["territory"]["zones"] = str(tmp / "scenes" / "zones.geojson")
    data["territory"]["outline"] = str(tmp / "scenes" / "outline.geojson")
    for k, v in overrides.items():
        data[k] = v
    p = tmp / "params.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """The demo archive reduced to mid-February - March of 2021-2024 (enough for the March dekads of
    2024 with a 3-year reference), with the reference composites built by ``backfill``."""
    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.dekads import Dekad
    from eo4dm_helpers.sample import build_demo_archive
    from eo4dm_helpers.workflow import backfill

    tmp = tmp_path_factory.mktemp("demo")
    params = demo_params(tmp)
    cfg = load_config(params)
    for year in (2021, 2022, 2023, 2024):
        build_demo_archive(cfg, start=date(year, 2, 15), end=date(year, 3, 31))
        backfill(cfg, Dekad(year, 3, 1), Dekad(year, 3, 1 if year == 2024 else 2), log=lambda m: None)
    return params


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
