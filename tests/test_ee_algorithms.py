"""Every dry-run graph checked against the Earth Engine API (issue 14, point 7).

``run_all.py --dry-run`` writes one serialized graph per product (``ee/plan.py write_plan``). Each
``functionInvocationValue`` in them must name an algorithm of the signatures bundled with earthengine-api
(``ee/tests/algorithms.json``: the API's own test copy of the server's ``algorithms`` listing, the one
``initialize_offline`` and ``ee.apitestcase`` load), pass only arguments that algorithm declares, and pass
every argument it requires. Calls of functions defined in the graph (``functionReference``) must use the
definition's argument names.

The plans cover both parameter files and the branches of the chains: the demo (local backend settings,
s2cloudless) and New Caledonia (Cloud Score+), a third dekad (month composites), a dekad with Landsat 7
(SLC-off gap fill), and one after the switch to VIIRS. The checker is itself tested on graphs with a wrong
function name, a wrong argument name and a missing required argument.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ee
import pytest

from eo4dm_helpers import products as P

from .conftest import ROOT, demo_params, production_params

ALGORITHMS_JSON = Path(ee.__file__).parent / "tests" / "algorithms.json"

# (params, dekads): a 3rd dekad with L7/L8/S2 and its month; L9; VIIRS from 2026 (new_caledonia.yaml)
PLANS = {"demo": (demo_params, ("2021-06-D3", "2024-03-D2")),
         "new_caledonia": (production_params, ("2021-06-D3", "2026-02-D2"))}


def load_algorithms(path: Path = ALGORITHMS_JSON) -> dict[str, dict[str, bool]]:
    """``{algorithm name: {argument name: required}}`` from an ``algorithms`` listing (cloud API format)."""
    listing = json.loads(path.read_text(encoding="utf-8"))["algorithms"]
    return {a["name"].removeprefix("algorithms/"): {arg["argumentName"]: not arg.get("optional", False)
                                                   for arg in a.get("arguments", [])}
            for a in listing}


def _subvalues(v: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The values nested directly in one serialized value (cloud API ``ValueNode``)."""
    if "arrayValue" in v:
        yield from v["arrayValue"].get("values", [])
    elif "dictionaryValue" in v:
        yield from v["dictionaryValue"].get("values", {}).values()
    elif "functionInvocationValue" in v:
        yield from v["functionInvocationValue"].get("arguments", {}).values()


def check_graph(graph: dict[str, Any], algorithms: dict[str, dict[str, bool]]) -> list[str]:
    """Problems of a serialized graph (``ee.ComputedObject.serialize()``) against ``algorithms``; [] if none."""
    values = graph["values"]
    problems: list[str] = []
    n_calls = 0

    def definition(ref: str) -> dict[str, Any] | None:
        v = values.get(ref, {})
        while "valueReference" in v:
            v = values.get(v["valueReference"], {})
        return v.get("functionDefinitionValue")

    def visit(v: dict[str, Any], where: str) -> None:
        nonlocal n_calls
        call = v.get("functionInvocationValue")
        if call is not None:
            n_calls += 1
            args = set(call.get("arguments", {}))
            if "functionName" in call:
                name = call["functionName"]
                declared = algorithms.get(name)
                if declared is None:
                    problems.append(f"{where}: unknown algorithm {name!r}")
                else:
                    for a in sorted(args - set(declared)):
                        problems.append(f"{where}: {name} has no argument {a!r} (declared: {sorted(declared)})")
                    for a in sorted(k for k, req in declared.items() if req and k not in args):
                        problems.append(f"{where}: {name} misses its required argument {a!r}")
            else:
                fdef = definition(call.get("functionReference", ""))
                if fdef is None:
                    problems.append(f"{where}: call of an undefined function {call.get('functionReference')!r}")
                else:
                    for a in sorted(args - set(fdef.get("argumentNames", []))):
                        problems.append(f"{where}: custom function called with an unknown argument {a!r}")
        for sub in _subvalues(v):
            visit(sub, where)

    for key, v in values.items():
        visit(v, f"value {key}")
    if n_calls == 0:
        problems.append("no function call in the graph")
    return problems


@pytest.fixture(scope="module")
def algorithms() -> dict[str, dict[str, bool]]:
    assert ALGORITHMS_JSON.is_file(), f"earthengine-api no longer bundles {ALGORITHMS_JSON}"
    return load_algorithms()


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, Path]:
    """``run_all.py --dry-run`` for each parameter file and dekad: {"<params>/<dekad>/<product>": graph path}."""
    out: dict[str, Path] = {}
    for name, (make_params, dekads) in PLANS.items():
        tmp = tmp_path_factory.mktemp(name)
        params = make_params(tmp)
        for dekad in dekads:
            folder = tmp / "plan" / dekad
            res = subprocess.run([sys.executable, str(ROOT / "run_all.py"), "--params", str(params), "--dekad",
                                  dekad, "--dry-run", "--plan-dir", str(folder)],
                                 capture_output=True, text=True, cwd=ROOT, timeout=300)
            assert res.returncode == 0, res.stderr[-3000:]
            files = sorted(folder.glob("*.json"))
            assert files, f"{name} {dekad}: no graph written"
            out.update({f"{name}/{dekad}/{p.stem}": p for p in files})
    return out


