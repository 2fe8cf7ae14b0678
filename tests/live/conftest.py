"""The live tier: real Earth Engine requests, only with a service-account key (``EO4DM_EE_KEY``).

Without the variable every test here is skipped with the reason, before any import of the network
parts; ``make test`` therefore sends nothing. ``make live`` runs this folder alone. The key file is read
by ``eo4dm_helpers.ee.session`` (never printed); optional variables:

- ``EO4DM_EE_PROJECT``: the Cloud project registered for Earth Engine (else the key's ``project_id``);
- ``EO4DM_DRIVE_CLIENT_SECRETS`` + ``EO4DM_DRIVE_TOKEN``: the pydrive2 user route, for the Drive export
  test (or ``EO4DM_DRIVE_AUTH=service_account`` with ``EO4DM_DRIVE_FOLDER`` in a shared drive);
- ``EO4DM_LIVE_OUT``: a folder where the captured Earth Engine error payloads are written (scrubbed).
"""

from __future__ import annotations

import os
from pathlib import Path

import ee
import pytest
import yaml

from ..conftest import ROOT, zone_layer

KEY_ENV = "EO4DM_EE_KEY"
LIVE = bool(os.environ.get(KEY_ENV))
SKIP_REASON = (f"{KEY_ENV} is not set (path to an Earth Engine service-account key): the live tier is skipped; "
               "`make live` runs it (README, 'Live tests')")

# earthengine-api as imported, before any test initialises it offline (eo4dm_helpers.ee.session.initialize_offline
# replaces these three; the root conftest's ee_offline fixture restores only two of them)
_GENUINE = {name: getattr(ee.data, name) for name in ("_install_cloud_api_resource", "computeValue", "getAlgorithms")}

# One dekad of a tiny region: 24 x 24 px of the ~463 m global grid and 128 x 128 px of the 10 m tile 82075,
# both around La Foa (west coast of Grande Terre, land with vegetation).
DEKAD = "2023-09-D2"  # dry season: clear scenes are likely
GLOBAL_GRID = {"crs": "EPSG:4326", "x0": 165.8, "y0": -21.6, "resolution": 1 / 240, "width": 24, "height": 24}
LOCAL_GRID = {"crs": "EPSG:32758", "x0": 600000.0, "y0": 7605000.0, "resolution": 10.0, "width": 128, "height": 128}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.live)
            if not LIVE:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def live_params(tmp: Path) -> Path:
    """params/new_caledonia.yaml reduced to the tiny region, its data folders under ``tmp``."""
    data = yaml.safe_load((ROOT / "params" / "new_caledonia.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"archive": str(tmp / "archive"), "output": str(tmp / "output")}
    data["territory"]["zones"] = str(zone_layer(tmp / "zones.geojson"))
    data["territory"]["zone_name_field"] = "name"
    data["global_chain"]["grid"] = GLOBAL_GRID
    data["local_chain"]["tiles"] = [{"id": "82075", "grid": LOCAL_GRID}]
    data["download"]["method"] = "direct"
    data["credentials"] = {"ee_key_file": None, "ee_project": os.environ.get("EO4DM_EE_PROJECT") or None}
    p = tmp / "live.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def live_cfg(tmp_path_factory):
    from eo4dm_helpers.config import load_config

    return load_config(live_params(tmp_path_factory.mktemp("live")))


def init_live(cfg) -> None:
    """Earth Engine initialised with the service-account key (``EO4DM_EE_KEY``; errors are redacted), after
    undoing what an offline test of the same session may have reset or patched in earthengine-api."""
    from eo4dm_helpers.ee.session import initialize

    for name, fn in _GENUINE.items():
        setattr(ee.data, name, fn)
    ee.Reset()
    assert initialize(cfg) == "service account"


@pytest.fixture(autouse=True)
def ee_live(request):
    """Each live test starts on a live session (module fixtures that send requests call ``init_live`` too:
    they are set up before this function-scoped fixture)."""
    if LIVE:
        init_live(request.getfixturevalue("live_cfg"))
    yield ee


@pytest.fixture(scope="session")
def live_out(tmp_path_factory) -> Path:
    out = Path(os.environ.get("EO4DM_LIVE_OUT") or tmp_path_factory.mktemp("live_out"))
    out.mkdir(parents=True, exist_ok=True)
    return out
