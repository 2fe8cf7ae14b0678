"""Reliability campaign of the routine: crash trials (SIGKILL at many points, then a rerun), injected
faults (disk full, read-only folder, Earth Engine errors, an error quoting the key) and the corpus of bad
inputs (tests/bad_inputs/cases.yaml).

Used by ``tests/test_reliability*.py`` (a few trials) and ``bench/reliability.py`` (the figures). Nothing
here is imported by the routine itself.

A *workspace* is a parameter file with its archive and output folders; every trial starts from a copy
of one *base* workspace (the reduced demo: 21 January - March of 2021-2024 with the reference built by
``backfill``, as ``tests/conftest.py``'s ``small_demo``). The scene store of the base is shared: runs only
read it. A trial starts ``run_all.py`` as a subprocess, freezes then SIGKILLs it with every process it
started (its process group and the papermill kernels, which run in sessions of their own), reruns the
same command to completion and compares the archive, file by file and byte for byte, with the archive
of one uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import yaml

from .storage import TMP_PREFIX

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "run_all.py"
LOCK_NAME = ".eo4dm.lock"
DEKAD = "2024-03-D2"  # the demo's latest complete dekad; the run also recomputes the provisional 2024-03-D1
ROUTINE_ARGS = ("--dekad", DEKAD)  # two dekads: 10 archive files replaced, 10 created (about 35 s here)
SHORT_ARGS = ("--dekad", "2024-03-D1")  # on short_base(): one dekad, 5 files replaced, 5 created (about 17 s)


# --------------------------------------------------------------------------------------------
# Workspaces
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workspace:
    root: Path
    params: Path
    scenes: Path
    archive: Path
    output: Path


def write_params(dest: Path, scenes: Path, archive: Path, output: Path, **overrides: object) -> Path:
    """``params/demo.yaml`` with its paths replaced (absolute) and top-level keys overridden."""
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text(encoding="utf-8"))
    data["paths"] = {"scenes": str(scenes), "archive": str(archive), "output": str(output)}
    data["territory"]["zones"] = str(scenes / "zones.geojson")
    data["territory"]["outline"] = str(scenes / "outline.geojson")
    data.update(overrides)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data), encoding="utf-8")
    return dest


def _workspace(root: Path, scenes: Path) -> Workspace:
    root = Path(root)
    return Workspace(root, root / "params.yaml", Path(scenes), root / "archive", root / "output")


def build_base(root: Path) -> Workspace:
    """The reduced demo in ``root`` (scenes, archive with the reference composites and the indicators
    of 2024-02-D1 and 2024-03-D1), as ``small_demo``. About 20 s."""
    from .config import load_config
    from .dekads import Dekad
    from .drought import backfill_indicators
    from .sample import build_demo_archive
    from .workflow import backfill

    ws = _workspace(root, Path(root) / "scenes")
    write_params(ws.params, ws.scenes, ws.archive, ws.output)
    cfg = load_config(ws.params, check_layers=False)  # build_demo_archive writes the zone layer
    for year in (2021, 2022, 2023, 2024):
        build_demo_archive(cfg, start=date(year, 1, 21), end=date(year, 3, 31))
        for first, last in ((Dekad(year, 2, 1), Dekad(year, 2, 1)), (Dekad(year, 3, 1), Dekad(year, 3, 2))):
            backfill(cfg, first, last if year < 2024 else min(last, Dekad(2024, 3, 1)), log=lambda m: None)
    backfill_indicators(cfg, Dekad(2024, 2, 1), Dekad(2024, 3, 1), log=lambda m: None)
    return ws


def base_workspace(root: Path) -> Workspace:
    return _workspace(root, Path(root) / "scenes")


def clone(base: Workspace, dest: Path, *, own_scenes: bool = False, **overrides: object) -> Workspace:
    """A fresh copy of ``base``'s archive and output in ``dest``; the scenes are shared unless
    ``own_scenes`` (for cases that damage them)."""
    dest = Path(dest)
    if dest.exists():
        _rmtree(dest)
    dest.mkdir(parents=True)
    scenes = base.scenes
    if own_scenes:
        scenes = dest / "scenes"
        shutil.copytree(base.scenes, scenes)
    ws = _workspace(dest, scenes)
    shutil.copytree(base.archive, ws.archive)
    shutil.copytree(base.output, ws.output)
    write_params(ws.params, ws.scenes, ws.archive, ws.output, **overrides)
    return ws


def _rmtree(path: Path) -> None:
    def writable(fn, p, _exc):  # folders made read-only by a test
        os.chmod(p, 0o755)
        os.chmod(os.path.dirname(p), 0o755)
        fn(p)

    shutil.rmtree(path, onexc=writable) if sys.version_info >= (3, 12) else shutil.rmtree(path, onerror=writable)


def short_base(base: Workspace, dest: Path) -> Workspace:
    """A copy of ``base`` without the indicators and zone statistics of 2024-03-D1 (its composites kept):
    ``SHORT_ARGS`` then runs every notebook once and both replaces and creates archive files, in half the
    time of ``ROUTINE_ARGS`` (the tests' campaign; bench/reliability.py runs ``ROUTINE_ARGS``)."""
    ws = clone(base, dest)
    for p in [*ws.archive.glob("indicators/*/*/*202403D1.tif"), *ws.archive.glob("indicators/*/*/*/*202403D1.tif"),
              *ws.archive.glob("stats/2024-03-D1/*")]:
        p.unlink()
    return ws


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``, by relative path."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def mismatches(expected: dict[str, str], got: dict[str, str]) -> list[str]:
    """Files missing, extra or with other bytes (relative paths, sorted)."""
    return sorted([f"missing {k}" for k in expected.keys() - got.keys()]
                  + [f"extra {k}" for k in got.keys() - expected.keys()]
                  + [f"differs {k}" for k in expected.keys() & got.keys() if expected[k] != got[k]])


def leftovers(ws: Workspace) -> list[str]:
    """What a finished run must not leave: temporary files (archive and output), the lock, work folders."""
    out = []
    for folder in (ws.archive, ws.output):
        if folder.is_dir():
            out += [str(p.relative_to(ws.root)) for p in folder.rglob(f"{TMP_PREFIX}*")]
    if (ws.archive / LOCK_NAME).exists():
        out.append(str((ws.archive / LOCK_NAME).relative_to(ws.root)))
    work = ws.output / "work"
    if work.is_dir():
        out += [str(p.relative_to(ws.root)) for p in work.iterdir()]
    return sorted(out)


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------
def command(params: Path, *args: str) -> list[str]:
    return [sys.executable, str(RUN_ALL), "--params", str(params), *args]


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, with this copy of the code first on the path: the runs and their notebook
    kernels execute the code this module belongs to."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "NO_GCE_CHECK": "true", **(extra or {})}


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=environment(env), timeout=timeout)


def start(cmd: list[str], log: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``cmd`` in a session (process group) of its own, output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=environment(env),
                                start_new_session=True)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; empty elsewhere)."""
    out = []
    for d in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(d.name))
    return out


def _signal(pid: int, sig: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig) if group else os.kill(pid, sig)


def kill_tree(proc: subprocess.Popen) -> int:
    """SIGKILL ``proc``, its process group and every descendant (the Jupyter kernels run in sessions of
    their own). Everything is first frozen with SIGSTOP, so that nothing runs on, or starts, between
    the crash point and the kill. Returns the number of processes killed."""
    frozen: set[int] = set()
    todo = [proc.pid]
    _signal(proc.pid, signal.SIGSTOP, group=True)
    while todo:
        pid = todo.pop()
        if pid in frozen:
            continue
        _signal(pid, signal.SIGSTOP)
        frozen.add(pid)
        todo += children(pid)
    for pid in frozen:
        _signal(pid, signal.SIGKILL)
        _signal(pid, signal.SIGKILL, group=True)
    proc.wait()
    return len(frozen)


class Watch:
    """Polls a workspace while a run goes on: which archive files were created or replaced since the
    start (an atomic rename gives a new inode), and which temporary files (archive or output) were seen,
    i.e. files being written."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.initial = self._scan(ws.archive)[0]
        self.changed: set[str] = set()
        self.temporaries: list[str] = []  # in the order first seen
        self._seen: set[str] = set()

    @staticmethod
    def _scan(folder: Path) -> tuple[dict[str, tuple[int, int, int]], list[str]]:
        files: dict[str, tuple[int, int, int]] = {}
        temporaries = []
        stack = [folder]
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:
                continue
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(Path(e.path))
                    elif e.name.startswith(TMP_PREFIX):
                        temporaries.append(e.path)
                    elif e.name != LOCK_NAME:
                        st = e.stat(follow_symlinks=False)
                        files[e.path] = (st.st_ino, st.st_mtime_ns, st.st_size)
                except OSError:
                    continue
        return files, temporaries

    def poll(self) -> list[str]:
        """Scan; return the temporary files present now."""
        files, temporaries = self._scan(self.ws.archive)
        temporaries += self._scan(self.ws.output)[1]
        self.changed |= {p for p, s in files.items() if self.initial.get(p) != s}
        for t in temporaries:
            if t not in self._seen:
                self._seen.add(t)
                self.temporaries.append(t)
        return temporaries


