"""Bad inputs (issues #9, #13): every case of tests/bad_inputs/cases.yaml (wrong and missing parameters,
hostile YAML, credentials of the wrong type, broken zone layers, dates out of range, future dekads, empty
collections, all-cloud dekads, scenes missing a band, wrong CRS, band count or data type,
corrupt and truncated GeoTIFFs, a corrupt EO4DM store file, unreadable key files, a key pasted where its
path belongs) gives its documented exit code and ONE line on stderr naming the problem, no traceback,
shows none of its secrets, and leaves the archive as it was (hashes before and after). Engine:
eo4dm_helpers.reliability.run_case."""

import pytest

from eo4dm_helpers import reliability as RL

from .reliability_base import base_workspace

CASES = RL.load_corpus()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case, two at a time: a process each (run_all.py forked from a zygote that has imported it, the
    import and sample entries started plainly: RL.run_corpus; make reliability starts every case plainly)."""
    return RL.run_corpus(base_workspace(tmp_path_factory), tmp_path_factory.mktemp("inputs"), CASES)


def test_the_corpus_covers_every_kind_of_bad_input():
    ids = {c["id"] for c in CASES}
    assert len(ids) == len(CASES)
    for kind in ("unknown-key", "missing-key", "wrong-type", "not-a-dekad", "future-dekad", "empty-collection",
                 "missing-band", "wrong-crs", "corrupt", "truncated", "import-corrupt",
                 "key-", "yaml-", "credential", "zones-", "one-band", "int16", "state-", "plan-dir", "lock-",
                 "archive-path"):
        assert any(kind in i for i in ids), kind
    documented = {0, 1, 2, 3, 4, 5, 6}  # run_all.py --help
    assert all(c["exit"] in documented for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_gives_one_clear_line_and_changes_nothing(results, case):
    r = results[case["id"]]
    assert r.clear, f"{case['what']}: {r.problems}\nstderr: {r.stderr[-2000:]}\nstdout: {r.stdout[-1000:]}"
