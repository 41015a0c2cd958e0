"""LightningModule that trains the partial-convolution U-Net with the paper's loss.

Batches are dicts from :mod:`inpaint.data`: ``image`` (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W) with
1 = valid, 0 = hole, ``hole_ratio`` (B,). Metrics are computed on the composite (known pixels from the input,
holes from the network), clamped to [0, 1].
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric

from inpaint.checkpoint import build_model, load_net_state_dict
from inpaint.config import ConfigError, construct, import_target, to_plain
from inpaint.evaluation.metrics import BinnedImageMetrics
from inpaint.inference import InferenceOptions
from inpaint.losses import InpaintingLoss, composite
from inpaint.models import PConvUNet

log = logging.getLogger(__name__)

# The loss class a config may name; networks go through inpaint.checkpoint's allow-list. The loss is only ever built
# from the run's config (a resume composes it again), never from a checkpoint's hyper-parameters, so a user's extra
# terms (``loss.extra_terms``) are imported from their ``_target_`` as datasets and mask generators are.
LOSS_TARGETS = {"inpaint.losses.InpaintingLoss": InpaintingLoss}
NONFINITE_POLICIES = ("skip", "stop")
LR_SCHEDULES = ("constant", "cosine")


def lr_factor(
    schedule: str, warmup_steps: int, total_steps: int | Callable[[], int] | None, min_ratio: float = 0.0
) -> Any:
    """The learning-rate multiplier per optimiser step: linear warm-up, then constant or cosine decay to
    ``total_steps`` (a number, or a function read at every step: a time budget may set the total during the run).

    >>> f = lr_factor("cosine", 10, 110, 0.0)
    >>> [round(f(s), 3) for s in (0, 9, 10, 60, 110)]
    [0.1, 1.0, 1.0, 0.5, 0.0]
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        total = total_steps() if callable(total_steps) else total_steps
        if schedule == "constant" or total is None:
            return 1.0
        t = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


class NonFiniteLossError(RuntimeError):
    """Raised under ``nonfinite_loss=stop`` after a checkpoint has been written."""


def _build_loss(cfg: Mapping[str, Any]) -> InpaintingLoss:
    """The loss from its config; ``_target_`` must name an allow-listed class, each of ``extra_terms`` (name ->
    ``{_target_: module.Class, <its keys>}``) any class of the user's."""
    kwargs = dict(cfg)
    target = kwargs.pop("_target_")
    kwargs.pop("_partial_", None)
    if target not in LOSS_TARGETS:
        raise ValueError(f"loss _target_ {target!r} is not one of {sorted(LOSS_TARGETS)}")
    extra = {
        name: _build_term(f"loss.extra_terms.{name}", spec)
        for name, spec in (kwargs.pop("extra_terms", None) or {}).items()
    }
    try:
        return LOSS_TARGETS[target](**kwargs, extra_terms=extra)
    except ValueError as e:
        raise ConfigError(f"loss: {e}") from None


def _build_term(what: str, spec: Any) -> nn.Module:
    """One extra loss term from ``{_target_: module.Class, <its keys>}``."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ConfigError(f"{what} needs a _target_ (module.Class of a loss term), got {spec!r}")
    keys = {k: v for k, v in spec.items() if k != "_target_"}
    term = construct(import_target(spec["_target_"], what), keys, what)
    if not isinstance(term, nn.Module):
        raise ConfigError(f"{what}: {spec['_target_']} is not a torch.nn.Module")
    return term


def _build_augment(cfg: Mapping[str, Any] | None) -> nn.Module | None:
    """The training-batch colour augmentation from its config; ``None`` = none."""
    if cfg is None:
        return None
    from inpaint.data.augment import ColourAugmentation  # kornia: only when asked for

    return ColourAugmentation(**to_plain(cfg))


def _check_options(lr_schedule: str, warmup_steps: int, min_lr_ratio: float, nonfinite_loss: str) -> None:
    """Raise ``ValueError`` for an unknown learning-rate schedule or non-finite policy, or out-of-range values."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if warmup_steps < 0 or not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(
            f"need warmup_steps >= 0 and 0 <= min_lr_ratio <= 1, got {warmup_steps}, {min_lr_ratio}"
        )
    if nonfinite_loss not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite_loss must be one of {NONFINITE_POLICIES}, got {nonfinite_loss!r}")