# --------------------------------------------------------------------------------------------
# Crash trials
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KillPoint:
    """When a trial kills the run: ``time`` after ``at`` seconds; ``commit`` once ``at`` archive files
    have been created or replaced (between two atomic renames of a commit); ``write`` as soon as the
    ``at``-th temporary file of the run (archive or output) is seen, i.e. while a file is being written;
    ``report`` while the ``at``-th bulletin page is being written (output/reports)."""

    kind: str
    at: float

    def __str__(self) -> str:
        return {"time": f"after {self.at:.1f} s", "commit": f"after {self.at:g} archive file(s) committed",
                "write": f"while writing its temporary file #{self.at:g}",
                "report": f"while writing bulletin page #{self.at:g}"}[self.kind]


@dataclass
class Reference:
    digest: dict[str, str]
    duration: float  # seconds
    changed: int  # archive files created or replaced by the run
    temporaries: int  # temporary files seen while it ran (archive and output)
    sources: str = ""  # source_digest() when it ran


def source_digest() -> str:
    """One hash of the code a run executes (package, notebooks, run_all.py): a reference is only valid
    for the code it ran with (guards a campaign against edits made while it runs)."""
    h = hashlib.sha256()
    files = sorted((ROOT / "eo4dm_helpers").rglob("*.py")) + sorted((ROOT / "notebooks").glob("*.ipynb")) + [RUN_ALL]
    for f in files:
        with contextlib.suppress(OSError):
            h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


@dataclass
class Trial:
    index: int
    point: KillPoint
    killed: bool  # False: the run finished before the kill point
    killed_after: float  # seconds
    processes_killed: int
    changed_before_kill: int  # archive files created or replaced before the kill
    writing: str  # the temporary file(s) present when killed
    stale_lock: bool  # the killed run left its lock (a dead process's), which the rerun had to take over
    rerun_exit: int
    mismatches: list[str]
    leftovers: list[str]
    rerun_output: str = ""

    @property
    def recovered(self) -> bool:
        return self.rerun_exit == 0 and not self.mismatches and not self.leftovers


@dataclass
class Campaign:
    reference: Reference
    trials: list[Trial] = field(default_factory=list)

    @property
    def faults(self) -> Counter:
        return Counter(f"SIGKILL ({t.point.kind})" for t in self.trials if t.killed)

    @property
    def recovered(self) -> int:
        return sum(t.recovered for t in self.trials)

    @property
    def mismatched(self) -> int:
        """Trials whose archive differs from the uninterrupted run's after the rerun."""
        return sum(bool(t.mismatches) for t in self.trials)


def run_reference(base: Workspace, dest: Path, args: tuple[str, ...] = ROUTINE_ARGS) -> Reference:
    """One uninterrupted run from a copy of ``base``: the archive every trial must end with."""
    sources = source_digest()
    ws = clone(base, dest)
    watch = Watch(ws)
    t0 = time.monotonic()
    proc = start(command(ws.params, *args), ws.root / "run.log")
    while proc.poll() is None:
        watch.poll()
        time.sleep(0.002)
    duration = time.monotonic() - t0
    watch.poll()
    if proc.returncode != 0:
        raise RuntimeError(f"the reference run failed (exit {proc.returncode}): "
                           f"{(ws.root / 'run.log').read_text(errors='replace')[-2000:]}")
    if leftovers(ws):
        raise RuntimeError(f"the reference run left {leftovers(ws)}")
    return Reference(digest(ws.archive), duration, len(watch.changed), len(watch.temporaries), sources)


