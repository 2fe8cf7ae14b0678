"""Small helpers for the notebooks: context set-up and tables (keeps the notebooks thin)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from .workflow import Context, open_context


def setup(params: str, dekad: str, work_dir: str = "", *, engine: bool = True) -> Context:
    """Validate the parameters (papermill only warns on unknown names) and open the run context;
    ``engine=False`` for notebooks that read the archive only (no Earth Engine credentials needed)."""
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 160)
    return open_context(params, dekad, work_dir or None, engine=engine)


def table(rows: Iterable[Mapping[str, object]] | Mapping[str, object]) -> pd.DataFrame:
    """A DataFrame for display (one row per mapping, or key/value pairs for a single mapping)."""
    if isinstance(rows, Mapping):
        return pd.DataFrame({"item": list(rows), "value": [str(v) for v in rows.values()]})
    return pd.DataFrame(list(rows))
