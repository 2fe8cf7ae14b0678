"""Inter-sensor calibration (eo4dm_helpers.calibration, notebooks/tools/inter_sensor_calibration.ipynb).

- the regression on synthetic pairs with known coefficients: OLS with noise in y only, RMA with noise in
  both (and OLS's attenuation there), symmetry; degenerate inputs give clear errors;
- the verdict thresholds and sentences (the LST one names the parameter and the TCI reference rule that
  ``drought.global_indicators`` really applies, DOMAIN.md §1.9);
- the archive records (atomic JSON) and ``calibration_for`` / ``local_chain_for``;
- on the small demo: S2 and L8 pairs on coincident dates, read uncalibrated, and the fit recovers the
  generator's inverse calibration (the demo's S2 sees the world through the inverse of
  ``products.DEFAULT_CALIBRATION["S2"]``, sample/optics.py); VIIRS vs MODIS same-day pairs;
- the tools notebook executed by papermill on the small demo;
- real data (project notes realdata/MANIFEST.md), where a comparison makes sense (see each test).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import sys
from datetime import date, timedelta
from pathlib import Path

import nbformat
import numpy as np
import pytest
import rasterio
import yaml

from eo4dm_helpers import calibration as cal
from eo4dm_helpers import drought
from eo4dm_helpers import products as P
from eo4dm_helpers.config import Calibration, load_config

from .conftest import REALDATA, ROOT

NOTEBOOK = ROOT / "notebooks" / "tools" / "inter_sensor_calibration.ipynb"


@pytest.fixture
def demo_cfg(tmp_path):
    """params/demo.yaml (its DOMAIN.md §1.4 coefficients) with an empty archive under tmp_path."""
    cfg = load_config(ROOT / "params" / "demo.yaml", check_layers=False)
    return dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths, archive=tmp_path / "archive"))


# --------------------------------------------------------------------------------------------
# The regression
# --------------------------------------------------------------------------------------------
N, A, B = 20_000, 0.91, 0.11  # the S2 NDVI row of DOMAIN.md §1.4
X_MEAN, X_SD = 0.45, 0.15  # an NDVI-like spread


def test_ols_recovers_a_known_line_with_noise_in_y_only():
    rng = np.random.default_rng(1)
    sd_e = 0.02
    x = rng.normal(X_MEAN, X_SD, N)
    y = A * x + B + rng.normal(0, sd_e, N)
    f = cal.fit(x, y)
    # tolerance: 5 standard errors of the OLS estimates (SE(a) = sd_e / (sd_x·√n), SE(b) = sd_e·√(1/n + x̄²/(n·sd_x²)))
    se_a = sd_e / (X_SD * np.sqrt(N))
    se_b = sd_e * np.sqrt(1 / N + X_MEAN**2 / (N * X_SD**2))
    assert abs(f.ols.slope - A) < 5 * se_a and abs(f.ols.intercept - B) < 5 * se_b, f.ols
    assert f.n == N and abs(f.ols.rmse - sd_e) < 0.03 * sd_e
    r2_expected = (A * X_SD) ** 2 / ((A * X_SD) ** 2 + sd_e**2)
    assert abs(f.r2 - r2_expected) < 0.01
    assert f.rma.rmse >= f.ols.rmse  # OLS minimises the residuals in y; RMA does not
    assert abs(f.rma.slope) >= abs(f.ols.slope)  # |a_OLS| = |r|·|a_RMA|
    assert f.ols.slope == pytest.approx(f.r * f.rma.slope)


def test_rma_recovers_a_known_line_with_noise_in_both_where_ols_is_attenuated():
    """Both sensors measure with error. RMA is consistent when the error variances are in the ratio a²
    (its structural assumption); OLS is attenuated by λ = sd_x² / (sd_x² + sd_ex²)."""
    rng = np.random.default_rng(2)
    sd_ex = 0.05
    truth = rng.normal(X_MEAN, X_SD, N)
    x = truth + rng.normal(0, sd_ex, N)
    y = A * truth + B + rng.normal(0, A * sd_ex, N)
    f = cal.fit(x, y)
    se_rma = A * np.sqrt((1 - f.r2) / N)  # large-sample SE of the RMA slope
    assert abs(f.rma.slope - A) < 5 * se_rma, f.rma
    assert abs(f.rma.intercept - B) < 5 * se_rma * X_MEAN + 0.002, f.rma  # b = ȳ − a·x̄
    attenuated = A * X_SD**2 / (X_SD**2 + sd_ex**2)  # 0.819: 10 % low
    assert abs(f.ols.slope - attenuated) < 5 * se_rma
    assert f.ols.slope < A - 20 * se_rma  # OLS does not recover a here: why RMA is fitted too


def test_rma_is_symmetric_and_ols_is_not():
    rng = np.random.default_rng(3)
    x = rng.normal(0.3, 0.1, 500)
    y = 0.97 * x + 0.03 + rng.normal(0, 0.03, 500)
    f, g = cal.fit(x, y), cal.fit(y, x)
    assert f.rma.slope * g.rma.slope == pytest.approx(1.0)  # the inverse line
    assert f.ols.slope * g.ols.slope == pytest.approx(f.r2)  # two different lines unless r² = 1
    assert f.r == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_negative_correlation_gives_a_negative_rma_slope():
    x = np.linspace(0, 1, 50)
    f = cal.fit(x, 2.0 - 3.0 * x + np.sin(np.arange(50)) * 0.01)
    assert f.rma.slope < 0 and f.ols.slope < 0 and f.rma.slope == pytest.approx(-3.0, abs=0.05)


def test_only_finite_pairs_count():
    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 1, 200), rng.normal(0, 1, 200)
    x2, y2 = x.copy(), y.copy()
    x2[::7], y2[3::11] = np.nan, np.inf
    keep = np.isfinite(x2) & np.isfinite(y2)
    f, ref = cal.fit(x2, y2), cal.fit(x[keep], y[keep])
    assert f.n == keep.sum() < 200
    assert f == ref


@pytest.mark.parametrize(("x", "y", "message"), [
    ([0.1, 0.2], [0.1, 0.3], "only 2 finite pair(s) of 2"),
    (np.full(100, np.nan), np.arange(100.0), "only 0 finite pair(s) of 100 (100 with NaN or inf dropped)"),
    (np.r_[np.arange(20.0), np.full(80, np.nan)], np.arange(100.0), "only 20 finite pair(s) of 100"),
    (np.full(100, 0.42), np.arange(100.0), "x has zero variance (all 100 values ≈ 0.42)"),
    (np.arange(100.0), np.full(100, -1.0), "y has zero variance"),
    (np.arange(100.0), np.arange(99.0), "x and y differ in length (100 and 99)"),
])
def test_degenerate_inputs_give_clear_errors(x, y, message):
    with pytest.raises(cal.CalibrationError) as exc:
        cal.fit(x, y)
    assert message in str(exc.value)


def test_the_minimum_number_of_pairs_is_configurable():
    x = np.arange(10.0)
    with pytest.raises(cal.CalibrationError, match="at least 30 are needed"):
        cal.fit(x, 2 * x)
    assert cal.fit(x, 2 * x + 1, min_n=5).rma.coefficients == pytest.approx((2.0, 1.0))


# --------------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------------
def _fit_with_r2(r2: float, n: int = 1000) -> cal.Fit:
    r = float(np.sqrt(r2))
    return cal.Fit(cal.Line(0.9 * r, 0.05, 0.02), cal.Line(0.9, 0.05, 0.021), r, n, (0.1, 0.6))


@pytest.mark.parametrize(("r2", "level"), [(0.95, "good"), (0.8, "good"), (0.7999, "usable"), (0.6, "usable"),
                                           (0.5999, "poor"), (0.44, "poor"), (0.0, "poor")])
def test_verdict_thresholds(r2, level):
    assert cal.level_of(r2) == level
    assert cal.quality(_fit_with_r2(r2), sensor="S2", reference="L8", index="NDVI").level == level


def test_verdict_sentences():
    good = cal.quality(_fit_with_r2(0.83), sensor="VIIRS", reference="MODIS", index="NDWI").sentence
    assert "good fit (R² 0.83, n 1,000" in good and "MODIS ≈ 0.900·VIIRS + 0.050 (RMA)" in good
    assert "VCI reference pools both sensors" in good and "DOMAIN.md §1.9" in good
    usable = cal.quality(_fit_with_r2(0.7), sensor="L9", reference="L8", index="NDWI").sentence
    assert "usable fit" in usable and "with care" in usable
    poor = cal.quality(_fit_with_r2(0.3), sensor="S2", reference="L8", index="NDVI").sentence
    assert "poor fit" in poor and "do not splice" in poor and "keeps the parameters' coefficients" in poor


def test_poor_lst_fit_says_to_rebuild_the_tci_reference_from_the_new_sensor():
    f = _fit_with_r2(0.5)  # DOMAIN.md §1.9: VNP21A1D vs MxD11A1 R² ≈ 0.55
    v = cal.quality(f, sensor="VIIRS", reference="MODIS", index="LST", reference_years=[2013, 2014],
                    min_years=3, first_year=2012)
    assert v.level == "poor"
    for part in ("too different from MODIS LST", "Rebuild the TCI reference from VIIRS alone",
                 "already pools only the current LST sensor", "ref_sensors=(lst_sensor,)",
                 "global_chain.lst_sensors", "VIIRS LST composites for 2 year(s) (2013-2014)",
                 "fewer than indicators.reference.min_years = 3", "available since 2012"):
        assert part in v.sentence, part
    many = cal.quality(f, sensor="VIIRS", reference="MODIS", index="LST", reference_years=range(2012, 2024))
    assert "for 12 year(s) (2012-2023), enough" in many.sentence
    # what the sentence claims is what the chain does: TCI pools only the LST sensor of the period
    src = inspect.getsource(drought.global_indicators)
    assert '("TCI", "LST", lst_sensor, (lst_sensor,))' in src


def test_lst_reference_years_count_the_sensors_composites(tmp_path):
    folder = tmp_path / "composites" / "global" / "dekad"
    folder.mkdir(parents=True)
    for name in ("VIIRS_LST_202201_COMPD1.tif", "VIIRS_LST_202312_COMPD3.tif", "VIIRS_LST_202301_COMPD2.tif",
                 "MODIS_LST_201901_COMPD1.tif", "VIIRS_NDWI_201801_COMPD1.tif"):
        (folder / name).touch()
    assert cal.lst_reference_years(tmp_path, "VIIRS") == [2022, 2023]
    assert cal.lst_reference_years(tmp_path, "MODIS") == [2019]
    assert cal.lst_reference_years(tmp_path / "nowhere", "VIIRS") == []


# --------------------------------------------------------------------------------------------
# Pairs specification and date matching
# --------------------------------------------------------------------------------------------
def test_parse_pairs():
    assert cal.parse_pairs("S2:L8, l9:l8:8,VIIRS:MODIS", days=1) == [("S2", "L8", 1), ("L9", "L8", 8),
                                                                      ("VIIRS", "MODIS", 0)]
    for bad in ("S2:MODIS", "S2:S2", "S2", "S2:L8:x", "L8:L9:1:2"):
        with pytest.raises(cal.CalibrationError):
            cal.parse_pairs(bad)


def test_match_dates_nearest_within_tolerance_ties_kept():
    d = date.fromordinal
    xs, ys = [d(100), d(110), d(130)], [d(98), d(102), d(111), d(140)]
    assert cal.match_dates(xs, ys, 0) == []
    assert cal.match_dates(xs, ys, 1) == [(d(110), d(111))]
    assert cal.match_dates(xs, ys, 2) == [(d(100), d(98)), (d(100), d(102)), (d(110), d(111))]


# --------------------------------------------------------------------------------------------
# Archive records
# --------------------------------------------------------------------------------------------
def _result(sensor: str, index: str, r2: float, a: float, b: float, reference: str = "L8") -> cal.Result:
    r = float(np.sqrt(r2))
    f = cal.Fit(cal.Line(a * r, b + 0.01, 0.01), cal.Line(a, b, 0.011), r, 5000, (0.2, 0.7))
    v = cal.quality(f, sensor=sensor, reference=reference, index=index)
    return cal.Result(sensor, reference, index, f, v, "rma", (date(2021, 2, 25), date(2023, 2, 15)),
                      (date(2021, 1, 1), date(2023, 12, 31)), 2, 0, "2025-01-01T00:00:00+00:00")


def test_store_and_load_round_trip(tmp_path):
    res = _result("S2", "NDVI", 0.9, 0.93, 0.09)
    path = cal.store(tmp_path, res)
    assert path == tmp_path / "calibration" / "S2_to_L8_NDVI.json"
    assert [p.name for p in path.parent.iterdir()] == ["S2_to_L8_NDVI.json"]  # atomic: no temporary left
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["a"] == 0.93 and data["b"] == 0.09 and data["method"] == "rma"
    assert data["relation"] == "L8 = a * S2 + b"
    assert data["r2"] == pytest.approx(0.9) and data["n"] == 5000 and data["rma"]["rmse"] == 0.011
    assert data["ols"]["a"] == pytest.approx(0.93 * np.sqrt(0.9))
    assert data["period"] == {"start": "2021-02-25", "end": "2023-02-15"} and data["quality"] == "good"
    assert data["fitted"] == "2025-01-01T00:00:00+00:00" and data["note"].startswith("S2 vs L8 NDVI: good fit")
    back = cal.load(tmp_path, "S2", "L8", "NDVI")
    assert back == res
    assert cal.load(tmp_path, "L9", "L8", "NDVI") is None
    assert cal.load_all(tmp_path) == [res]
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(cal.CalibrationError, match="unreadable calibration record"):
        cal.load(tmp_path, "S2", "L8", "NDVI")


def test_calibration_for_uses_good_and_usable_fits_else_the_parameters(demo_cfg):
    root = demo_cfg.paths.archive
    params = demo_cfg.local_chain.calibration
    assert cal.calibration_for(demo_cfg) == params  # nothing fitted yet: the parameters (DOMAIN.md §1.4)
    cal.store(root, _result("S2", "NDVI", 0.9, 0.93, 0.09))  # good: applied
    cal.store(root, _result("L9", "NDWI", 0.7, 0.99, 0.01))  # usable: applied
    cal.store(root, _result("L7", "NDVI", 0.3, 0.5, 0.3))  # poor: not applied
    cal.store(root, _result("VIIRS", "NDWI", 0.9, 1.0, 0.0, "MODIS"))  # not a Landsat-8 calibration
    got = cal.calibration_for(demo_cfg)
    assert got["S2"] == Calibration(ndwi=params["S2"].ndwi, ndvi=(0.93, 0.09))
    assert got["L9"] == Calibration(ndwi=(0.99, 0.01), ndvi=params["L9"].ndvi)
    assert got["L7"] == params["L7"]
    assert set(got) == {"S2", "L7", "L9"}
    assert cal.calibration_for(demo_cfg, accept=("good",))["L9"] == params["L9"]
    # a sensor without parameters but with a fit: the other index is left uncalibrated
    bare = dataclasses.replace(demo_cfg, local_chain=dataclasses.replace(demo_cfg.local_chain, calibration={}))
    assert cal.calibration_for(bare) == {"S2": Calibration(ndwi=(1.0, 0.0), ndvi=(0.93, 0.09)),
                                         "L9": Calibration(ndwi=(0.99, 0.01), ndvi=(1.0, 0.0))}
    rows = {(r["sensor"], r["index"]): r for r in cal.calibration_rows(demo_cfg)}
    assert rows[("S2", "NDVI")]["source"] == "archive fit" and rows[("S2", "NDWI")]["source"] == "parameters"
    assert rows[("L7", "NDVI")]["stored fit"] == "poor, R² 0.30" and rows[("L7", "NDVI")]["source"] == "parameters"


def test_local_chain_for_is_opt_in_and_raw_chain_switches_everything_off(demo_cfg):
    cal.store(demo_cfg.paths.archive, _result("S2", "NDVI", 0.9, 0.93, 0.09))
    assert cal.local_chain_for(demo_cfg) is demo_cfg.local_chain  # no calibration_source key: unchanged
    lc = dataclasses.replace(demo_cfg.local_chain, calibration_source="archive")
    opted = dataclasses.replace(demo_cfg, local_chain=lc)
    assert cal.local_chain_for(opted).calibration["S2"].ndvi == (0.93, 0.09)
    assert cal.local_chain_for(dataclasses.replace(opted, local_chain=dataclasses.replace(
        lc, calibration_source="parameters"))).calibration == demo_cfg.local_chain.calibration
    raw = cal.raw_chain(lc)
    assert raw.calibration == {} and raw.calibration_source == "parameters"  # the fit never sees a calibration
    assert cal.local_chain_for(dataclasses.replace(opted, local_chain=raw)).calibration == {}


# --------------------------------------------------------------------------------------------
# On the small demo
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_cfg(small_demo):
    return load_config(small_demo)


def test_pairs_are_read_uncalibrated_from_the_local_engine(small_cfg):
    """The pairs' S2 values are the engine's own, minus the calibration: the calibrated chain gives
    exactly a·raw + b with the parameters' coefficients (DOMAIN.md §1.4), pixel for pixel."""
    from eo4dm_helpers.chains import highres_scenes
    from eo4dm_helpers.dekads import Dekad
    from eo4dm_helpers.local.preprocess import land_mask

    tile, day = small_cfg.local_chain.tiles[0], date(2021, 2, 25)
    land = land_mask(small_cfg.paths.scenes, tile.grid)
    raw = cal._day_scenes(small_cfg, tile, "S2", day, land, None, [])
    full, _ = highres_scenes(small_cfg, tile, Dekad.containing(day), ("S2",), land=land)
    calibrated = [p for p in full if p.day == day]
    assert len(raw) == len(calibrated) == 1
    for idx, (a, b) in (("NDVI", small_cfg.local_chain.calibration["S2"].ndvi),
                        ("NDWI", small_cfg.local_chain.calibration["S2"].ndwi)):
        r, c = raw[0].values[idx], calibrated[0].values[idx]
        np.testing.assert_array_equal(np.isnan(r), np.isnan(c))
        np.testing.assert_allclose(c, np.float32(a) * r + np.float32(b), rtol=0, atol=1e-6)


