"""What a dekad produces on Earth Engine: one export per archive file, on the fixed grid.

``plan_dekad`` builds the graphs (no request); ``write_plan`` writes, per product, the serialized
graph ``<dir>/<product>.json`` and a readable summary ``<dir>/<product>.txt`` (the dry run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import ee

from ..archive import Archive, Month, grid_of
from ..config import Config, Grid
from ..dekads import Dekad
from . import graphs


@dataclass
class ExportPlan:
    product: str  # unique name, also the file stem of the plan
    archive_path: Path  # where the downloaded file lands in the archive
    image: ee.Image  # 2 bands: index mean, valid count (EO4DM layout, DOMAIN.md §1.2)
    grid: Grid
    bands: tuple[str, str]
    window: str = ""  # local dates covered (dekad or month), for the summary
    # the multi-band image ``image`` selects from: plans sharing it (the global NDWI, NDVI, LST of a
    # period) are fetched together, one computePixels request per tile (pixels.download_together)
    shared: ee.Image | None = None

    @property
    def export(self) -> dict:
        return graphs.export_params(self.image, self.grid, self.product)

    def summary(self) -> str:
        g = self.grid
        size_mb = g.width * g.height * len(self.bands) * 4 / 2**20
        return "\n".join([
            f"product:    {self.product}",
            f"archive:    {self.archive_path.name}",
            f"dates:      {self.window}",
            f"bands:      {', '.join(self.bands)} (float32)",
            f"CRS:        {g.crs}",
            f"transform:  {list(g.transform)}",
            f"scale:      {g.resolution} ({'degrees' if g.crs.upper() == 'EPSG:4326' else 'metres'} per pixel)",
            f"dimensions: {g.width} x {g.height} px",
            f"region:     {list(g.bounds)} in {g.crs}",
            f"size:       {size_mb:.1f} MB uncompressed",
            "method:     {}: {}".format(*_choose_method(self)),
        ]) + "\n"


def _choose_method(plan: ExportPlan):
    from .transfer import choose_method  # transfer imports this module

    return choose_method(plan)


def output_grid(configured: Grid, existing: Path | None) -> Grid:
    """The grid of the archive if it already has a file (EO4DM reuses TRAN_OUT), else the configured one.

    A configured grid that differs from the archive's is an error: the series would break.
    """
    if existing is None or not existing.exists():
        return configured
    found = grid_of(existing)
    why = found.mismatch(configured)
    if why is not None:
        raise ValueError(f"the archive's grid ({existing.name}: {found}) differs from the parameters' grid "
                         f"({why}); the output grid must not change once the archive exists")
    return found


def _first_file(folder: Path) -> Path | None:
    files = sorted(folder.rglob("*.tif")) if folder.is_dir() else []
    return files[0] if files else None


def plan_dekad(cfg: Config, dekad: Dekad) -> list[ExportPlan]:
    """Every product of the dekad (and of the month with the third dekad), as Earth Engine graphs."""
    return plan_global(cfg, dekad) + plan_local(cfg, dekad)


def plan_global(cfg: Config, dekad: Dekad) -> list[ExportPlan]:
    """Global chain: NDWI and LST composites of the dekad (+ the month with the third dekad)."""
    arch = Archive(cfg.paths.archive)
    plans: list[ExportPlan] = []
    if cfg.global_chain.enabled:
        from ..chains import global_period_sensor, month_bounds

        grid = output_grid(cfg.global_chain.grid, _first_file(arch.root / "composites" / "global"))
        sensors = global_period_sensor(cfg, dekad.start)
        periods: list[tuple[Dekad | Month, tuple]] = [(dekad, (dekad.start, dekad.end))]
        if dekad.index == 3:  # the month comes with the 3rd dekad (DOMAIN.md §1.5 go_month)
            periods.append((Month(dekad.year, dekad.month), month_bounds(dekad)))
        from ..workflow import global_outputs

        wanted = global_outputs(cfg)  # the configured indices (LST only when configured)
        for period, (first, last) in periods:
            comp = graphs.global_composite(cfg, first, last)
            for index, sensor in (("NDWI", sensors[0]), ("NDVI", sensors[0]), ("LST", sensors[1])):
                if index not in wanted or sensor is None:
                    continue
                path = arch.global_composite(sensor, index, period)
                plans.append(ExportPlan(f"global_{path.stem}", path, comp.select([index, f"{index}_count"]),
                                        grid, (index, f"{index}_count"), f"{first} to {last}", shared=comp))
    return plans


def plan_local(cfg: Config, dekad: Dekad) -> list[ExportPlan]:
    """Local chain: NDWI and NDVI composites of the dekad per tile (those of local_chain.indices), with window
    widening."""
    from ..capabilities import capabilities

    arch = Archive(cfg.paths.archive)
    plans: list[ExportPlan] = []
    if cfg.local_chain.enabled:
        for tile in cfg.local_chain.tiles:
            grid = output_grid(tile.grid, _first_file(arch.root / "composites" / "local" / tile.id))
            comp = graphs.local_dekad_composite(cfg, tile, dekad)
            for index in capabilities(cfg).local_indices:
                path = arch.local_composite(tile.id, index, dekad)
                plans.append(ExportPlan(f"local_{tile.id}_{path.stem}", path,
                                        comp.select([index, f"{index}_count"]), grid, (index, f"{index}_count"),
                                        f"{dekad.start} to {dekad.end}, widened to ±5 d, ±10 d or the month "
                                        "if more than half of the land is empty"))
    return plans


def write_plan(plans: list[ExportPlan], folder: Path) -> list[Path]:
    """Serialized graph and readable summary per product (the dry run's output)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in plans:
        graph = json.loads(p.image.serialize())
        (folder / f"{p.product}.json").write_text(json.dumps(graph, indent=1, sort_keys=True), encoding="utf-8")
        (folder / f"{p.product}.txt").write_text(p.summary(), encoding="utf-8")
        out.append(folder / f"{p.product}.json")
    index = "\n".join(f"{p.product}: {p.archive_path.name}" for p in plans)
    (folder / "index.txt").write_text(index + "\n", encoding="utf-8")
    return out
