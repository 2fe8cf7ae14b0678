"""Pixel operations of the local engine (numpy), one per Earth Engine operation used by the chain.

Each function mirrors the Earth Engine expression it stands for, so the two engines can be tested
on the same product specification (ARCHITECTURE.md §2).
"""

from __future__ import annotations

import math

import numpy as np

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


def dilate_disk(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """``mask.focalMax(radius)`` with a circular kernel (Earth Engine's default), outside = False.

    Exact (a pixel is set when a set pixel lies at x² + y² <= r²) and separable: the rows of the disk
    are horizontal dilations of half-width ``isqrt(r² - dy²)``, each OR-ed in at its row offset.
    """
    r = int(radius_px)
    if r <= 0 or not mask.any():
        return mask.copy()
    h, w = mask.shape
    half = {dy: math.isqrt(r * r - dy * dy) for dy in range(r + 1)}
    rows: dict[int, np.ndarray] = {}
    cur = mask.copy()
    for k in range(r + 1):  # cur = OR of the mask shifted by -k..k columns
        if 0 < k < w:
            cur[:, k:] |= mask[:, : w - k]
            cur[:, : w - k] |= mask[:, k:]
        if k in half.values():
            rows[k] = cur.copy()
    out = rows[half[0]].copy()
    for dy in range(1, min(r, h - 1) + 1):
        src = rows[half[dy]]
        out[: h - dy] |= src[dy:]
        out[dy:] |= src[: h - dy]
    return out


def erode_disk(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """``mask.focalMin(radius)`` with a circular kernel; pixels outside the array count as False."""
    r = int(radius_px)
    if r <= 0:
        return mask.copy()
    padded = np.pad(~mask, r, constant_values=True)
    return ~dilate_disk(padded, r)[r:-r, r:-r]


def focal_min_max(mask: np.ndarray, erode_px: int, dilate_px: int) -> np.ndarray:
    """``mask.focalMin(erode).focalMax(dilate)`` with circular kernels (Earth Engine's default)."""
    return dilate_disk(erode_disk(mask, erode_px), dilate_px)


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


def box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the ``(2r+1)²`` square around each pixel (last two axes), zero outside the array.

    Each output is the same sequence of additions wherever the pixel lies (terms outside the array
    are skipped, i.e. add exactly 0), so a window processed with a halo gives bit-identical results
    to the whole array, unlike running-sum filters.
    """
    rows = a.copy()
    for k in range(1, radius + 1):
        rows[..., k:] += a[..., :-k]
        rows[..., :-k] += a[..., k:]
    out = rows.copy()
    for k in range(1, radius + 1):
        out[..., k:, :] += rows[..., :-k, :]
        out[..., :-k, :] += rows[..., k:, :]
    return out


def focal_mean_fill(values: np.ndarray, radius: int, iterations: int) -> np.ndarray:
    """``img.focal_mean(radius, 'square', 'pixels', iterations).blend(img)`` on a NaN-masked array
    (2-D, or a stack of layers on the first axis).

    Each iteration replaces every pixel by the mean of the valid pixels of its square window, so
    gaps up to ``2 * radius * iterations`` wide are bridged; the original valid pixels are then
    put back on top (``blend``). DOMAIN.md §1.4 gapfillingL7, §5.3.
    """
    cur = values.astype(np.float32)  # float32 sums of <= 9 values: ~1e-7, well below index precision
    valid = ~np.isnan(cur)
    shared = cur.ndim == 3 and bool((valid == valid[:1]).all())  # one count for all layers
    for _ in range(iterations):
        s = box_sum(np.where(valid, cur, np.float32(0)), radius)
        c = box_sum((valid[:1] if shared else valid).astype(np.float32), radius)  # exact small integers
        with np.errstate(invalid="ignore", divide="ignore"):
            cur = s / c  # 0 / 0 = NaN where no valid neighbour
        valid = np.broadcast_to(c > 0, cur.shape)
    return np.where(np.isnan(values), cur, values).astype(values.dtype)


def focal_mode_fill(mask01: np.ndarray, valid: np.ndarray, radius: int,
                    iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """``qmask.focal_mode(radius, 'square', 'pixels', iterations).blend(qmask)`` for a 0/1 mask
    with a validity mask (DOMAIN.md §1.4 gapfillingL7). Ties go to 0 (the lower class, as a mode
    reducer returns). Returns (values, valid)."""
    cur = (valid & (mask01 != 0)).astype(np.int32)
    cur_valid = valid.astype(np.int32)
    for _ in range(iterations):
        ones = box_sum(cur * cur_valid, radius)
        n = box_sum(cur_valid, radius)
        cur = (ones > n - ones).astype(np.int32)
        cur_valid = (n > 0).astype(np.int32)
    out = np.where(valid, mask01, cur.astype(mask01.dtype))
    return out, valid | cur_valid.astype(bool)