def test_s2_and_l8_pairs_exist_on_coincident_dates(small_cfg):
    got = cal.pairs(small_cfg, "S2", "L8", "2021-01-21", "2024-03-31")  # same local date, 30 m cells
    same_day = [(date(2021, 2, 25), date(2021, 2, 25)), (date(2023, 2, 15), date(2023, 2, 15))]
    for idx in ("NDVI", "NDWI"):
        p = got[idx]
        assert p.dates == same_day and p.period == (date(2021, 2, 25), date(2023, 2, 15))
        assert p.n > 300 and np.isfinite(p.x).all() and np.isfinite(p.y).all()
        assert np.abs(p.x).max() <= 1 and np.abs(p.y).max() <= 1


def test_staged_scenes_give_the_same_pairs_and_are_removed(small_cfg, tmp_path):
    """``folder`` stages each scene on disk (the route for 10 m tiles): same values as in memory, each
    staged scene deleted after its last date pair; ``max_per_scene`` caps the values per scene pair."""
    mem = cal.pairs(small_cfg, "S2", "L8", "2021-01-21", "2024-03-31", block=1)
    disk = cal.pairs(small_cfg, "S2", "L8", "2021-01-21", "2024-03-31", block=1, folder=tmp_path)
    for idx in ("NDVI", "NDWI"):
        np.testing.assert_array_equal(mem[idx].x, disk[idx].x)
        np.testing.assert_array_equal(mem[idx].y, disk[idx].y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["land_DEMO.tif"]
    capped = cal.pairs(small_cfg, "S2", "L8", "2021-01-21", "2024-03-31", block=1, max_per_scene=100)
    assert capped["NDVI"].n == 200 < mem["NDVI"].n and set(capped["NDVI"].x) <= set(mem["NDVI"].x)


def test_s2_to_l8_fit_recovers_the_demo_generators_inverse_calibration(small_cfg, tmp_path):
    """The demo's S2 observes (world − b) / a with a, b = DEFAULT_CALIBRATION["S2"], its L8 the world;
    both add N(0, 0.01) per pixel and scene (sample/optics.py). Within one scene the demo tile's NDVI
    varies by only ~0.01 (as much as the noise), so the range comes from the dates: scenes up to ±2 days
    apart, compared as 90 m cells (block 9: 81 S2 and ~9 L8 pixels, noise sd ≈ 0.001 and 0.003 against
    ~0.024 across dates). The period ends before the demo's injected drought (2024-02-D2), whose NDVI
    changes by ~0.01 between two dates 2 days apart and would bias the slope."""
    from eo4dm_helpers.sample.territory import DEMO_DROUGHT

    end = DEMO_DROUGHT.first.start - timedelta(days=1)
    got = cal.pairs(small_cfg, "S2", "L8", "2021-01-21", end, days=2, block=9)
    for idx in ("NDVI", "NDWI"):
        p = got[idx]
        a0, b0 = P.DEFAULT_CALIBRATION["S2"][idx]
        assert len(p.dates) >= 8 and max(abs((y - x).days) for x, y in p.dates) <= 2
        res = cal.assess(p, small_cfg)
        f = res.fit
        # tolerance: 0.01 for the error-model bias (OLS attenuation ≈ −0.2 %, RMA inflation ≈ +0.8 % with the
        # noise above) plus 4 standard errors of the slope; b moves by −Δa·x̄
        tol_a = 0.01 + 4 * a0 * np.sqrt((1 - f.r2) / f.n)
        tol_b = tol_a * abs(float(np.mean(p.x))) + 0.005
        for line in (f.rma, f.ols):
            assert abs(line.slope - a0) < tol_a and abs(line.intercept - b0) < tol_b, (idx, line, tol_a, tol_b)
        assert res.verdict.level == "good" and f.r2 > 0.95, f
        assert "paired up to 2 day(s) apart" in res.verdict.sentence
    # and the fitted coefficients are what the composites would apply (stored in a scratch archive)
    scratch = tmp_path / "archive"
    for p in got.values():
        cal.store(scratch, cal.assess(p, small_cfg))
    applied = cal.calibration_for(small_cfg, scratch)["S2"]
    assert applied.ndvi == pytest.approx(P.DEFAULT_CALIBRATION["S2"]["NDVI"], abs=0.03)
    assert applied.ndwi == pytest.approx(P.DEFAULT_CALIBRATION["S2"]["NDWI"], abs=0.03)


def test_viirs_and_modis_pairs_are_same_day_and_agree_as_the_demo_draws_them(small_cfg):
    """The demo's VIIRS sees the world as MODIS does (only noise and clouds differ, from 2024-01-01):
    NDWI and LST fits close to the identity, as the EO4DM study found for NDWI (DOMAIN.md §1.9)."""
    got = cal.pairs(small_cfg, "VIIRS", "MODIS", "2024-01-21", "2024-03-20")
    assert cal.pairs(small_cfg, "VIIRS", "MODIS", "2023-02-01", "2023-02-10")["NDWI"].n == 0  # no VIIRS yet
    for idx, tol_b in (("NDWI", 0.01), ("LST", 0.5)):
        p = got[idx]
        assert len(p.dates) > 30 and all(x == y for x, y in p.dates) and p.n > 10_000
        f = cal.fit(p.x, p.y)
        assert abs(f.rma.slope - 1) < 0.03 and abs(f.rma.intercept) < tol_b and f.r2 > 0.8, (idx, f)
    np.testing.assert_array_equal(got["NDWI"].dates, got["LST"].dates)  # the common NDWI ∩ LST mask
    assert got["NDWI"].n == got["LST"].n
    with pytest.raises(cal.CalibrationError, match="same day"):
        cal.pairs(small_cfg, "VIIRS", "MODIS", "2024-01-21", "2024-01-31", days=1)


def test_tools_notebook_is_stripped_and_runs_on_the_small_demo(small_demo, tmp_path, monkeypatch):
    pm = pytest.importorskip("papermill")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    names = [n.target.id for n in ast.parse(params[0].source).body if isinstance(n, ast.AnnAssign)]
    assert names[:4] == ["params", "start", "end", "pairs"]
    for c in code:  # thin: the logic is in the package
        tree = ast.parse("\n".join(line for line in c.source.splitlines() if not line.startswith("%")))
        assert not any(isinstance(n, ast.FunctionDef | ast.ClassDef) for n in ast.walk(tree))

    # the small demo's scenes, a scratch archive (the session's archive is shared with other tests)
    data = yaml.safe_load(Path(small_demo).read_text(encoding="utf-8"))
    data["paths"]["archive"] = str(tmp_path / "archive")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    # the "python3" kernelspec starts `python` from PATH: this interpreter (eo4dm_helpers.runner)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(NOTEBOOK.parent),
                        progress_bar=False, parameters={
                            "params": str(params_file), "start": "2021-01-21", "end": "2024-02-10",
                            "pairs": "S2:L8,L9:L8:8,VIIRS:MODIS", "days": 2, "block": 9})
    done = nbformat.read(out, as_version=4)
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs)
    assert "S2 vs L8 NDVI: good fit" in text and "stored in" in text
    stored = sorted(p.name for p in (tmp_path / "archive" / "calibration").iterdir())
    assert stored == ["L9_to_L8_NDVI.json", "L9_to_L8_NDWI.json", "S2_to_L8_NDVI.json", "S2_to_L8_NDWI.json",
                      "VIIRS_to_MODIS_LST.json", "VIIRS_to_MODIS_NDWI.json"]
    rec = json.loads((tmp_path / "archive" / "calibration" / "S2_to_L8_NDVI.json").read_text(encoding="utf-8"))
    assert rec["quality"] == "good" and rec["max_days"] == 2 and rec["a"] == pytest.approx(0.91, abs=0.03)


