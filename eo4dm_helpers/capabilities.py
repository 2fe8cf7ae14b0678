"""Which indicators a configuration can produce, and from which composites (issue 15: any set of indices).

The one place that answers it: archive scans, completeness, the indicators step, the bulletin and the
index page ask :func:`capabilities` instead of assuming NDWI and LST.

* Global chain: composites of ``global_chain.indices`` (default: NDWI, the convention's VCI index, and LST
  when ``lst_sensors`` are listed). VCI from the convention's index (DOMAIN.md §1.6 EO4DM: NDWI; §2.1
  Kogan: NDVI), TCI from LST, VHI from both (DOMAIN.md §1.6).
* Local chain: composites of ``local_chain.indices`` (default NDVI and NDWI); VAI from NDWI as EO4DM
  (DOMAIN.md §1.6), else from NDVI; its bare-soil / dense-vegetation filter needs the NDVI reference.
* Headline of the bulletin and the index page: VHI, else VCI, else VAI.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config, ConfigError

GLOBAL_INDICATORS = ("VCI", "TCI", "VHI")


@dataclass(frozen=True)
class Capabilities:
    global_indices: tuple[str, ...]  # composites the global chain produces (empty: chain disabled)
    local_indices: tuple[str, ...]  # composites of each local tile (empty: chain disabled)
    vci_index: str | None  # global composite VCI is computed from (None: no VCI)
    lst: bool  # LST composites, hence TCI
    vai_index: str | None  # local composite VAI is computed from (None: no VAI)
    vai_filter: bool  # the VAI vegetation filter has an NDVI reference

    @property
    def global_indicators(self) -> tuple[str, ...]:
        """VCI, TCI, VHI: those this configuration produces, in that order."""
        have = {"VCI": self.vci_index is not None, "TCI": self.lst}
        have["VHI"] = have["VCI"] and have["TCI"]
        return tuple(n for n in GLOBAL_INDICATORS if have[n])

    @property
    def headline(self) -> str | None:
        """The best indicator available: VHI, else VCI, else VAI (None: no indicator at all)."""
        return next((n for n in ("VHI", "VCI") if n in self.global_indicators), "VAI" if self.vai_index else None)

    def headline_label(self) -> str:
        """The headline indicator with why it is not VHI, e.g. ``"VCI (no LST configured)"``."""
        name = self.headline
        if name is None or name == "VHI":
            return name or "no indicator"
        if name == "VCI":
            return "VCI (no LST configured)"
        return "VAI (no global chain)" if not self.global_indices else "VAI (no VCI configured)"

    def index_for(self, indicator: str) -> str | None:
        """The composite an indicator is computed from."""
        return {"VCI": self.vci_index, "TCI": "LST" if self.lst else None, "VAI": self.vai_index}.get(indicator)


def capabilities(cfg: Config) -> Capabilities:
    from .indicators import CONVENTIONS

    gc, lc = cfg.global_chain, cfg.local_chain
    conv = CONVENTIONS[cfg.indicators.convention]
    if not gc.enabled:
        g: tuple[str, ...] = ()
    elif gc.indices is not None:
        g = tuple(i for i in ("NDWI", "NDVI", "LST") if i in gc.indices)
    else:  # what the chain always produced: NDWI, the VCI index, LST when there is an LST sensor
        g = tuple(dict.fromkeys(("NDWI", conv.vci_index) + (("LST",) if gc.lst_sensors else ())))
    loc = tuple(i for i in ("NDWI", "NDVI") if i in lc.indices) if lc.enabled else ()
    return Capabilities(
        global_indices=g,
        local_indices=loc,
        vci_index=conv.vci_index if conv.vci_index in g else None,
        lst="LST" in g,
        vai_index=next((i for i in ("NDWI", "NDVI") if i in loc), None),  # DOMAIN.md §1.6: NDWI z-score
        vai_filter="NDVI" in loc,
    )


def check_indices(cfg: Config) -> None:
    """The declared indices agree with the sensors and the convention (one-line :class:`ConfigError`)."""
    from .indicators import CONVENTIONS

    gc = cfg.global_chain
    if not gc.enabled:
        return
    conv = CONVENTIONS[cfg.indicators.convention]
    g = capabilities(cfg).global_indices
    if "LST" in g and not gc.lst_sensors:
        raise ConfigError("global_chain.indices: lists LST but global_chain.lst_sensors is empty: list an LST "
                          "sensor, or remove LST (then no TCI or VHI)")
    if {"NDWI", "NDVI"} & set(g) and not gc.ndwi_sensors:
        raise ConfigError("global_chain.ndwi_sensors: needed for the NDVI/NDWI composites of global_chain.indices")
    if conv.vci_index not in g:
        other = next(c for c in CONVENTIONS.values() if c.vci_index != conv.vci_index)
        fix = (f"set indicators.convention: {other.name} (VCI from {other.vci_index})"
               if other.vci_index in g else f"add {conv.vci_index} to global_chain.indices")
        raise ConfigError(f"indicators.convention: {conv.name} computes VCI from {conv.vci_index}, which "
                          f"global_chain.indices ({', '.join(g)}) does not list: {fix}")
