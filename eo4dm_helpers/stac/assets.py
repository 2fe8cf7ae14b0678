"""Asset names of each STAC catalogue mapped onto the product specification's bands (products.py).

The local engine reads bands by their Earth Engine names (``B4``, ``SR_B5``, ``QA_PIXEL``...) and
interprets them with the rules of ``products.py``; a catalogue names the same files differently. Each
map says, per product, which asset holds which band, its raw data type and fill value (odc-stac needs
them when an item has no ``raster:bands``), which ``platform`` values belong to the product (the
Landsat collections hold Landsat 4 to 9) and, for Sentinel-2, the asset with a 0-100 cloud
probability that stands in for s2cloudless (DOMAIN.md §4.1 ``MSK_CLDPRB``).

Where each name comes from is stated per map: **confirmed** = read in the catalogue's own collection
definition; **third-party** = seen in public code using the catalogue, not in its documentation;
**(unverified)** = by analogy only: check one item before production (``collections`` and the map can
be overridden in the parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import products as P


@dataclass(frozen=True)
class ProductAssets:
    collection: str  # default collection id in this catalogue
    bands: Mapping[str, str]  # our band name -> asset key
    dtypes: Mapping[str, str] = field(default_factory=dict)  # our band -> raw data type
    nodata: Mapping[str, int] = field(default_factory=dict)  # our band -> raw fill value
    platforms: tuple[str, ...] = ()  # item ``platform`` values of this product (lower case); () = any
    cloud_probability: str | None = None  # S2: asset of a 0-100 cloud probability (MSK_CLDPRB)
    source: str = ""  # where the names come from


@dataclass(frozen=True)
class AssetMap:
    name: str
    url: str  # the public STAC API root
    products: Mapping[str, ProductAssets]
    signing: str | None = None  # e.g. Planetary Computer: hrefs need a SAS token (planetary-computer package)

    def product(self, key: str) -> ProductAssets:
        try:
            return self.products[key]
        except KeyError:
            raise KeyError(f"the {self.name} asset map has no {key} (it maps {', '.join(self.products)}); "
                           "choose another stac.*.assets") from None


# Raw data types of the bands the specification reads (DOMAIN.md §4.1, §4.3).
_S2_TYPES = {"B4": "uint16", "B8": "uint16", "B11": "uint16", "SCL": "uint8", "AOT": "uint16"}
_S2_NODATA = {"B4": 0, "B8": 0, "B11": 0, "SCL": 0, "AOT": 0}
_L89_TYPES = {"SR_B4": "uint16", "SR_B5": "uint16", "SR_B6": "uint16", "QA_PIXEL": "uint16", "QA_RADSAT": "uint16",
              "SR_QA_AEROSOL": "uint8"}
_L7_TYPES = {"SR_B3": "uint16", "SR_B4": "uint16", "SR_B5": "uint16", "QA_PIXEL": "uint16", "QA_RADSAT": "uint16",
             "SR_CLOUD_QA": "uint8", "SR_ATMOS_OPACITY": "int16"}
_L89_NODATA = {"SR_B4": 0, "SR_B5": 0, "SR_B6": 0, "QA_PIXEL": 1}
_L7_NODATA = {"SR_B3": 0, "SR_B4": 0, "SR_B5": 0, "QA_PIXEL": 1}

# USGS Collection 2 Level-2 asset keys, used by the USGS STAC server, Earth Search and the Planetary
# Computer alike (confirmed for PC's landsat-c2-l2 item_assets; Earth Search: third-party).
_L89_USGS = {"SR_B4": "red", "SR_B5": "nir08", "SR_B6": "swir16", "QA_PIXEL": "qa_pixel", "QA_RADSAT": "qa_radsat",
             "SR_QA_AEROSOL": "qa_aerosol"}
_L7_USGS = {"SR_B3": "red", "SR_B4": "nir08", "SR_B5": "swir16", "QA_PIXEL": "qa_pixel", "QA_RADSAT": "qa_radsat",
            "SR_CLOUD_QA": "cloud_qa", "SR_ATMOS_OPACITY": "atmos_opacity"}


def _landsat(collection: str, source: str) -> dict[str, ProductAssets]:
    return {
        "L8": ProductAssets(collection, _L89_USGS, _L89_TYPES, _L89_NODATA, ("landsat-8",), source=source),
        "L9": ProductAssets(collection, _L89_USGS, _L89_TYPES, _L89_NODATA, ("landsat-9",), source=source),
        "L7": ProductAssets(collection, _L7_USGS, _L7_TYPES, _L7_NODATA, ("landsat-7",), source=source),
    }


# SL_2_LST files (DOMAIN.md §4.6): LST_in.nc (LST, LST_uncertainty), flags_in.nc (confidence_in, cloud_in,
# bayes_in), geodetic_in.nc (latitude_in, longitude_in). The keys of the three files in each catalogue:
SLSTR_FILES = ("LST", "flags", "geodetic")

EARTH_SEARCH = AssetMap(
    "earth-search", "https://earth-search.aws.element84.com/v1",
    {
        # third-party (earthsearch:boa_offset_applied, common-name keys); "cloud" (MSK_CLDPRB) (unverified)
        "S2": ProductAssets("sentinel-2-l2a", {"B4": "red", "B8": "nir", "B11": "swir16", "SCL": "scl", "AOT": "aot"},
                            _S2_TYPES, _S2_NODATA, cloud_probability="cloud", source="third-party; cloud (unverified)"),
        **_landsat("landsat-c2-l2", "third-party (USGS C2 keys)"),
    },
)

PLANETARY_COMPUTER = AssetMap(
    "planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1",
    {
        # S2 band-name keys (third-party); no cloud probability asset: the SCL stands in (loader.py)
        "S2": ProductAssets("sentinel-2-l2a", {"B4": "B04", "B8": "B08", "B11": "B11", "SCL": "SCL", "AOT": "AOT"},
                            _S2_TYPES, _S2_NODATA, source="third-party"),
        **_landsat("landsat-c2-l2", "third-party (USGS C2 keys)"),
        # confirmed: item_assets of microsoft/planetary-computer-tasks
        # datasets/sentinel-3/collection/sentinel-3-slstr-lst-l2-netcdf/template.json
        "SLSTR": ProductAssets("sentinel-3-slstr-lst-l2-netcdf",
                               {"LST": "lst-in", "flags": "slstr-flags-in", "geodetic": "slstr-geodetic-in"},
                               platforms=("sentinel-3a", "sentinel-3b"), source="confirmed (collection template)"),
    },
    signing="planetary-computer",
)

CDSE = AssetMap(
    "cdse", "https://stac.dataspace.copernicus.eu/v1",
    {
        # third-party: <band>_<res> keys and CLD_20m (MSK_CLDPRB); JP2 on s3://eodata with an https alternate
        "S2": ProductAssets("sentinel-2-l2a", {"B4": "B04_10m", "B8": "B08_10m", "B11": "B11_20m", "SCL": "SCL_20m",
                                               "AOT": "AOT_10m"}, _S2_TYPES, _S2_NODATA, cloud_probability="CLD_20m",
                            source="third-party"),
        # collection id: third-party (several clients); "LST_in" key: third-party (openEO geotrellis test);
        # flags_in / geodetic_in keys by analogy (unverified)
        "SLSTR": ProductAssets("sentinel-3-sl-2-lst-ntc", {"LST": "LST_in", "flags": "flags_in",
                                                            "geodetic": "geodetic_in"},
                               platforms=("sentinel-3a", "sentinel-3b"),
                               source="third-party; flags/geodetic (unverified)"),
    },
)

# Digital Earth Pacific's catalogue holds DEP's derived products; its pipelines (dep-tools) read raw
# L2A and C2 L2 with the Planetary Computer's keys. A DEP mirror of raw scenes is assumed to keep them
# (unverified): set stac.highres.collections to the mirror's ids.
DIGITAL_EARTH_PACIFIC = AssetMap(
    "digital-earth-pacific", "https://stac.digitalearthpacific.org",
    {k: v for k, v in PLANETARY_COMPUTER.products.items() if k != "SLSTR"},
)

ASSET_MAPS: dict[str, AssetMap] = {m.name: m for m in (EARTH_SEARCH, PLANETARY_COMPUTER, CDSE, DIGITAL_EARTH_PACIFIC)}

# Which spec product each of our product keys reads (S2/L7/L8/L9 of products.HIGH_RES, SLSTR).
SPEC: dict[str, P.Product] = {"S2": P.S2, "L7": P.L7, "L8": P.L8, "L9": P.L9, "SLSTR": P.SL_2_LST}


def product_assets(map_name: str, product: str, collections: Mapping[str, str] | None = None) -> ProductAssets:
    """The assets of ``product`` in catalogue map ``map_name``, with the parameters' collection override."""
    pa = ASSET_MAPS[map_name].product(product)
    if collections and product in collections:
        from dataclasses import replace

        pa = replace(pa, collection=collections[product])
    return pa


def check_complete(pa: ProductAssets, product: str) -> None:
    """Every band the specification reads has an asset (programming check of the maps)."""
    need = SLSTR_FILES if product == "SLSTR" else SPEC[product].bands
    missing = [b for b in need if b not in pa.bands]
    if missing:
        raise KeyError(f"asset map of {product} lacks {missing}")