def test_the_bundled_signatures_are_the_ones_the_offline_session_uses(algorithms):
    from ee import apitestcase

    bundled = apitestcase.GetAlgorithms()
    assert set(bundled) == set(algorithms)
    for name, sig in bundled.items():  # earthengine-api's own reading of the file agrees with ours
        assert algorithms[name] == {a["name"]: not a.get("optional", False) for a in sig["args"]}, name
    assert algorithms["Image.select"] == {"input": True, "bandSelectors": True, "newNames": False}


def test_every_dry_run_graph_uses_only_declared_algorithms_and_arguments(plans, algorithms):
    assert {k.split("/")[0] for k in plans} == set(PLANS)
    problems = {k: check_graph(json.loads(p.read_text(encoding="utf-8")), algorithms) for k, p in plans.items()}
    assert {k: v for k, v in problems.items() if v} == {}
    # the plans reach the branches they were chosen for
    names = " ".join(plans)
    for expected in ("COMPM", "global_MODIS_NDWI", "global_VIIRS_NDWI", "global_VIIRS_LST", "local_"):
        assert expected in names, expected
    used = set()
    for p in plans.values():
        used |= {v["functionInvocationValue"].get("functionName")
                 for v in _all_values(json.loads(p.read_text(encoding="utf-8")))}
    # QA bits, indices, scaling, L7 gap fill, S2 shadows, s2cloudless / Cloud Score+ joins, NaN scores
    assert {"Image.bitwiseAnd", "Image.rightShift", "Image.normalizedDifference", "Image.multiply",
            "Image.focalMean", "Image.focalMode", "Image.directionalDistanceTransform", "Image.linkCollection",
            "Join.saveFirst", "Image.reduceRegion", "ImageCollection.load", "reduce.mean", "reduce.count"} <= used


def _all_values(graph: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stack = list(graph["values"].values())
    while stack:
        v = stack.pop()
        if "functionInvocationValue" in v:
            yield v
        stack.extend(_subvalues(v))


# --------------------------------------------------------------------------------------------
# The checker can fail
# --------------------------------------------------------------------------------------------
def _some_graph(plans: dict[str, Path]) -> dict[str, Any]:
    return json.loads(next(iter(plans.values())).read_text(encoding="utf-8"))


def _first_call(graph: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v["functionInvocationValue"] for v in _all_values(graph)
                if v["functionInvocationValue"].get("functionName") == name)


def test_checker_reports_a_wrong_function_name(plans, algorithms):
    graph = copy.deepcopy(_some_graph(plans))
    _first_call(graph, "Image.select")["functionName"] = "Image.selectt"
    assert any("unknown algorithm 'Image.selectt'" in p for p in check_graph(graph, algorithms))


def test_checker_reports_a_wrong_argument_name(plans, algorithms):
    graph = copy.deepcopy(_some_graph(plans))
    call = _first_call(graph, "Image.select")
    call["arguments"]["bandSelector"] = call["arguments"].pop("bandSelectors")
    problems = check_graph(graph, algorithms)
    assert any("Image.select has no argument 'bandSelector'" in p for p in problems)
    assert any("Image.select misses its required argument 'bandSelectors'" in p for p in problems)


def test_checker_reports_a_missing_required_argument_and_a_bad_custom_call(algorithms):
    graph = {"result": "0", "values": {
        "0": {"functionInvocationValue": {"functionName": "Image.normalizedDifference",
                                          "arguments": {"bandNames": {"constantValue": ["B8", "B4"]}}}},
        "1": {"functionDefinitionValue": {"argumentNames": ["_MAPPING_VAR_0_0"], "body": "0"}},
        "2": {"functionInvocationValue": {"functionReference": "1",
                                          "arguments": {"other": {"constantValue": 1}}}}}}
    problems = check_graph(graph, algorithms)
    assert "value 0: Image.normalizedDifference misses its required argument 'input'" in problems
    assert "value 2: custom function called with an unknown argument 'other'" in problems
    assert check_graph({"result": "0", "values": {"0": {"constantValue": 1}}}, algorithms) == [
        "no function call in the graph"]


def test_a_graph_built_in_process_passes_the_checker(ee_offline, algorithms):
    """The same check on a graph serialized here (not via run_all.py): the two paths agree on the format."""
    img = ee.Image("MODIS/061/MOD09GA/2024_03_12").select(["sur_refl_b02", "sur_refl_b06"])
    graph = json.loads(img.normalizedDifference(["sur_refl_b02", "sur_refl_b06"]).serialize())
    assert check_graph(graph, algorithms) == []


def test_the_live_tier_requests_are_valid_graphs(ee_offline, algorithms, tmp_path):
    """tests/live cannot run here; the graphs of its catalogue requests are checked offline all the same."""
    from eo4dm_helpers.config import load_config

    from .live import conftest as live_conftest
    from .live import test_earth_engine as live

    cfg = load_config(live_conftest.live_params(tmp_path))
    requests = [live.catalogue_request(cfg, *c) for c in live.CATALOGUE] + [live.layers_request(cfg)]
    assert {c[0].key for c in live.CATALOGUE} == set(P.PRODUCTS)  # every production entry is checked live
    for r in requests:
        assert check_graph(json.loads(r.serialize()), algorithms) == []