# --------------------------------------------------------------------------------------------
# Real data (realdata/MANIFEST.md). Its Sentinel-2 (sen2r, Italian Alps) and Landsat (ESPA, Australia)
# clips are different places and dates, so no S2 vs L8 pair exists; what can be checked honestly:
# --------------------------------------------------------------------------------------------
realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real test data not found at {REALDATA}")
SEN2R = REALDATA / "sen2r" / "inst" / "extdata" / "out"
ESPA = REALDATA / "datacube-zarr" / "tests" / "data" / "espa" / "ls8_sr"
ESPA_ID = "LC08_L1TP_091084_20190205_20190221_01_T1"
MODAPE = REALDATA / "modape" / "tests" / "data"


@realdata
def test_real_espa_ndvi_from_bands_fits_espas_own_ndvi_with_slope_one():
    """Same sensor, same pixels (ESPA L8 C1 SR, 2019-02-05): the engine's NDVI from sr_band5/sr_band4 against
    ESPA's sr_ndvi. Not a cross-sensor calibration: it checks the fit on a real value distribution, where
    the answer is known (a = 1, b = 0 up to ESPA's ×10000 integer rounding)."""
    from eo4dm_helpers.local.preprocess import indices, quality

    bands = {}
    for b in P.LANDSAT8_C1_ESPA.bands + ("sr_ndvi",):
        with rasterio.open(ESPA / f"{ESPA_ID}_{b}.tif") as src:
            bands[b] = src.read(1)
    ours = indices(bands, P.LANDSAT8_C1_ESPA)["NDVI"]
    keep = quality(bands, P.LANDSAT8_C1_ESPA, "NDVI") & (bands["sr_ndvi"] != -9999)
    keep &= (bands["sr_band4"] > 0) & (bands["sr_band5"] > 0)  # ESPA clips NDVI where reflectance < 0
    f = cal.fit(ours[keep], bands["sr_ndvi"][keep] * 1e-4)
    assert f.n > 50_000 and f.r2 > 0.9999
    for line in (f.ols, f.rma):
        assert abs(line.slope - 1) < 1e-3 and abs(line.intercept) < 5e-4 and line.rmse < 1e-4, line
    assert cal.level_of(f.r2) == "good"


