"""Pure Earth Engine graph builders: collection in, image out (ARCHITECTURE.md §2).

Nothing here calls ``getInfo``, ``Export`` or ``computePixels``: every function only builds an
expression graph, interpreted from the same product specification as the local engine
(``products.py``). ``eo4dm_helpers.ee.io`` is the only module that talks to Google.
"""

from __future__ import annotations

from datetime import date

import ee

from .. import products as P
from ..config import Config, Grid, LocalChain, LocalTile, SensorPeriod
from ..dekads import WINDOW_LEVELS, Dekad, acquisition_window, iso_utc, widened_window

NAN_SCORE_SCALE = 1000  # m: the NaN-score is an estimate (EO4DM: reduceRegion bestEffort), DOMAIN.md §1.3


# --------------------------------------------------------------------------------------------
# Small operations, one per spec rule (mirrors eo4dm_helpers.local.ops)
# --------------------------------------------------------------------------------------------
def rule_keep(img: ee.Image, rule: P.Rule) -> ee.Image:
    """1 where ``rule`` keeps the pixel."""
    band = img.select(rule.band)
    if isinstance(rule, P.BitsClear):
        return band.bitwiseAnd(sum(1 << b for b in rule.bits)).eq(0)
    if isinstance(rule, P.FieldNotIn):
        field = band.rightShift(rule.shift).bitwiseAnd((1 << rule.width) - 1)
        return _not_in(field, rule.values)
    if isinstance(rule, P.ValueNotIn):
        return _not_in(band, rule.values)
    if isinstance(rule, P.ScaledAtMost):
        return band.multiply(rule.scale).add(rule.offset).lte(rule.limit)
    raise TypeError(f"unknown rule {rule!r}")


def _not_in(img: ee.Image, values: tuple[int, ...]) -> ee.Image:
    keep = img.neq(values[0])
    for v in values[1:]:
        keep = keep.And(img.neq(v))
    return keep


def keep_all(img: ee.Image, rules: tuple[P.Rule, ...]) -> ee.Image:
    keep = ee.Image.constant(1)
    for r in rules:
        keep = keep.And(rule_keep(img, r))
    return keep


def scaled(img: ee.Image, product: P.Product) -> ee.Image:
    """Reflectance × scale + offset BEFORE any ratio (DOMAIN.md §1.4, §4.3: the Landsat offset matters)."""
    if not product.reflectance_bands or (product.scale == 1.0 and product.offset == 0.0):
        return img
    refl = img.select(list(product.reflectance_bands)).multiply(product.scale).add(product.offset)
    return img.addBands(refl, None, True)


def index_image(img: ee.Image, product: P.Product, index: P.Index) -> ee.Image:
    if isinstance(index, P.NormalizedDifference):
        return img.normalizedDifference([index.a, index.b]).rename(index.name)
    return img.select(index.band).multiply(index.scale).add(index.offset).rename(index.name)


def land_mask() -> ee.Image:
    """WorldCover v100 AND v200 class != 80 (DOMAIN.md §1.3, §4.8; not an LSIB clip, §1.10 item 7)."""
    masks = [ee.ImageCollection(c).first().select("Map").neq(P.WORLDCOVER_WATER) for c in P.WORLDCOVER]
    return masks[0].And(masks[1]).rename("land")


def utc_window(first: date, last: date, tz: str, dating: str = "scene") -> tuple[str, str]:
    """``filterDate`` bounds holding the acquisitions of days [first, last] as UTC ISO strings: local
    midnights for scenes, 00:00 UTC for daily products (``dekads.acquisition_window``, DOMAIN.md §3.4)."""
    lo, hi = acquisition_window(first, last, tz, dating=dating)
    return iso_utc(lo), iso_utc(hi)


def grid_region(grid: Grid) -> ee.Geometry:
    """The grid's bounds as a planar rectangle in the grid's CRS; a lon/lat grid past 180° as the two
    rectangles either side of it, inside -180..180 (eo4dm_helpers.geo: never the territory's complement)."""
    from ..geo import grid_crosses, split, wrapped

    if grid_crosses(grid):
        return ee.Geometry.MultiPolygon([ee.Geometry.Rectangle(list(b), "EPSG:4326", False).coordinates()
                                         for b in split(wrapped(grid.bounds))], "EPSG:4326", False)
    return ee.Geometry.Rectangle(list(grid.bounds), grid.crs, False)


