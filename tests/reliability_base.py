"""The workspace shared by tests/test_reliability*.py: the reduced demo (as ``small_demo``), built once per
session in a folder of its own so that no other test's writes change it. Tests never write into it:
each works on a copy (``eo4dm_helpers.reliability.clone``)."""

from eo4dm_helpers import reliability as RL

_BUILT: dict[str, RL.Workspace] = {}


def base_workspace(tmp_path_factory) -> RL.Workspace:
    if "base" not in _BUILT:
        _BUILT["base"] = RL.build_base(tmp_path_factory.mktemp("reliability-base"))
    return _BUILT["base"]
