"""Lightning callbacks: image grids for any logger, checkpoints (best without NaN scores, always-fresh last), a
validation at the last step, the learning curve, and a step-aware progress bar. Preemption: :mod:`.preemption`."""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from inpaint.data.masks.ratio import BIN_NAMES
from inpaint.evaluation.baselines import BASELINES, inpaint_opencv_batch
from inpaint.evaluation.figures import image_grid, plot_learning_curve
from inpaint.evaluation.methods import METHOD_LABELS
from inpaint.evaluation.metrics import BinnedImageMetrics
from inpaint.io import atomic_output, write_png_atomic, write_text_atomic
from inpaint.losses import composite
from inpaint.training.preemption import PreemptionCheckpoint

log = logging.getLogger(__name__)


def make_grid(
    image: torch.Tensor, mask: torch.Tensor, output: torch.Tensor, max_images: int = 4
) -> np.ndarray:
    """Rows of ``masked input | output | composite | ground truth``, labelled.

    Args:
        image: (B, 3, H, W) in [0, 1]. mask: (B, 1|3, H, W), 1 = valid. output: (B, 3, H, W).
        max_images: rows at most.

    Returns:
        uint8 (H', W', 3) array (W&B shows float images as black; uint8 is unambiguous).
    """
    n = min(max_images, image.shape[0])
    image, mask, output = image[:n].float(), mask[:n].float(), output[:n].float()
    masked = image * mask + (1 - mask) * 1.0  # holes shown white, as in the user-facing mask convention
    comp = composite(output, image, mask)
    rows = [[masked[i], output[i], comp[i], image[i]] for i in range(n)]
    return image_grid(rows, GRID_COLUMNS, min_tile=0)


GRID_COLUMNS = ("input (holes white)", "output", "composite", "ground truth")