def export_region(grid: Grid) -> ee.Geometry:
    """The region of an export on ``grid``: :func:`grid_region`, except for a lon/lat grid past 180°, whose
    region is the rectangle (0, 0)-(width, height) in the grid's own pixel projection (crs + transform), so
    its extent is read in the export's projection and never wraps to a 360°-wide box."""
    from ..geo import grid_crosses

    if grid_crosses(grid):
        return ee.Geometry.Rectangle([0, 0, grid.width, grid.height], ee.Projection(grid.crs, list(grid.transform)),
                                     False)
    return grid_region(grid)


def _active(periods: tuple[SensorPeriod, ...], first: date, last: date) -> list[tuple[SensorPeriod, date, date]]:
    """Sensors valid somewhere in [first, last], with the part of the window they cover."""
    out = []
    for s in periods:
        lo, hi = max(first, s.start), min(last, s.end or last)
        if lo <= hi:
            out.append((s, lo, hi))
    return out


def with_nan_score(img: ee.Image, band: str, land: ee.Image, region: ee.Geometry) -> ee.Image:
    """Set property ``nan_<band>``: share of land pixels masked (DOMAIN.md §1.3 computeNanScores)."""
    valid = img.select(band).mask().gt(0).And(land).rename("valid")
    sums = ee.Image.cat([valid, land.rename("land")]).unmask(0).reduceRegion(
        reducer=ee.Reducer.sum(), geometry=region, scale=NAN_SCORE_SCALE, bestEffort=True, maxPixels=1e9)
    score = ee.Number(1).subtract(ee.Number(sums.get("valid")).divide(ee.Number(sums.get("land")).max(1)))
    return img.set(f"nan_{band}", score)


# --------------------------------------------------------------------------------------------
# Local chain: Sentinel-2 and Landsat (DOMAIN.md §1.4)
# --------------------------------------------------------------------------------------------
def _outliers(idx: dict[str, ee.Image], chain: LocalChain) -> dict[str, ee.Image]:
    """DOMAIN.md §1.4 removeOutliers: NDVI < ``ndvi_water`` is water (every index masked), |index| > 1 masked."""
    not_water = idx["NDVI"].gte(chain.thresholds.ndvi_water)
    return {n: im.updateMask(not_water).updateMask(im.abs().lte(P.OUTLIER_INDEX_MAX)) for n, im in idx.items()}


def _calibrated(idx: dict[str, ee.Image], sensor: str, chain: LocalChain) -> ee.Image:
    """Calibration to Landsat-8 ``y = a·x + b`` (DOMAIN.md §1.4), then the bounds |y| <= 1 again (y can
    leave [-1, 1]: S2 NDWI 0.98·x + 0.07). Applied to L7 too (EO4DM had but skipped its coefficients)."""
    cal = chain.calibration.get(sensor)
    out = []
    for name in ("NDVI", "NDWI"):
        im = idx[name]
        if cal is not None:
            a, b = cal.ndvi if name == "NDVI" else cal.ndwi
            im = im.multiply(a).add(b)
            im = im.updateMask(im.abs().lte(P.OUTLIER_INDEX_MAX))
        out.append(im.rename(name).toFloat())
    return ee.Image.cat(out)


def s2_clear(img: ee.Image, chain: LocalChain) -> ee.Image:
    """1 where clear of clouds and shadows (DOMAIN.md §1.4, §5.2), from Cloud Score+ or s2cloudless."""
    th = chain.thresholds
    if chain.s2_cloud_source == "cloud_score_plus":
        return img.select("cs_cdf").gte(th.cloud_score_plus_clear)
    clouds = ee.Image(img.get("s2cloudless")).select("probability").gt(th.cloud_probability)
    dark = (img.select("B8").lt(round(th.nir_dark / P.S2.scale, 6))  # §5.2 NIR_DRK_THRESH on DN
            .multiply(img.select("SCL").neq(P.S2_SCL_WATER)))
    azimuth = ee.Number(90).subtract(ee.Number(img.get("MEAN_SOLAR_AZIMUTH_ANGLE")))
    proj = (clouds.directionalDistanceTransform(azimuth, int(th.cloud_projection_km * 1000 / P.S2_SHADOW_GRID_M))
            .reproject(crs=img.select(0).projection(), scale=P.S2_SHADOW_GRID_M).select("distance").mask())
    cloud_shadow = clouds.add(proj.multiply(dark)).gt(0)
    cloud_shadow = (cloud_shadow.focalMin(P.S2_CLOUD_ERODE_PX).focalMax(th.buffer_m * 2 / P.S2_MORPHOLOGY_GRID_M)
                    .reproject(crs=img.select(0).projection(), scale=P.S2_MORPHOLOGY_GRID_M))
    return cloud_shadow.Not()


