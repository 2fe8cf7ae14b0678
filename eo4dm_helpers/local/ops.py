"""Pixel operations of the local engine (numpy), one per Earth Engine operation used by the chain.

Each function mirrors the Earth Engine expression it stands for, so the two engines can be tested
on the same product specification (ARCHITECTURE.md §2).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..products import BitsClear, FieldNotIn, Rule, ScaledAtMost, ValueNotIn


def keep_mask(bands: dict[str, np.ndarray], rule: Rule) -> np.ndarray:
    """Boolean array, True where ``rule`` keeps the pixel (``img.bitwiseAnd``/``rightShift``/``lte``)."""
    raw = bands[rule.band]
    if isinstance(rule, BitsClear):
        bits = sum(1 << b for b in rule.bits)
        return (raw.astype(np.int64) & bits) == 0
    if isinstance(rule, FieldNotIn):
        fld = (raw.astype(np.int64) >> rule.shift) & ((1 << rule.width) - 1)
        return ~np.isin(fld, rule.values)
    if isinstance(rule, ValueNotIn):
        return ~np.isin(raw, rule.values)
    if isinstance(rule, ScaledAtMost):
        return raw.astype(np.float64) * rule.scale + rule.offset <= rule.limit
    raise TypeError(f"unknown rule {rule!r}")


def all_rules(bands: dict[str, np.ndarray], rules: tuple[Rule, ...], shape: tuple[int, int]) -> np.ndarray:
    keep = np.ones(shape, dtype=bool)
    for r in rules:
        keep &= keep_mask(bands, r)
    return keep


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)`` as float32; NaN where ``a + b == 0`` (``ee.Image.normalizedDifference``)."""
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    s = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / s
    out[s == 0] = np.nan
    return out


def _disk(radius_px: int) -> np.ndarray:
    r = max(int(radius_px), 0)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= r * r


def focal_min_max(mask: np.ndarray, erode_px: int, dilate_px: int) -> np.ndarray:
    """``mask.focalMin(erode).focalMax(dilate)`` with circular kernels (Earth Engine's default)."""
    out = mask
    if erode_px > 0:
        out = ndimage.binary_erosion(out, structure=_disk(erode_px), border_value=0)
    if dilate_px > 0:
        out = ndimage.binary_dilation(out, structure=_disk(dilate_px))
    return out


def project_shadows(clouds: np.ndarray, azimuth_deg: float, max_distance_px: int) -> np.ndarray:
    """``clouds.directionalDistanceTransform(90 - azimuth, max).mask()``: pixels that have a cloud
    within ``max_distance_px`` when looking towards the sun (DOMAIN.md §5.2)."""
    theta = np.deg2rad(90.0 - azimuth_deg)  # math angle, x east, y north
    out = np.zeros_like(clouds, dtype=bool)
    h, w = clouds.shape
    for d in range(1, max_distance_px + 1):
        dr = int(round(-d * np.sin(theta)))  # row offset of the cloud seen from the pixel
        dc = int(round(d * np.cos(theta)))
        src = clouds[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)]
        out[max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)] |= src
    return out & ~clouds


def block_reduce_any(mask: np.ndarray, factor: int) -> np.ndarray:
    """Coarsen a boolean mask by ``factor`` (a block is True if any pixel is)."""
    if factor <= 1:
        return mask
    h, w = mask.shape
    ph, pw = -h % factor, -w % factor
    m = np.pad(mask, ((0, ph), (0, pw)))
    return m.reshape(m.shape[0] // factor, factor, m.shape[1] // factor, factor).any(axis=(1, 3))


def block_expand(mask: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    if factor <= 1:
        return mask
    return np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)[: shape[0], : shape[1]]


def focal_mean_fill(values: np.ndarray, radius: int, iterations: int) -> np.ndarray:
    """``img.focal_mean(radius, 'square', 'pixels', iterations).blend(img)`` on a NaN-masked array.

    Each iteration replaces every pixel by the mean of the valid pixels of its square window, so
    gaps up to ``2 * radius * iterations`` wide are bridged; the original valid pixels are then
    put back on top (``blend``).
    """
    size = 2 * radius + 1
    cur = values.astype(np.float64)
    for _ in range(iterations):
        valid = ~np.isnan(cur)
        s = ndimage.uniform_filter(np.where(valid, cur, 0.0), size=size, mode="constant")
        c = ndimage.uniform_filter(valid.astype(np.float64), size=size, mode="constant")
        with np.errstate(invalid="ignore", divide="ignore"):
            cur = np.where(c > 1e-9, s / np.maximum(c, 1e-12), np.nan)
    return np.where(np.isnan(values), cur, values).astype(values.dtype)


def focal_mode_fill(mask01: np.ndarray, valid: np.ndarray, radius: int,
                    iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """``qmask.focal_mode(radius, 'square', 'pixels', iterations).blend(qmask)`` for a 0/1 mask
    with a validity mask. Ties go to 0 (the lower class, as a mode reducer returns). Returns
    (values, valid)."""
    size = 2 * radius + 1
    cur = np.where(valid, mask01, 0).astype(np.float64)
    cur_valid = valid.astype(np.float64)
    for _ in range(iterations):
        ones = ndimage.uniform_filter(cur * cur_valid, size=size, mode="constant")
        n = ndimage.uniform_filter(cur_valid, size=size, mode="constant")
        zeros = n - ones
        cur = (ones > zeros + 1e-9).astype(np.float64)
        cur_valid = (n > 1e-9).astype(np.float64)
    out = np.where(valid, mask01, cur.astype(mask01.dtype))
    return out, valid | cur_valid.astype(bool)
