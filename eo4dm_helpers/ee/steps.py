"""The Earth Engine side of the preprocessing notebooks: build the graphs of the dekad's products,
keep them in the run's work folder for the download step, and summarise them in one request."""

from __future__ import annotations

from pathlib import Path

import ee

from ..workflow import Context
from .io import EarthEngineIO, LiveIO, describe
from .plan import ExportPlan, plan_global, plan_local, write_plan


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


def download(ctx: Context) -> list[Path]:
    """Bring the dekad's composites home into the archive (direct tiled download or Drive export,
    resumable; DOMAIN.md §5.5). The plans are rebuilt: building graphs costs no request."""
    from .plan import plan_dekad
    from .transfer import download_dekad

    cfg, dl = ctx.cfg, ctx.cfg.download
    plans = plan_dekad(cfg, ctx.dekad)
    io = live_io(cfg)
    from .. import completeness as C
    from ..storage import archive_lock

    with archive_lock(cfg.paths.archive, ctx.holder):  # the routine's lock, or taken here (by hand)
        for p in plans:  # what was computed from a composite about to arrive goes first (never stale)
            if not p.archive_path.exists():
                d, chain = C.product_of(p.archive_path.relative_to(cfg.paths.archive))
                for f in C.derived_of(cfg, d, [chain]) if d else ():
                    f.unlink(missing_ok=True)
        return download_dekad(plans, ctx.work, cfg.paths.archive, io,
                              method=None if dl.method == "auto" else dl.method, concurrency=dl.concurrency,
                              drive_folder=dl.drive_folder)


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
