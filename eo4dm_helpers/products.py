"""The product specification: collection IDs, bands, scales, QA rules and thresholds, as data.

Written once from DOMAIN.md and interpreted by both engines (Earth Engine graphs in ``ee/``,
xarray in ``local/``). Every rule cites the DOMAIN.md section it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

Dating = Literal["scene", "product_day"]
"""How an acquisition is dated: "scene" by its local acquisition date, "product_day" by its UTC product day."""


# --------------------------------------------------------------------------------------------
# Quality rules: each says which pixels to KEEP.
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BitsClear:
    """Keep pixels where every listed bit of ``band`` is 0."""

    band: str
    bits: tuple[int, ...]
    why: str
    indices: tuple[str, ...] | None = None  # None = all indices of the product
    fill: bool = False  # the bits flag "no data" (e.g. QA_PIXEL bit 0): they define the L7 SLC-off gaps


@dataclass(frozen=True)
class FieldNotIn:
    """Keep pixels where the bit field ``(band >> shift) & (2**width - 1)`` is not in ``values``."""

    band: str
    shift: int
    width: int
    values: tuple[int, ...]
    why: str
    indices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ValueNotIn:
    """Keep pixels whose raw value is not in ``values`` (class codes, fill values)."""

    band: str
    values: tuple[int, ...]
    why: str
    indices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ScaledAtMost:
    """Keep pixels where ``band * scale + offset <= limit``; with ``param``, ``limit`` is the default of
    that run parameter (a field of ``config.LocalThresholds``) and :func:`tuned` replaces it."""

    band: str
    scale: float
    offset: float
    limit: float
    why: str
    indices: tuple[str, ...] | None = None
    param: str | None = None


Rule = BitsClear | FieldNotIn | ValueNotIn | ScaledAtMost


# --------------------------------------------------------------------------------------------
# Index definitions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NormalizedDifference:
    """``(a - b) / (a + b)`` computed on scaled reflectances."""

    name: str
    a: str
    b: str


@dataclass(frozen=True)
class Linear:
    """``band * scale + offset`` (e.g. LST in °C)."""

    name: str
    band: str
    scale: float
    offset: float


Index = NormalizedDifference | Linear


@dataclass(frozen=True)
class Product:
    key: str  # short name used in file names and parameters
    collection: str  # Earth Engine collection ID
    sensor: str  # S2, L7, L8, L9, MODIS, VIIRS
    start: date  # first acquisition in the catalog
    bands: tuple[str, ...]  # bands read from the scene
    reflectance_bands: tuple[str, ...] = ()  # scaled with (scale, offset) BEFORE any ratio
    scale: float = 1.0
    offset: float = 0.0
    indices: tuple[Index, ...] = ()
    rules: tuple[Rule, ...] = ()
    nodata: dict[str, int] = field(default_factory=dict)  # raw fill values, masked
    cloud_cover_property: str | None = None
    gap_fill_property: tuple[str, str] | None = None  # (property, value) that triggers L7 gap fill
    lst_max_c: float | None = None  # physically impossible LST above this (°C) is masked
    cloud_layer: bool = False  # clouds from a separate layer (s2cloudless or Cloud Score+, DOMAIN.md §1.4, §5.2)
    scene_nan_score: bool = False  # scenes with too much land masked are dropped (DOMAIN.md §1.4: Landsat only)
    # Which day an acquisition belongs to (``dekads.acquisition_day``): "scene" = its local date in the
    # territory's time zone (S2/Landsat, DOMAIN.md §3.4); "product_day" = the UTC day of the product, for
    # gridded MODIS/VIIRS products stamped 00:00 UTC of their product day (DOMAIN.md §3.4, §4.4, §4.5).
    dating: Dating = "scene"

    def rules_for(self, index: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.indices is None or index in r.indices)

    @property
    def data_rules(self) -> tuple[Rule, ...]:
        """What says a pixel holds data at all: the bands' raw fill values (``nodata``) and the fill bits.
        Where they fail the pixel is a gap (the L7 SLC-off stripes), not a pixel masked for quality."""
        values = tuple(ValueNotIn(b, (v,), f"{b} fill value {v}") for b, v in self.nodata.items())
        return values + tuple(r for r in self.rules if isinstance(r, BitsClear) and r.fill)


def tuned(product: Product, params: object) -> Product:
    """``product`` with the limit of every rule that names a run parameter (``ScaledAtMost.param``) read
    from ``params`` (``config.LocalThresholds``): both engines call this, so the parameter is the one source."""
    rules = tuple(replace(r, limit=float(getattr(params, r.param))) if isinstance(r, ScaledAtMost) and r.param
                  else r for r in product.rules)
    return replace(product, rules=rules)


# --------------------------------------------------------------------------------------------
# Local chain (10 m): Sentinel-2 and Landsat 7/8/9
# --------------------------------------------------------------------------------------------
S2_CLOUD_PROBABILITY = "COPERNICUS/S2_CLOUD_PROBABILITY"  # DOMAIN.md §4.2: band `probability` 0-100
S2_CLOUD_SCORE_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"  # bands cs, cs_cdf (0-1, 1 = clear)
S2_QA60_GAP = (date(2022, 1, 25), date(2024, 2, 28))  # DOMAIN.md §4.1: QA60 masked, never relied on

S2 = Product(
    key="S2",
    collection="COPERNICUS/S2_SR_HARMONIZED",  # DOMAIN.md §4.1
    sensor="S2",
    start=date(2017, 3, 28),
    bands=("B4", "B8", "B11", "SCL", "AOT"),
    # DOMAIN.md §4.1: SR × 1e-4, no offset in the harmonized collection; ratios are scale-free.
    reflectance_bands=("B4", "B8", "B11"),
    scale=1e-4,
    indices=(
        NormalizedDifference("NDVI", "B8", "B4"),  # DOMAIN.md §1.4
        NormalizedDifference("NDWI", "B8", "B11"),  # DOMAIN.md §1.4
    ),
    rules=(
        # DOMAIN.md §1.4/§4.1: SCL 1 saturated/defective, 6 water; 0 = no data.
        ValueNotIn("SCL", (0, 1), "SCL 0 no data, 1 saturated/defective (§4.1)"),
        ValueNotIn("SCL", (6,), "SCL 6 water (§1.4)"),
        # DOMAIN.md §1.4, §1.10 item 1: AOT scale is 0.001 (EO4DM divided by 1e4: filter ineffective).
        ScaledAtMost("AOT", 0.001, 0.0, 0.3, "AOT x 0.001 <= aot_max haze (§1.4, fixed scale §1.10.1)",
                     param="aot_max"),
    ),
    nodata={"B4": 0, "B8": 0, "B11": 0},
    cloud_cover_property="CLOUDY_PIXEL_PERCENTAGE",
    cloud_layer=True,  # DOMAIN.md §1.4: s2cloudless (or Cloud Score+) + shadow projection; QA60 never (§4.1)
)
S2_SCL_WATER = 6  # DOMAIN.md §4.1, §5.2: SCL 6 water, excluded from the dark pixels of the shadow test
S2_SHADOW_GRID_M = 100.0  # DOMAIN.md §5.2: the projected shadows are reprojected at 100 m
S2_MORPHOLOGY_GRID_M = 20.0  # DOMAIN.md §1.4, §5.2: cloud/shadow morphology reprojected at 20 m
S2_CLOUD_ERODE_PX = 2  # DOMAIN.md §5.2: focalMin(2) (px of the 20 m grid), then focalMax(2·BUFFER / 20)

_LANDSAT_SR_SCALE = 2.75e-05  # DOMAIN.md §4.3: SR scale 2.75e-05, offset -0.2
_LANDSAT_SR_OFFSET = -0.2

L8 = Product(
    key="L8",
    collection="LANDSAT/LC08/C02/T1_L2",  # DOMAIN.md §4.3
    sensor="L8",
    start=date(2013, 3, 18),
    bands=("SR_B4", "SR_B5", "SR_B6", "QA_PIXEL", "QA_RADSAT", "SR_QA_AEROSOL"),
    reflectance_bands=("SR_B4", "SR_B5", "SR_B6"),
    scale=_LANDSAT_SR_SCALE,
    offset=_LANDSAT_SR_OFFSET,
    indices=(
        NormalizedDifference("NDVI", "SR_B5", "SR_B4"),  # DOMAIN.md §1.4
        NormalizedDifference("NDWI", "SR_B5", "SR_B6"),
    ),
    rules=(
        BitsClear("QA_PIXEL", (0,), "QA_PIXEL bit 0 fill (§4.3)", fill=True),
        BitsClear("QA_PIXEL", (1, 2, 3, 4), "QA_PIXEL bits 1 dilated cloud, 2 cirrus, 3 cloud, 4 shadow (§1.4)"),
        BitsClear("QA_PIXEL", (7,), "QA_PIXEL bit 7 water (§1.4)"),
        FieldNotIn("SR_QA_AEROSOL", 6, 2, (3,), "SR_QA_AEROSOL bits 6-7 aerosol level 3 high (§1.4)"),
        BitsClear("QA_RADSAT", (11,), "QA_RADSAT bit 11 terrain occlusion (§1.4)"),
        BitsClear("QA_RADSAT", (3, 4), "QA_RADSAT bits 3 (B4), 4 (B5) saturated (§1.4)", ("NDVI",)),
        BitsClear("QA_RADSAT", (4, 5), "QA_RADSAT bits 4 (B5), 5 (B6) saturated (§1.4)", ("NDWI",)),
    ),
    nodata={"SR_B4": 0, "SR_B5": 0, "SR_B6": 0},
    cloud_cover_property="CLOUD_COVER_LAND",
    scene_nan_score=True,  # DOMAIN.md §1.4: Landsat scenes with > 95 % of land masked are rejected
)

# DOMAIN.md §4.3: LC09 has the same layout as LC08
L9 = replace(L8, key="L9", collection="LANDSAT/LC09/C02/T1_L2", sensor="L9", start=date(2021, 10, 31))

L7 = Product(
    key="L7",
    collection="LANDSAT/LE07/C02/T1_L2",  # DOMAIN.md §4.3
    sensor="L7",
    start=date(1999, 5, 28),
    bands=("SR_B3", "SR_B4", "SR_B5", "QA_PIXEL", "QA_RADSAT", "SR_CLOUD_QA", "SR_ATMOS_OPACITY"),
    reflectance_bands=("SR_B3", "SR_B4", "SR_B5"),
    scale=_LANDSAT_SR_SCALE,
    offset=_LANDSAT_SR_OFFSET,
    indices=(
        NormalizedDifference("NDVI", "SR_B4", "SR_B3"),  # DOMAIN.md §1.4
        NormalizedDifference("NDWI", "SR_B4", "SR_B5"),
    ),
    rules=(
        BitsClear("QA_PIXEL", (0,), "QA_PIXEL bit 0 fill (§1.4)", fill=True),
        BitsClear("QA_PIXEL", (1, 3, 4), "QA_PIXEL bits 1 dilated cloud, 3 cloud, 4 shadow (§1.4)"),
        BitsClear("SR_CLOUD_QA", (1, 2, 3), "SR_CLOUD_QA bits 1 cloud, 2 shadow, 3 adjacent (§1.4)"),
        BitsClear("QA_PIXEL", (7,), "QA_PIXEL bit 7 water (§1.4)"),
        BitsClear("SR_CLOUD_QA", (5,), "SR_CLOUD_QA bit 5 water (§1.4)"),
        ScaledAtMost("SR_ATMOS_OPACITY", 0.001, 0.0, 0.3, "SR_ATMOS_OPACITY x 0.001 <= l7_opacity_max (§1.4, §4.3)",
                     param="l7_opacity_max"),
        BitsClear("QA_RADSAT", (2, 3), "QA_RADSAT bits 2 (B3), 3 (B4) saturated (§1.4)", ("NDVI",)),
        BitsClear("QA_RADSAT", (3, 4), "QA_RADSAT bits 3 (B4), 4 (B5) saturated (§1.4)", ("NDWI",)),
    ),
    nodata={"SR_B3": 0, "SR_B4": 0, "SR_B5": 0},
    cloud_cover_property="CLOUD_COVER_LAND",
    gap_fill_property=("SENSOR_MODE_SLC", "OFF"),  # DOMAIN.md §1.4 gapfillingL7
    scene_nan_score=True,  # DOMAIN.md §1.4
)

# L7 SLC-off gap filling (DOMAIN.md §1.4): focal_mean(1, 'square', 'pixels', 25) on the indices,
# focal_mode(2, 'square', 'pixels', 11) on the quality mask, blended under the original.
GAP_FILL_INDEX = {"radius": 1, "iterations": 25}
GAP_FILL_QMASK = {"radius": 2, "iterations": 11}
L7_SLC_FAILURE = date(2003, 5, 31)

# Calibration to Landsat-8, y = a·x + b (DOMAIN.md §1.4 table). EO4DM did not apply L7: we do.
DEFAULT_CALIBRATION: dict[str, dict[str, tuple[float, float]]] = {
    "L7": {"NDWI": (0.97, 0.04), "NDVI": (0.96, 0.07)},
    "L9": {"NDWI": (0.95, 0.02), "NDVI": (0.97, 0.03)},
    "S2": {"NDWI": (0.98, 0.07), "NDVI": (0.91, 0.11)},
}

# --------------------------------------------------------------------------------------------
# Global chain (~463 m): MODIS and VIIRS
# --------------------------------------------------------------------------------------------
MOD09GA = Product(
    key="MOD09GA",
    collection="MODIS/061/MOD09GA",  # DOMAIN.md §1.3, §4.4 (Terra only: Aqua has strip lines)
    sensor="MODIS",
    start=date(2000, 2, 24),
    # Daily L2G tile product: system:time_start is 00:00 UTC of its product day, the "A<YYYYDDD>" of the
    # file name (DOMAIN.md §3.4, §4.4; catalog "Cadence 1 Day", availability "2000-02-24T00:00:00Z")
    dating="product_day",
    bands=("sur_refl_b01", "sur_refl_b02", "sur_refl_b06", "state_1km", "QC_500m"),
    reflectance_bands=("sur_refl_b01", "sur_refl_b02", "sur_refl_b06"),
    scale=1e-4,  # DOMAIN.md §4.4
    indices=(
        NormalizedDifference("NDWI", "sur_refl_b02", "sur_refl_b06"),  # DOMAIN.md §1.3
        # NDVI (red b01, NIR b02) for the "standard" VCI convention (DOMAIN.md §2.1)
        NormalizedDifference("NDVI", "sur_refl_b02", "sur_refl_b01"),
    ),
    rules=(
        ValueNotIn("sur_refl_b02", (-28672,), "fill -28672 (§4.4)"),
        ValueNotIn("sur_refl_b06", (-28672,), "fill -28672 (§4.4)", ("NDWI",)),
        ValueNotIn("sur_refl_b01", (-28672,), "fill -28672 (§4.4)", ("NDVI",)),
        FieldNotIn("QC_500m", 0, 2, (1, 2, 3), "QC_500m bits 0-1 MODLAND must be 0 ideal (§1.3)"),
        FieldNotIn("state_1km", 0, 2, (1, 2, 3), "state_1km bits 0-1 cloud state must be 0 clear (§1.3)"),
        BitsClear("state_1km", (2,), "state_1km bit 2 cloud shadow (§1.3)"),
        FieldNotIn("state_1km", 8, 2, (1, 2, 3), "state_1km bits 8-9 cirrus must be 0 none (§1.3)"),
    ),
)

MOD11A1 = Product(
    key="MOD11A1",
    collection="MODIS/061/MOD11A1",  # DOMAIN.md §1.3, §4.4
    sensor="MODIS",
    start=date(2000, 2, 24),
    dating="product_day",  # daily 1 km tile product stamped 00:00 UTC of its day (DOMAIN.md §3.4, §4.4)
    bands=("LST_Day_1km", "QC_Day"),
    # DOMAIN.md §4.4: LST_Day_1km scale 0.02 K; °C = DN·0.02 − 273.15
    indices=(Linear("LST", "LST_Day_1km", 0.02, -273.15),),
    rules=(
        ValueNotIn("LST_Day_1km", (0,), "fill 0 (§4.4)"),
        # DOMAIN.md §4.4 and §1.10 item 3: EO4DM applied no QC; keep mandatory QA 0 (good) or 1 (other quality)
        FieldNotIn("QC_Day", 0, 2, (2, 3), "QC_Day bits 0-1: 2/3 = not produced (§4.4, §1.10.3)"),
        FieldNotIn("QC_Day", 6, 2, (3,), "QC_Day bits 6-7 LST error > 3 K (§4.4)"),
    ),
)
# Aqua twin, DOMAIN.md §4.4
MYD11A1 = replace(MOD11A1, key="MYD11A1", collection="MODIS/061/MYD11A1", start=date(2002, 7, 4))

VNP09GA = Product(
    key="VNP09GA",
    collection="NASA/VIIRS/002/VNP09GA",  # DOMAIN.md §4.5, §1.10 item 2 (v001 deprecated)
    sensor="VIIRS",
    start=date(2012, 1, 19),
    dating="product_day",  # daily tile product stamped 00:00 UTC of its day (DOMAIN.md §3.4, §4.5)
    bands=("I1", "I2", "I3", "QF1", "QF2", "QF4", "QF7"),
    # DOMAIN.md §4.5: "The band scale factors are already applied" in v002 → no scale, no -28672 fill test.
    reflectance_bands=("I1", "I2", "I3"),
    scale=1.0,
    indices=(
        NormalizedDifference("NDWI", "I2", "I3"),  # DOMAIN.md §1.3
        NormalizedDifference("NDVI", "I2", "I1"),  # red I1, NIR I2, for the "standard" convention (§2.1)
    ),
    rules=(
        FieldNotIn("QF1", 2, 2, (1, 2, 3), "QF1 bits 2-3 must be 0 confident clear (§1.3)"),
        BitsClear("QF2", (3, 4, 6, 7), "QF2 bits 3 shadow, 4 heavy aerosol, 6-7 thin cirrus (§1.3)"),
        BitsClear("QF4", (2, 3), "QF4 bits 2 bad I2, 3 bad I3 (§1.3)", ("NDWI",)),
        BitsClear("QF4", (1, 2), "QF4 bits 1 bad I1, 2 bad I2 (§4.5)", ("NDVI",)),
        BitsClear("QF7", (4,), "QF7 bit 4 thin cirrus flag (§1.3)"),
    ),
)

VNP21A1D = Product(
    key="VNP21A1D",
    collection="NASA/VIIRS/002/VNP21A1D",  # DOMAIN.md §4.5
    sensor="VIIRS",
    start=date(2012, 1, 19),
    dating="product_day",  # daily tile product stamped 00:00 UTC of its day (DOMAIN.md §3.4, §4.5)
    bands=("LST_1KM", "QC"),
    indices=(Linear("LST", "LST_1KM", 1.0, -273.15),),  # DOMAIN.md §4.5: Kelvin, no scale
    rules=(
        ValueNotIn("LST_1KM", (0,), "fill 0"),
        FieldNotIn("QC", 0, 2, (2, 3), "QC bits 0-1: 2/3 = not produced (§4.4 layout)"),
        FieldNotIn("QC", 4, 2, (2, 3), "QC bits 4-5 cloud flag: 2 near cloud, 3 cloudy (§4.4)"),
        # DOMAIN.md §1.3 (computeMODISv21A1D_LST), §4.4/§4.5 layout: MMD bits 10-11 == 0 "> 0.15, most
        # silicate rocks" (TES emissivity wrong there)
        FieldNotIn("QC", 10, 2, (0,), "QC bits 10-11 MMD 0: silicate rocks, wrong emissivity (§1.3, §4.4)"),
    ),
    lst_max_c=60.0,  # DOMAIN.md §1.3 (MYD21A1D): mask LST > 60 °C
)

# Sentinel-3 SLSTR L2 LST (SL_2_LST): NOT in Earth Engine (DOMAIN.md §4.6). Read from STAC catalogues by
# eo4dm_helpers.stac (CDSE, Planetary Computer), flagged on the swath with the product's own flags and
# resampled onto the global grid there; what reaches the engine is ``LST`` in Kelvin, 0 where masked.
SL_2_LST = Product(
    key="SL_2_LST",
    collection="SENTINEL-3/SL_2_LST",  # product type, not an Earth Engine collection ID
    sensor="SLSTR",
    start=date(2017, 7, 5),  # DOMAIN.md §4.6: operational S3A 2017-07-05, S3B 2018-11-17
    # Per-acquisition swaths stamped with their sensing time, not daily products: dated like scenes, by the
    # local date of the acquisition (DOMAIN.md §3.4), the solar day of the ~10:00 local pass. The NDWI it
    # meets in the common mask (DOMAIN.md §1.3) is then the same local day's VIIRS NDWI: VNP09GA's ~13:30
    # local pass falls inside its own UTC product day from UTC−10 to UTC+12 (derived). (With MODIS Terra
    # NDWI in UTC+11/+12 the ~10:30 local pass is in the previous product day: one day apart there.)
    dating="scene",
    bands=("LST",),
    indices=(Linear("LST", "LST", 1.0, -273.15),),  # Kelvin → °C
    rules=(ValueNotIn("LST", (0,), "outside the swath or flagged on it (eo4dm_helpers.stac.slstr)"),),
    lst_max_c=60.0,  # as VNP21A1D (DOMAIN.md §1.3): physically impossible daytime LST masked
)
SLSTR_S3B_START = date(2018, 11, 17)  # DOMAIN.md §4.6: S3B SL_2_LST operational from this date

WORLDCOVER = ("ESA/WorldCover/v100", "ESA/WorldCover/v200")  # DOMAIN.md §1.3, §4.8
WORLDCOVER_WATER = 80  # class 80 permanent water bodies removed, AND of both years

PRODUCTS: dict[str, Product] = {p.key: p for p in (S2, L7, L8, L9, MOD09GA, MOD11A1, MYD11A1, VNP09GA, VNP21A1D)}

# Which products feed each sensor of the chains.
HIGH_RES = {"S2": (S2,), "L7": (L7,), "L8": (L8,), "L9": (L9,)}
MEDIUM_RES_NDWI = {"MODIS": (MOD09GA,), "VIIRS": (VNP09GA,)}
MEDIUM_RES_LST = {"MODIS": (MOD11A1, MYD11A1), "VIIRS": (VNP21A1D,)}  # the Earth Engine LST products
STAC_LST = {"SLSTR": (SL_2_LST,)}  # LST products read from STAC catalogues (DOMAIN.md §4.6)
LST_SOURCES = {**MEDIUM_RES_LST, **STAC_LST}  # every LST sensor of global_chain.lst_sensors

# Outliers (DOMAIN.md §1.4 removeOutliers): NDVI < 0.03 is water; any index > 1 is impossible.
OUTLIER_INDEX_MAX = 1.0


# --------------------------------------------------------------------------------------------
# Validation products: real files with other QA layouts, interpreted by the same engine
# --------------------------------------------------------------------------------------------
# Not used by the chains (they are not in PRODUCTS). They show that the specification is data: other
# bit layouts are new entries with the same rule types, and the local engine applies them unchanged
# (tests/test_realdata_*.py, on the files of the project notes' realdata/MANIFEST.md). Band names are
# the files' own (ESPA file suffixes, HDF SDS / HDF-EOS5 dataset names); ``collection`` names the
# distributor's product. The masks keep what the chains keep (DOMAIN.md §1.3, §1.4); the bit positions
# come from each product's own documentation, quoted per rule.

# Landsat 8 Collection 1 Level-2 SR as delivered by USGS ESPA (pixel_qa of LaSRC/CFMask, product XML
# bitmap_description): bit 0 fill, 1 clear, 2 water, 3 cloud shadow, 4 snow, 5 cloud, 6-7 cloud
# confidence, 8-9 cirrus confidence, 10 terrain occlusion. C2 moved them (DOMAIN.md §4.3).
LANDSAT8_C1_ESPA = Product(
    key="L8C1",
    collection="LANDSAT/LC08/C01/T1_SR",  # the (retired) Earth Engine collection of this ESPA product
    sensor="L8",
    start=date(2013, 4, 11),
    bands=("sr_band4", "sr_band5", "sr_band6", "pixel_qa", "radsat_qa", "sr_aerosol"),
    # ESPA SR: int16, scale_factor 0.0001, no offset, fill -9999 (product XML); ratios are scale-free.
    reflectance_bands=("sr_band4", "sr_band5", "sr_band6"),
    scale=1e-4,
    indices=(
        NormalizedDifference("NDVI", "sr_band5", "sr_band4"),  # DOMAIN.md §1.4 (OLI B5 NIR, B4 red)
        NormalizedDifference("NDWI", "sr_band5", "sr_band6"),  # DOMAIN.md §1.4 (B6 SWIR1)
    ),
    rules=(
        BitsClear("pixel_qa", (0,), "pixel_qa bit 0 fill (C1)", fill=True),
        BitsClear("pixel_qa", (3, 5), "pixel_qa bits 3 cloud shadow, 5 cloud (C1; the cloud/shadow rule of §1.4)"),
        FieldNotIn("pixel_qa", 8, 2, (3,), "pixel_qa bits 8-9 cirrus confidence high (C1; C2 bit 2 cirrus, §1.4)"),
        BitsClear("pixel_qa", (2,), "pixel_qa bit 2 water (C1; the water rule of §1.4)"),
        BitsClear("pixel_qa", (10,), "pixel_qa bit 10 terrain occlusion (C1; §1.4)"),
        FieldNotIn("sr_aerosol", 6, 2, (3,), "sr_aerosol bits 6-7 aerosol level 3 high (C1 = C2 layout, §1.4)"),
        BitsClear("radsat_qa", (4, 5), "radsat_qa bits 4 (B4), 5 (B5) saturated (C1: bit n = band n; §1.4)",
                  ("NDVI",)),
        BitsClear("radsat_qa", (5, 6), "radsat_qa bits 5 (B5), 6 (B6) saturated (C1; §1.4)", ("NDWI",)),
    ),
    nodata={"sr_band4": -9999, "sr_band5": -9999, "sr_band6": -9999},
    cloud_cover_property="CLOUD_COVER_LAND",
    scene_nan_score=True,  # as L8 (DOMAIN.md §1.4)
)

# MODIS 8-day surface reflectance, C6 HDF4 (the SDS attribute 'QA bitmap index'): sur_refl_state_500m
# has the state_1km layout of DOMAIN.md §4.4, sur_refl_qc_500m the QC_500m layout. Same rules as MOD09GA.
MOD09A1 = Product(
    key="MOD09A1",
    collection="MOD09A1.006",
    sensor="MODIS",
    start=date(2000, 2, 18),
    # gridded composite of whole UTC days: its file's ECS metadata RANGEBEGINNINGTIME 00:00:00 and
    # RANGEENDINGTIME 23:59:59 (as MOD11B2's and MOD13A2's, tests/test_product_day.py)
    dating="product_day",
    bands=("sur_refl_b02", "sur_refl_b06", "sur_refl_state_500m", "sur_refl_qc_500m"),
    reflectance_bands=("sur_refl_b02", "sur_refl_b06"),
    scale=1e-4,  # DOMAIN.md §4.4 (SDS scale_factor 0.0001)
    indices=(NormalizedDifference("NDWI", "sur_refl_b02", "sur_refl_b06"),),  # DOMAIN.md §1.3
    rules=(
        ValueNotIn("sur_refl_b02", (-28672,), "fill -28672 (§4.4)"),
        ValueNotIn("sur_refl_b06", (-28672,), "fill -28672 (§4.4)"),
        FieldNotIn("sur_refl_qc_500m", 0, 2, (1, 2, 3), "qc_500m bits 0-1 MODLAND must be 0 ideal (§1.3)"),
        FieldNotIn("sur_refl_state_500m", 0, 2, (1, 2, 3), "state bits 0-1 cloud state must be 0 clear (§1.3)"),
        BitsClear("sur_refl_state_500m", (2,), "state bit 2 cloud shadow (§1.3)"),
        FieldNotIn("sur_refl_state_500m", 8, 2, (1, 2, 3), "state bits 8-9 cirrus must be 0 none (§1.3)"),
    ),
)

# MODIS 8-day LST at 6 km, C6 HDF4: LST_Day_6km ×0.02 K (fill 0) and QC_Day with the MOD11A1 layout
# (DOMAIN.md §4.4). Same rules as MOD11A1.
MOD11B2 = Product(
    key="MOD11B2",
    collection="MOD11B2.006",
    sensor="MODIS",
    start=date(2000, 3, 5),
    dating="product_day",  # gridded composite of whole UTC days (as MOD09A1)
    bands=("LST_Day_6km", "QC_Day"),
    indices=(Linear("LST", "LST_Day_6km", 0.02, -273.15),),  # DOMAIN.md §4.4: °C = DN·0.02 − 273.15
    rules=(
        ValueNotIn("LST_Day_6km", (0,), "fill 0 (§4.4)"),
        FieldNotIn("QC_Day", 0, 2, (2, 3), "QC_Day bits 0-1: 2/3 = not produced (§4.4, §1.10.3)"),
        FieldNotIn("QC_Day", 6, 2, (3,), "QC_Day bits 6-7 LST error > 3 K (§4.4)"),
    ),
)

# MODIS 16-day VI at 1 km, C6.1 HDF4. 'pixel reliability' rank keys (SDS attribute 'Legend'): -1 fill,
# 0 good, 1 marginal, 2 snow/ice, 3 cloudy (the SummaryQA of DOMAIN.md §4.4); keep good and marginal,
# as the LST rules keep "other quality".
MOD13A2 = Product(
    key="MOD13A2",
    collection="MOD13A2.061",
    sensor="MODIS",
    start=date(2000, 2, 18),
    dating="product_day",  # gridded composite of whole UTC days (as MOD09A1)
    bands=("1 km 16 days NDVI", "1 km 16 days VI Quality", "1 km 16 days pixel reliability"),
    indices=(Linear("NDVI", "1 km 16 days NDVI", 1e-4, 0.0),),  # DOMAIN.md §4.4: NDVI scale 0.0001
    rules=(
        ValueNotIn("1 km 16 days NDVI", (-3000,), "fill -3000"),
        ValueNotIn("1 km 16 days pixel reliability", (-1, 2, 3), "reliability -1 fill, 2 snow/ice, 3 cloudy (§4.4)"),
    ),
)

# VIIRS 16-day VI at 1 km, v002 HDF-EOS5. 'pixel reliability' (dataset attribute 'Legend'): 0 excellent,
# 1 good, 2 acceptable, 3 marginal, 4 pass, 5 questionable, 6 poor, 7 cloud shadow, 8 snow/ice, 9 cloud,
# 10 estimated, 11 LTAVG, -1 no data, -4 water (DOMAIN.md §4.5 lists ranks 1-11 of VNP13A1). Keep 0-4.
VNP13A2 = Product(
    key="VNP13A2",
    collection="VNP13A2.002",
    sensor="VIIRS",
    start=date(2012, 1, 17),
    dating="product_day",  # gridded composite of whole UTC days (as MOD09A1)
    bands=("1 km 16 days NDVI", "1 km 16 days VI Quality", "1 km 16 days pixel reliability"),
    indices=(Linear("NDVI", "1 km 16 days NDVI", 1e-4, 0.0),),  # dataset scale_factor 0.0001
    rules=(
        ValueNotIn("1 km 16 days NDVI", (-15000, -13000), "fill -15000 / -13000 (_FillValue)"),
        ValueNotIn("1 km 16 days pixel reliability", (-4, -1, *range(5, 12)),
                   "reliability -4 water, -1 no data, 5 questionable ... 11 LTAVG (§4.5)"),
    ),
)

VALIDATION_PRODUCTS: dict[str, Product] = {p.key: p for p in (LANDSAT8_C1_ESPA, MOD09A1, MOD11B2, MOD13A2, VNP13A2)}
