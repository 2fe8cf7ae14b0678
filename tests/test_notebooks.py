"""Notebooks are committed thin and without outputs, with a papermill parameters cell."""

import ast

import nbformat
import pytest

from eo4dm_helpers.runner import NOTEBOOK_DIR, NOTEBOOKS

BOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_runner_runs_every_notebook_in_order():
    assert [p.stem for p in BOOKS] == list(NOTEBOOKS)


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    names = [n.target.id for n in ast.parse(params[0].source).body if isinstance(n, ast.AnnAssign)]
    assert names == ["params", "dekad", "work_dir"]
    # thin: logic lives in the package (no function or class definitions in notebooks)
    for c in code:
        src = "\n".join(line for line in c.source.splitlines() if not line.startswith("%"))
        tree = ast.parse(src)
        assert not any(isinstance(n, ast.FunctionDef | ast.ClassDef) for n in ast.walk(tree)), path.name
