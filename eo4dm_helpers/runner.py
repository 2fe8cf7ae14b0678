"""Headless execution of the notebook suite with papermill, and the HTML report (ARCHITECTURE.md §6)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill as pm
from nbconvert import HTMLExporter

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
    report: Path
    timings: dict[str, float]


def report_path(cfg: Config, dekad: Dekad) -> Path:
    return cfg.paths.output / "reports" / dekad.label / "index.html"


def run_dekad(cfg: Config, params_file: Path, dekad: Dekad, *, notebooks: tuple[str, ...] = NOTEBOOKS,
              notebook_dir: Path = NOTEBOOK_DIR, log=print) -> DekadRun:
    """Run every notebook for one dekad, then render the report notebook to HTML."""
    run_dir = cfg.paths.output / "runs" / dekad.label
    work = cfg.paths.output / "work" / dekad.label
    if work.exists():  # leftovers of an interrupted run: start the dekad afresh
        shutil.rmtree(work)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(run_dir)
    timings: dict[str, float] = {}
    _kernel_uses_this_python()
    for name in notebooks:
        src, dst = notebook_dir / f"{name}.ipynb", run_dir / f"{name}.ipynb"
        t0 = time.perf_counter()
        log(f"[{dekad.label}] {name} ...")
        try:
            pm.execute_notebook(str(src), str(dst), parameters={"params": str(params_file), "dekad": dekad.label,
                                                                "work_dir": str(work)},
                                kernel_name="python3", cwd=str(notebook_dir), progress_bar=False,
                                log_output=False, report_mode=False,
                                # the kernel only talks to this process over loopback: no TCP warning flood
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except pm.PapermillExecutionError as exc:
            raise StepFailed(name, exc.exec_count, f"{exc.ename}: {exc.evalue}", dst) from None
        except Exception as exc:  # kernel died, notebook missing...
            raise StepFailed(name, None, f"{exc.__class__.__name__}: {exc}", dst) from None
        timings[name] = round(time.perf_counter() - t0, 2)
    out = render_report(run_dir / f"{notebooks[-1]}.ipynb", report_path(cfg, dekad))
    shutil.rmtree(work, ignore_errors=True)
    return DekadRun(dekad, out, timings)


def _kernel_uses_this_python() -> None:
    """The "python3" kernelspec starts ``python`` from PATH: make it this interpreter, so the kernel
    sees the same packages as the runner even when the virtualenv is not activated."""
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != here:
        os.environ["PATH"] = here + os.pathsep + path


def render_report(executed: Path, dest: Path) -> Path:
    """Executed notebook → self-contained HTML without code (figures embedded as PNG)."""
    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    html, _ = exporter.from_notebook_node(nb)
    with atomic_path(dest) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return dest
