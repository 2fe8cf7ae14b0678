"""QA decoding of real MODIS / VIIRS granules by the specification's rules (realdata/MANIFEST.md §3).

Each product's QA layout is a spec entry in ``products.py`` (MOD09A1, MOD11B2, MOD13A2, VNP13A2); the
engine applies those rules to the arrays read from HDF4 (pyhdf) / HDF5 (h5py). The tests decode the
same layers independently with plain integer arithmetic, check the bit positions against the layout
documented inside each file, and check the products' own consistency (fills, QA ↔ reliability).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from eo4dm_helpers import products as P
from eo4dm_helpers.local import ops
from eo4dm_helpers.local.preprocess import indices

from .conftest import REALDATA, realdata

pytestmark = realdata()

MODISTSP = REALDATA / "MODIStsp" / "inst" / "testdata"
MODAPE = REALDATA / "modape" / "tests" / "data"
VNP_GROUP = "HDFEOS/GRIDS/VIIRS_Grid_16Day_VI_1km/Data Fields"


def _hdf4(path: Path, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    sd_mod = pytest.importorskip("pyhdf.SD", reason="pyhdf (HDF4) is not installed: pip install pyhdf")
    sd = sd_mod.SD(str(path))
    try:
        return ({n: sd.select(n).get() for n in names}, {n: sd.select(n).attributes() for n in names})
    finally:
        sd.end()


def _keep(product: P.Product, bands: dict[str, np.ndarray]) -> np.ndarray:
    return ops.all_rules(bands, product.rules, next(iter(bands.values())).shape)


def _legend(text: str) -> dict[int, str]:
    """Rank keys of a 'Legend' attribute: lines such as '[3] : Cloudy ...' or '[9]:  Cloud'."""
    return {int(k): v.strip() for k, v in re.findall(r"\[\s*(-?\d+)\]\s*:\s*([^\n]+)", text)}


def test_mod09a1_state_and_qc_rules_match_an_independent_decode():
    spec = P.MOD09A1
    path = MODISTSP / "MOD09A1.A2017193.h18v04.006.2017202035302.hdf"
    bands, attrs = _hdf4(path, spec.bands)
    doc = attrs["sur_refl_state_500m"]["QA bitmap index"]
    for line in ("0-1    cloud state", "2      cloud shadow", "8-9    cirrus detected"):
        assert line in doc  # the bit positions the spec uses, as the file documents them
    st, qc = bands["sur_refl_state_500m"].astype(np.int64), bands["sur_refl_qc_500m"].astype(np.int64)
    cloud_state, shadow, cirrus = st % 4, (st // 4) % 2, (st // 256) % 4
    modland = qc % 4
    fill = (bands["sur_refl_b02"] == -28672) | (bands["sur_refl_b06"] == -28672)
    expected = (cloud_state == 0) & (shadow == 0) & (cirrus == 0) & (modland == 0) & ~fill
    np.testing.assert_array_equal(_keep(spec, bands), expected)
    assert (cloud_state > 0).sum() > 50 and shadow.sum() > 200 and (cirrus > 0).sum() > 10  # real flags
    assert 0.8 < expected.mean() < 0.95
    b2, b6 = (bands[b].astype(np.float64) * 1e-4 for b in ("sur_refl_b02", "sur_refl_b06"))
    np.testing.assert_allclose(indices(bands, spec)["NDWI"], (b2 - b6) / (b2 + b6), rtol=1e-5, atol=1e-6)


def test_mod11b2_lst_scale_and_qc_rules():
    spec = P.MOD11B2
    bands, attrs = _hdf4(MODISTSP / "MOD11B2.A2017001.h14v04.006.2017013155631.hdf", spec.bands)
    assert attrs["LST_Day_6km"]["scale_factor"] == 0.02 and attrs["LST_Day_6km"]["_FillValue"] == 0
    dn, qc = bands["LST_Day_6km"], bands["QC_Day"].astype(np.int64)
    lst = indices(bands, spec)["LST"]  # DOMAIN.md §4.4: °C = DN × 0.02 − 273.15
    np.testing.assert_allclose(lst, dn * 0.02 - 273.15, atol=1e-4)
    mandatory, lst_error = qc % 4, (qc // 64) % 4
    expected = (dn != 0) & np.isin(mandatory, (0, 1)) & (lst_error != 3)
    keep = _keep(spec, bands)
    np.testing.assert_array_equal(keep, expected)
    # the product's own consistency: every produced LST has mandatory QA 0 or 1 ("2/3 = not produced"),
    # while QC_Day = 0 is also its fill value, so the LST fill rule is what removes the ocean
    assert np.isin(mandatory[dn > 0], (0, 1)).all()
    assert ((dn == 0) & (mandatory < 2)).sum() > 0 and not (keep & (dn == 0)).any()
    assert (lst_error[dn > 0] == 3).sum() > 50 and 0.05 < keep.mean() < 0.1


MOD13_FILES = sorted([*MODAPE.glob("*/MOD13A2.*.hdf"), *MODAPE.glob("*/MYD13A2.*.hdf")]) if MODAPE.is_dir() else []


@pytest.mark.parametrize("path", MOD13_FILES[:4] + MOD13_FILES[-2:], ids=lambda p: p.name[:16])
def test_mod13a2_pixel_reliability_as_its_legend_says(path):
    spec = P.MOD13A2
    bands, attrs = _hdf4(path, spec.bands)
    legend = _legend(attrs["1 km 16 days pixel reliability"]["Legend"])
    assert set(legend) == {-1, 0, 1, 2, 3}
    masked = {v for r in spec.rules if r.band == "1 km 16 days pixel reliability" for v in r.values}
    assert {legend[k].split()[0] for k in masked} == {"Fill/No", "Snow/Ice", "Cloudy"}
    rel, ndvi = bands["1 km 16 days pixel reliability"], bands["1 km 16 days NDVI"]
    keep = _keep(spec, bands)
    np.testing.assert_array_equal(keep, ((rel == 0) | (rel == 1)) & (ndvi != -3000))
    # the product's consistency: fill NDVI exactly where reliability is -1, and the reliability ranks
    # agree with VI Quality bits 0-1 (MODLAND: 0 good, 1 check other QA, 2 cloudy, 3 not produced)
    np.testing.assert_array_equal(ndvi == -3000, rel == -1)
    modland = bands["1 km 16 days VI Quality"].astype(np.int64) % 4
    np.testing.assert_array_equal(keep, modland <= 1)
    assert keep.sum() > 5000 and (rel == 3).sum() > 1000  # land with good and cloudy pixels (tile ~2 % land)
    v = indices(bands, spec)["NDVI"][keep]
    assert (v >= -0.2).all() and (v <= 1.0).all()  # valid_range -2000..10000 × 1e-4


@pytest.mark.parametrize("path", sorted((MODAPE / "viirs").glob("VNP13A2.*.h5")) if MODAPE.is_dir() else [],
                         ids=lambda p: p.name[:16])
def test_vnp13a2_pixel_reliability_as_its_legend_says(path):
    h5py = pytest.importorskip("h5py", reason="h5py (HDF5) is not installed")
    spec = P.VNP13A2
    with h5py.File(path, "r") as f:
        g = f[VNP_GROUP]
        bands = {n: g[n][()] for n in spec.bands}
        legend = _legend(g["1 km 16 days pixel reliability"].attrs["Legend"][0].decode())
        ndvi_fill = set(g["1 km 16 days NDVI"].attrs["_FillValue"].tolist())
    assert set(legend) == {*range(12), -1, -4}
    masked = {v for r in spec.rules if r.band == "1 km 16 days pixel reliability" for v in r.values}
    assert {legend[k] for k in masked} == {"NODATA", "Water", "Questionable", "Poor", "Cloud Shadow", "Snow/Ice",
                                            "Cloud", "Estimated", "LTAVG"}
    assert {v for r in spec.rules if r.band == "1 km 16 days NDVI" for v in r.values} == ndvi_fill
    rel, ndvi = bands["1 km 16 days pixel reliability"].astype(np.int64), bands["1 km 16 days NDVI"]
    keep = _keep(spec, bands)
    np.testing.assert_array_equal(keep, (rel >= 0) & (rel <= 4) & ~np.isin(ndvi, sorted(ndvi_fill)))
    assert not (keep & np.isin(ndvi, sorted(ndvi_fill))).any() and keep.sum() > 3000
    assert ((rel == 7) | (rel == 9)).sum() > 1000  # cloud shadow and cloud ranks present and removed