def s2_scenes(product: P.Product, region: ee.Geometry, lo: str, hi: str, mgrs: tuple[str, ...] = ()
              ) -> ee.ImageCollection:
    """Sentinel-2 SR harmonized scenes over ``region`` in [lo, hi), of the MGRS tiles ``mgrs`` when given
    (a tile's ``s2_tiles``: S2 tiles overlap, so one acquisition is not counted or averaged twice)."""
    s2 = ee.ImageCollection(product.collection).filterBounds(region).filterDate(lo, hi)
    return s2.filter(ee.Filter.inList("MGRS_TILE", list(mgrs))) if mgrs else s2


def s2_collection(product: P.Product, chain: LocalChain, region: ee.Geometry, lo: str, hi: str,
                  mgrs: tuple[str, ...] = ()) -> ee.ImageCollection:
    """Sentinel-2 SR harmonized with its cloud layer linked. QA60 is never used (masked
    2022-01-25..2024-02-28, DOMAIN.md §4.1)."""
    prop = product.cloud_cover_property
    s2 = s2_scenes(product, region, lo, hi, mgrs).filter(ee.Filter.lte(prop, chain.thresholds.scene_cloud_cover_max))
    if chain.s2_cloud_source == "cloud_score_plus":
        return s2.linkCollection(ee.ImageCollection(P.S2_CLOUD_SCORE_PLUS), ["cs_cdf"])
    prob = ee.ImageCollection(P.S2_CLOUD_PROBABILITY).filterBounds(region).filterDate(lo, hi)
    join = ee.Join.saveFirst("s2cloudless")  # DOMAIN.md §5.2: joined on system:index
    cond = ee.Filter.equals(leftField="system:index", rightField="system:index")
    return ee.ImageCollection(join.apply(primary=s2, secondary=prob, condition=cond))


def s2_prepare(img: ee.Image, product: P.Product, chain: LocalChain, land: ee.Image) -> ee.Image:
    """One S2 scene → calibrated NDVI/NDWI (DOMAIN.md §1.4)."""
    sc = scaled(img, product)
    valid = keep_all(img, product.data_rules).And(s2_clear(img, chain)).And(land)
    idx = {i.name: index_image(sc, product, i).updateMask(valid.And(keep_all(img, product.rules_for(i.name))))
           for i in product.indices}
    return _calibrated(_outliers(idx, chain), product.sensor, chain).copyProperties(
        img, ["system:time_start", "system:index"])


def landsat_prepare(img: ee.Image, product: P.Product, chain: LocalChain, land: ee.Image,
                    gap_fill: bool) -> ee.Image:
    """One Landsat C2 L2 scene → calibrated NDVI/NDWI; L7 SLC-off gaps filled (DOMAIN.md §1.4, §5.3).

    Every mask (data, quality, clouds, shadows, saturation, haze, land, outliers) comes before the gap
    fill, as EO4DM's computeL7indices masks before gapfillingL7: the focal mean averages fully valid
    pixels only. It fills only the gaps (no data: fill bit or masked band), where the quality mask of
    the neighbours, filled by focal_mode, says good; never a pixel masked for cloud or the like.
    """
    sc = scaled(img, product)
    data = keep_all(img, product.data_rules).unmask(0, False)  # 0 in the SLC-off stripes (flagged or masked)
    idx, qmask = {}, {}
    for index in product.indices:
        keep = keep_all(img, product.rules_for(index.name))
        idx[index.name] = index_image(sc, product, index).updateMask(data.And(keep).And(land))
        qmask[index.name] = keep.updateMask(data)
    idx = _outliers(idx, chain)
    if gap_fill:  # gapfillingL7 (DOMAIN.md §1.4): focal_mean on the indices, focal_mode on the quality mask
        gi, gq = P.GAP_FILL_INDEX, P.GAP_FILL_QMASK
        gap = data.Not()
        for name, im in idx.items():
            good = qmask[name].focalMode(gq["radius"], "square", "pixels", gq["iterations"]).blend(qmask[name]).eq(1)
            fill = im.focalMean(gi["radius"], "square", "pixels", gi["iterations"])
            idx[name] = fill.updateMask(gap.And(good)).blend(im).updateMask(land)
        idx = _outliers(idx, chain)
    return _calibrated(idx, product.sensor, chain).copyProperties(img, ["system:time_start", "system:index"])


