"""Lightning callbacks: image grids for any logger, and a checkpoint on preemption signals."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from inpaint.checkpoint import atomic_output
from inpaint.losses import composite

log = logging.getLogger(__name__)


def make_grid(
    image: torch.Tensor, mask: torch.Tensor, output: torch.Tensor, max_images: int = 4
) -> np.ndarray:
    """Rows of ``masked input | output | composite | ground truth``.

    Args:
        image: (B, 3, H, W) in [0, 1]. mask: (B, 1|3, H, W), 1 = valid. output: (B, 3, H, W).
        max_images: rows at most.

    Returns:
        (rows*H, 4*W, 3) uint8 array in [0, 255] (W&B shows float images as black; uint8 is unambiguous).
    """
    n = min(max_images, image.shape[0])
    image, mask, output = image[:n].float(), mask[:n].float(), output[:n].float()
    masked = image * mask + (1 - mask) * 1.0  # holes shown white, as in the user-facing mask convention
    comp = composite(output, image, mask)
    row = torch.cat([masked, output.clamp(0, 1), comp.clamp(0, 1), image], dim=3)  # (n, 3, H, 4W)
    grid = torch.cat(list(row), dim=1)  # (3, nH, 4W)
    return (grid.permute(1, 2, 0).detach().cpu().numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def save_png_atomic(array: np.ndarray, path: Path) -> None:
    """Write an HxWx3 uint8 image without ever leaving a half-written file at ``path``."""
    with atomic_output(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


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
        save_png_atomic(grid, self._dir(trainer) / f"{key.replace('/', '_')}_step{step:07d}.png")
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
        if (
            trainer.fast_dev_run
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step
        ):
            return
        self._save_checkpoint(trainer, self.format_checkpoint_name({}))
        self._last_global_step_saved = trainer.global_step


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM or SIGUSR1 (cluster preemption), write ``<dirpath>/last.ckpt`` at the end of the current batch and
    stop training cleanly. ``ckpt_path=<that file>`` resumes at the same global step.

    SIGTERM is noticed through Lightning's own handler (``trainer.received_sigterm``); SIGUSR1 through a handler
    installed here when no other one (e.g. Lightning's SLURM auto-requeue) is installed.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "last.ckpt") -> None:
        self.dirpath = dirpath
        self.filename = filename
        self._usr1 = False
        self.saved_path: Path | None = None

    def _on_usr1(self, signum: int, frame: Any) -> None:
        self._usr1 = True

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            try:
                signal.signal(signal.SIGUSR1, self._on_usr1)
            except ValueError:  # not the main thread
                log.warning("PreemptionCheckpoint: cannot install a SIGUSR1 handler outside the main thread")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not (trainer.received_sigterm or self._usr1) or self.saved_path is not None:
            return
        path = Path(self.dirpath or Path(trainer.default_root_dir) / "checkpoints") / self.filename
        trainer.save_checkpoint(path)  # Lightning writes checkpoints atomically
        self.saved_path = path
        rank_zero_only(log.warning)(
            "Preemption signal received: checkpoint saved to %s at global step %d; stopping. "
            "Resume with ckpt_path=%s",
            path,
            trainer.global_step,
            path,
        )
        trainer.should_stop = True


class DistributedAudit(pl.Callback):
    """Records, per rank, the sample keys this rank trained on and a checksum of its final weights, as
    ``<output_dir>/audit/rank<R>.json``. For checking a distributed run: ranks should see disjoint samples and
    end with identical weights. Add with ``+callbacks.audit._target_=inpaint.callbacks.DistributedAudit``.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        self.output_dir = output_dir
        self.keys: list[str] = []

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.keys.extend(str(k) for k in batch.get("key", []))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import hashlib
        import json

        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.state_dict().items()):
            if name.startswith("net."):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        out = Path(self.output_dir or trainer.default_root_dir) / "audit" / f"rank{trainer.global_rank}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "keys": self.keys,
            "net_sha256": digest.hexdigest(),
        }
        with atomic_output(out) as tmp:
            tmp.write_text(json.dumps(record))
