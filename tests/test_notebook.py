"""notebooks/evaluate.ipynb: committed without outputs, and every cell runs against a checkpoint trained here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "evaluate.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)


@pytest.mark.slow
def test_notebook_runs_on_a_trained_checkpoint(tmp_path: Path, tiny) -> None:
    import nbformat
    from nbclient import NotebookClient

    ckpt = tiny.trained_checkpoint(tmp_path / "train")
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
    tables = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("PSNR (dB)" in t for t in tables)
    # The intervals and the paired differences are shown, with the number of images behind them.
    assert any("95 % confidence interval" in t and "### Model − baseline (paired)" in t for t in tables)
    assert any("| **all** | 6 | PConv U-Net |" in t for t in tables)
    assert (out / "metrics.json").is_file() and (out / "examples_worst.png").is_file()
    # No console noise: no tqdm widget warning, and the progress bar drawn at its start and end only, not once per
    # update (issue: 38 lines).
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "TqdmWarning" not in streams and "IProgress" not in streams
    draws = [d for d in streams.split("\r") if d.startswith("evaluate:")]
    assert 1 <= len(draws) <= 3, draws


@pytest.mark.slow
def test_notebook_runs_as_jupyter_execute_from_the_project_root(tmp_path: Path, tiny) -> None:
    """`make train`, then `jupyter execute notebooks/evaluate.ipynb` from the project root, no parameters injected:
    the kernel runs in notebooks/ and must still find the project's outputs/ (here a copy of the project layout)."""
    import os
    import shutil
    import subprocess
    import sys

    repo = NOTEBOOK.parents[1]
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    shutil.copy(repo / "pyproject.toml", project / "pyproject.toml")
    (project / "conf").symlink_to(repo / "conf", target_is_directory=True)
    shutil.copy(NOTEBOOK, project / "notebooks" / NOTEBOOK.name)
    run_dir = (
        project / "outputs" / "train" / "runs" / "tiny"
    )  # where `make train` (the default experiment) writes
    run_dir.parent.mkdir(parents=True)
    ckpt = tiny.trained_checkpoint(run_dir, max_steps=2)

    env = {k: v for k, v in os.environ.items() if k != "INPAINT_PROJECT_DIR"}
    jupyter = Path(sys.executable).with_name("jupyter")
    proc = subprocess.run(
        [str(jupyter), "execute", "notebooks/evaluate.ipynb"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    report = project / "outputs" / "evaluate" / "notebook"
    assert (report / "metrics.json").is_file() and (report / "examples_worst.png").is_file()
    assert str(ckpt) in (report / "metrics.json").read_text()  # the checkpoint it found by itself
    assert not (
        project / "notebooks" / "outputs"
    ).exists()  # nothing written relative to the kernel's directory
