"""Fitted calibration coefficients reach the composites only when asked (local_chain.calibration_source)."""

from dataclasses import replace

import numpy as np

from eo4dm_helpers import calibration, chains
from eo4dm_helpers.config import Calibration, load_config
from eo4dm_helpers.dekads import Dekad


def test_archive_coefficients_are_applied_by_the_local_chain(small_demo, monkeypatch):
    cfg = load_config(small_demo)
    fitted = {**cfg.local_chain.calibration, "S2": Calibration(ndwi=(1.0, 0.25), ndvi=(1.0, 0.25))}
    monkeypatch.setattr(calibration, "calibration_for", lambda c, root=None: fitted)
    assert calibration.local_chain_for(cfg) is cfg.local_chain  # default: the parameters' table
    d, tile = Dekad(2024, 3, 1), cfg.local_chain.tiles[0]
    base, _ = chains.highres_scenes(cfg, tile, d, ("S2",))
    arch_cfg = replace(cfg, local_chain=replace(cfg.local_chain, calibration_source="archive"))
    assert calibration.local_chain_for(arch_cfg).calibration["S2"] == fitted["S2"]
    moved, _ = chains.highres_scenes(arch_cfg, tile, d, ("S2",))
    a, b = base[0], moved[0]
    assert a.scene_id == b.scene_id
    va, vb = np.asarray(a.values["NDWI"]), np.asarray(b.values["NDWI"])
    ok = ~np.isnan(va) & ~np.isnan(vb)
    s2 = cfg.local_chain.calibration["S2"].ndwi
    # parameters: a·x + b; archive: x + 0.25 on the same raw x
    np.testing.assert_allclose(vb[ok], (va[ok] - s2[1]) / s2[0] + 0.25, atol=1e-5)
