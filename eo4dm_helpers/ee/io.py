"""The only place that sends requests to Earth Engine (behind a Protocol, faked in tests)."""

from __future__ import annotations

from typing import Any, Protocol

import ee

from .plan import ExportPlan

# Properties set by the graph builders that a run reports (window widening, image counts).
REPORTED = ("images", "window_level", "window_start", "window_end", "nan_score")


class EarthEngineIO(Protocol):
    def compute_value(self, obj: ee.ComputedObject) -> Any: ...


class LiveIO:
    """Real requests (``ee.data.computeValue`` through ``getInfo``)."""

    def compute_value(self, obj: ee.ComputedObject) -> Any:
        return obj.getInfo()


def describe(plans: list[ExportPlan], io: EarthEngineIO) -> dict[str, dict[str, Any]]:
    """Image counts and chosen windows of every product of a dekad in ONE request, whatever the
    number of images (no per-image client loop)."""
    info = ee.Dictionary({p.product: p.image.toDictionary(list(REPORTED)) for p in plans})
    return io.compute_value(info)