def _sen2r_ndvi(day: str, level: str) -> tuple[np.ndarray, rasterio.Affine]:
    kind = "BOA" if level == "2A" else "TOA"
    with rasterio.open(SEN2R / f"S2A{level}_{day}_022_Barbellino_{kind}_10.tif") as src:
        b04, b08 = (src.read(i).astype(np.float64) for i in (4, 8))  # B04, B08 in both band orders
        t, nodata = src.transform, src.nodata
    ndvi = (b08 - b04) / (b08 + b04)
    return np.where((b04 == nodata) | (b08 == nodata), np.nan, ndvi), t


@realdata
@pytest.mark.parametrize("day", ["20170703", "20190723"])
def test_real_sen2r_toa_to_boa_ndvi_is_linear_and_stable_across_years(day):
    """Same S2A acquisition at two processing levels (L1C TOA, L2A BOA): on SCL vegetation and bare soil
    (4, 5; 20 m classes repeated on the 10 m grid) BOA NDVI is a linear stretch of TOA NDVI (the
    atmospheric correction removes path radiance, which brightens red more than NIR): R² ≥ 0.95 and a
    slope ≈ 1.2 on both dates two years apart (OLS 1.19 and 1.20, RMA 1.20 and 1.22 when written)."""
    toa, t_toa = _sen2r_ndvi(day, "1C")
    boa, t_boa = _sen2r_ndvi(day, "2A")
    with rasterio.open(SEN2R / f"S2A2A_{day}_022_Barbellino_SCL_10.tif") as src:
        scl, t_scl = src.read(1), src.transform
    assert t_toa == t_boa and (t_scl.a, t_scl.c, t_scl.f) == (2 * t_boa.a, t_boa.c, t_boa.f)  # same corner
    scl10 = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)[: boa.shape[0], : boa.shape[1]]
    land = np.isin(scl10, (4, 5))
    f = cal.fit(toa[land], boa[land])
    assert f.n > 400 and f.r2 >= 0.95, f
    for line in (f.ols, f.rma):
        assert 1.1 < line.slope < 1.3 and -0.1 < line.intercept < 0.0, line
    assert float(np.mean(boa[land])) > float(np.mean(toa[land]))  # BOA NDVI of vegetation is higher


