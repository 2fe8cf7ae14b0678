"""The Earth Engine side of the preprocessing notebooks: build the graphs of the dekad's products,
keep them in the run's work folder for the download step, and summarise them in one request."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import ee

from .. import completeness as C
from ..config import Config
from ..dekads import Dekad
from ..storage import archive_lock, write_text_atomic
from ..workflow import Context
from .io import EarthEngineIO, LiveIO, TransferIO, describe
from .plan import ExportPlan, plan_global, plan_local, write_plan


class DownloadIO(TransferIO, EarthEngineIO, Protocol):
    """What the download step needs: image counts (one request), pixels, exports."""


def _stage(ctx: Context, plans: list[ExportPlan]) -> list[ExportPlan]:
    write_plan(plans, ctx.work / "ee")
    return plans


def stage_global(ctx: Context) -> list[ExportPlan]:
    return _stage(ctx, plan_global(ctx.cfg, ctx.dekad))


def stage_local(ctx: Context) -> list[ExportPlan]:
    return _stage(ctx, plan_local(ctx.cfg, ctx.dekad))


def staged_graphs(ctx: Context) -> dict[str, ee.Image]:
    """The graphs staged by the preprocessing notebooks, by product (for the download step)."""
    out = {}
    for f in sorted(Path(ctx.work / "ee").glob("*.json")):
        out[f.stem] = ee.Image(ee.deserializer.fromCloudApiJSON(f.read_text(encoding="utf-8")))
    return out


def summary_rows(plans: list[ExportPlan], io: EarthEngineIO | None = None) -> list[dict]:
    """One row per product: images used, window chosen, masked share (one request in all)."""
    info = describe(plans, io or LiveIO())
    return [{"product": p.product, **info.get(p.product, {}), "grid": f"{p.grid.width}x{p.grid.height} {p.grid.crs}"}
            for p in plans]


def scene_rows(ctx: Context, sensors: tuple[str, ...], io: EarthEngineIO | None = None) -> list[dict]:
    """Scenes of ``sensors`` found in the dekad's widest window per tile, after preprocessing and the
    server-side filters (one request in all)."""
    from ..chains import local_window
    from .graphs import highres_collection

    first, last = local_window(ctx.dekad)
    cfg = ctx.cfg
    periods = tuple(s for s in cfg.local_chain.sensors if s.name in sensors)
    if not periods:
        return []
    from dataclasses import replace

    sub = replace(cfg, local_chain=replace(cfg.local_chain, sensors=periods))
    sizes = ee.Dictionary({t.id: highres_collection(sub, t, first, last).size() for t in cfg.local_chain.tiles})
    info = (io or LiveIO()).compute_value(sizes)
    return [{"tile": k, "sensors": ", ".join(sensors), "window": f"{first} to {last}", "scenes kept": v}
            for k, v in info.items()]


def no_data_chains(cfg: Config, dekad: Dekad, plans: list[ExportPlan], info: dict[str, dict]) -> dict[str, str]:
    """Chain ("global" or a tile id) -> why it has no composite for ``dekad``: one of its products was
    computed from no image at all (``images`` 0 in ``describe``'s ``info``). The global chain then has no
    valid day in the dekad (its month goes too, as on the local engine, ``workflow.run_global``); a tile
    none even over the widest window (DOMAIN.md §1.5)."""
    out: dict[str, str] = {}
    for p in plans:
        n = (info.get(p.product) or {}).get("images")
        if n is None or int(n) > 0:  # unknown counts never make a no-data record
            continue
        _, chain = C.product_of(p.archive_path.relative_to(cfg.paths.archive))
        if chain == "global":
            out[chain] = (f"no usable MODIS/VIIRS day on Earth Engine (0 daily images left by the QA masks and the "
                          f"{cfg.global_chain.daily_nan_max:.0%} NaN-score filter)")
        else:
            out[chain] = (f"local chain, tile {chain}, {dekad.label}: no usable Sentinel-2 or Landsat scene on Earth "
                          "Engine even over the whole month; nothing written")
    return out


def download(ctx: Context, io: DownloadIO | None = None) -> list[Path]:
    """Bring the dekad's composites home into the archive (direct tiled download or Drive export,
    resumable; DOMAIN.md §5.5). The plans are rebuilt: building graphs costs no request. A chain whose
    products were computed from no image gets a no-data record instead (one request asks for the image
    counts of every product), as on the local engine."""
    from .plan import plan_dekad
    from .transfer import download_dekad

    cfg, dl = ctx.cfg, ctx.cfg.download
    plans = plan_dekad(cfg, ctx.dekad)
    io = io or live_io(cfg)
    empty = no_data_chains(cfg, ctx.dekad, plans, describe(plans, io)) if plans else {}
    archive = cfg.paths.archive

    with archive_lock(archive, ctx.holder):  # the routine's lock, or taken here (by hand)
        records = []
        for chain, reason in empty.items():  # no data: what the dekad had before no longer holds
            for f in C.derived_of(cfg, ctx.dekad, [chain]) + C.composites_of(cfg, ctx.dekad, chain):
                f.unlink(missing_ok=True)
            path = C.nodata_path(archive, chain, ctx.dekad)
            write_text_atomic(path, C.nodata_record(reason))
            records.append(path)
        plans = [p for p in plans if C.product_of(p.archive_path.relative_to(archive))[1] not in empty]
        for p in plans:  # what was computed from a composite about to arrive goes first (never stale)
            if not p.archive_path.exists():
                d, chain = C.product_of(p.archive_path.relative_to(archive))
                for f in C.derived_of(cfg, d, [chain]) if d else ():
                    f.unlink(missing_ok=True)
                if d:
                    C.nodata_path(archive, chain, d).unlink(missing_ok=True)  # data now: the record no longer holds
        return records + download_dekad(plans, ctx.work, archive, io,
                                        method=None if dl.method == "auto" else dl.method,
                                        concurrency=dl.concurrency, drive_folder=dl.drive_folder)


def live_io(cfg) -> LiveIO:
    """Earth Engine, with the Drive of the parameters (``download``) unless the method is direct."""
    from .io import PyDrive2Drive
    from .session import key_path

    dl, drive = cfg.download, None
    if dl.method != "direct":
        if dl.drive_auth == "service_account" and key_path(cfg) is not None:
            drive = PyDrive2Drive.service_account(key_path(cfg))
        elif dl.drive_client_secrets is not None and dl.drive_token is not None:
            drive = PyDrive2Drive.user(dl.drive_client_secrets, dl.drive_token)
    return LiveIO(drive=drive)
