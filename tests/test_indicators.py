"""Indicator formulas on small hand-computed arrays (DOMAIN.md §1.6, §1.8)."""

import numpy as np
import pytest

from eo4dm_helpers import indicators as I
from eo4dm_helpers.archive import Archive, Month, write_raster
from eo4dm_helpers.config import Grid, Reference
from eo4dm_helpers.dekads import Dekad


def _ref(tmp_path, values_by_year, counts_by_year, period):
    arch = Archive(tmp_path)
    files = {}
    for y, v in values_by_year.items():
        p = arch.global_composite("MODIS", "NDWI", I.same_period(period, y))
        grid = Grid("EPSG:4326", 165.0, -21.0, 0.1, len(v), 1)
        write_raster(p, [np.array([v], np.float32), np.array([counts_by_year[y]], np.float32)], ["NDWI", "count"], grid)
        files[y] = p
    ref = I.reference_stats(files, period)
    return I.RefStats(*(a[0] for a in (ref.min, ref.max, ref.mean, ref.std, ref.n, ref.qscore)))


def test_vci_tci_vhi_vai_by_hand(tmp_path):
    d = Dekad(2024, 3, 2)
    ref = _ref(tmp_path, {2020: [0.1, 0.2, 0.3], 2021: [0.3, 0.2, 0.5], 2022: [0.2, 0.2, np.nan]},
               {2020: [10, 5, 0], 2021: [10, 5, 2], 2022: [10, 5, 0]}, d)
    np.testing.assert_allclose(ref.min, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(ref.max, [0.3, 0.2, 0.5])
    np.testing.assert_allclose(ref.mean, [0.2, 0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(ref.std, [np.std([0.1, 0.3, 0.2]), 0.0, 0.1], rtol=1e-5)
    x = np.array([0.15, 0.25, 0.6], np.float32)
    vci = I.vci(x, ref)
    np.testing.assert_allclose(vci[[0, 2]], [0.25, 1.0], rtol=1e-5)  # 1.5 clipped to the 0-1 range
    assert np.isnan(vci[1])  # max == min: NaN, no warning
    tci = I.tci(x, ref)  # (max - x) / (max - min)
    np.testing.assert_allclose(tci[0], 0.75, rtol=1e-5)
    vhi = I.vhi(vci, tci, 0.5)
    np.testing.assert_allclose(vhi[0], 0.5, rtol=1e-5)
    vai = I.vai(x, ref)
    np.testing.assert_allclose(vai[[0, 2]], [(0.15 - 0.2) / np.std([0.1, 0.3, 0.2]), 2.0], rtol=1e-4)
    assert np.isnan(vai[1])  # std == 0


def test_pixels_with_too_few_reference_years_have_no_reference(tmp_path):
    d = Dekad(2024, 3, 2)
    arch = Archive(tmp_path)
    grid = Grid("EPSG:4326", 165.0, -21.0, 0.1, 2, 1)
    files = {}
    for y, v in {2020: [0.1, 0.1], 2021: [0.3, np.nan], 2022: [0.2, 0.1000001]}.items():
        files[y] = write_raster(arch.global_composite("MODIS", "NDWI", I.same_period(d, y)),
                                [np.array([v]), np.array([[5, 5]])], ["NDWI", "count"], grid)
    ref = I.reference_stats(files, d, min_years=3)
    assert not np.isnan(ref.std[0, 0]) and np.isnan(ref.std[0, 1])  # 2 valid years < 3: no tiny-std VAI
    assert np.isnan(I.vai(np.array([[0.2, 0.5]], np.float32), ref)[0, 1])


def test_qscore_uses_true_days_and_every_reference_year(tmp_path):
    d = Dekad(2024, 2, 3)  # 9 days in 2024 (leap), 8 days in 2021-2023
    ref = _ref(tmp_path, {2021: [0.1], 2022: [0.2], 2023: [0.3]}, {2021: [8], 2022: [4], 2023: [0]}, d)
    # EO4DM: count / 10 and the last historical year dropped (COUNT[:, :, :i]); here 8/8, 4/8, 0/8.
    np.testing.assert_allclose(ref.qscore, [(1 + 0.5 + 0) / 3], rtol=1e-6)
    q = I.qscore(np.array([9.0]), d, ref)
    np.testing.assert_allclose(q, [(0.5 + 1.0) / 2], rtol=1e-6)
    assert I.qscore(np.array([0.0]), d, ref)[0] == 0  # forced to 0 without observation


@pytest.mark.parametrize(("year", "month", "ndays"), [(2023, 2, 28), (2024, 2, 29), (2024, 4, 30), (2024, 1, 31)])
def test_month_qscore_denominator(year, month, ndays):
    assert I.period_ndays(Month(year, month)) == ndays


def test_qscore_vhi_zero_if_either_is_zero():
    np.testing.assert_allclose(I.qscore_vhi(np.array([0.5, 0.0, 0.4]), np.array([0.7, 0.9, 0.0])), [0.6, 0, 0])


@pytest.mark.parametrize(
    ("value", "code"),
    [(-0.2, 1), (0.0, 1), (0.1, 1), (0.1000001, 2), (0.2, 2), (0.25, 3), (0.3, 3), (0.35, 4), (0.4, 4),
     (0.41, 5), (1.2, 5), (np.nan, 0)],
)
def test_vhi_classes_on_and_between_breaks(value, code):
    assert I.classify(np.array([value]), I.VHI_BREAKS)[0] == code


@pytest.mark.parametrize(
    ("value", "code"),
    [(-3.5, 1), (-2.0, 1), (-1.9, 2), (-1.5, 2), (-1.2, 3), (-1.0, 3), (-0.5, 4), (0.0, 4), (0.01, 5), (4, 5)],
)
def test_vai_classes(value, code):
    assert I.classify(np.array([value]), I.VAI_BREAKS)[0] == code


def test_reference_years_previous_and_fixed():
    d = Dekad(2024, 3, 2)
    assert I.reference_years(d, [2019, 2020, 2021, 2024, 2025], Reference(min_years=3)) == [2019, 2020, 2021]
    fixed = Reference(mode="fixed", start_year=2020, end_year=2025, min_years=2)
    assert I.reference_years(d, [2019, 2020, 2021, 2024, 2025], fixed) == [2020, 2021, 2024, 2025]
    with pytest.raises(I.IndicatorUnavailable, match=r"only 2 reference year\(s\) \(2022, 2023\).*at least 3"):
        I.reference_years(d, [2022, 2023, 2024], Reference(min_years=3))


def test_reference_ignores_wall_clock(tmp_path):
    # a dekad of 2021 uses 2019-2020 whatever today's date (DOMAIN.md §1.10 item 5)
    assert I.reference_years(Dekad(2021, 5, 1), range(2015, 2027), Reference(min_years=1)) == list(range(2015, 2021))
