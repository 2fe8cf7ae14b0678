"""The per-dekad transfer state: a small JSON file in the run's work folder, rewritten atomically after
every step, so that a rerun resumes (downloads what was exported, re-exports nothing that is done)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ..storage import write_text_atomic
from .errors import TransferError

STATE_VERSION = 1


class TransferState:
    """``{"version": 1, "products": {product: {...}}}`` at ``path``.

    Per product: ``method`` and ``reason``; ``status`` (direct: ``done``; Drive: ``starting`` →
    ``exporting`` → ``exported`` → ``archived`` → ``done``, or ``failed``); for Drive the
    ``request_id``, ``prefix``, ``task``, ``files`` (Drive id, name, size, md5), ``eecu_seconds`` and
    ``export_seconds``; ``error`` for the last failure.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {"version": STATE_VERSION, "products": {}}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError:
                raise TransferError(f"the transfer state {self.path} is not JSON: delete it to start the dekad's "
                                    "downloads over (running exports would then be started again)") from None
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise TransferError(f"the transfer state {self.path} has an unknown layout: delete it to start "
                                    "the dekad's downloads over")
            self.data = data

    def get(self, product: str) -> dict[str, Any]:
        """The product's entry (a live dict; call :meth:`update` to change it)."""
        return self.data["products"].setdefault(product, {})

    def update(self, product: str, **fields: Any) -> dict[str, Any]:
        """Set ``fields`` on the product's entry (``None`` removes a field) and save at once."""
        with self._lock:
            entry = self.get(product)
            for k, v in fields.items():
                if v is None:
                    entry.pop(k, None)
                else:
                    entry[k] = v
            write_text_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True))
            return entry

    def reset(self, product: str, **fields: Any) -> dict[str, Any]:
        """Replace the product's entry (a new attempt) and save."""
        with self._lock:
            self.data["products"][product] = {}
        return self.update(product, **fields)
