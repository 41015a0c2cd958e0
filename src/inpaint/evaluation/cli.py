"""The evaluation's command line and config: ``python -m inpaint.evaluate`` over ``conf/evaluate.yaml``.

Builds the loader of the configured split, evaluates a checkpoint (:func:`inpaint.evaluation.evaluate`) and writes the
report into the run directory. :func:`find_latest_checkpoint` and :func:`project_root` let notebooks and the web page
find the newest run from wherever they start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from inpaint.config import compose, to_plain
from inpaint.evaluation.loop import Batch, evaluate
from inpaint.evaluation.report import EvaluationReport
from inpaint.io import describe_os_error, ensure_writable_dir

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "OutputDirError",
    "build_eval_loader",
    "find_latest_checkpoint",
    "load_config",
    "project_root",
    "run",
]

log = logging.getLogger("inpaint.evaluate")


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_eval_loader(cfg: DictConfig) -> tuple[Iterable[Batch], str | None]:
    """The ``cfg.split`` loader of the data module built from ``cfg.data`` / ``cfg.masks``, with the evaluation's
    ``batch_size`` and ``num_workers``, and a caveat for the report when its images also serve validation (where
    checkpoints are selected), or None."""
    from inpaint.data import build_datamodule

    if cfg.split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {cfg.split!r}")
    data_cfg = to_plain(cfg.data, "data config")
    data_cfg.update(batch_size=int(cfg.batch_size), num_workers=int(cfg.num_workers))
    datamodule = build_datamodule(data_cfg, cfg.masks)
    if cfg.split == "val":
        caveat = "these are the validation images, on which checkpoints are selected: not a held-out test"
    elif datamodule.test_is_validation:
        caveat = (
            "this dataset's test split is its validation split (other crops and masks where generated): numbers of "
            "a checkpoint selected on validation (best) are optimistic; last.ckpt was selected by nothing"
        )
    else:
        caveat = None
    loader = datamodule.test_dataloader() if cfg.split == "test" else datamodule.val_dataloader()
    return loader, caveat


def load_config(overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/evaluate.yaml`` composed with Hydra overrides, outside a Hydra app (notebooks, scripts).

    Without a Hydra run there is no run directory, so pass ``output_dir=...`` among the overrides.
    """
    return compose("evaluate", overrides)


PROJECT_DIR_ENV = "INPAINT_PROJECT_DIR"


def project_root(start: str | Path | None = None) -> Path:
    """The project directory whose ``outputs/`` holds the runs, wherever the caller runs (a notebook's kernel runs
    in ``notebooks/``): ``$INPAINT_PROJECT_DIR`` if set, else the nearest directory at or above ``start`` (default:
    the working directory) that holds ``pyproject.toml`` and ``conf/``, else ``start`` itself."""
    if os.environ.get(PROJECT_DIR_ENV):
        return Path(os.environ[PROJECT_DIR_ENV]).expanduser().resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "conf").is_dir():
            return folder
    return here


def find_latest_checkpoint(root: str | Path | None = None) -> Path:
    """The most recently written ``last.ckpt`` under ``root`` (default: the :func:`project_root`'s ``outputs/``, e.g.
    after ``make train``)."""
    root = Path(root) if root is not None else project_root() / "outputs"
    found = sorted(root.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"no */checkpoints/last.ckpt under {root.resolve()}; train one with `make train` (or set "
            f"${PROJECT_DIR_ENV} to the project directory)"
        )
    return found[-1]


class OutputDirError(OSError):
    """The report's output directory cannot be created or written."""


def run(cfg: DictConfig) -> EvaluationReport:
    """Evaluate as configured by ``conf/evaluate.yaml`` and write the report into ``cfg.output_dir``."""
    from inpaint.inference import Inpainter

    try:
        ensure_writable_dir(cfg.output_dir)  # before the work, not after it
    except OSError as e:
        raise _output_error(cfg.output_dir, e) from e
    device = _resolve_device(str(cfg.device))
    inpainter = Inpainter.from_checkpoint(
        cfg.ckpt_path,
        device=device,
        self_ensemble=int(cfg.self_ensemble),
        coarse_beyond=cfg.coarse_beyond,
        poisson_blend=float(cfg.poisson_blend),
    )
    loader, caveat = build_eval_loader(cfg)
    info = {
        "checkpoint": str(cfg.ckpt_path),
        "split_caveat": caveat,
        "model": inpainter.config,
        "data": to_plain(cfg.data),
        "masks": to_plain(cfg.masks),
        "split": cfg.split,
        "device": str(device),
    }
    report = evaluate(
        inpainter,
        loader,
        baselines=list(cfg.baselines),
        max_images=cfg.get("max_images"),
        lpips=str(cfg.lpips),
        fid=str(cfg.fid),
        num_examples=int(cfg.num_examples),
        progress=bool(cfg.progress),
        info=info,
    )
    try:
        written = report.save(cfg.output_dir)
    except OSError as e:  # e.g. the disk filled up during the evaluation
        raise _output_error(cfg.output_dir, e) from e
    for kind, path in written.items():
        log.info("wrote %s: %s", kind, path)
    return report


def _output_error(output_dir: str, err: OSError) -> OutputDirError:
    return OutputDirError(f"cannot write the report to output_dir={output_dir}: {describe_os_error(err)}")