def schedule(n: int, ref: Reference) -> list[KillPoint]:
    """``n`` kill points spread deterministically over the run: a quarter at commit moments (after k of
    the archive files the run writes are renamed into place, k evenly spaced), a sixth while a file is
    being written (the k-th temporary file of the run, k evenly spaced), one (from 4 trials) while the
    bulletin is written, the rest at evenly spaced times over the uninterrupted run's duration (95 % of
    it: a trial may run a little faster)."""
    n_commit = max(1, n // 4) if n >= 3 and ref.changed > 1 else 0
    n_write = max(1, n // 6) if n >= 3 and ref.temporaries > 1 else 0
    n_report = 1 if n >= 4 else 0
    n_time = n - n_commit - n_write - n_report
    points = [KillPoint("time", round(0.95 * ref.duration * (i + 1) / (n_time + 1), 2)) for i in range(n_time)]
    points += [KillPoint("commit", max(1, round(ref.changed * (j + 1) / (n_commit + 1)))) for j in range(n_commit)]
    points += [KillPoint("write", max(1, round(ref.temporaries * (j + 1) / (n_write + 1)))) for j in range(n_write)]
    return points + [KillPoint("report", 1)] * n_report


def crash_trial(base: Workspace, dest: Path, ref: Reference, point: KillPoint, index: int = 0,
                args: tuple[str, ...] = ROUTINE_ARGS) -> Trial:
    """Start the run on a copy of ``base``, kill it at ``point``, rerun it to completion, compare."""
    ws = clone(base, dest)
    watch = Watch(ws)
    t0 = time.monotonic()
    proc = start(command(ws.params, *args), ws.root / "killed.log")
    killed, n_killed, writing = False, 0, []
    while proc.poll() is None:
        present = watch.poll()
        elapsed = time.monotonic() - t0
        reports = [t for t in watch.temporaries if f"{os.sep}reports{os.sep}" in t]
        if (point.kind == "time" and elapsed >= point.at) or \
                (point.kind == "commit" and len(watch.changed) >= point.at) or \
                (point.kind == "write" and present and len(watch.temporaries) >= point.at) or \
                (point.kind == "report" and len(reports) >= point.at and reports[-1] in present):
            n_killed = kill_tree(proc)
            killed, writing = True, present
            break
        time.sleep(0.001 if point.kind in ("write", "report") else 0.003)
    killed_after = time.monotonic() - t0
    proc.wait()
    stale_lock = (ws.archive / LOCK_NAME).exists()
    res = run(command(ws.params, *args))
    return Trial(index, point, killed, round(killed_after, 2), n_killed, len(watch.changed),
                 ", ".join(str(Path(w).relative_to(ws.root)) for w in writing), stale_lock, res.returncode,
                 mismatches(ref.digest, digest(ws.archive)), leftovers(ws), (res.stdout + res.stderr)[-3000:])


def run_campaign(base: Workspace, workdir: Path, trials: int, *, args: tuple[str, ...] = ROUTINE_ARGS,
                 log: Callable[[str], None] = print, keep: bool = False) -> Campaign:
    """The reference run of ``run_all.py args``, then ``trials`` crash trials (see :func:`schedule`). A trial
    during which the code changed (someone editing the working tree) is run again against a new reference."""
    workdir = Path(workdir)
    ref = run_reference(base, workdir / "reference", args)
    log(f"reference run: {ref.duration:.1f} s, {ref.changed} archive file(s) written, {ref.temporaries} "
        f"temporary file(s) seen, {len(ref.digest)} file(s) in the archive")
    camp = Campaign(ref)
    for i, point in enumerate(schedule(trials, ref)):
        for _attempt in range(3):
            if source_digest() != ref.sources:
                log("the code changed since the reference run: running the reference again")
                ref = camp.reference = run_reference(base, workdir / "reference", args)
            t = crash_trial(base, workdir / f"trial-{i:02d}", ref, point, i, args)
            if source_digest() == ref.sources:
                break
        camp.trials.append(t)
        state = "recovered" if t.recovered else \
            f"NOT RECOVERED (exit {t.rerun_exit}, {len(t.mismatches)} mismatch(es), leftovers {t.leftovers})"
        where = f"{'at' if t.killed else 'run ended before,'} {t.killed_after:.1f} s, {t.processes_killed} " \
                f"process(es), {t.changed_before_kill} archive file(s) written" + \
                (f", writing {t.writing}" if t.writing else "")
        log(f"trial {i + 1}/{trials}: killed {point} ({where}), rerun: {state}")
        if not keep and t.recovered:
            _rmtree(workdir / f"trial-{i:02d}")
    return camp


# --------------------------------------------------------------------------------------------
# Bad inputs (the corpus of tests/bad_inputs/cases.yaml)
# --------------------------------------------------------------------------------------------
CORPUS = ROOT / "tests" / "bad_inputs" / "cases.yaml"
DELETE = "<delete>"  # a parameter value that removes the key


def _merge(data: dict, over: dict) -> dict:
    for k, v in over.items():
        if v == DELETE:
            data.pop(k, None)
        elif isinstance(v, dict) and isinstance(data.get(k), dict):
            _merge(data[k], v)
        else:
            data[k] = v
    return data


def _fill(value: object, ws: Workspace) -> object:
    """``{root}``, ``{params}``, ``{archive}``, ``{scenes}`` in strings (recursively) → the workspace's."""
    if isinstance(value, str):
        return value.format(root=ws.root, params=ws.params, archive=ws.archive, scenes=ws.scenes,
                            output=ws.output)
    if isinstance(value, list):
        return [_fill(v, ws) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ws) for k, v in value.items()}
    return value


def _scene_files(ws: Workspace, collection: str, first: date, last: date) -> list[Path]:
    """Sidecars of ``collection`` whose day (``dekads.acquisition_day``) is in [first, last]."""
    from . import products as P
    from .config import load_config
    from .dekads import acquisition_day
    from .local.scenes import _sidecar, collection_dir

    tz = load_config(ws.params, check_layers=False).timezone
    dating = next((p.dating for p in (*P.PRODUCTS.values(), P.SL_2_LST) if p.collection == collection), "scene")
    out = []
    for p in sorted(collection_dir(ws.scenes, collection).glob("*/*.json")):
        if first <= acquisition_day(_sidecar(p).time_start, tz, dating=dating) <= last:
            out.append(p)
    return out


def _dekad(label: str):
    from .dekads import Dekad

    return Dekad.parse(label)


def _band_file(sidecar: Path, band: str) -> tuple[Path, int]:
    import json

    meta = json.loads(sidecar.read_text(encoding="utf-8"))["bands"][band]
    return sidecar.parent / meta["file"], int(meta.get("band", 1))


def damage_scene_drop_band(ws: Workspace, collection: str, dekad: str, band: str, nth: int = 0) -> None:
    """Remove ``band`` from one scene of the dekad (its sidecar no longer lists it)."""
    import json

    d = _dekad(dekad)
    side = _scene_files(ws, collection, d.start, d.end)[nth]
    meta = json.loads(side.read_text(encoding="utf-8"))
    del meta["bands"][band]
    side.write_text(json.dumps(meta, indent=1), encoding="utf-8")


def damage_scene_remove(ws: Workspace, collection: str, dekad: str) -> None:
    """Every scene of ``collection`` in the dekad disappears (an empty collection)."""
    d = _dekad(dekad)
    for side in _scene_files(ws, collection, d.start, d.end):
        for f in side.parent.glob(f"{side.stem}.*"):
            f.unlink()


def damage_scene_fill(ws: Workspace, collection: str, dekad: str, band: str, value: int) -> None:
    """Set ``band`` to ``value`` everywhere in every scene of the dekad (e.g. a QA band saying cloud)."""
    import numpy as np
    import rasterio

    d = _dekad(dekad)
    for side in _scene_files(ws, collection, d.start, d.end):
        path, b = _band_file(side, band)
        with rasterio.open(path, "r+") as dst:
            dst.write(np.full((dst.height, dst.width), value, dtype=dst.dtypes[b - 1]), b)


def _damage_bytes(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncate":
        path.write_bytes(raw[: len(raw) // 2])  # the header survives, the data is cut: an interrupted copy
    elif how == "garbage":  # the TIFF signature kept, everything after it overwritten
        path.write_bytes(raw[:8] + bytes((i * 7919 + 13) % 251 for i in range(len(raw) - 8)))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(how)


def damage_scene_file(ws: Workspace, collection: str, dekad: str, band: str, how: str, nth: int = 0) -> None:
    """Truncate or overwrite with garbage the GeoTIFF holding ``band`` of one scene of the dekad."""
    d = _dekad(dekad)
    path, _ = _band_file(_scene_files(ws, collection, d.start, d.end)[nth], band)
    _damage_bytes(path, how)


def damage_archive_file(ws: Workspace, file: str, how: str) -> None:
    """Damage an archive file (relative path): ``truncate``, ``garbage``, ``empty``, ``nan`` (every pixel
    NaN, a valid GeoTIFF), ``crs:<EPSG:code>`` (same pixels and transform numbers, another CRS),
    ``one_band`` (the value band only), ``three_bands`` (a third band added) or ``int16`` (values scaled by
    100 into integers, as a store without scale factor would hold them)."""
    import numpy as np
    import rasterio

    path = ws.archive / file
    if how in ("nan", "one_band", "three_bands", "int16") or how.startswith("crs:"):
        with rasterio.open(path) as src:
            profile, data, tags, desc = src.profile, src.read(), src.tags(), src.descriptions
        if how == "nan":
            data[:] = np.nan
        elif how == "one_band":
            data, desc = data[:1], desc[:1]
        elif how == "three_bands":
            data, desc = np.concatenate([data, data[:1]]), (*desc, "extra")
        elif how == "int16":
            data = np.where(np.isnan(data), -32768, np.clip(np.round(np.nan_to_num(data) * 100), -32767, 32767))
            data = data.astype("int16")
            profile.update(dtype="int16", nodata=-32768, predictor=1)
        else:
            profile["crs"] = how.split(":", 1)[1]
        profile["count"] = len(data)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            dst.update_tags(**tags)
            for i, n in enumerate(desc, start=1):
                if n:
                    dst.set_band_description(i, n)
    else:
        _damage_bytes(path, how)


def damage_key_file(ws: Workspace, kind: str, mode: int = 0o600) -> None:
    """A service-account key file at ``{root}/key.json``: ``missing``, ``directory``, ``not_json``,
    ``binary`` (not UTF-8), ``not_service_account``, ``bad_private_key`` (rejected before any request),
    ``numeric_key_id`` (a ``private_key_id`` that is a number: the libraries' errors then quote the key)."""
    import json

    key = ws.root / "key.json"
    good = {"type": "service_account", "client_email": "drought-bot@secret-project.iam.gserviceaccount.com",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEsecretKEYmaterial\n-----END PRIVATE KEY-----\n",
            "private_key_id": "k3y1d0042secret", "project_id": "secret-project"}
    if kind == "missing":
        return
    if kind == "directory":
        key.mkdir()
        return
    text = {"not_json": "this is not JSON {", "binary": None,
            "not_service_account": json.dumps({**good, "type": "authorized_user"}),
            "bad_private_key": json.dumps(good),
            "numeric_key_id": json.dumps({**good, "private_key_id": 9876543210123})}[kind]
    key.write_bytes(b"\x80\x81\xfe\xff key" if text is None else text.encode())
    key.chmod(mode)


def damage_params_text(ws: Workspace, text: str, encoding: str = "utf-8") -> None:
    """Replace the parameter file by ``text`` (invalid YAML, an empty file...), written in ``encoding``."""
    ws.params.write_bytes(text.encode(encoding))


def damage_params_append(ws: Workspace, text: str, encoding: str = "utf-8") -> None:
    """Append ``text`` (written in ``encoding``) to the parameter file, e.g. a section given twice."""
    with open(ws.params, "ab") as fh:
        fh.write(text.encode(encoding))


def damage_params_replace(ws: Workspace, old: str, new: str = "", nested: int = 0) -> None:
    """Replace the first ``old`` of the parameter file's text by ``new`` followed by ``nested`` levels of
    nested YAML lists."""
    text = ws.params.read_text(encoding="utf-8")
    if old not in text:
        raise ValueError(f"params_replace: {old!r} is not in the parameter file")
    new += "[" * nested + "]" * nested
    ws.params.write_text(text.replace(old, new, 1), encoding="utf-8")


ZONE_KINDS = ("duplicate_names", "bow_tie", "line", "projected_without_crs", "unknown_crs", "empty")


def damage_zones_file(ws: Workspace, kind: str) -> None:
    """A zone layer ``{root}/zones.geojson`` named by the parameters, with one problem (``ZONE_KINDS``)."""
    import json

    square = [[165.0, -21.0], [165.5, -21.0], [165.5, -21.5], [165.0, -21.5], [165.0, -21.0]]
    bow_tie = [[165.0, -21.0], [165.5, -21.5], [165.5, -21.0], [165.0, -21.5], [165.0, -21.0]]
    metres = [[385000, 290000], [415000, 288000], [418000, 312000], [385000, 290000]]  # EPSG:3163 numbers

    def feature(name, kind_, coords):
        return {"type": "Feature", "properties": {"name": name}, "geometry": {"type": kind_, "coordinates": coords}}

    features = {"duplicate_names": [feature("Sud", "Polygon", [square]), feature("Sud", "Polygon", [square])],
                "bow_tie": [feature("Nord", "Polygon", [square]), feature("Noeud", "Polygon", [bow_tie])],
                "line": [feature("Route", "LineString", square)],
                "projected_without_crs": [feature("Bourail", "Polygon", [metres])],
                "unknown_crs": [feature("Sud", "Polygon", [square])],
                "empty": []}[kind]
    doc = {"type": "FeatureCollection", "features": features}
    if kind == "unknown_crs":
        doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}}
    path = ws.root / "zones.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    data = yaml.safe_load(ws.params.read_text(encoding="utf-8"))
    data["territory"]["zones"] = str(path)
    ws.params.write_text(yaml.safe_dump(data), encoding="utf-8")


def build_store(ws: Workspace, damage: str | None = None, file: str = "MODIS_NDWI_202303_COMPD1.tif") -> None:
    """A small EO4DM store ``{root}/DATA_HISTO/New_Caledonia`` on the parameters' global grid (NDWI and
    LST composites of March 2023), one file damaged: ``truncate``, ``garbage``, ``crs:<code>`` (written
    in another CRS), ``int`` (integer data), ``one_band_indicator``."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine

    from .config import load_config

    g = load_config(ws.params, check_layers=False).global_chain.grid
    folder = ws.root / "DATA_HISTO" / "New_Caledonia" / "0_INDICES" / "MODIS" / "DECADE"
    folder.mkdir(parents=True, exist_ok=True)
    for index, value in (("NDWI", 0.25), ("LST", 27.0)):
        for d in (1, 2):
            name = f"MODIS_{index}_202303_COMPD{d}.tif"
            crs, dtype = g.crs, "float32"
            if name == file and damage and damage.startswith("crs:"):
                crs = damage.split(":", 1)[1]
            if name == file and damage == "int":
                dtype = "int16"
            data = np.stack([np.full((g.height, g.width), value), np.full((g.height, g.width), 5)]).astype(dtype)
            with rasterio.open(folder / name, "w", driver="GTiff", width=g.width, height=g.height, count=2,
                               dtype=dtype, crs=crs, transform=Affine(*g.transform),
                               nodata=np.nan if dtype == "float32" else None) as dst:
                dst.write(data)
    if damage in ("truncate", "garbage"):
        _damage_bytes(folder / file, damage)


def damage_path(ws: Workspace, path: str, kind: str, text: str = "", target: str = "") -> None:
    """Put something at ``path`` (absolute, or relative to the workspace): a ``file`` holding ``text``,
    a ``dir``, a ``symlink`` to ``target`` (itself: a loop), or ``bytes`` (``text`` as latin-1 bytes)."""
    p = Path(path) if Path(path).is_absolute() else ws.root / path
    p.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        p.write_text(text, encoding="utf-8")
    elif kind == "bytes":
        p.write_bytes(text.encode("latin-1"))
    elif kind == "dir":
        p.mkdir(exist_ok=True)
    elif kind == "symlink":
        p.symlink_to(target or p)
    else:
        raise ValueError(f"unknown path kind {kind!r}")


DAMAGES: dict[str, Callable[..., None]] = {
    "scene_drop_band": damage_scene_drop_band, "scene_remove": damage_scene_remove,
    "scene_fill": damage_scene_fill, "scene_file": damage_scene_file, "archive_file": damage_archive_file,
    "key_file": damage_key_file, "params_text": damage_params_text, "params_append": damage_params_append,
    "params_replace": damage_params_replace, "zones_file": damage_zones_file, "store": build_store,
    "path": damage_path,
}
ENTRIES = {"run_all": [str(RUN_ALL)], "import": ["-m", "eo4dm_helpers.eo4dm_import"],
           "sample": ["-m", "eo4dm_helpers.sample"]}


@dataclass
class CaseResult:
    id: str
    what: str
    expected_exit: int
    exit: int
    stderr: str
    stdout: str
    archive_changed: list[str]
    problems: list[str]  # why the error is not "clear": empty when it is

    @property
    def clear(self) -> bool:
        return not self.problems


def load_corpus(path: Path = CORPUS) -> list[dict]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


# A case's run_all.py is a process of its own, forked from a "zygote": a Python process that has already
# imported what run_all.py imports (3 s of CPU per process here, most of a bad-input case), then runs
# run_all.py as __main__ in the child with the case's arguments, environment, stdout and stderr (files):
# the exit code, the output and every process the run starts are the run's own. Used for the run_all
# cases of the corpus only (the crash campaigns start run_all.py from scratch: a kill while it imports
# is one of their points; the corpus' import and sample cases run as plain subprocesses too).
ZYGOTE = r"""
import json, os, sys
import run_all  # noqa: F401  what run_all.py imports, once; the child runs it again as __main__
sys.stderr.flush()
sys.stdout.write(json.dumps({"ready": os.getpid()}) + "\n")
sys.stdout.flush()


def serve():
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return req
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"exit": os.waitstatus_to_exitcode(status)}) + "\n")
        sys.stdout.flush()
    return None


