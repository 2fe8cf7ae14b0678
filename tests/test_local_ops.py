"""Local-engine pixel operations against hand-made arrays."""

import numpy as np
import pytest

from eo4dm_helpers import products as P
from eo4dm_helpers.local import ops


def test_bits_clear_field_and_scaled_rules():
    qa = np.array([0, 1 << 3, 1 << 4, 1 << 7, (1 << 1) | (1 << 5)], dtype=np.uint16)
    keep = ops.keep_mask({"QA_PIXEL": qa}, P.BitsClear("QA_PIXEL", (1, 2, 3, 4), ""))
    assert keep.tolist() == [True, False, False, True, False]
    aer = np.array([0b00000000, 0b01000000, 0b10000000, 0b11000000, 0b11000001], dtype=np.uint8)
    keep = ops.keep_mask({"A": aer}, P.FieldNotIn("A", 6, 2, (3,), ""))
    assert keep.tolist() == [True, True, True, False, False]
    aot = np.array([100, 300, 301, 2999], dtype=np.uint16)
    keep = ops.keep_mask({"AOT": aot}, P.ScaledAtMost("AOT", 0.001, 0.0, 0.3, ""))
    assert keep.tolist() == [True, True, False, False]  # scale 0.001, not EO4DM's 1e-4


def test_normalized_difference_and_zero_sum():
    nd = ops.normalized_difference(np.array([3.0, 0.0]), np.array([1.0, 0.0]))
    assert nd[0] == pytest.approx(0.5)
    assert np.isnan(nd[1])


def test_shadow_projection_lies_away_from_the_sun():
    clouds = np.zeros((21, 21), bool)
    clouds[10, 10] = True
    # sun due north (azimuth 0): shadows fall to the south = larger row indices
    sh = ops.project_shadows(clouds, 0.0, 3)
    assert sh[11:14, 10].all() and not sh[7:10, 10].any()
    # sun due east (azimuth 90): shadows to the west = smaller column indices
    sh = ops.project_shadows(clouds, 90.0, 3)
    assert sh[10, 7:10].all() and not sh[10, 11:14].any()


def test_focal_mean_fill_bridges_a_stripe_and_keeps_originals():
    y, x = np.mgrid[0:40, 0:40]
    truth = (0.2 + 0.005 * x + 0.003 * y).astype(np.float32)  # a smooth field
    holed = truth.copy()
    holed[:, 18:22] = np.nan  # a 4-px stripe
    filled = ops.focal_mean_fill(holed, 1, 25)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[:, :18], truth[:, :18])  # blend keeps valid pixels
    assert np.abs(filled[5:35, 18:22] - truth[5:35, 18:22]).max() < 0.01


def test_focal_mode_fill_takes_the_majority():
    q = np.ones((9, 9), np.uint8)
    q[:, :2] = 0
    valid = np.ones_like(q, bool)
    valid[:, 4] = False
    out, ok = ops.focal_mode_fill(q, valid, 2, 1)
    assert ok.all() and (out[:, 4] == 1).all()


@pytest.mark.parametrize("density", [0.02, 0.3, 0.9])
def test_disk_morphology_equals_scipy_binary_morphology(density):
    from scipy import ndimage

    rng = np.random.default_rng(int(density * 100))
    m = rng.random((61, 47)) < density
    for r in (1, 4, 10):
        disk = ops._disk(r)
        np.testing.assert_array_equal(ops.erode_disk(m, r), ndimage.binary_erosion(m, disk, border_value=0))
        np.testing.assert_array_equal(ops.dilate_disk(m, r), ndimage.binary_dilation(m, disk))
    assert not ops.dilate_disk(np.zeros((5, 5), bool), 3).any()
    tiny = rng.random((3, 2)) < 0.5  # smaller than the disk
    np.testing.assert_array_equal(ops.dilate_disk(tiny, 10), ndimage.binary_dilation(tiny, ops._disk(10)))
    np.testing.assert_array_equal(ops.erode_disk(tiny, 10), ndimage.binary_erosion(tiny, ops._disk(10)))


def test_box_sum_is_the_same_inside_a_window_as_on_the_whole_array():
    rng = np.random.default_rng(1)
    a = rng.random((80, 90))
    whole = ops.box_sum(a, 2)
    part = ops.box_sum(a[10:60, 20:70], 2)
    np.testing.assert_array_equal(part[2:-2, 2:-2], whole[12:58, 22:68])  # bit-identical away from the edge
    np.testing.assert_allclose(whole[40, 40], a[38:43, 38:43].sum())


def test_focal_mean_fill_of_a_stack_equals_each_layer_alone():
    rng = np.random.default_rng(2)
    a = rng.random((2, 30, 40)).astype(np.float32)
    a[:, :, 10:16] = np.nan
    shared = a.copy()  # same gaps in both layers: one count for both
    a[1, 3, 3] = np.nan  # different gaps per layer: counts per layer
    for stack in (a, shared):
        both = ops.focal_mean_fill(stack, 1, 5)
        for k in range(2):
            np.testing.assert_array_equal(both[k], ops.focal_mean_fill(stack[k], 1, 5))