def landsat_collection(product: P.Product, chain: LocalChain, region: ee.Geometry, lo: str, hi: str,
                       land: ee.Image) -> ee.ImageCollection:
    col = (ee.ImageCollection(product.collection).filterBounds(region).filterDate(lo, hi)
           .filter(ee.Filter.lte(product.cloud_cover_property, chain.thresholds.scene_cloud_cover_max)))
    if product.gap_fill_property:
        key, off = product.gap_fill_property
        filled = col.filter(ee.Filter.eq(key, off)).map(lambda i: landsat_prepare(i, product, chain, land, True))
        plain = col.filter(ee.Filter.neq(key, off)).map(lambda i: landsat_prepare(i, product, chain, land, False))
        prepared = filled.merge(plain)
    else:
        prepared = col.map(lambda i: landsat_prepare(i, product, chain, land, False))
    if not product.scene_nan_score:
        return prepared
    # DOMAIN.md §1.4: Landsat scenes with more than 95 % of land masked are dropped (server-side)
    return (prepared.map(lambda i: with_nan_score(i, "NDWI", land, region))
            .filter(ee.Filter.lte("nan_NDWI", chain.thresholds.scene_nan_max)))


def highres_collection(cfg: Config, tile: LocalTile, first: date, last: date) -> ee.ImageCollection:
    """Every valid S2 and Landsat scene of [first, last] (local dates), preprocessed to NDVI/NDWI."""
    from ..calibration import local_chain_for

    chain, region, land = local_chain_for(cfg), grid_region(tile.grid), land_mask()
    parts = []
    for period, lo_d, hi_d in _active(chain.sensors, first, last):
        for spec in P.HIGH_RES[period.name]:
            product = P.tuned(spec, chain.thresholds)  # rule limits from the parameters (aot_max, l7_opacity_max)
            lo, hi = utc_window(lo_d, hi_d, cfg.timezone, product.dating)  # scenes: local dates (§3.4)
            if product.cloud_layer:
                parts.append(s2_collection(product, chain, region, lo, hi, tile.s2_tiles)
                             .map(lambda i, p=product: s2_prepare(i, p, chain, land)))
            else:
                parts.append(landsat_collection(product, chain, region, lo, hi, land))
    col = parts[0]
    for p in parts[1:]:
        col = col.merge(p)
    return col


def mean_count(col: ee.ImageCollection, names: tuple[str, ...]) -> ee.Image:
    """Per-pixel mean and valid count: ``mean()`` and ``count().unmask(0)`` (DOMAIN.md §1.5).

    A fully masked float32 template with the bands ``names`` is merged in: it adds nothing to the mean
    or the count, and an empty collection (a window or a dekad without a valid image) gives a fully
    masked mean and a count of 0 instead of a 0-band image that ``rename`` rejects."""
    template = ee.Image.constant([0] * len(names)).rename(list(names)).toFloat().updateMask(0)
    col = col.select(list(names)).merge(ee.ImageCollection([template]))
    mean = col.mean().rename(list(names))
    count = col.count().unmask(0).rename([f"{n}_count" for n in names])
    return ee.Image.cat([mean, count]).toFloat()


