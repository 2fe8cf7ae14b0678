"""The historical reference on Earth Engine (``--backfill`` with ``backend: earthengine``, issue 14).

Every missing historical composite is built server-side with the routine's own graphs (``plan.plan_global``
and ``plan.plan_local``: the same masks, binning and compositing as a routine dekad), many dekads at a time:
a :class:`Batch` stacks the download expressions of N dekads of one chain (the global grid, or one local
tile) into one multi-band image, bands ``<archive file stem>__<band>``, fetched by ``computePixels`` tiles or
by one Drive export (``transfer.download_dekad``: bounded concurrency, retries with backoff on network
errors and HTTP 429/5xx). N is as large as the byte budget allows (``BatchPolicy``): a direct batch stays
within ``transfer.DIRECT_MAX_REQUESTS`` requests of at most 48 MB, a Drive batch within
``drive_max_bytes``, and never more than ``max_dekads`` dekads. Requests and exports therefore grow with
the batches, not with the dekads or images.

Each fetched batch is split locally into the archive's per-dekad files (same names, bands, float32 COG
and tags as the routine's download) in a staged folder and committed through ``workflow.commit``, under
the archive lock. The state (``<output>/state/backfill/state.json``) lists every batch and whether it is
done; fetched tiles and finished exports live next to it, so a rerun after a kill refetches nothing
already fetched, re-exports nothing already exported, and redoes no committed batch. A batch is split
only once whole: the archive never receives part of a batch's pixels.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ee
import numpy as np
import rasterio
from rasterio.windows import Window

from .. import completeness as C
from ..config import Config
from ..dekads import Dekad
from ..storage import write_text_atomic
from .cog import Assembler
from .drive import DRIVE_FOLDER, POLL, PollPolicy
from .errors import RETRY, RetryPolicy, TransferError
from .io import TransferIO
from .pixels import band_dtypes, download_expression
from .plan import ExportPlan, plan_global, plan_local
from .tiles import BLOCK, LIMITS, Limits, bytes_per_pixel, plan_tiles
from .transfer import DIRECT_MAX_REQUESTS, Method, choose_method

Log = Callable[[str], None]
PlanSource = Callable[[Config, Dekad, Iterable[str]], dict[str, list[ExportPlan]]]  # routine_plans' signature
STATE_VERSION = 1
SEP = "__"  # between the archive file stem and the band name in a batch's band names


@dataclass(frozen=True)
class BatchPolicy:
    """How many dekads go into one request set or export, and how many run at once.

    ``max_dekads``: at most this many dekads per batch (36: a year). ``drive_max_bytes``: uncompressed size
    of one Drive export with the mask bytes (a free Drive holds 15 GB and the exports of a wave coexist).
    ``exports_at_once``: batches in flight together (Earth Engine runs a few batch tasks per project at a
    time; more only queue and fill the Drive). ``concurrency``: parallel ``computePixels`` requests.
    ``method``: force ``direct`` or ``drive`` (default: per batch, as the routine chooses)."""

    max_dekads: int = 36
    drive_max_bytes: int = 4 * 2**30
    exports_at_once: int = 4
    concurrency: int = 4
    method: Method | None = None
    limits: Limits = LIMITS

    def __post_init__(self) -> None:
        if self.max_dekads < 1 or self.exports_at_once < 1 or self.concurrency < 1 or self.drive_max_bytes < 1:
            raise ValueError("backfill batches: max_dekads, exports_at_once, concurrency and drive_max_bytes must "
                             "be at least 1")
        if self.method not in (None, "direct", "drive"):
            raise ValueError(f"backfill batches: method must be 'direct', 'drive' or None, not {self.method!r}")


POLICY = BatchPolicy()


def chain_of(cfg: Config, plan: ExportPlan) -> str:
    """"global" or the tile id of a routine plan (from its archive path)."""
    return C.product_of(plan.archive_path.relative_to(cfg.paths.archive))[1]


def routine_plans(cfg: Config, dekad: Dekad, chains: Iterable[str] | None = None) -> dict[str, list[ExportPlan]]:
    """The routine's plans of ``dekad`` (with the month's on D3) by chain: exactly what a routine dekad
    downloads. ``chains`` limits them (the local graphs are built only for the tiles asked)."""
    want = None if chains is None else set(chains)
    plans: list[ExportPlan] = []
    if want is None or "global" in want:
        from ..chains import NoDataError

        with contextlib.suppress(NoDataError):  # no medium-resolution sensor that day: nothing is expected
            plans += plan_global(cfg, dekad)
    if want is None or want - {"global"}:
        plans += plan_local(cfg, dekad) if want is None else _plan_tiles(cfg, dekad, want - {"global"})
    out: dict[str, list[ExportPlan]] = {}
    for p in plans:
        out.setdefault(chain_of(cfg, p), []).append(p)
    return out


def _plan_tiles(cfg: Config, dekad: Dekad, tiles: set[str]) -> list[ExportPlan]:
    from dataclasses import replace

    lc = cfg.local_chain
    sub = replace(cfg, local_chain=replace(lc, tiles=tuple(t for t in lc.tiles if t.id in tiles)))
    return plan_local(sub, dekad)


@dataclass(frozen=True)
class Batch:
    """N dekads of one chain, fetched as one multi-band image."""

    chain: str  # "global" or a tile id
    dekads: tuple[Dekad, ...]
    plans: tuple[ExportPlan, ...]  # the routine's plans of these dekads, in order
    owners: tuple[Dekad, ...]  # the dekad of each plan (a month composite belongs to its third dekad)

    @property
    def key(self) -> str:
        return batch_key(self.chain, self.dekads)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(band_name(p, b) for p in self.plans for b in p.bands)

    def image(self) -> ee.Image:
        """The routine's download expression of every plan (masked pixels filled), bands renamed."""
        return ee.Image.cat([download_expression(p).rename([band_name(p, b) for b in p.bands]) for p in self.plans])

    def transfer_plan(self, folder: Path) -> ExportPlan:
        """The batch as one product for ``transfer.download_dekad``, landing in ``folder``."""
        g = self.plans[0].grid
        return ExportPlan(self.key, Path(folder) / f"{self.key}.tif", self.image(), g, self.bands,  # type: ignore[arg-type]
                          f"{len(self.dekads)} dekad(s), {self.dekads[0].label} to {self.dekads[-1].label}")