class InpaintingModule(pl.LightningModule):
    """PConvUNet + InpaintingLoss, Adam, per-hole-ratio validation metrics.

    Args:
        net: PConvUNet keyword arguments, optionally with ``_target_: inpaint.models.PConvUNet``.
        loss: InpaintingLoss keyword arguments, optionally with ``_target_: inpaint.losses.InpaintingLoss``.
        lr: Adam learning rate (paper: 2e-4 for training, 5e-5 for fine-tuning).
        betas: Adam betas.
        weight_decay: Adam weight decay.
        finetune: phase 2 of the paper: freeze encoder BatchNorm (statistics and affine parameters).
        init_from: a checkpoint whose U-Net weights initialise this model (weights only, not optimiser state);
            a Lightning ``.ckpt`` of this module or a weights file written by ``inpaint.export``.
        lr_schedule: ``constant`` (the paper) or ``cosine`` (decay to ``min_lr_ratio * lr`` at ``trainer.max_steps``);
            both after a linear warm-up of ``warmup_steps``.
        warmup_steps: optimiser steps of linear learning-rate warm-up (0 = none).
        min_lr_ratio: the cosine schedule's final learning rate as a fraction of ``lr``.
        augment: keyword arguments of :class:`inpaint.data.augment.ColourAugmentation`, applied to training batches
            on the training device; ``None`` = no batch augmentation (the paper).
        channels_last: run the U-Net in channels-last memory format (faster convolutions on GPUs).
        compile: wrap the U-Net's forward in ``torch.compile``.
        nonfinite_loss: what a batch with a non-finite loss or gradient does (on every rank alike, BatchNorm
            statistics restored, no optimiser update): ``skip`` drops it (counted, logged as
            ``train/nonfinite_skipped``); ``stop`` writes ``nonfinite.ckpt`` and raises :class:`NonFiniteLossError`.
        max_nonfinite_in_a_row: under ``skip``, this many non-finite batches in a row mean the run has diverged:
            it stops as under ``stop``.
        inference: the :class:`~inpaint.inference.InferenceOptions` (as a mapping) to store in every checkpoint:
            the options the model is used with unless a user says otherwise (chosen on validation, e.g. by
            ``python -m inpaint.tune``); ``None`` = none stored (one plain pass).
    """

    def __init__(
        self,
        net: Mapping[str, Any] | None = None,
        loss: Mapping[str, Any] | None = None,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        finetune: bool = False,
        init_from: str | None = None,
        lr_schedule: str = "constant",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        augment: Mapping[str, Any] | None = None,
        channels_last: bool = False,
        compile: bool = False,
        nonfinite_loss: str = "skip",
        max_nonfinite_in_a_row: int = 20,
        inference: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        _check_options(lr_schedule, warmup_steps, min_lr_ratio, nonfinite_loss)
        self.inference = InferenceOptions.from_mapping(
            to_plain(inference) if inference else None, "model.inference"
        )
        net_cfg = {"_target_": "inpaint.models.PConvUNet", **to_plain(net or {})}
        loss_cfg = {"_target_": "inpaint.losses.InpaintingLoss", **to_plain(loss or {})}
        self.save_hyperparameters(
            {
                "net": net_cfg,
                "loss": loss_cfg,
                "lr": lr,
                "betas": list(betas),
                "weight_decay": weight_decay,
                "finetune": finetune,
                "init_from": init_from,
                "lr_schedule": lr_schedule,
                "warmup_steps": warmup_steps,
                "min_lr_ratio": min_lr_ratio,
                "augment": to_plain(augment) if augment is not None else None,
                "channels_last": channels_last,
                "compile": compile,
                "nonfinite_loss": nonfinite_loss,
                "max_nonfinite_in_a_row": max_nonfinite_in_a_row,
                "inference": self.inference.to_dict() if inference else None,
            }
        )
        self.net: PConvUNet = build_model(net_cfg, source="model.net config")
        self.loss = _build_loss(loss_cfg)
        self.augment = _build_augment(augment)
        # Which VGG weights were really used (imagenet_or_random may have fallen back to random): train.py logs it
        # with the hyper-parameters and it is stored in every checkpoint.
        self.vgg_source: str = getattr(self.loss, "vgg_source", "unknown")
        self._prepare_net(init_from, finetune, channels_last, compile)
        self._init_step_state()
        # What the model summary at the start of a run measures its FLOPs and tensor sizes on: one 256² image (or
        # the smallest side the levels allow), with no hole.
        side = max(256, 2**self.net.levels)
        self.example_input_array = (torch.zeros(1, 3, side, side), torch.ones(1, 1, side, side))

    def _prepare_net(self, init_from: str | None, finetune: bool, channels_last: bool, compile: bool) -> None:
        """Initial weights, fine-tuning freeze, memory format and compilation of the U-Net, in that order."""
        if init_from:
            self.load_net_weights(init_from)
        if finetune:
            self.net.freeze_encoder_bn()
        if channels_last:
            # The loss's VGG too: on the 2-core CPU this took the step from 1.08x to 1.17-1.23x the naive reference
            # (benchmarks/RESULTS.md); on GPUs it is what tensor-core convolutions want.
            self.net.to(memory_format=torch.channels_last)
            self.loss.to(memory_format=torch.channels_last)
        # A compiled function, not a module attribute: keeps state_dict keys free of `_orig_mod.` duplicates.
        self._net_forward = torch.compile(self.net.forward) if compile else self.net

    def _init_step_state(self) -> None:
        """Evaluation metrics and the non-finite-step bookkeeping (after :meth:`_prepare_net`: the anchor is the
        first parameter that still trains once the encoder BatchNorm may have been frozen)."""
        self.val_metrics = BinnedImageMetrics()
        self.test_metrics = BinnedImageMetrics()
        # Means synced when computed: under DDP a rank may see no evaluation batch at all (samples are split without
        # repeats), and a value logged per step with sync_dist would leave the other ranks waiting in its reduction.
        # nan_strategy="disable": a diverged model shows NaN, not a silently dropped value.
        self.eval_loss = MeanMetric(nan_strategy="disable")
        self.nonfinite_skipped = 0
        self.nonfinite_in_a_row = 0
        # Per optimiser step (one or several micro-batches under gradient accumulation): the BatchNorm running
        # statistics before its first micro-batch, and whether every micro-batch's loss was finite.
        self._bn_saved: list[dict[str, torch.Tensor]] | None = None
        self._loss_finite: torch.Tensor | None = None
        self._anchor = next(p for p in self.net.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ weights
    def load_net_weights(self, path: str | Path) -> None:
        """Load U-Net weights (only) from a Lightning checkpoint of this module or an exported weights file."""
        state = load_net_state_dict(path)
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path}: U-Net weights do not match this model (levels={self.net.levels}): "
                f"missing {missing[:5]}..., unexpected {unexpected[:5]}..."
            )
        log.info("Initialised U-Net weights from %s", path)

    # ------------------------------------------------------------------ steps
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw U-Net prediction (B, 3, H, W); mask 1 = valid."""
        return self._net_forward(image, mask)

    def _batch_norms(self) -> list[nn.Module]:
        # Looked up each time: Lightning may have replaced them by SyncBatchNorm after __init__.
        return [m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def _poison_if_nonfinite(self, total: torch.Tensor) -> torch.Tensor:
        """``total``, plus a term that makes one gradient element NaN when ``total`` is not finite.

        A non-finite loss usually gives non-finite gradients, but not always (the L1 gradient of an infinite
        target is finite). The extra term makes it certain, and DDP's gradient all-reduce then carries the NaN to
        every rank: all ranks skip the same step without a collective or a host sync of their own.
        """
        anchor = self._anchor[(0,) * self._anchor.dim()]
        poison = torch.where(torch.isfinite(total.detach()), 0.0, float("nan")).to(anchor.dtype)
        return total + poison * anchor

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Gradients are already averaged over ranks here, so every rank sees the same verdict.
        saved, self._bn_saved = self._bn_saved, None
        loss_finite, self._loss_finite = self._loss_finite, None
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self._grad_scaler() is not None:
            # fp16: gradients that overflow the loss scale are routine (at start-up, after each scale growth); the
            # scaler skips that step and lowers its scale. Only a non-finite loss is a non-finite batch.
            finite = loss_finite is None or bool(loss_finite)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else None
            finite = norm is None or bool(torch.isfinite(norm))  # the one host sync of this check
        if finite:
            self.nonfinite_in_a_row = 0
            return
        if saved is not None:
            for module, stats in zip(self._batch_norms(), saved, strict=True):
                for name, value in stats.items():
                    getattr(module, name).copy_(value)  # undo this step's running-statistics updates
        for p in params:
            p.grad = None  # Adam leaves parameters without a gradient untouched: the step is skipped
        self._nonfinite()

    def _grad_scaler(self) -> Any:
        """The fp16 gradient scaler of the trainer's precision plugin, or ``None`` (fp32, bf16)."""
        return getattr(self.trainer.precision_plugin, "scaler", None)

    def _nonfinite(self) -> None:
        self.nonfinite_skipped += 1
        self.nonfinite_in_a_row += 1
        msg = f"non-finite loss or gradients at global step {self.global_step}"
        limit = self.hparams.max_nonfinite_in_a_row
        if self.hparams.nonfinite_loss == "skip" and self.nonfinite_in_a_row < limit:
            if self.trainer.is_global_zero:
                log.warning("%s: optimiser step skipped (%d so far)", msg, self.nonfinite_skipped)
            return
        path = Path(self.trainer.default_root_dir) / "checkpoints" / "nonfinite.ckpt"
        self.trainer.save_checkpoint(path)
        why = (
            "as configured (model.nonfinite_loss=stop)"
            if self.hparams.nonfinite_loss == "stop"
            else f"after {self.nonfinite_in_a_row} non-finite batches in a row (model.max_nonfinite_in_a_row): "
            "the run has diverged; lower model.lr"
        )
        raise NonFiniteLossError(f"{msg}; stopped {why}. State before this batch saved to {path}")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Colour augmentation of whole training batches, on the device they now live on (validation stays as is).
        if self.augment is not None and isinstance(batch, dict) and self.trainer.training:
            batch["image"] = self.augment(batch["image"])
        if self.hparams.channels_last and isinstance(batch, dict):
            for key in ("image", "mask"):
                if key in batch:
                    batch[key] = batch[key].contiguous(memory_format=torch.channels_last)
        return batch

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        image, mask = batch["image"], batch["mask"]
        if self._bn_saved is None:
            # BatchNorm running statistics as they were before this optimiser step's first micro-batch: restored if
            # a loss or the gradients turn out non-finite (on_before_optimizer_step), so a NaN batch cannot poison
            # them, also when it is not the last micro-batch of an accumulated step.
            self._bn_saved = [
                {n: getattr(m, n).clone() for n in ("running_mean", "running_var", "num_batches_tracked")}
                for m in self._batch_norms()
            ]
        output = self(image, mask)
        terms = self.loss(output, image, mask)
        finite = torch.isfinite(terms["total"].detach())
        self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite
        batch_size = image.shape[0]
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in terms.items() if k != "total"},
            on_step=True,
            on_epoch=False,
            batch_size=batch_size,
        )
        self.log("train/loss", terms["total"].detach(), prog_bar=True, batch_size=batch_size)
        # Skips before this batch; the same on every rank (they skip together).
        self.log("train/nonfinite_skipped", float(self.nonfinite_skipped), batch_size=batch_size)
        return {"loss": self._poison_if_nonfinite(terms["total"]), "output": output.detach()}

    def _eval_step(self, batch: dict[str, Any], metrics: BinnedImageMetrics, prefix: str) -> dict[str, Any]:
        image, mask = batch["image"], batch["mask"]
        output = self(image, mask)
        terms = self.loss(output, image, mask)
        comp = composite(output.float(), image.float(), mask).clamp(0, 1)
        metrics.update(comp, image.float(), batch["hole_ratio"])
        self.eval_loss.update(terms["total"].detach(), weight=image.shape[0])
        return {"output": output.detach()}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._eval_step(batch, self.test_metrics, "test")

    def _log_metrics(self, metrics: BinnedImageMetrics, prefix: str) -> None:
        # compute() is already synced across ranks by torchmetrics.
        values = {**metrics.compute(), "loss": self.eval_loss.compute()}
        self.log_dict({f"{prefix}/{k}": v.float() for k, v in values.items()}, sync_dist=False)
        metrics.reset()
        self.eval_loss.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> Any:
        # Frozen encoder BN parameters (fine-tuning) are left out of the optimiser.
        params = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(
            params,
            lr=self.hparams.lr,
            betas=tuple(self.hparams.betas),
            weight_decay=self.hparams.weight_decay,
        )
        if self.hparams.lr_schedule == "constant" and not self.hparams.warmup_steps:
            return optimizer
        if self.hparams.lr_schedule == "cosine" and self.trainer.max_steps <= 0:
            raise ValueError("model.lr_schedule=cosine decays to trainer.max_steps: set trainer.max_steps")
        factor = lr_factor(
            self.hparams.lr_schedule,
            self.hparams.warmup_steps,
            lambda: (
                int(self.trainer.max_steps) if self.trainer.max_steps > 0 else None
            ),  # a budget may change it
            self.hparams.min_lr_ratio,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["nonfinite_skipped"] = self.nonfinite_skipped
        checkpoint["vgg_source"] = self.vgg_source
        if self.hparams.inference:
            checkpoint["inference"] = dict(self.hparams.inference)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.nonfinite_skipped = int(checkpoint.get("nonfinite_skipped", 0))