req = serve()
if req is None:
    sys.exit(0)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.dup2(os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
os.dup2(os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
os.environ.clear()
os.environ.update(req["env"])
os.chdir(req["cwd"])
sys.argv = list(req["argv"])
del json, null, req, serve
import runpy  # noqa: E402
runpy.run_path(sys.argv[0], run_name="__main__")  # its SystemExit and tracebacks as in a process of its own
"""


class Zygote:
    """A process that forks one run of ``run_all.py`` per :meth:`run` (see ``ZYGOTE``)."""

    def __init__(self) -> None:
        self.stderr = ""
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT, env=environment())
        ready = self.proc.stdout.readline()
        if not ready.startswith('{"ready"'):
            self.close()
            raise RuntimeError(f"the run_all.py zygote did not start: {self.stderr[-2000:]}")

    def run(self, cmd: list[str], dest: Path, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """``cmd`` (``command()``: python run_all.py ...) forked from the zygote, as :func:`run` would run it."""
        import json
        import select

        if cmd[:2] != [sys.executable, str(RUN_ALL)]:
            raise ValueError(f"the zygote runs run_all.py only, not {cmd[:2]}")
        out, err = Path(dest) / "zygote.stdout", Path(dest) / "zygote.stderr"
        req = {"argv": cmd[1:], "env": environment(env), "cwd": str(ROOT), "stdout": str(out), "stderr": str(err)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        pid = json.loads(self.proc.stdout.readline())["pid"]
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            _signal(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(cmd, timeout)
        code = json.loads(self.proc.stdout.readline())["exit"]
        return subprocess.CompletedProcess(cmd, code, out.read_text(errors="strict"), err.read_text(errors="strict"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self.stderr = self.proc.stderr.read()
        self.proc.wait(timeout=60)


def run_corpus(base: Workspace, workdir: Path, cases: list[dict], workers: int = 2) -> dict[str, CaseResult]:
    """Every case (processes, ``workers`` at a time; run_all.py forked from a zygote each), by id."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        zygotes: queue.Queue[Zygote] = queue.Queue()
        for z in pool.map(lambda _i: Zygote(), range(workers)):
            zygotes.put(z)

        def one(case: dict) -> CaseResult:
            z = zygotes.get()
            try:
                return run_case(base, case, Path(workdir) / case["id"], zygote=z)
            finally:
                zygotes.put(z)

        try:
            results = {r.id: r for r in pool.map(one, cases)}
        finally:
            quiet = []
            while not zygotes.empty():
                z = zygotes.get()
                z.close()
                quiet.append(z.stderr)
    if any(quiet):  # what importing run_all.py printed would be on every run's stderr: say so in each
        for r in results.values():
            if r.id and not r.problems:
                r.problems.append(f"importing run_all.py printed: {next(q for q in quiet if q)[-500:]}")
    return results


TEXT_FILES = (".log", ".json", ".ipynb", ".html", ".csv", ".txt")


def run_case(base: Workspace, case: dict, dest: Path, zygote: Zygote | None = None) -> CaseResult:
    """Prepare a copy of ``base`` as the case says, run its command, judge the outcome: the exit code as
    documented, one line on stderr starting with the tool's prefix and naming the problem (``message``),
    no traceback, the archive unchanged and nothing left in it (temporary file, lock), and none of the
    case's ``absent`` strings (secrets) in its output or in any file of the output folder (logs, state,
    executed notebooks). A wait (exit 5) is no error: its reason is on stdout and stderr is empty."""
    ws = clone(base, dest, own_scenes=bool(case.get("own_scenes")))
    if case.get("params"):
        data = yaml.safe_load(ws.params.read_text(encoding="utf-8"))
        ws.params.write_text(yaml.safe_dump(_merge(data, _fill(case["params"], ws))), encoding="utf-8")
    for step in case.get("damage", []):
        (name, kwargs), = step.items()
        DAMAGES[name](ws, **_fill(kwargs or {}, ws))
    before = digest(ws.archive)
    present = set(leftovers(ws))  # what the damage itself put there (a lock that is a folder...)
    outputs = {p: p.stat().st_mtime_ns for p in ws.output.rglob("*") if p.is_file()}
    cmd = [sys.executable, *ENTRIES[case.get("entry", "run_all")], *_fill(case.get("args", []), ws)]
    if case.get("entry", "run_all") == "run_all" and "--params" not in cmd:
        cmd += ["--params", str(ws.params)]
    env = _fill(case.get("env", {}), ws)
    if zygote is not None and case.get("entry", "run_all") == "run_all":
        res = zygote.run(cmd, ws.root, env=env, timeout=600)
    else:
        res = run(cmd, env=env, timeout=600)
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    problems = []
    expected = int(case["exit"])
    message = _fill(case["message"], ws)
    if res.returncode != expected:
        problems.append(f"exit {res.returncode}, documented {expected}")
    if "Traceback" in res.stderr + res.stdout:
        problems.append("a Python traceback")
    if expected == 5:
        if lines:
            problems.append(f"{len(lines)} line(s) on stderr for a wait")
        if message not in res.stdout:
            problems.append(f"stdout does not say {message!r}")
    else:
        prefix = case.get("prefix", "error: ")
        if len(lines) != 1:
            problems.append(f"{len(lines)} line(s) on stderr, expected 1")
        elif not lines[0].startswith(prefix):
            problems.append(f"stderr does not start with {prefix!r}")
        if message not in res.stderr:
            problems.append(f"stderr does not say {message!r}")
    written = [p for p in ws.output.rglob("*") if p.is_file() and p.suffix in TEXT_FILES
               and outputs.get(p) != p.stat().st_mtime_ns]  # by this run: logs, state, executed notebooks
    shown = [res.stdout, res.stderr] + [p.read_text(encoding="utf-8", errors="replace") for p in written]
    problems += [f"{s!r} is shown" for s in _fill(case.get("absent", []), ws) if any(s in t for t in shown)]
    after = digest(ws.archive)
    changed = mismatches(before, after)
    if changed:
        problems.append(f"the archive changed: {changed[:5]}")
    left = [x for x in leftovers(ws) if not x.startswith("output/work/") and x not in present]
    if left:
        problems.append(f"left behind: {left}")
    return CaseResult(case["id"], case.get("what", ""), expected, res.returncode, res.stderr, res.stdout,
                      changed, problems)


# --------------------------------------------------------------------------------------------
# Injected faults: a sitecustomize module first on PYTHONPATH, so that run_all.py and the notebook
# kernels it starts (which inherit its environment) see the same fault
# --------------------------------------------------------------------------------------------
INJECTOR = r'''"""Fault injector of eo4dm_helpers.reliability: this process and the kernels it starts see the fault
named by $EO4DM_FAULT (test use only)."""
import builtins
import errno
import io
import os
import shutil

_KIND = os.environ.get("EO4DM_FAULT", "")
_FOLDER = os.path.realpath(os.environ.get("EO4DM_FAULT_FOLDER", "/nonexistent"))
_AFTER = int(os.environ.get("EO4DM_FAULT_AFTER", "1"))
_LOG = os.environ.get("EO4DM_FAULT_LOG")
_open, _os_open, _copyfile = builtins.open, os.open, shutil.copyfile


def _under(path):
    try:
        p = os.path.realpath(os.fspath(path))
    except TypeError:  # a file descriptor
        return False
    return p == _FOLDER or p.startswith(_FOLDER + os.sep)


def _note(line):
    if _LOG:
        with _open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


if _KIND == "enospc":  # the disk fills up: from the AFTER-th file copied into FOLDER, half is written
    _count = [0]

    def copyfile(src, dst, *args, **kwargs):
        if _under(dst):
            _count[0] += 1
            if _count[0] >= _AFTER:
                with _open(src, "rb") as fh:
                    data = fh.read()
                with _open(dst, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                _note(f"ENOSPC {dst}")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _copyfile(src, dst, *args, **kwargs)

    shutil.copyfile = copyfile

if _KIND == "erofs":  # FOLDER is on a read-only file system (works for root too, unlike chmod)
    def _ro(path):
        _note(f"EROFS {os.fspath(path)}")
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, str | bytes | os.PathLike) and any(c in mode for c in "wax+") and _under(file):
            _ro(file)
        return _open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC) and _under(path):
            _ro(path)
        return _os_open(path, flags, *args, **kwargs)

    def _guard(fn, check_exists=False):
        def wrapper(path, *args, **kwargs):
            if _under(path) and (not check_exists or os.path.lexists(path)):
                _ro(path)
            return fn(path, *args, **kwargs)
        return wrapper

    def _guard2(fn):
        def wrapper(src, dst, *args, **kwargs):
            if _under(src) or _under(dst):
                _ro(dst)
            return fn(src, dst, *args, **kwargs)
        return wrapper

    _mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if _under(path):
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
            _ro(path)
        return _mkdir(path, *args, **kwargs)

    builtins.open = io.open = open_
    os.open, os.mkdir = os_open, mkdir
    os.unlink = os.remove = _guard(os.unlink, check_exists=True)
    os.rmdir = _guard(os.rmdir, check_exists=True)
    os.replace, os.rename = _guard2(os.replace), _guard2(os.rename)
    shutil.copyfile = _guard2(_copyfile)

if _KIND == "leak":  # committing (of dekad $EO4DM_FAULT_DEKAD) fails with an error quoting the account and key
    import json

    import ee

    from eo4dm_helpers import workflow

    _commit = workflow.commit

    def commit(ctx):
        if os.environ.get("EO4DM_FAULT_DEKAD") not in (None, "", ctx.dekad.label):
            return _commit(ctx)
        key = json.loads(_open(os.environ["EO4DM_FAULT_KEY"], encoding="utf-8").read())
        raise ee.EEException(
            f"Permission denied: caller serviceAccount:{key['client_email']} (key {key['private_key_id']}, "
            f"{key['private_key']}) from {os.environ['EO4DM_FAULT_KEY']} may not write the export")

    workflow.commit = commit

if _KIND == "ee":  # Earth Engine initialised offline; computePixels answered by a fake
    import ee
    import numpy as np

    from eo4dm_helpers.ee import io as _eeio
    from eo4dm_helpers.ee import session as _session

    _transient = [int(os.environ.get("EO4DM_FAULT_TRANSIENT", "0"))]
    _message = os.environ.get("EO4DM_FAULT_MESSAGE", "")
    _VALUES = {"NDWI": 0.2, "NDVI": 0.5, "LST": 30.0}

    def initialize(cfg):
        _session.initialize_offline()
        return "service account"

    class FakeIO:
        def __init__(self, drive=None):
            self.drive = drive

        def compute_value(self, obj):
            return {} if isinstance(obj, ee.Dictionary) else []

        def compute_pixels(self, request):
            bands = list(request["bandIds"])
            _note("computePixels " + ",".join(bands))
            if _transient[0] > 0:
                _transient[0] -= 1
                raise ee.EEException("Service Unavailable (HTTP 503): the service is currently unavailable")
            if _message:
                raise ee.EEException(_message)
            dims = request["grid"]["dimensions"]
            out = np.empty((dims["height"], dims["width"]), dtype=[(b, "<f4") for b in bands])
            for b in bands:
                out[b] = 5.0 if b.endswith("_count") else _VALUES.get(b, 0.1)
            return out

        def start_export(self, params, request_id):
            raise ee.EEException(_message or "exports are not faked")

        def task_status(self, task):
            raise ee.EEException(f"Operation {task} not found.")

    _session.initialize = initialize
    _eeio.LiveIO = FakeIO
'''


def fault_env(folder: Path, kind: str, *, target: Path | None = None, after: int = 1,
              **extra: str) -> dict[str, str]:
    """The environment of a run that sees the fault ``kind`` (``enospc``, ``erofs``, ``leak``, ``ee``) on
    ``target``; the injector is written into ``folder``. ``extra``: EO4DM_FAULT_* variables."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(INJECTOR, encoding="utf-8")
    path = os.pathsep.join([str(folder), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path, "EO4DM_FAULT": kind, "EO4DM_FAULT_FOLDER": str(target or "/nonexistent"),
            "EO4DM_FAULT_AFTER": str(after), "EO4DM_FAULT_LOG": str(folder / "faults.log"),
            **{f"EO4DM_FAULT_{k.upper()}": str(v) for k, v in extra.items()}}


@dataclass
class FaultTrial:
    """A run that met an injected fault, then (``rerun``) the same run without it."""

    kind: str
    exit: int
    stderr: str
    problems: list[str]  # what is wrong with the failed run: its message, the archive it left
    rerun_exit: int | None = None
    mismatches: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        """The failure was clean and, when rerun, the run converged on the uninterrupted run's archive."""
        return not self.problems and self.rerun_exit in (None, 0) and not self.mismatches and not self.leftovers


def one_error_line(stderr: str, *needles: str) -> list[str]:
    """Problems with an error report: it must be ONE line starting with ``error: `` that contains every
    needle, and no traceback."""
    lines = [x for x in stderr.splitlines() if x.strip()]
    out = []
    if "Traceback" in stderr:
        out.append("a Python traceback")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        out.append(f"{len(lines)} line(s) on stderr, expected one 'error: ...' line")
    out += [f"the message does not say {n!r}" for n in needles if n not in stderr]
    return out


def archive_problems(before: dict[str, str], new: dict[str, str], got: dict[str, str]) -> list[str]:
    """After a failed run, every archive file must be whole: its previous version (``before``) or the
    complete new one (``new``, an uninterrupted run's); nothing lost."""
    out = [f"neither previous nor new: {k}" for k, h in got.items() if h not in (before.get(k), new.get(k))]
    return sorted(out + [f"lost: {k}" for k in before.keys() - got.keys()])


def disk_full_trial(base: Workspace, dest: Path, ref: Reference, after: int = 3,
                    args: tuple[str, ...] = ROUTINE_ARGS) -> FaultTrial:
    """The disk fills up while the run commits its ``after``-th archive file (half of it written, then
    ENOSPC); then the same run with space again."""
    ws = clone(base, dest)
    before = digest(ws.archive)
    res = run(command(ws.params, *args), env=fault_env(ws.root / "inject", "enospc", target=ws.archive, after=after))
    problems = one_error_line(res.stderr, "No space left on device", str(ws.archive)) if res.returncode == 1 else \
        [f"exit {res.returncode}, expected 1 (a notebook failed)"]
    problems += archive_problems(before, ref.digest, digest(ws.archive))
    problems += [f"left behind: {x}" for x in leftovers(ws) if not x.startswith("output/work/")]
    again = run(command(ws.params, *args))
    return FaultTrial("disk full (ENOSPC) while committing", res.returncode, res.stderr, problems, again.returncode,
                      mismatches(ref.digest, digest(ws.archive)), leftovers(ws))


def read_only_trial(base: Workspace, dest: Path, folder: str, args: tuple[str, ...] = ROUTINE_ARGS) -> FaultTrial:
    """``folder`` (``archive`` or ``output``) on a read-only file system: the run stops at once, exit 2,
    one line naming the parameter; the archive unchanged."""
    ws = clone(base, dest)
    before = digest(ws.archive)
    res = run(command(ws.params, *args), env=fault_env(ws.root / "inject", "erofs", target=getattr(ws, folder)))
    problems = one_error_line(res.stderr, f"paths.{folder}: cannot write", "Read-only file system") \
        if res.returncode == 2 else [f"exit {res.returncode}, expected 2"]
    problems += [f"the archive changed: {x}" for x in mismatches(before, digest(ws.archive))]
    return FaultTrial(f"read-only {folder} folder (EROFS)", res.returncode, res.stderr, problems)


# --------------------------------------------------------------------------------------------
# The campaign over run kinds (issue 13): auto mode, a manual range and --backfill, each killed with
# SIGKILL (the whole tree) or stopped with SIGTERM / SIGINT (run_all.py alone) at seeded-random times
# and at commit / write / report points; recovery must leave every dekad of the run's span complete,
# the archive equal to an uninterrupted run's, nothing behind and no secret anywhere.
# --------------------------------------------------------------------------------------------
KILL_METHODS = ("SIGKILL", "SIGTERM", "SIGINT")
SEED = 13
# A fake service-account key (credentials.ee_key_file) and Copernicus password (environment): the local
# backend never uses them, the routine only scrubs them; a campaign looks for every piece of them.
KEY_EMAIL = "campaign-bot@never-shown.iam.gserviceaccount.com"
KEY_ID = "c4mpa1gnk3y1d0013"
KEY_PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAAScampaignSECRETkeyMATERIAL0013"
KEY_PEM = f"-----BEGIN PRIVATE KEY-----\n{KEY_PEM_BODY}\n-----END PRIVATE KEY-----\n"
CDSE_PASSWORD = "cdse-Pa55w0rd-n3ver-sh0wn-0013"
SECRET_ENV = {"EO4DM_CDSE_PASSWORD": CDSE_PASSWORD}


def _drop_indicators(ws: Workspace, label: str) -> None:
    """Remove the indicators and zone statistics of one dekad (label ``YYYY-MM-Dn``), composites kept."""
    stamp = label.replace("-", "")[:6] + label[-2:]
    for p in [*ws.archive.glob(f"indicators/*/*/*{stamp}.tif"), *ws.archive.glob(f"indicators/*/*/*/*{stamp}.tif"),
              *ws.archive.glob(f"stats/{label}/*")]:
        p.unlink()


def _prepare_auto(ws: Workspace) -> None:
    _drop_indicators(ws, "2024-03-D1")


def _prepare_range(ws: Workspace) -> None:
    from .config import load_config
    from .dekads import Dekad
    from .workflow import backfill

    backfill(load_config(ws.params), Dekad(2024, 2, 3), Dekad(2024, 2, 3), log=lambda m: None)
    _drop_indicators(ws, "2024-03-D1")


def _prepare_backfill(ws: Workspace) -> None:
    _drop_indicators(ws, "2024-02-D1")


@dataclass(frozen=True)
class RunKind:
    """A kind of run the campaign kills: its arguments, how its workspace is prepared from the base
    (``overrides`` of the parameters, then ``prepare``), the span of dekads it must leave complete
    (``span``: first and last label; bulletins expected from ``bulletins_from``, or from the routine's
    recorded ``bulletins_from`` when None) and how a killed run is recovered (``recovery``: ``same``
    command, or ``since-failure`` when the killed run recorded its state)."""

    name: str
    args: tuple[str, ...]
    what: str
    overrides: dict = field(default_factory=dict)
    prepare: Callable[[Workspace], None] | None = None
    span: tuple[str, str] = ("", "")
    bulletins_from: str | None = None
    recovery: str = "same"


RUN_KINDS: dict[str, RunKind] = {k.name: k for k in (
    RunKind("auto", (), "run_all.py (auto mode), history_start 2024-02-01, 2024-03-D1 without indicators: "
            "2024-02-D2/D3 composites and 2024-03-D1 indicators in-process, 2024-03-D2 through every notebook",
            {"history_start": "2024-02-01"}, _prepare_auto, ("2024-02-D1", "2024-03-D2")),
    RunKind("range", ("--mode", "drought", "--start", "2024-02-D3", "--end", "2024-03-D1"),
            "--mode drought --start 2024-02-D3 --end 2024-03-D1 (2024-03-D1 without indicators): two dekads "
            "through 06_indicators and 07_report", {}, _prepare_range, ("2024-02-D3", "2024-03-D1"), "2024-02-D3",
            "since-failure"),
    RunKind("backfill", ("--backfill", "--mode", "drought", "--dekad", "2024-03-D1"),
            "--backfill --mode drought --dekad 2024-03-D1, history_start 2024-02-01, 2024-02-D1 without "
            "indicators: 2024-02-D1 indicators and 2024-02-D2/D3 composites in-process, then 2024-03-D1",
            {"history_start": "2024-02-01"}, _prepare_backfill, ("2024-02-D1", "2024-03-D1"), "2024-03-D1"),
)}


# make test's kinds: the auto-mode run a dekad earlier (as_of 2024-03-11), where the latest dekad has its
# composites and needs only 06_indicators and 07_report (history dekads in-process as above). The
# every-notebook path is killed by the classic campaign (SHORT_ARGS) and by make reliability's auto kind.
TEST_RUN_KINDS: dict[str, RunKind] = {**RUN_KINDS, "auto": replace(
    RUN_KINDS["auto"], what="run_all.py (auto mode), as_of 2024-03-11, history_start 2024-02-01, 2024-03-D1 "
    "without indicators: 2024-02-D2/D3 composites in-process, 2024-03-D1 through 06_indicators and 07_report",
    overrides={"history_start": "2024-02-01", "as_of": "2024-03-11"}, span=("2024-02-D1", "2024-03-D1"))}


def write_key(path: Path) -> Path:
    """The fake service-account key file (mode 600: no warning about its permissions)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "service_account", "project_id": "never-shown", "private_key_id": KEY_ID,
                                "private_key": KEY_PEM, "client_email": KEY_EMAIL}), encoding="utf-8")
    path.chmod(0o600)
    return path


def kind_base(base: Workspace, dest: Path, kind: RunKind) -> Workspace:
    """A copy of ``base`` prepared for ``kind`` (done once per campaign; trials copy it)."""
    ws = clone(base, dest, **kind.overrides)
    if kind.prepare:
        kind.prepare(ws)
    return ws


def kind_clone(prepared: Workspace, dest: Path, kind: RunKind) -> Workspace:
    """A fresh copy of a prepared workspace, with the fake key file named in its parameters."""
    key = Path(dest) / "keys" / "ee-key.json"
    ws = clone(prepared, dest, credentials={"ee_key_file": str(key)}, **kind.overrides)
    write_key(key)
    return ws


def secret_pieces(ws: Workspace) -> list[str]:
    """Every piece of the fake secrets of ``ws`` that must never be shown."""
    key = ws.root / "keys" / "ee-key.json"
    return [KEY_EMAIL, KEY_ID, KEY_PEM_BODY, "BEGIN PRIVATE KEY", CDSE_PASSWORD, str(key)]


def secrets_found(ws: Workspace, texts: dict[str, str]) -> list[str]:
    """``where: piece`` for every piece of the secrets found in a file below the output folder (logs,
    state, executed notebooks, kernel logs, reports, any byte) or in ``texts`` (stdout, stderr by name)."""
    pieces = secret_pieces(ws)
    out = []
    for p in sorted(ws.output.rglob("*")) if ws.output.is_dir() else ():
        try:
            data = p.read_bytes() if p.is_file() else b""
        except OSError:
            continue
        out += [f"{p.relative_to(ws.root)}: {s}" for s in pieces if s.encode() in data]
    for name, text in texts.items():
        out += [f"{name}: {s}" for s in pieces if s in text]
    return out


def span_of(kind: RunKind) -> list:
    """The dekads ``kind``'s run must leave complete."""
    from .dekads import Dekad, dekad_range

    return dekad_range(Dekad.parse(kind.span[0]), Dekad.parse(kind.span[1]))


def incomplete(ws: Workspace, kind: RunKind) -> list[str]:
    """The dekads of ``kind``'s span that lack a product (completeness.missing), with what they lack;
    bulletins from the kind's first bulletin dekad, or the routine's recorded ``bulletins_from``."""
    from . import completeness as C
    from . import routine as R
    from .config import load_config
    from .dekads import Dekad

    cfg = load_config(ws.params)
    inv = C.Inventory.scan(cfg)
    first = Dekad.parse(kind.bulletins_from) if kind.bulletins_from else R.bulletins_from(cfg, inv, cfg.today())
    out = []
    for d in span_of(kind):
        lacks = C.missing(cfg, d, inv, bulletin=d >= first)
        if lacks:
            out.append(f"{d.label}: {C.summary(lacks)}")
    return out


def processes_of(run_id: str) -> list[int]:
    """Live processes of the run ``run_id`` (it and its kernels have EO4DM_RUN_ID in their environment)."""
    from . import runs

    needle = f"{runs.RUN_ENV}={run_id}\0".encode()
    out = []
    for d in Path("/proc").iterdir() if run_id and Path("/proc").is_dir() else ():
        if d.name.isdigit():
            try:
                if needle in (d / "environ").read_bytes():
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def _state(ws: Workspace) -> dict | None:
    import json

    try:
        return json.loads((ws.output / "state" / "last_run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def kind_schedule(n: int, ref: Reference, kind: str = "", seed: int = SEED) -> list[tuple[KillPoint, str]]:
    """``n`` (kill point, method) pairs, deterministic given ``seed`` and ``kind``: the commit, write and
    report points of :func:`schedule`, the rest at seeded-random times over 2-90 % of the uninterrupted
    run's duration (sorted); methods SIGKILL, SIGTERM, SIGINT in turn, starting at a method that depends
    on the kind, so that three trials use each method once and each kind meets them at other points."""
    import random

    fixed = [p for p in schedule(n, ref) if p.kind != "time"]
    rng = random.Random(f"{seed}:{kind}")
    times = sorted(round(ref.duration * rng.uniform(0.02, 0.9), 2) for _ in range(n - len(fixed)))
    points = [KillPoint("time", t) for t in times] + fixed
    offset = sorted(RUN_KINDS).index(kind) if kind in RUN_KINDS else 0
    return [(p, KILL_METHODS[(i + offset) % len(KILL_METHODS)]) for i, p in enumerate(points)]


@dataclass
class KindTrial:
    kind: str
    index: int
    point: KillPoint
    method: str
    killed: bool  # False: the run finished before the kill point
    killed_after: float  # seconds (when not killed: how long the run took)
    stop_exit: int | None  # exit code of the killed or stopped run
    stop_problems: list[str]  # what a SIGTERM/SIGINT stop did that it must not (exit 6, one line...)
    stale_lock: bool  # the lock was left (expected after SIGKILL only)
    changed_before_kill: int
    recovery: str  # the arguments of the recovery run
    rerun_exit: int
    mismatches: list[str]
    leftovers: list[str]
    incomplete: list[str]
    secrets: list[str]
    output: str = ""

    @property
    def recovered(self) -> bool:
        return self.rerun_exit == 0 and not (self.mismatches or self.leftovers or self.incomplete or self.secrets)


@dataclass
class KindCampaign:
    kind: RunKind
    prepared: Workspace  # what every trial starts from
    reference: Reference
    reference_incomplete: list[str]
    reference_secrets: list[str]
    trials: list[KindTrial] = field(default_factory=list)

    def count(self, attr: str) -> int:
        """Trials with something in ``attr`` (mismatches, leftovers, incomplete, secrets, stop_problems)."""
        return sum(bool(getattr(t, attr)) for t in self.trials)

    @property
    def methods(self) -> Counter:
        return Counter(t.method for t in self.trials if t.killed)

    @property
    def points(self) -> Counter:
        return Counter(t.point.kind for t in self.trials if t.killed)

    @property
    def recovered(self) -> int:
        return sum(t.recovered for t in self.trials)

    @property
    def incomplete_dekads(self) -> int:
        """Dekads left incomplete after recovery, over every trial."""
        return sum(len(t.incomplete) for t in self.trials)

    @property
    def secrets_found(self) -> int:
        return len(self.reference_secrets) + sum(len(t.secrets) for t in self.trials)


def _start_split(cmd: list[str], out: Path, err: Path, env: dict[str, str]) -> subprocess.Popen:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fo, open(err, "wb") as fe:
        return subprocess.Popen(cmd, stdout=fo, stderr=fe, cwd=ROOT, env=environment(env), start_new_session=True)


def kind_reference(prepared: Workspace, dest: Path, kind: RunKind) -> tuple[Reference, list[str], list[str]]:
    """The uninterrupted run of ``kind`` on a fresh copy: its reference, the dekads it leaves incomplete
    and the secrets it shows (both must be empty)."""
    sources = source_digest()
    ws = kind_clone(prepared, dest, kind)
    watch = Watch(ws)
    t0 = time.monotonic()
    proc = _start_split(command(ws.params, *kind.args), ws.root / "run.out", ws.root / "run.err", SECRET_ENV)
    while proc.poll() is None:
        watch.poll()
        time.sleep(0.002)
    duration = time.monotonic() - t0
    watch.poll()
    out, err = (ws.root / "run.out").read_text(errors="replace"), (ws.root / "run.err").read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"the reference {kind.name} run failed (exit {proc.returncode}): {(out + err)[-2000:]}")
    if leftovers(ws):
        raise RuntimeError(f"the reference {kind.name} run left {leftovers(ws)}")
    ref = Reference(digest(ws.archive), duration, len(watch.changed), len(watch.temporaries), sources)
    return ref, incomplete(ws, kind), secrets_found(ws, {"stdout": out, "stderr": err})


def _stop_problems(ws: Workspace, method: str, code: int | None, out: str, err: str, before: dict[str, str],
                   started: float) -> list[str]:
    """What a run stopped by SIGTERM/SIGINT did that it must not: exit 6, one ``error: interrupted by``
    line on stderr, no traceback, no lock, temporaries or work folder left, no kernel alive, its state
    "interrupted" (or, stopped before any work, nothing changed)."""
    problems = []
    lines = [x for x in err.splitlines() if x.strip()]
    st = _state(ws)
    if code == 0 and not lines and st is not None and (st.get("status"), st.get("exit_code")) == ("done", 0):
        # the signal came as the finished run was exiting (its state already saved "done"): a complete run,
        # which the campaign still checks (archive as the reference's, nothing left behind)
        return [f"left behind: {x}" for x in leftovers(ws)]
    if code != 6:
        problems.append(f"exit {code}, expected 6 (signal {started:.2f} s after the start)")
    if len(lines) != 1 or not lines[0].startswith(f"error: interrupted by {method}"):
        problems.append(f"{len(lines)} line(s) on stderr, expected one 'error: interrupted by {method}': "
                        f"{' | '.join(lines)[:300]}")
    if "Traceback" in out + err:
        problems.append("a Python traceback")
    problems += [f"left behind: {x}" for x in leftovers(ws)]
    if "before any work" in err:
        if st is not None:
            problems.append("stopped 'before any work' but a run state was written")
        problems += [f"stopped 'before any work' but the archive changed: {x}"
                     for x in mismatches(before, digest(ws.archive))]
    elif st is None:
        problems.append("no run state recorded")
    else:
        if (st.get("status"), st.get("exit_code")) != ("interrupted", 6):
            problems.append(f"run state {st.get('status')!r}, exit_code {st.get('exit_code')}, expected "
                            "'interrupted', 6")
        alive = processes_of(st.get("run_id", ""))
        for _ in range(50):  # a kernel being reaped: a moment's grace
            if not alive:
                break
            time.sleep(0.1)
            alive = processes_of(st.get("run_id", ""))
        if alive:
            problems.append(f"{len(alive)} process(es) of the run still alive: {alive}")
    return problems


def kind_trial(prepared: Workspace, dest: Path, kind: RunKind, ref: Reference, point: KillPoint, method: str,
               index: int = 0) -> KindTrial:
    """Run ``kind`` on a fresh copy, kill or signal it at ``point`` with ``method``, check the stop, recover
    (``kind.recovery``) and check the result."""
    ws = kind_clone(prepared, dest, kind)
    before = digest(ws.archive)
    watch = Watch(ws)
    t0 = time.monotonic()
    out_f, err_f = ws.root / "killed.out", ws.root / "killed.err"
    proc = _start_split(command(ws.params, *kind.args), out_f, err_f, SECRET_ENV)
    killed, killed_after = False, 0.0
    while proc.poll() is None:
        present = watch.poll()
        elapsed = time.monotonic() - t0
        reports = [t for t in watch.temporaries if f"{os.sep}reports{os.sep}" in t]
        if (point.kind == "time" and elapsed >= point.at) or \
                (point.kind == "commit" and len(watch.changed) >= point.at) or \
                (point.kind == "write" and present and len(watch.temporaries) >= point.at) or \
                (point.kind == "report" and len(reports) >= point.at and reports[-1] in present):
            killed, killed_after = True, elapsed
            if method == "SIGKILL":
                kill_tree(proc)
            else:
                _signal(proc.pid, getattr(signal, method))
            break
        time.sleep(0.001 if point.kind in ("write", "report") else 0.003)
    if not killed:
        killed_after = time.monotonic() - t0  # how long the whole run took
    problems: list[str] = []
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        problems.append(f"still running 300 s after {method}")
        kill_tree(proc)
    changed = len(watch.changed)
    out, err = out_f.read_text(errors="replace"), err_f.read_text(errors="replace")
    stale = (ws.archive / LOCK_NAME).exists()
    if killed and method != "SIGKILL":
        problems += _stop_problems(ws, method, proc.returncode, out, err, before, killed_after)
    args = kind.args
    if kind.recovery == "since-failure" and _state(ws) is not None:
        args = ("--since-failure",)
    res = run(command(ws.params, *args), env=SECRET_ENV)
    return KindTrial(kind.name, index, point, method, killed, round(killed_after, 2), proc.returncode, problems, stale,
                     changed, " ".join(args) or "(auto)", res.returncode, mismatches(ref.digest, digest(ws.archive)),
                     leftovers(ws), incomplete(ws, kind),
                     secrets_found(ws, {"killed run's stdout": out, "killed run's stderr": err,
                                        "recovery's stdout": res.stdout, "recovery's stderr": res.stderr}),
                     (res.stdout + res.stderr)[-3000:])


def run_kind_campaign(base: Workspace, workdir: Path, kind: RunKind | str, trials: int, *, seed: int = SEED,
                      log: Callable[[str], None] = print, keep: bool = False) -> KindCampaign:
    """Prepare ``kind``'s workspace from ``base``, run it once uninterrupted (the reference), then
    ``trials`` trials (see :func:`kind_schedule`). A run that ends before its time point (it went faster
    than the reference: another load on the machine) is tried again at the same fraction of the time it
    took."""
    kind = RUN_KINDS[kind] if isinstance(kind, str) else kind
    workdir = Path(workdir)
    prepared = kind_base(base, workdir / "prepared", kind)
    ref, ref_incomplete, ref_secrets = kind_reference(prepared, workdir / "reference", kind)
    log(f"{kind.name}: reference run {ref.duration:.1f} s, {ref.changed} archive file(s) written, "
        f"{ref.temporaries} temporary file(s) seen" + (f"; INCOMPLETE {ref_incomplete}" if ref_incomplete else "")
        + (f"; SECRETS {ref_secrets}" if ref_secrets else ""))
    camp = KindCampaign(kind, prepared, ref, ref_incomplete, ref_secrets)
    for i, (point, method) in enumerate(kind_schedule(trials, ref, kind.name, seed)):
        for _attempt in range(3):
            if source_digest() != ref.sources:
                log("the code changed since the reference run: running the reference again")
                ref, camp.reference_incomplete, camp.reference_secrets = kind_reference(
                    prepared, workdir / "reference", kind)
                camp.reference = ref
            t = kind_trial(prepared, workdir / f"trial-{i:02d}", kind, ref, point, method, i)
            if not t.killed and point.kind == "time":  # this run went faster than the reference (load)
                point = KillPoint("time", round(point.at / ref.duration * t.killed_after, 2))
                log(f"{kind.name} trial {i + 1}/{trials}: the run ended after {t.killed_after:.1f} s, before its "
                    f"kill point: again at the same fraction of that duration, {point.at:.1f} s")
                t = kind_trial(prepared, workdir / f"trial-{i:02d}", kind, ref, point, method, i)
            if source_digest() == ref.sources:
                break
        camp.trials.append(t)
        state = "recovered" if t.recovered else (
            f"NOT RECOVERED (exit {t.rerun_exit}, {len(t.mismatches)} mismatch(es), leftovers {t.leftovers}, "
            f"incomplete {t.incomplete}, secrets {t.secrets})")
        where = f"{'at' if t.killed else 'run ended before,'} {t.killed_after:.1f} s, exit {t.stop_exit}, " \
                f"{t.changed_before_kill} archive file(s) written"
        stop = f"; STOP PROBLEMS {t.stop_problems}" if t.stop_problems else ""
        log(f"{kind.name} trial {i + 1}/{trials}: {method} {point} ({where}){stop}; {t.recovery}: {state}")
        if not keep and t.recovered and not t.stop_problems:
            _rmtree(workdir / f"trial-{i:02d}")
    return camp