def batch_key(chain: str, dekads: Sequence[Dekad]) -> str:
    """Stable name of a batch (state entry, export description, file name): chain, span, digest of the dekads."""
    labels = ",".join(d.label for d in dekads)
    digest = hashlib.sha1(f"{chain}|{labels}".encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in chain)
    return f"backfill_{safe}_{dekads[0].label}_{dekads[-1].label}_{len(dekads)}_{digest}"


def band_name(plan: ExportPlan, band: str) -> str:
    return f"{plan.archive_path.stem}{SEP}{band}"


def _bytes(plans: Sequence[ExportPlan]) -> int:
    g = plans[0].grid
    return g.width * g.height * sum(bytes_per_pixel(band_dtypes(p)) for p in plans)


def _requests(plans: Sequence[ExportPlan], limits: Limits) -> int:
    g = plans[0].grid
    return len(plan_tiles(g.width, g.height, [d for p in plans for d in band_dtypes(p)], limits))


def _fits(plans: Sequence[ExportPlan], method: Method, policy: BatchPolicy) -> bool:
    if method == "direct":
        return _requests(plans, policy.limits) <= DIRECT_MAX_REQUESTS
    return _bytes(plans) <= policy.drive_max_bytes


def plan_batches(cfg: Config, todo: Mapping[str, Sequence[Dekad]], policy: BatchPolicy = POLICY,
                 plans: PlanSource | None = None) -> list[Batch]:
    """Batches of consecutive ``todo`` dekads per chain, each as large as the policy allows (at least one
    dekad). The route of a chain is the routine's for one dekad (``transfer.choose_method``); a direct
    batch then grows while it stays within ``DIRECT_MAX_REQUESTS`` requests, a Drive batch while it stays
    within ``drive_max_bytes``. ``plans``: where the per-dekad plans come from (the routine's; the benchmark
    substitutes cheap graphs of the same bands and grids)."""
    source = plans or routine_plans
    out: list[Batch] = []
    for chain, dekads in todo.items():
        cur: list[tuple[Dekad, list[ExportPlan]]] = []
        method: Method | None = None
        for d in sorted(set(dekads)):
            ps = source(cfg, d, [chain]).get(chain, [])
            if not ps:
                continue
            if method is None:
                method = choose_method(_merged(chain, [(d, ps)]), policy.method, policy.limits).method
            trial = [*cur, (d, ps)]
            if cur and (len(trial) > policy.max_dekads or not _fits([p for _, x in trial for p in x], method, policy)):
                out.append(_batch(chain, cur))
                cur = [(d, ps)]
            else:
                cur = trial
        if cur:
            out.append(_batch(chain, cur))
    return out