class ImageGridLogger(pl.Callback):
    """Logs ``masked input | output | composite | ground truth`` grids.

    Training grids every ``every_n_steps`` optimiser steps, validation grids from the first validation batch (fixed
    masks, so they are comparable across epochs). Sent to every active logger (W&B, TensorBoard) and always written
    as PNG under ``<output_dir>/images/``. Rank zero only.
    """

    def __init__(self, every_n_steps: int = 500, max_images: int = 4, output_dir: str | None = None) -> None:
        self.every_n_steps = every_n_steps
        self.max_images = max_images
        self.output_dir = output_dir

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.output_dir or trainer.default_root_dir) / "images"

    @rank_zero_only
    def _log(self, trainer: pl.Trainer, key: str, grid: np.ndarray) -> None:
        step = trainer.global_step
        write_png_atomic(self._dir(trainer) / f"{key.replace('/', '_')}_step{step:07d}.png", grid)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[grid], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(key, grid, global_step=step, dataformats="HWC")
            elif not isinstance(logger, CSVLogger):
                log.debug("no image support for logger %s", type(logger).__name__)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not isinstance(outputs, dict) or "output" not in outputs or self.every_n_steps <= 0:
            return
        # global_step has already been incremented for this batch.
        if (trainer.global_step - 1) % self.every_n_steps == 0:
            self._log(
                trainer,
                "train/images",
                make_grid(batch["image"], batch["mask"], outputs["output"], self.max_images),
            )

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or trainer.sanity_checking or not isinstance(outputs, dict):
            return
        self._log(
            trainer,
            "val/images",
            make_grid(batch["image"], batch["mask"], outputs["output"], self.max_images),
        )


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that never keeps a checkpoint whose monitored metric is NaN or infinite.

    Lightning ranks a NaN as the worst score but still saves it while fewer than ``save_top_k`` checkpoints exist, so
    a run that diverged before its first validation would keep ``...-psnrnan.ckpt`` as its "best".
    """

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        value = monitor_candidates.get(self.monitor) if self.monitor else None
        if value is not None and not bool(torch.isfinite(torch.as_tensor(value)).all()):
            rank_zero_only(log.warning)(
                "%s is %s at step %d: not a candidate for the best checkpoint",
                self.monitor,
                float(value),
                trainer.global_step,
            )
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)


class StepProgressBar(RichProgressBar):
    """Rich progress bar whose description names the optimiser step out of ``max_steps`` when training is
    step-bound (Lightning's own shows ``Epoch 1/-2`` for ``max_epochs=-1``)."""

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            return super()._get_train_description(current_epoch)
        total = f"/{trainer.max_steps}" if trainer.max_steps > 0 else ""
        return f"Epoch {current_epoch} · step {trainer.global_step}{total}"

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.progress is not None and self.train_progress_bar_id is not None:
            description = self._get_train_description(trainer.current_epoch)
            self.progress.update(self.train_progress_bar_id, description=description)


class LastCheckpoint(ModelCheckpoint):
    """``<dirpath>/last.ckpt``: the latest state, refreshed at every validation and at the end of training.

    Lightning's own ``save_last`` only refreshes ``last`` when a top-k checkpoint was saved, i.e. when the monitored
    metric improved; this one always does, so ``ckpt_path=last`` resumes from the newest state.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "last") -> None:
        super().__init__(
            dirpath=dirpath, filename=filename, monitor=None, save_top_k=1, enable_version_counter=False
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        preempted = any(isinstance(cb, PreemptionCheckpoint) and cb.saved_path for cb in trainer.callbacks)
        if (
            trainer.fast_dev_run
            or trainer.sanity_checking
            or preempted  # its mid-epoch checkpoint resumes mid-epoch; one written now would mark the epoch done
            or self._last_global_step_saved == trainer.global_step
        ):
            return
        self._save_checkpoint(trainer, self.format_checkpoint_name({}))
        self._last_global_step_saved = trainer.global_step


class LoggingStep(pl.Callback):
    """Keeps the step that loggers record equal to the optimiser step (``trainer.global_step``).

    With one optimiser and automatic optimisation the two are equal by definition, except after a resume: Lightning
    restores its logging counter one short when the checkpoint was written during validation or at the end of
    training, one more at each resume, so a resumed run would log its steps again under earlier numbers. Must come
    first among the callbacks (others, e.g. the learning-rate monitor, log in the same hook): the run puts it there.
    """

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if pl_module.automatic_optimization:
            trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step


class StepBudget(pl.Callback):
    """Fits the run's length to a wall-clock budget: ``trainer.max_steps`` becomes the number of steps (a multiple of
    ``multiple``) that, with their validations, end within ``minutes`` of the start of training, if that is fewer.

    The step time is measured over steps ``calibrate_at // 2`` to ``calibrate_at`` (after the warm-up of the loader
    and the allocator), a validation's time from the longest that ran so far (the validation before training, where
    there is one). A learning-rate schedule that reads
    ``trainer.max_steps`` (``model.lr_schedule=cosine``) then ends where the run ends, instead of being cut short by
    ``trainer.max_time`` on a slower machine. The chosen length travels in checkpoints, so a resumed run keeps it.

    Args:
        minutes: the budget for training and its validations, from the first training step.
        calibrate_at: the optimiser step at which the length is chosen.
        multiple: the length is rounded down to a multiple of this many steps.
    """

    def __init__(self, minutes: float, calibrate_at: int = 200, multiple: int = 100) -> None:
        if minutes <= 0 or calibrate_at < 2 or multiple < 1:
            raise ValueError(
                f"need minutes > 0, calibrate_at >= 2, multiple >= 1; got {minutes}, {calibrate_at}, {multiple}"
            )
        self.budget = 60.0 * minutes
        self.calibrate_at, self.multiple = calibrate_at, multiple
        self.max_steps: int | None = None  # the chosen length, once chosen
        self._start = self._mark = 0.0
        self._validation_seconds: list[float] = []
        self._validation_start = 0.0
        self._validations_at_mark = 0

    def state_dict(self) -> dict[str, Any]:
        return {"max_steps": self.max_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.max_steps = state_dict["max_steps"]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()
        if self.max_steps is not None:  # resumed: the length chosen before
            trainer.fit_loop.epoch_loop.max_steps = self.max_steps

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_start = time.monotonic()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validation_seconds.append(time.monotonic() - self._validation_start)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.max_steps is not None or step not in (self.calibrate_at // 2, self.calibrate_at):
            return
        now = time.monotonic()
        if step == self.calibrate_at // 2:
            self._mark, self._validations_at_mark = now, len(self._validation_seconds)
            return
        spent_validating = sum(self._validation_seconds[self._validations_at_mark :])
        per_step = (now - self._mark - spent_validating) / (self.calibrate_at - self.calibrate_at // 2)
        per_validation = max(self._validation_seconds, default=0.0)
        interval = trainer.val_check_batch if isinstance(trainer.val_check_batch, int) else None
        left = self.budget - (now - self._start)
        cost = per_step + (per_validation / interval if interval else 0.0)
        configured = trainer.max_steps
        steps = step + int(left / cost) if cost > 0 else configured
        chosen = min(configured, max(self.multiple, steps - steps % self.multiple))
        self.max_steps = chosen
        trainer.fit_loop.epoch_loop.max_steps = chosen
        rank_zero_only(log.info)(
            "step budget: %.3f s per step, %.1f s per validation: %d steps fit in %.1f minutes%s",
            per_step,
            per_validation,
            chosen,
            self.budget / 60,
            "" if chosen < configured else " (the configured max_steps)",
        )


class ValidateAtLastStep(pl.Callback):
    """Validates the final weights: at ``trainer.max_steps``, also when the validation interval does not end there,
    so that the best checkpoint, ``last.ckpt`` and the final metrics all see the weights training ends with."""

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True  # Lightning validates once more when a run is asked to stop


class LearningCurve(pl.Callback):
    """Held-out PSNR per hole-ratio bin against optimiser steps and wall time, with the classical baselines.

    At every validation (not the sanity check) it appends the model's ``val/psnr`` and ``val/psnr/<bin>`` to
    ``<output_dir>/learning_curve.csv`` and redraws ``<output_dir>/learning_curve.png``: one panel per bin, PSNR
    against wall time (seconds since the run started), with OpenCV Telea and Navier-Stokes on the same validation
    images and masks as horizontal lines, so the crossover is visible at a glance. The baselines are computed once,
    during the first validation pass. Both files are written atomically by rank zero. The rows, the baselines and
    the elapsed time are part of every checkpoint, so a resumed run continues the curve (in a new directory too).

    Args:
        output_dir: run directory (default: the trainer's ``default_root_dir``).
        baselines: OpenCV methods drawn as reference lines (keys of :data:`inpaint.evaluation.baselines.BASELINES`).
    """

    def __init__(
        self, output_dir: str | None = None, baselines: tuple[str, ...] = ("telea", "navier_stokes")
    ):
        unknown = sorted(set(baselines) - set(BASELINES))
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; available: {sorted(BASELINES)}")
        self.output_dir = output_dir
        self.baselines = tuple(baselines)
        self.rows: list[dict[str, float]] = []
        self.reference: dict[str, dict[str, float]] = {}  # method -> metric key -> value
        self._metrics: dict[str, Any] = {}
        self._start: float | None = None

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.output_dir or trainer.default_root_dir)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._start is None:
            self._start = time.monotonic()

    def _elapsed(self) -> float:
        return time.monotonic() - (self._start or time.monotonic())

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "reference": self.reference, "seconds": self._elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Only rows up to the checkpoint: a run killed after it validated again repeats those steps.
        self.rows = [dict(r) for r in state_dict["rows"]]
        self.reference = {m: dict(v) for m, v in state_dict["reference"].items()}
        self._start = time.monotonic() - float(state_dict["seconds"])  # wall time continues where it stopped

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.reference or trainer.sanity_checking:
            return
        self._metrics = {m: BinnedImageMetrics().to(pl_module.device) for m in self.baselines}

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._metrics or trainer.sanity_checking:
            return
        image, mask = batch["image"].float(), batch["mask"].float()
        for method, metric in self._metrics.items():
            metric.update(inpaint_opencv_batch(image * mask, mask, method), image, batch["hole_ratio"])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self._metrics:
            self.reference = {
                m: {k: float(v) for k, v in metric.compute().items()} for m, metric in self._metrics.items()
            }
            self._metrics = {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # callback_metrics hold this validation's values only once the module's epoch-end logging has run.
        if trainer.sanity_checking:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/psnr")}
        if not values:
            return
        self.rows.append({"step": float(trainer.global_step), "seconds": self._elapsed(), **values})
        if trainer.is_global_zero:
            self._write(trainer)

    def _write(self, trainer: pl.Trainer) -> None:
        import matplotlib.pyplot as plt

        keys = ["step", "seconds", "val/psnr", *[f"val/psnr/{b}" for b in BIN_NAMES]]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        for method, ref in self.reference.items():
            writer.writerow({"step": "", "seconds": method, **{k: ref.get(k[4:]) for k in keys[2:]}})
        out = self._dir(trainer)
        write_text_atomic(out / "learning_curve.csv", buf.getvalue())
        labels = {m: METHOD_LABELS.get(m, m) for m in self.reference}
        fig = plot_learning_curve(self.rows, self.reference, labels)
        with atomic_output(out / "learning_curve.png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