def local_dekad_composite(cfg: Config, tile: LocalTile, dekad: Dekad) -> ee.Image:
    """Dekad composite with window widening: the first window (dekad, ±5 d, ±10 d, month) whose
    NaN-score on land is at most ``composite_nan_max`` for NDWI and NDVI, else the month
    (DOMAIN.md §1.5). Properties record the window level and the number of images."""
    land, region = land_mask(), grid_region(tile.grid)
    thr = cfg.local_chain.thresholds.composite_nan_max
    cands = []
    for rank, level in enumerate(WINDOW_LEVELS):
        lo, hi = widened_window(dekad, level)
        col = highres_collection(cfg, tile, lo, hi)
        comp = mean_count(col, ("NDVI", "NDWI"))
        comp = with_nan_score(with_nan_score(comp, "NDWI", land, region), "NDVI", land, region)
        score = ee.Number(comp.get("nan_NDWI")).max(ee.Number(comp.get("nan_NDVI")))
        cands.append(comp.set({"window_rank": rank, "window_level": level or "D", "nan_score": score,
                               "images": col.size(), "window_start": lo.isoformat(), "window_end": hi.isoformat()}))
    cands_col = ee.ImageCollection(cands)
    ok = cands_col.filter(ee.Filter.lte("nan_score", thr))
    chosen = ok.merge(cands_col.filter(ee.Filter.eq("window_rank", len(WINDOW_LEVELS) - 1))).sort("window_rank")
    return ee.Image(chosen.first()).clip(region)


# --------------------------------------------------------------------------------------------
# Global chain: MODIS / VIIRS (DOMAIN.md §1.3)
# --------------------------------------------------------------------------------------------
def reflectance_daily(product: P.Product, land: ee.Image, lo: str, hi: str,
                      region: ee.Geometry) -> ee.ImageCollection:
    """Daily NDWI (and NDVI) with each index's QA rules and the land mask (DOMAIN.md §1.3)."""
    def prep(img: ee.Image) -> ee.Image:
        sc = scaled(img, product)
        bands = []
        for index in product.indices:
            keep = keep_all(img, product.rules_for(index.name)).And(land)
            im = index_image(sc, product, index).updateMask(keep)
            bands.append(im.updateMask(im.abs().lte(P.OUTLIER_INDEX_MAX)).toFloat())
        return ee.Image.cat(bands).copyProperties(img, ["system:time_start"])

    return ee.ImageCollection(product.collection).filterBounds(region).filterDate(lo, hi).map(prep)


def lst_daily(product: P.Product, land: ee.Image, lo: str, hi: str, region: ee.Geometry,
              qc: bool) -> ee.ImageCollection:
    rules = product.rules if qc else tuple(r for r in product.rules if isinstance(r, P.ValueNotIn))

    def prep(img: ee.Image) -> ee.Image:
        lst = index_image(img, product, product.indices[0])  # °C (DOMAIN.md §4.4 / §4.5)
        keep = keep_all(img, rules).And(land)  # QC mask: EO4DM had none (DOMAIN.md §1.10 item 3)
        if product.lst_max_c is not None:
            keep = keep.And(lst.lte(product.lst_max_c))
        return lst.updateMask(keep).toFloat().copyProperties(img, ["system:time_start"])

    return ee.ImageCollection(product.collection).filterBounds(region).filterDate(lo, hi).map(prep)