def _batch(chain: str, items: list[tuple[Dekad, list[ExportPlan]]]) -> Batch:
    return Batch(chain, tuple(d for d, _ in items), tuple(p for _, ps in items for p in ps),
                 tuple(d for d, ps in items for _ in ps))


def batch_of(cfg: Config, chain: str, dekads: Sequence[Dekad], plans: PlanSource | None = None) -> Batch:
    """The batch of exactly these dekads (a batch left unfinished, rebuilt with the same graphs)."""
    source = plans or routine_plans
    return _batch(chain, [(d, source(cfg, d, [chain]).get(chain, [])) for d in sorted(dekads)])


def _merged(chain: str, items: list[tuple[Dekad, list[ExportPlan]]]) -> ExportPlan:
    b = _batch(chain, items)
    g = b.plans[0].grid
    return ExportPlan(b.key, Path(b.key), ee.Image(0), g, b.bands)  # type: ignore[arg-type] - sizing only


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------
def state_dir(cfg: Config) -> Path:
    return cfg.paths.output / "state" / "backfill"


class BackfillState:
    """``{"version": 1, "batches": {key: {"chain", "dekads", "status"}}}``: ``fetching`` until the batch is
    committed, then ``done``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data: dict = {"version": STATE_VERSION, "batches": {}}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or data.get("version") != STATE_VERSION or \
                        not isinstance(data.get("batches"), dict):
                    raise ValueError
                for v in data["batches"].values():
                    [Dekad.parse(x) for x in v["dekads"]]
                    str(v["chain"]), str(v["status"])
            except (ValueError, KeyError, TypeError, AttributeError):
                raise TransferError(f"{self.path}: damaged backfill state (not the JSON this version writes); "
                                    "delete it to start the backfill's batches over (nothing in the archive is "
                                    "lost)") from None
            self.data = data

    def unfinished(self) -> list[tuple[str, list[Dekad]]]:
        """(chain, dekads) of every batch not committed yet, in the order they were planned."""
        return [(v["chain"], [Dekad.parse(x) for x in v["dekads"]]) for v in self.data["batches"].values()
                if v["status"] != "done"]

    def set(self, chain: str, dekads: Sequence[Dekad], status: str) -> None:
        self.data["batches"][batch_key(chain, dekads)] = {"chain": chain, "dekads": [d.label for d in dekads],
                                                          "status": status}
        write_text_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True))


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a backfill did: batches committed, files written, requests and exports it made."""

    batches: int = 0
    files: list[Path] | None = None
    skipped: int = 0  # batches already done by an earlier run


