"""The workspace shared by tests/test_reliability*.py and tests/test_routine_recovery.py: the reduced demo
(as ``small_demo``), built once per session (``conftest.built_once``: one build shared by the xdist
workers) in a folder of its own so that no other test's writes change it. Tests never write into it:
each works on a copy (``eo4dm_helpers.reliability.clone``)."""

from eo4dm_helpers import reliability as RL

from .conftest import built_once


def base_workspace(tmp_path_factory) -> RL.Workspace:
    return RL.base_workspace(built_once(tmp_path_factory, "reliability-base", RL.build_base))
