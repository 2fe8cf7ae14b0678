"""Archives in a given state of completeness, for the tests of auto mode and completeness: every product
a dekad must have (completeness.expected), written as small rasters on the parameters' grids."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

from eo4dm_helpers import completeness as C
from eo4dm_helpers.archive import write_raster
from eo4dm_helpers.config import Config
from eo4dm_helpers.dekads import Dekad


def _grid(cfg: Config, p: C.Product):
    rel = p.path.relative_to(cfg.paths.archive).parts
    if rel[1] == "local":
        return next(t.grid for t in cfg.local_chain.tiles if t.id == rel[2])
    return cfg.global_chain.grid


def write_product(cfg: Config, p: C.Product, status: str = "final") -> None:
    if p.kind == C.BULLETIN:
        p.path.parent.mkdir(parents=True, exist_ok=True)
        p.path.write_text("<html>bulletin</html>", encoding="utf-8")
    elif p.kind == C.ZONE_STATS:
        p.path.parent.mkdir(parents=True, exist_ok=True)
        p.path.write_text("chain,zone,indicator,pixels\n", encoding="utf-8")
        C.stats_sidecar(p.path).write_text(json.dumps({"zone_layer_sha256": C.zone_layer_digest(cfg)}))
    else:
        g = _grid(cfg, p)
        band = np.full((g.height, g.width), 0.3, np.float32)
        tags = {"STATUS": status} if p.kind in (C.INDICATOR, C.MONTH_INDICATOR) else {}
        write_raster(p.path, [band, band], ["value", "count"], g, tags)


def complete(cfg: Config, dekads: Iterable[Dekad], *, bulletins: Iterable[Dekad] = (),
             kinds: tuple[str, ...] = (C.COMPOSITE, C.MONTH_COMPOSITE, C.INDICATOR, C.MONTH_INDICATOR,
                                       C.ZONE_STATS)) -> None:
    """Write every product of ``kinds`` that ``dekads`` must have (composites first, so that the
    references exist), and the bulletins of ``bulletins``."""
    dekads = list(dekads)
    composites = tuple(k for k in kinds if k in (C.COMPOSITE, C.MONTH_COMPOSITE))
    for stage in (composites, tuple(k for k in kinds if k not in composites)):
        inv = C.Inventory.scan(cfg)
        for d in dekads:
            for p in C.missing(cfg, d, inv, bulletin=False):
                if p.kind in stage:
                    write_product(cfg, p)
    for d in bulletins:
        write_product(cfg, C.Product(C.BULLETIN, "bulletin", C.bulletin_path(cfg, d)))


def remove(cfg: Config, dekad: Dekad, *kinds: str, bulletin: bool = True) -> list[C.Product]:
    """Delete the products of ``kinds`` of ``dekad`` (what a killed or failed run leaves); returns them."""
    inv = C.Inventory.scan(cfg)
    gone = [p for p in C.expected(cfg, dekad, inv, bulletin=bulletin) if p.kind in kinds]
    for p in gone:
        p.path.unlink(missing_ok=True)
        if p.kind == C.ZONE_STATS:
            C.stats_sidecar(p.path).unlink(missing_ok=True)
    return gone
