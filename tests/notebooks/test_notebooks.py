"""The data scientists' notebooks: committed without outputs, and they run top to bottom."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_the_three_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_explore_data.ipynb",
        "02_retrain_and_compare.ipynb",
        "03_explain_an_account.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs"


@pytest.mark.slow
def test_notebooks_run_top_to_bottom(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # A fresh workspace; the kernel is this environment's Python.
    monkeypatch.setenv("RADAR_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    for path in NOTEBOOKS:  # in order: each may reuse what the one before made
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        )
        client.execute()  # raises CellExecutionError naming the cell, with its traceback
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert images, f"{path.name} drew no figure"