def _vi(path: Path) -> np.ndarray:
    """NDVI (NaN where the product's own QA rules mask) of a MOD13A2/MYD13A2 (HDF4) or VNP13A2 (HDF5) file."""
    from eo4dm_helpers.local import ops
    from eo4dm_helpers.local.preprocess import indices

    spec = P.VNP13A2 if path.suffix == ".h5" else P.MOD13A2
    if path.suffix == ".h5":
        h5py = pytest.importorskip("h5py", reason="h5py (HDF5) is not installed")
        with h5py.File(path, "r") as f:
            g = f["HDFEOS/GRIDS/VIIRS_Grid_16Day_VI_1km/Data Fields"]
            bands = {n: g[n][()] for n in spec.bands}
    else:
        sd_mod = pytest.importorskip("pyhdf.SD", reason="pyhdf (HDF4) is not installed: pip install pyhdf")
        sd = sd_mod.SD(str(path))
        try:
            bands = {n: sd.select(n).get() for n in spec.bands}
        finally:
            sd.end()
    keep = ops.all_rules(bands, spec.rules, next(iter(bands.values())).shape)
    return np.where(keep, indices(bands, spec)["NDVI"], np.nan)


@realdata
@pytest.mark.parametrize(("modis", "viirs"), [("init/MOD13A2.A2025001", "viirs/VNP13A2.A2025001"),
                                              ("init/MYD13A2.A2025009", "viirs/VNP13A2.A2025009")],
                         ids=["terra-2025001", "aqua-2025009"])
