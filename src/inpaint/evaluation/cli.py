"""The evaluation's command line and config: ``python -m inpaint.evaluate`` over ``conf/evaluate.yaml``.

Builds the loader of the configured split, evaluates a checkpoint (:func:`inpaint.evaluation.evaluate`) and writes the
report into the run directory. Without ``ckpt_path`` the checkpoint is the newest of the default experiment
(:func:`inpaint.runs.find_latest_checkpoint`, as for the page and the notebook).
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
from inpaint.runs import find_latest_checkpoint

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "OutputDirError",
    "SettingsError",
    "build_eval_loader",
    "check_settings",
    "chosen_checkpoint",
    "load_config",
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

    Without ``ckpt_path`` the newest checkpoint of the default experiment
    (:func:`~inpaint.runs.find_latest_checkpoint`); the
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
    overrides = to_plain(cfg.inference, "inference") if cfg.inference else {}
    inpainter = Inpainter.from_checkpoint(ckpt, device=device, **overrides)
    log.info("inference options: %s", inpainter.options.describe())
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
