"""LightningModule that trains the partial-convolution U-Net with the paper's loss.

Batches are dicts from :mod:`inpaint.data`: ``image`` (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W) with
1 = valid, 0 = hole, ``hole_ratio`` (B,). Metrics are computed on the composite (known pixels from the input,
holes from the network), clamped to [0, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from inpaint.checkpoint import build_model, load_net_state_dict
from inpaint.losses import InpaintingLoss, composite
from inpaint.metrics import BinnedImageMetrics
from inpaint.models import PConvUNet

log = logging.getLogger(__name__)

# The loss a config may name; networks go through inpaint.checkpoint's allow-list. Nothing else is imported from a
# string.
LOSS_TARGETS = {"inpaint.losses.InpaintingLoss": InpaintingLoss}
NONFINITE_POLICIES = ("skip", "stop")


class NonFiniteLossError(RuntimeError):
    """Raised under ``nonfinite_loss=stop`` after a checkpoint has been written."""


def _plain(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain dict from a mapping or an OmegaConf node (so hyper-parameters stay loadable weights-only)."""
    if cfg is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf is a dependency, but the module does not need it
        pass
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in dict(cfg).items()}


def _build_loss(cfg: Mapping[str, Any]) -> InpaintingLoss:
    """The loss from its config; ``_target_`` must name an allow-listed class."""
    kwargs = dict(cfg)
    target = kwargs.pop("_target_")
    kwargs.pop("_partial_", None)
    if target not in LOSS_TARGETS:
        raise ValueError(f"loss _target_ {target!r} is not one of {sorted(LOSS_TARGETS)}")
    return LOSS_TARGETS[target](**kwargs)


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
        channels_last: run the U-Net in channels-last memory format (faster convolutions on GPUs).
        compile: wrap the U-Net's forward in ``torch.compile``.
        nonfinite_loss: ``skip`` drops a batch whose input or loss is not finite (counted, logged as
            ``train/nonfinite_skipped``); ``stop`` writes ``nonfinite.ckpt`` and raises :class:`NonFiniteLossError`.
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
        channels_last: bool = False,
        compile: bool = False,
        nonfinite_loss: str = "skip",
    ) -> None:
        super().__init__()
        if nonfinite_loss not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite_loss must be one of {NONFINITE_POLICIES}, got {nonfinite_loss!r}")
        net_cfg = {"_target_": "inpaint.models.PConvUNet", **_plain(net)}
        loss_cfg = {"_target_": "inpaint.losses.InpaintingLoss", **_plain(loss)}
        self.save_hyperparameters(
            {
                "net": net_cfg,
                "loss": loss_cfg,
                "lr": lr,
                "betas": list(betas),
                "weight_decay": weight_decay,
                "finetune": finetune,
                "init_from": init_from,
                "channels_last": channels_last,
                "compile": compile,
                "nonfinite_loss": nonfinite_loss,
            }
        )
        self.net: PConvUNet = build_model(net_cfg, source="model.net config")
        self.loss = _build_loss(loss_cfg)
        # Which VGG weights were really used (imagenet_or_random may have fallen back to random): train.py logs it
        # with the hyper-parameters and it is stored in every checkpoint.
        self.vgg_source: str = getattr(self.loss, "vgg_source", "unknown")
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
        self._net_forward = torch.compile(self.net.forward) if compile else self.net.forward
        self.val_metrics = BinnedImageMetrics()
        self.test_metrics = BinnedImageMetrics()
        self.nonfinite_skipped = 0

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

    def _all_finite(self, *tensors: torch.Tensor) -> bool:
        ok = torch.stack([torch.isfinite(t).all() for t in tensors]).all().float()
        # Every rank must take the same branch, or DDP's gradient all-reduce would hang.
        if dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item())

    def _nonfinite(self, batch_idx: int, where: str) -> None:
        msg = f"non-finite {where} at global step {self.global_step} (batch {batch_idx})"
        if self.hparams.nonfinite_loss == "skip":
            self.nonfinite_skipped += 1
            log.warning("%s: batch skipped (%d so far)", msg, self.nonfinite_skipped)
            return
        path = Path(self.trainer.default_root_dir) / "checkpoints" / "nonfinite.ckpt"
        self.trainer.save_checkpoint(path)
        raise NonFiniteLossError(
            f"{msg}; stopped as configured (model.nonfinite_loss=stop). State before this batch saved to {path}"
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.hparams.channels_last and isinstance(batch, dict):
            for key in ("image", "mask"):
                if key in batch:
                    batch[key] = batch[key].contiguous(memory_format=torch.channels_last)
        return batch

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any] | None:
        image, mask = batch["image"], batch["mask"]
        # Check inputs first: a NaN in the forward pass would already corrupt BatchNorm running statistics.
        if not self._all_finite(image, mask):
            self._nonfinite(batch_idx, "input batch")
            self.log("train/nonfinite_skipped", float(self.nonfinite_skipped), rank_zero_only=True)
            return None
        output = self(image, mask)
        terms = self.loss(output, image, mask)
        if not self._all_finite(terms["total"]):
            self._nonfinite(batch_idx, "loss")
            self.log("train/nonfinite_skipped", float(self.nonfinite_skipped), rank_zero_only=True)
            return None
        batch_size = image.shape[0]
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in terms.items() if k != "total"},
            on_step=True,
            on_epoch=False,
            batch_size=batch_size,
        )
        self.log("train/loss", terms["total"].detach(), prog_bar=True, batch_size=batch_size)
        self.log("train/nonfinite_skipped", float(self.nonfinite_skipped), rank_zero_only=True)
        return {"loss": terms["total"], "output": output.detach()}

    def _eval_step(self, batch: dict[str, Any], metrics: BinnedImageMetrics, prefix: str) -> dict[str, Any]:
        image, mask = batch["image"], batch["mask"]
        output = self(image, mask)
        terms = self.loss(output, image, mask)
        comp = composite(output.float(), image.float(), mask).clamp(0, 1)
        metrics.update(comp, image.float(), batch["hole_ratio"])
        self.log(f"{prefix}/loss", terms["total"], sync_dist=True, batch_size=image.shape[0])
        return {"output": output.detach()}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._eval_step(batch, self.test_metrics, "test")

    def _log_metrics(self, metrics: BinnedImageMetrics, prefix: str) -> None:
        values = metrics.compute()
        # compute() is already synced across ranks by torchmetrics.
        self.log_dict({f"{prefix}/{k}": v.float() for k, v in values.items()}, sync_dist=False)
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Frozen encoder BN parameters (fine-tuning) are left out of the optimiser.
        params = [p for p in self.net.parameters() if p.requires_grad]
        return torch.optim.Adam(
            params,
            lr=self.hparams.lr,
            betas=tuple(self.hparams.betas),
            weight_decay=self.hparams.weight_decay,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["nonfinite_skipped"] = self.nonfinite_skipped
        checkpoint["vgg_source"] = self.vgg_source

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.nonfinite_skipped = int(checkpoint.get("nonfinite_skipped", 0))
