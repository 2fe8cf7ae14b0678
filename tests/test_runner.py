"""The papermill runner keeps what kernels print to their own stdout/stderr (not cell outputs) out of the
run's terminal: libzmq can abort a kernel as it exits ("Assertion failed: pfd.revents & POLLIN
(src/signaler.cpp:238)"), after its notebook is saved, and that noise must not reach the one-line error
contract of run_all.py or cron mails. It lands in ``runs/<dekad>/kernel.log``, scrubbed of secrets."""

import nbformat
import pytest

from eo4dm_helpers.config import load_config
from eo4dm_helpers.dekads import Dekad
from eo4dm_helpers.runner import run_dekad

from .conftest import demo_params

CELL = """import atexit, os, sys
atexit.register(os.write, 2, b"noise as the kernel exits\\n")  # after the notebook is saved
os.write(sys.__stderr__.fileno(), ("noise during the cell " + {extra!r} + "\\n").encode())
print("cell output")
{tail}"""


def _notebook(folder, name, extra="", tail=""):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('params: str = ""\ndekad: str = ""\nwork_dir: str = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(CELL.format(extra=extra, tail=tail))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture
def cfg(tmp_path):
    return load_config(demo_params(tmp_path))


def test_kernel_process_output_goes_to_the_kernel_log_not_the_terminal(cfg, tmp_path, capfd):
    _notebook(tmp_path / "nbs", "noisy")
    run = run_dekad(cfg, tmp_path / "params.yaml", Dekad(2024, 3, 2), notebooks=("noisy", "noisy"),
                    notebook_dir=tmp_path / "nbs", log=lambda m: None)
    out, err = capfd.readouterr()
    assert "noise" not in out + err
    assert run.timings.keys() == {"noisy"}
    log = (cfg.paths.output / "runs" / "2024-03-D2" / "kernel.log").read_text()
    assert log.count("noise during the cell") == 2 and log.count("noise as the kernel exits") == 2  # both kernels
    executed = nbformat.read(cfg.paths.output / "runs" / "2024-03-D2" / "noisy.ipynb", as_version=4)
    texts = [o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert "cell output\n" in texts  # cell outputs still come back in the notebook


def test_a_dead_kernel_names_its_log_which_holds_no_home_path(cfg, tmp_path, capfd):
    from pathlib import Path

    from eo4dm_helpers.runner import StepFailed

    home = str(Path.home())
    _notebook(tmp_path / "nbs", "dies", extra=home, tail="os._exit(3)")
    with pytest.raises(StepFailed) as exc:
        run_dekad(cfg, tmp_path / "params.yaml", Dekad(2024, 3, 2), notebooks=("dies",),
                  notebook_dir=tmp_path / "nbs", log=lambda m: None)
    log = cfg.paths.output / "runs" / "2024-03-D2" / "kernel.log"
    assert "notebook dies.ipynb failed" in str(exc.value) and "kernel log:" in str(exc.value)
    text = log.read_text()
    assert "noise during the cell" in text and (home in ("", "/") or home not in text)
    assert "noise" not in "".join(capfd.readouterr())
