"""The evaluation's command line and config: ``python -m inpaint.evaluate`` over ``conf/evaluate.yaml``.

Builds the loader of the configured split, evaluates a checkpoint (:func:`inpaint.evaluation.evaluate`) and writes the
report into the run directory. :func:`find_latest_checkpoint` (the newest checkpoint of the default experiment) and
:func:`project_root` let notebooks and the web page find it from wherever they start.
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
    "SettingsError",
    "build_eval_loader",
    "check_settings",
    "chosen_checkpoint",
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


# Where `python -m inpaint.train` (the default experiment, task_name=train) keeps its runs, relative to outputs/. The
# installation check (+experiment=smoke) and sweeps write elsewhere, so their models never become the default.
DEFAULT_RUNS = "train/runs"


def find_latest_checkpoint(root: str | Path | None = None) -> Path:
    """The newest ``last.ckpt`` of the default experiment: ``<root>/train/runs/*/checkpoints/last.ckpt`` by the time
    it was written, with ``root`` the :func:`project_root`'s ``outputs/`` by default (what ``make train`` writes).

    The one search behind every "newest checkpoint" default of the evaluation and the page (``python -m
    inpaint.evaluate`` without ``ckpt_path``, ``python -m inpaint.app`` without ``--ckpt``, the notebook). Other
    experiments (``+experiment=smoke``: the installation check) and multiruns are never picked: name them.

    Raises:
        FileNotFoundError: no such checkpoint; the message says where it looked, names a checkpoint of another
            experiment if there is one, and how to get or choose one.
    """
    outputs = Path(root) if root is not None else project_root() / "outputs"
    runs = outputs / DEFAULT_RUNS
    found = [p for p in runs.glob("*/checkpoints/last.ckpt") if p.is_file()]
    if found:
        return max(found, key=lambda p: p.stat().st_mtime)
    others = sorted(outputs.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    other = (
        f"; {len(others)} checkpoint(s) of other experiments are not used by default, the newest: {others[-1]} "
        "(name it to use it)"
        if others
        else ""
    )
    raise FileNotFoundError(
        f"no checkpoint of the default experiment ({DEFAULT_RUNS}/*/checkpoints/last.ckpt) under "
        f"{outputs.resolve()}{other}. Train one with `make train`, or name one (evaluate ckpt_path=<file>, "
        f"app --ckpt <file>), or set ${PROJECT_DIR_ENV} to the project directory"
    )


class OutputDirError(OSError):
    """The report's output directory cannot be created or written."""


class SettingsError(ValueError):
    """A setting of ``conf/evaluate.yaml`` is out of its range; the message names the key and what it accepts."""


def chosen_checkpoint(ckpt_path: str | os.PathLike[str] | None, what: str = "checkpoint") -> Path:
    """``ckpt_path``, or the newest checkpoint of the default experiment when it is empty; logged either way, so
    that a user always sees which model the numbers (or the page) come from."""
    if ckpt_path:
        log.info("%s: %s", what, ckpt_path)
        return Path(ckpt_path)
    found = find_latest_checkpoint()
    log.info("%s: %s (the newest run of the default experiment; name another to use it)", what, found)
    return found


_CHOICES = {"split": ("test", "val"), "lpips": ("auto", "on", "off"), "fid": ("auto", "on", "off")}


def check_settings(cfg: DictConfig) -> None:
    """One clear :class:`SettingsError` for an evaluation setting out of range (instead of an error from inside
    the data loader or the metrics)."""
    for key, allowed in _CHOICES.items():
        if str(cfg.get(key)) not in allowed:
            raise SettingsError(f"{key}={cfg.get(key)}: expected one of {', '.join(allowed)}")
    for key, low in (("batch_size", 1), ("num_workers", 0), ("num_examples", 0), ("max_images", 1)):
        value = cfg.get(key)
        if key == "max_images" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SettingsError(f"{key}={value}: expected a whole number of at least {low}")
    try:
        device = _resolve_device(str(cfg.device))
    except RuntimeError as e:
        raise SettingsError(f"device={cfg.device}: {e}") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SettingsError(
            f"device={cfg.device}: this machine has {torch.cuda.device_count()} CUDA device(s) usable by torch; "
            "use device=auto or device=cpu"
        )


def run(cfg: DictConfig) -> EvaluationReport:
    """Evaluate as configured by ``conf/evaluate.yaml`` and write the report into ``cfg.output_dir``.

    Without ``ckpt_path`` the newest checkpoint of the default experiment (:func:`find_latest_checkpoint`); the
    checkpoint used is logged either way.

    Raises:
        OutputDirError: ``output_dir`` cannot be written (checked before the work, and when saving).
        SettingsError: a setting of ``conf/evaluate.yaml`` out of its range.
        CheckpointError, FileNotFoundError: no usable checkpoint (unreadable, unsafe, non-finite, none found).
    """
    from inpaint.inference import Inpainter

    check_settings(cfg)
    try:
        ensure_writable_dir(cfg.output_dir)  # before the work, not after it
    except OSError as e:
        raise _output_error(cfg.output_dir, e) from e
    device = _resolve_device(str(cfg.device))
    ckpt = chosen_checkpoint(cfg.get("ckpt_path"))
    inpainter = Inpainter.from_checkpoint(
        ckpt,
        device=device,
        self_ensemble=int(cfg.self_ensemble),
        coarse_beyond=cfg.coarse_beyond,
        poisson_blend=float(cfg.poisson_blend),
    )
    loader, caveat = build_eval_loader(cfg)
    info = {
        "checkpoint": str(ckpt),
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
    same = err.filename is not None and os.fsdecode(err.filename) == str(output_dir)
    reason = (err.strerror or str(err)) if same else describe_os_error(err)
    return OutputDirError(f"cannot write the report to output_dir={output_dir}: {reason}")
