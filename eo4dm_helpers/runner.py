"""Headless execution of the notebook suite with papermill, and the HTML report (ARCHITECTURE.md §6)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill as pm
from nbconvert import HTMLExporter

from . import runs
from .config import Config
from .dekads import Dekad
from .storage import atomic_path, clean_temporaries

NOTEBOOKS = (
    "01_medium_resolution",
    "02_sentinel2",
    "03_landsat",
    "04_local_composite",
    "05_download",
    "06_indicators",
    "07_report",
)
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class StepFailed(RuntimeError):
    """A notebook failed; the message names the notebook and the cell."""

    def __init__(self, notebook: str, cell: int | None, error: str, executed: Path):
        where = f"cell {cell}" if cell is not None else "start-up"
        super().__init__(f"notebook {notebook}.ipynb failed at {where}: {error} (executed copy: {executed})")
        self.notebook, self.cell, self.executed = notebook, cell, executed


@dataclass
class DekadRun:
    dekad: Dekad
    report: Path | None  # None when the mode runs no report (indices)
    timings: dict[str, float]


def report_path(cfg: Config, dekad: Dekad) -> Path:
    return cfg.paths.output / "reports" / dekad.label / "index.html"


def run_dekad(cfg: Config, params_file: Path, dekad: Dekad, *, notebooks: tuple[str, ...] = NOTEBOOKS,
              notebook_dir: Path = NOTEBOOK_DIR, log=print, notes: dict | None = None,
              run_id: str | None = None, holder: str | None = None) -> DekadRun:
    """Run the notebooks for one dekad, then render the report notebook to HTML (when it ran).

    ``notes`` are facts for the report known before the notebooks run (e.g. the availability check).
    ``run_id`` and ``holder`` name the run and the archive lock it holds: the kernels write into the
    archive only while that lock is theirs, and stage only in this run's work folder.
    """
    run_id = run_id or runs.new_run_id()
    run_dir = cfg.paths.output / "runs" / dekad.label
    work = runs.work_root(cfg.paths.output) / run_id / dekad.label
    if work.exists():  # this run's own leftovers: start the dekad afresh
        shutil.rmtree(work)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(run_dir)
    runs.make_work(work.parent, run_id)
    work.mkdir(parents=True, exist_ok=True)
    os.environ[runs.RUN_ENV] = run_id  # inherited by the kernels
    if holder:
        os.environ[runs.HOLDER_ENV] = holder
    else:
        os.environ.pop(runs.HOLDER_ENV, None)
    for key, value in (notes or {}).items():
        _note(work, key, value)
    timings: dict[str, float] = {}
    _kernel_uses_this_python()
    os.environ["EO4DM_HEADLESS"] = "1"  # notebooks show static maps instead of interactive ones
    secrets = secret_strings(cfg)
    kernel_log = run_dir / "kernel.log"
    kernel_log.unlink(missing_ok=True)
    for name in notebooks:
        src, dst = notebook_dir / f"{name}.ipynb", run_dir / f"{name}.ipynb"
        t0 = time.perf_counter()
        log(f"[{dekad.label}] {name} ...")
        if name == notebooks[-1]:
            _note(work, "timings", timings)  # the report shows them
        try:
            pm.execute_notebook(str(src), str(dst), parameters={"params": _portable(params_file, notebook_dir),
                                                                "dekad": dekad.label,
                                                                "work_dir": _portable(work, notebook_dir)},
                                kernel_name="python3", cwd=str(notebook_dir), progress_bar=False,
                                log_output=False, report_mode=False,
                                # the kernel only talks to this process over loopback: no TCP warning flood;
                                # CRITICAL: jupyter_client interrupts every kernel before shutting it down, and
                                # a kernel inside a message handler then logs "KeyboardInterrupt caught in
                                # kernel" as an ERROR on the run's stderr (at random). Cell errors come back
                                # through papermill (StepFailed), not through this log.
                                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                                kernel_manager_class=_kernel_manager_logging_to(kernel_log))
        except pm.PapermillExecutionError as exc:
            _scrub_outputs(dst, kernel_log, secrets)
            raise StepFailed(name, exc.exec_count, scrub(f"{exc.ename}: {exc.evalue}", secrets), dst) from None
        except Exception as exc:  # kernel died, notebook missing...
            _scrub_outputs(dst, kernel_log, secrets)
            error = f"{exc.__class__.__name__}: {exc}" + (f" (kernel log: {kernel_log})" if kernel_log.exists() else "")
            raise StepFailed(name, None, scrub(error, secrets), dst) from None
        _scrub_outputs(dst, kernel_log, secrets)
        timings[name] = round(time.perf_counter() - t0, 2)
    out = None
    if notebooks[-1] == NOTEBOOKS[-1]:
        out = render_report(run_dir / f"{notebooks[-1]}.ipynb", report_path(cfg, dekad),
                            f"Drought bulletin {cfg.territory.name} {dekad.label}")
        from .report_index import render_index

        render_index(cfg)
    shutil.rmtree(work, ignore_errors=True)
    return DekadRun(dekad, out, timings)


def _kernel_manager_logging_to(log: Path) -> type:
    """A kernel manager whose kernels write their own stdout/stderr (not the cells' outputs, which come
    back in the notebook) to ``log`` instead of the runner's terminal: what a kernel prints as it exits,
    such as libzmq's "Assertion failed: pfd.revents & POLLIN (src/signaler.cpp)" when its sockets close
    under it at shutdown, is kept for diagnosis and never pollutes the output of a run that succeeded
    (cron mails, the one-line error contract of run_all.py)."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelLoggingToFile(AsyncKernelManager):
        async def start_kernel(self, **kw) -> None:  # kw reach Popen (jupyter_client's documented API)
            with open(log, "ab") as fh:  # the kernel keeps its own copy of the descriptor
                await super().start_kernel(**kw, stdout=fh, stderr=fh)
            _KERNELS.add(self)

    return KernelLoggingToFile