def test_real_viirs_vs_modis_ndvi_pairs_coincide_and_the_fit_is_called_poor(modis, viirs):
    """A real cross-sensor pair: VIIRS VNP13A2 against MODIS MOD13A2 / MYD13A2, the same 16-day period on
    the same 1 km sinusoidal tile h18v09 (Gabon/Congo coast, ~2 % land, rainy season). The pixels coincide
    (the agreement peaks at zero offset, not at any ±1-2 px shift) but the agreement is weak: R² 0.35
    (Terra) and 0.17 (Aqua) when written. Each sensor's maximum-value composite picks its own clearest day
    of the 16 under heavy clouds, and both keep marginal pixels. The verdict says poor instead of forcing a
    calibration, as the EO4DM study did for LST (DOMAIN.md §1.9)."""
    x = _vi(next(MODAPE.glob(f"{viirs}.*.h5")))
    y = _vi(next(MODAPE.glob(f"{modis}.*.hdf")))
    assert x.shape == y.shape == (1200, 1200)
    f = cal.fit(x, y)
    shifted = [cal.fit(np.roll(x, (dr, dc), axis=(0, 1)), y).r2
               for dr in (-2, -1, 0, 1, 2) for dc in (-2, -1, 0, 1, 2) if (dr, dc) != (0, 0)]
    assert f.r2 > max(shifted), (f.r2, max(shifted))
    assert f.n > 1000 and 0.1 < f.r2 < 0.6, f
    v = cal.quality(f, sensor="VIIRS", reference="MODIS", index="NDVI")
    assert v.level == "poor" and "do not splice" in v.sentence