def medium_daily(cfg: Config, first: date, last: date) -> ee.ImageCollection:
    """Daily NDWI + LST (°C) images with the common mask; days with more than ``daily_nan_max`` of
    land masked in NDWI or LST dropped server-side (DOMAIN.md §1.3)."""
    from ..capabilities import capabilities

    gc = cfg.global_chain
    region, land = grid_region(gc.grid), land_mask()
    if not capabilities(cfg).lst:  # no LST configured: NDWI and NDVI alone, each with its own mask
        return _reflectance_only(cfg, first, last, region, land)
    parts = []
    for ndwi_s, lo_d, hi_d in _active(gc.ndwi_sensors, first, last):
        for lst_s, lo2, hi2 in _active(gc.lst_sensors, lo_d, hi_d):
            # daily products: [first 00:00 UTC, last + 1 00:00 UTC), the product days (DOMAIN.md §3.4)
            ndwi_p = P.MEDIUM_RES_NDWI[ndwi_s.name][0]
            ndwi = reflectance_daily(ndwi_p, land, *utc_window(lo2, hi2, cfg.timezone, ndwi_p.dating), region)
            lst_cols = [lst_daily(p, land, *utc_window(lo2, hi2, cfg.timezone, p.dating), region, gc.lst_qc_mask)
                        for p in P.MEDIUM_RES_LST[lst_s.name]]
            lst = lst_cols[0]
            for c in lst_cols[1:]:
                lst = lst.merge(c)
            # Daily gridded products are stamped 00:00 UTC of their day: join LST to NDWI on it;
            # Aqua and Terra the same day are averaged (DOMAIN.md §1.3 computeMODIS_LST).
            joined = ee.Join.saveAll("lst").apply(
                primary=ndwi, secondary=lst,
                condition=ee.Filter.equals(leftField="system:time_start", rightField="system:time_start"))
            parts.append(ee.ImageCollection(joined).map(_combine_day))
    col = parts[0]
    for p in parts[1:]:
        col = col.merge(p)
    col = col.map(lambda i: with_nan_score(with_nan_score(i, "NDWI", land, region), "LST", land, region))
    return col.filter(ee.Filter.And(ee.Filter.lte("nan_NDWI", gc.daily_nan_max),
                                    ee.Filter.lte("nan_LST", gc.daily_nan_max)))


def _reflectance_only(cfg: Config, first: date, last: date, region: ee.Geometry, land: ee.Image
                      ) -> ee.ImageCollection:
    """Daily NDWI and NDVI without LST; days with more than ``daily_nan_max`` of land masked in NDWI dropped
    (DOMAIN.md §1.3, the LST half of the rule left out with LST)."""
    gc = cfg.global_chain
    parts = []
    for ndwi_s, lo_d, hi_d in _active(gc.ndwi_sensors, first, last):
        lo, hi = utc_window(lo_d, hi_d, cfg.timezone)
        parts.append(reflectance_daily(P.MEDIUM_RES_NDWI[ndwi_s.name][0], land, lo, hi, region))
    col = parts[0]
    for p in parts[1:]:
        col = col.merge(p)
    col = col.map(lambda i: with_nan_score(i, "NDWI", land, region))
    return col.filter(ee.Filter.lte("nan_NDWI", gc.daily_nan_max))


def _combine_day(img: ee.Image) -> ee.Image:
    ndwi, ndvi = ee.Image(img).select("NDWI"), ee.Image(img).select("NDVI")
    lst = ee.ImageCollection.fromImages(ee.List(img.get("lst"))).mean().rename("LST")
    both = ndwi.mask().And(lst.mask())  # common mask qmask_all (DOMAIN.md §1.3)
    ndvi = ndvi.updateMask(lst.mask())  # NDVI (standard convention) shares the LST mask too
    return ee.Image.cat([ndwi.updateMask(both), ndvi, lst.updateMask(both)]).copyProperties(
        img, ["system:time_start"])


def global_composite(cfg: Config, first: date, last: date) -> ee.Image:
    """Mean + count of NDWI, NDVI and LST over the daily images of [first, last] (a dekad or a month:
    the month is built from all valid daily images, not from the dekads, DOMAIN.md §1.5)."""
    from ..capabilities import capabilities

    col = medium_daily(cfg, first, last)
    names = ("NDWI", "NDVI", "LST") if capabilities(cfg).lst else ("NDWI", "NDVI")
    return mean_count(col, names).set("images", col.size()).clip(grid_region(cfg.global_chain.grid))


# --------------------------------------------------------------------------------------------
# Exports on the fixed grid
# --------------------------------------------------------------------------------------------
def export_params(image: ee.Image, grid: Grid, description: str) -> dict:
    """Arguments of ``Export.image.*`` for ``grid``: explicit CRS, transform and region, so the output
    is identical from one run to the next (DOMAIN.md §1.3 TRAN_OUT, §5.5)."""
    return {
        "image": image,
        "description": description,
        "crs": grid.crs,
        "crsTransform": list(grid.transform),
        "region": export_region(grid),
        "maxPixels": 1e10,  # EO4DM uses 1e10; the default 1e8 is below a 10 m tile (DOMAIN.md §5.5)
    }
