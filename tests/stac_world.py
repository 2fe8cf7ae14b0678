"""The offline STAC world of the tests: a static catalogue exported from a demo scene store (S2, Landsat
COGs in Earth Search naming) plus synthetic SL_2_LST swaths (CDSE naming), and parameters using it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import yaml

from eo4dm_helpers.stac import offline as O
from eo4dm_helpers.stac.assets import ASSET_MAPS

from .conftest import ROOT, zone_layer

BBOX = (163.4629, -22.8619, 168.3033, -19.4449)  # params/demo.yaml territory
USER, PASSWORD = "eo4dm-tester", "s3cr3t-Pa55word-offline"


MonthDay = tuple[int, int]


def build_world(store: Path, root: Path, years: tuple[int, ...], highres_days: tuple[MonthDay, MonthDay],
                slstr_days: tuple[MonthDay, MonthDay], products: tuple[str, ...] = ("S2", "L7", "L8", "L9")) -> Path:
    """Export ``products`` scenes of the local dates ``highres_days`` ((month, day) to (month, day)) and
    write one SLSTR swath a day for ``slstr_days``, every year of ``years``; returns catalog.json."""
    es, cdse = ASSET_MAPS["earth-search"], ASSET_MAPS["cdse"]
    items: dict[str, list] = {}
    for y in years:
        (m0, d0), (m1, d1) = highres_days
        lo = datetime.combine(date(y, m0, d0), time(0), UTC) - timedelta(hours=11)
        hi = datetime.combine(date(y, m1, d1) + timedelta(days=1), time(0), UTC) - timedelta(hours=11)
        for p in products:
            pa = es.product(p)
            items.setdefault(pa.collection, []).extend(O.export_scenes(store, root, p, lo, hi, pa))
        (m0, d0), (m1, d1) = slstr_days
        first, last = date(y, m0, d0), date(y, m1, d1)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        pa = cdse.product("SLSTR")
        items.setdefault(pa.collection, []).extend(O.slstr_items(root, days, BBOX, pa))
    return O.write_catalogue(root, items)


def stac_params(tmp: Path, scenes: Path, url: str, min_years: int = 3, **overrides) -> Path:
    """params/demo.yaml with the scene store ``scenes`` (MODIS NDWI, WorldCover), the archive and output in
    ``tmp``, LST from SLSTR and the local chain's scenes from the STAC API at ``url``."""
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"scenes": str(scenes), "archive": str(tmp / "archive"), "output": str(tmp / "output")}
    zones = scenes / "zones.geojson"
    data["territory"]["zones"] = str(zones if zones.exists() else zone_layer(tmp / "zones.geojson"))
    data["territory"]["outline"] = str(scenes / "outline.geojson")
    data["global_chain"]["lst_sensors"] = [{"name": "SLSTR", "start": date(2017, 7, 5)}]
    data["local_chain"]["source"] = "stac"
    data["stac"] = {"slstr": {"url": url, "assets": "cdse", "credentials": "cdse"},
                    "highres": {"url": url, "assets": "earth-search"},
                    "token_url": f"{url.rstrip('/')}/token", "chunk": 128}
    data["indicators"]["reference"] = {"mode": "previous_years", "min_years": min_years}
    data.update(overrides)
    p = tmp / "params.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p