_KERNELS: weakref.WeakSet = weakref.WeakSet()  # kernel managers started by this process


def kill_kernels(timeout: float = 10.0) -> int:
    """SIGKILL every kernel this process started that may still run (each is the leader of a session of
    its own: its whole process group goes) and wait for them; returns how many were killed. Used when
    the run is interrupted, so that no kernel goes on writing after the run has released its lock."""
    procs = []
    for km in list(_KERNELS):
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            procs.append(proc)
    deadline = time.monotonic() + timeout
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.wait(max(0.0, deadline - time.monotonic()))
    return len(procs)


def _scrub_outputs(executed: Path, kernel_log: Path, secrets: list[str]) -> None:
    for path in (executed, kernel_log):
        if path.exists():
            scrub_file(path, secrets)


def _portable(path: Path, base: Path) -> str:
    """A path as the notebooks receive it: relative to the notebooks' folder when it is inside the
    project, else with ``~`` for the home folder, so executed notebooks hold no user-specific path."""
    path = Path(path).resolve()
    try:
        return os.path.relpath(path, base) if path.is_relative_to(base.parent) else _home_tilde(str(path))
    except ValueError:  # another drive
        return _home_tilde(str(path))


def _home_tilde(text: str) -> str:
    home = str(Path.home())
    return text.replace(home, "~") if home not in ("", "/") else text


def secret_strings(cfg: Config) -> list[str]:
    """What must never appear in executed notebooks, reports or messages (beyond what
    :func:`eo4dm_helpers.redact.redact` finds by its shape): the key file's path and its account e-mail,
    private key and key id, the Drive OAuth client secret and tokens, the Copernicus Data Space password
    and S3 keys (read here only to scrub them)."""
    import contextlib
    import json

    from .ee.session import KEY_ENV, key_path, looks_like_key

    fields = ("client_email", "private_key", "private_key_id", "client_secret", "refresh_token", "access_token")

    def fields_of(text: str) -> list[str]:  # in the document or one level down (OAuth client files)
        try:
            doc = json.loads(text)
        except ValueError:
            return []
        dicts = [doc, *(v for v in doc.values() if isinstance(v, dict))] if isinstance(doc, dict) else []
        return [str(d[k]) for d in dicts for k in fields if d.get(k) not in (None, "")]

    out: list[str] = []
    files = [cfg.download.drive_client_secrets, cfg.download.drive_token]
    env = os.environ.get(KEY_ENV, "")
    path = key_path(cfg)
    if cfg.credentials.ee_key_file is None and looks_like_key(env):  # the variable holds the key, not its path
        out += [env, *fields_of(env)]
    elif path is not None:
        out.append(str(path))
        files.insert(0, path)
    for f in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            out += fields_of(Path(f).read_text(encoding="utf-8")) if f is not None else []
    from .stac.credentials import secrets_of  # Copernicus Data Space password / S3 keys (issue #10)

    out += secrets_of(cfg)
    return [s for s in dict.fromkeys(out) if len(s) >= 6]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without credentials (:func:`eo4dm_helpers.redact.redact`: ``secrets`` in any encoding,
    and whatever is shaped like a key, a key id, a service account or a token) nor home paths."""
    from .redact import redact

    return _home_tilde(redact(text, secrets))


def scrub_file(path: Path, secrets: list[str]) -> None:
    """Rewrite a file without secrets or home paths (atomically)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    clean = scrub(text, secrets)
    if clean != text:
        with atomic_path(path) as tmp:
            tmp.write_text(clean, encoding="utf-8")


def _note(work: Path, key: str, value: object) -> None:
    import json

    p = work / "notes.json"
    notes = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
    notes[key] = value
    from .storage import write_text_atomic

    write_text_atomic(p, json.dumps(notes, indent=1, default=str))


def _kernel_uses_this_python() -> None:
    """The "python3" kernelspec starts ``python`` from PATH: make it this interpreter, so the kernel
    sees the same packages as the runner even when the virtualenv is not activated."""
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != here:
        os.environ["PATH"] = here + os.pathsep + path


REPORT_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1050px;margin:0 auto;padding:1.5em 2em;background:#fff}
h1{font-size:1.6em;border-bottom:3px solid #08519c;padding-bottom:.3em}h2{color:#08519c;margin-top:1.6em}
a.anchor-link{display:none}img{max-width:100%;height:auto}pre{white-space:pre-wrap;font-size:12px}
table.dataframe{border-collapse:collapse;font-size:13px;margin:.6em 0}
table.dataframe td,table.dataframe th{padding:3px 8px;border-bottom:1px solid #e3e3e3;text-align:right}
table.dataframe th{background:#f1f4f8}details{margin:.5em 0}summary{cursor:pointer;color:#08519c}
"""


def render_report(executed: Path, dest: Path, title: str = "Drought bulletin") -> Path:
    """Executed notebook → self-contained HTML without code: figures embedded as PNG, inline style,
    no script and nothing fetched from the internet (nbconvert's "basic" body in our own page)."""
    import html as _html

    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_html.escape(title)}"
            f"</title><style>{REPORT_CSS}</style></head><body><main>{body}</main></body></html>")
    with atomic_path(dest) as tmp:
        tmp.write_text(_home_tilde(page), encoding="utf-8")
    return dest