def backfill(cfg: Config, todo: Mapping[str, Sequence[Dekad]], io: TransferIO, *, policy: BatchPolicy = POLICY,
             log: Log = print, commit_batch: Callable[[Batch, dict[Path, Path]], list[Path]] | None = None,
             retry: RetryPolicy = RETRY, poll: PollPolicy = POLL, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic, drive_folder: str = DRIVE_FOLDER,
             folder: Path | None = None, plans: PlanSource | None = None) -> Outcome:
    """Fetch and commit the composites of ``todo`` (dekads by chain), batch after batch.

    Batches left unfinished by an earlier run are taken up first with the same dekads (their fetched tiles
    and running exports are reused); the other dekads are batched anew. Batches run ``exports_at_once`` at a
    time; after a wave, every fetched batch is split and committed (``commit_batch(batch, {staged: dest})``,
    default :func:`commit_staged`) before its state says ``done``. A failure (quota, rate limit past the
    retries, a deterministic Earth Engine error) stops the backfill after committing what was fetched: one
    :class:`TransferError` says how many batches are left and that a rerun resumes.
    """
    folder = Path(folder or state_dir(cfg))
    state = BackfillState(folder / "state.json")
    left = {c: set(ds) for c, ds in todo.items() if ds}
    batches: list[Batch] = []
    for chain, dekads in state.unfinished():
        if chain in left and left[chain] & set(dekads):  # taken up whole: its tiles and export are reused
            batches.append(batch_of(cfg, chain, dekads, plans))
            left[chain] -= set(dekads)
        else:  # committed by a run killed before it said so (or its dekads are no longer asked)
            (folder / "batches" / f"{batch_key(chain, dekads)}.tif").unlink(missing_ok=True)
            state.set(chain, dekads, "done")
    batches += plan_batches(cfg, {c: sorted(ds) for c, ds in left.items() if ds}, policy, plans)
    want = {c: set(ds) for c, ds in todo.items()}
    n_dekads = sum(len(ds) for ds in want.values())
    per_chain = {c: sum(1 for b in batches if b.chain == c) for c in dict.fromkeys(b.chain for b in batches)}
    log(f"backfill on Earth Engine: {n_dekads} chain-dekad(s) in {len(batches)} batch(es) "
        f"({', '.join(f'{c}: {n}' for c, n in per_chain.items())})")
    out = Outcome(files=[])
    commit_batch = commit_batch or (lambda b, staged: commit_staged(cfg, b, staged))
    for k in range(0, len(batches), policy.exports_at_once):
        wave = batches[k:k + policy.exports_at_once]
        for b in wave:
            state.set(b.chain, b.dekads, "fetching")
        tplans = {b.key: b.transfer_plan(folder / "batches") for b in wave}
        error: TransferError | None = None
        try:
            from .transfer import download_dekad

            download_dekad(list(tplans.values()), folder, folder / "batches", io, method=policy.method,
                           concurrency=policy.concurrency, log=log, drive_folder=drive_folder, limits=policy.limits,
                           retry=retry, poll=poll, sleep=sleep, clock=clock)
        except TransferError as err:
            error = err
        for b in wave:
            tp = tplans[b.key]
            if not tp.archive_path.exists():
                continue
            staged = split_batch(b, tp.archive_path, folder / "split" / b.key, want.get(b.chain, set()))
            files = commit_batch(b, staged)
            out.files += files  # type: ignore[operator]
            state.set(b.chain, b.dekads, "done")
            tp.archive_path.unlink(missing_ok=True)
            for leftover in (folder / "split" / b.key, folder / b.key):  # split files, transfer work folder
                shutil.rmtree(leftover, ignore_errors=True)
            out.batches += 1
            log(f"backfill: batch {out.batches}/{len(batches)} {b.chain} {b.dekads[0].label} to {b.dekads[-1].label} "
                f"({len(b.dekads)} dekad(s), {len(files)} file(s)) committed")
        if error is not None:
            raise TransferError(f"backfill stopped: {len(batches) - out.batches} of {len(batches)} batch(es) not done "
                                f"({error}); what was fetched is kept in {folder}: rerun later to resume") from None
    return out


def split_batch(batch: Batch, batch_file: Path, work: Path, wanted: set[Dekad]) -> dict[Path, Path]:
    """Write each plan of ``wanted`` dekads from the batch file into its own COG under ``work`` (the
    routine's bands, names and tags: ``cog.Assembler``); returns {staged file: archive destination}."""
    with rasterio.open(batch_file) as src:
        index = {name: i for i, name in enumerate(src.descriptions, start=1)}
        missing = [b for b in batch.bands if b not in index]
        if missing or src.count != len(batch.bands):
            raise TransferError(f"{batch_file.name}: {src.count} band(s), expected the batch's {len(batch.bands)} "
                                f"(missing {', '.join(missing[:3])}); delete it to fetch the batch again")
        out: dict[Path, Path] = {}
        for p, d in zip(batch.plans, batch.owners, strict=True):
            if d in wanted:
                staged = work / p.archive_path.name
                bands = [index[band_name(p, b)] for b in p.bands]
                with Assembler(work / f"{p.archive_path.stem}.assembling.tif", p.grid, p.bands) as asm:
                    for r0 in range(0, p.grid.height, BLOCK):
                        h = min(BLOCK, p.grid.height - r0)
                        data = src.read(bands, window=Window(0, r0, p.grid.width, h), out_dtype="float32")
                        asm.write(np.asarray(data, dtype=np.float32), r0, 0)
                    asm.commit(staged)
                out[staged] = p.archive_path
    return out


def commit_staged(cfg: Config, batch: Batch, staged: Mapping[Path, Path]) -> list[Path]:
    """Move a batch's split files into the archive through the routine's commit (validated first, stale
    indicators removed, atomic renames under the archive lock)."""
    from ..history import _cleanup, _context
    from ..workflow import commit

    ctx = _context(cfg, batch.dekads[0], f"backfill-{batch.key}")
    try:
        for src, dest in staged.items():
            target = ctx.staged.root / dest.relative_to(cfg.paths.archive)
            target.parent.mkdir(parents=True, exist_ok=True)
            src.replace(target)
        return commit(ctx)
    finally:
        _cleanup(ctx)
        for src in staged:
            src.unlink(missing_ok=True)
