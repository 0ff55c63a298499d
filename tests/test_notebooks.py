"""Every notebook runs top to bottom with SMOKE=1 (tiny budgets, real code paths)."""
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import need_dataset

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") and not cell.get("execution_count") for cell in notebook.cells
                   if cell.cell_type == "code"), f"{path.name} has outputs in git"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_in_smoke_mode(path, monkeypatch):
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)
    for name in sorted(set(re.findall(r'require_dataset\("(\w+)"\)', "".join(cell.source for cell in notebook.cells)))):
        need_dataset(name)  # the datasets the notebook reads
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors


QUIET_LINES = ("from tf_twogan.console import import_tensorflow_quietly", "import_tensorflow_quietly()")


def first_code_cell(path: Path) -> str:
    return next(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")


def test_every_notebook_starts_by_importing_tensorflow_quietly():
    for path in NOTEBOOKS:
        lines = [line.split("#")[0].strip() for line in first_code_cell(path).splitlines()]
        assert all(quiet in lines for quiet in QUIET_LINES), path.name


def test_that_first_cell_keeps_tensorflow_quiet_for_the_rest_of_the_notebook():
    """A user's Jupyter shows what the kernel writes to its stderr: the first cell must leave no
    TensorFlow start-up line there (without TF_CPP_MIN_LOG_LEVEL, as on a user's machine)."""
    import subprocess
    import sys

    path = NOTEBOOKS[0]
    code = first_code_cell(path) + "\nimport tensorflow as tf\nprint(float(tf.reduce_sum(tf.ones([2, 2]))))\n"
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "TWOGAN_VERBOSE")}
    done = subprocess.run([sys.executable, "-c", code], cwd=path.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("4.0")
    assert done.stderr == ""
