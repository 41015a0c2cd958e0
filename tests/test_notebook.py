"""notebooks/evaluate.ipynb: committed without outputs, and every cell runs against a checkpoint trained here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _eval_fixtures import train_tiny_checkpoint

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "evaluate.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)


@pytest.mark.slow
def test_notebook_runs_on_a_trained_checkpoint(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    ckpt = train_tiny_checkpoint(tmp_path / "train")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    out = tmp_path / "eval"
    # Injected after the parameters cell, as papermill does.
    nb.cells.insert(
        index + 1,
        nbformat.v4.new_code_cell(
            f"CKPT_PATH = {str(ckpt)!r}\nOUTPUT_DIR = {str(out)!r}\nDEVICE = 'cpu'\nMAX_IMAGES = 6\nNUM_EXAMPLES = 2"
        ),
    )
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    # Every cell ran (execute() raises on the first failing cell); the report and figures are there.
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # plot + best + worst grids
    assert any("PSNR (dB)" in o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert (out / "metrics.json").is_file() and (out / "examples_worst.png").is_file()
