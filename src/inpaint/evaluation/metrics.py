"""Image-quality metrics for inpainting, per image and binned by NVIDIA hole ratio.

All functions take images as float tensors (B, 3, H, W) in [0, 1] and compute in float32, whatever the input dtype
(so autocast / half-precision outputs give the same numbers). They are meant for the *composited* result
(known pixels copied from the target), as described in docs/evaluation.md. Liu et al. (2018, section 4,
"Comparisons") report L1, PSNR and SSIM per hole-ratio bin of NVIDIA's test masks; the bins are those of
:mod:`inpaint.data.masks.ratio`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from inpaint.data.masks.ratio import BIN_NAMES, hole_ratio_bin

__all__ = [
    "BASE_METRICS",
    "MAX_PSNR",
    "BinnedImageMetrics",
    "image_metrics",
    "l1_per_image",
    "psnr_per_image",
    "ssim_per_image",
]

# PSNR of identical images is +inf; an inf would turn every bin mean into inf, so the MSE is floored at 1e-10,
# which caps PSNR at 100 dB (far above anything a real reconstruction reaches: 8-bit quantisation alone gives ~59 dB).
_MIN_MSE = 1e-10
MAX_PSNR: float = -10.0 * math.log10(_MIN_MSE)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(pred.shape)}")
    return pred.float(), target.float()


def l1_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of each image over all its elements.

    Args:
        pred: (B, C, H, W) in [0, 1].
        target: (B, C, H, W) in [0, 1].

    Returns:
        (B,) float32; multiply by 100 for the "L1 %" of the paper's tables.
    """
    pred, target = _check_pair(pred, target)
    return (pred - target).abs().flatten(1).mean(dim=1)


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, in dB, capped at :data:`MAX_PSNR` for identical images.

    Args:
        pred: (B, C, H, W) in [0, data_range].
        target: (B, C, H, W) in [0, data_range].
        data_range: peak value (1.0 for [0, 1] images).

    Returns:
        (B,) float32, ``10 log10(data_range² / MSE)`` with the MSE taken over each whole image.
    """
    pred, target = _check_pair(pred, target)
    mse = (pred - target).pow(2).flatten(1).mean(dim=1) / (data_range**2)
    return -10.0 * torch.log10(mse.clamp(min=_MIN_MSE))


def ssim_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity of each image (torchmetrics: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03).

    Args:
        pred: (B, C, H, W) in [0, data_range]; H and W must be at least 11.
        target: (B, C, H, W) in [0, data_range].
        data_range: peak value (1.0 for [0, 1] images).

    Returns:
        (B,) float32 in [-1, 1]; 1 for identical images.
    """
    pred, target = _check_pair(pred, target)
    # Float32 whatever the caller's autocast: SSIM's variances are differences of Gaussian-filtered squares, which a
    # bf16 convolution (validation runs under the trainer's precision) cancels into noise.
    with torch.autocast(pred.device.type, enabled=False):
        out = structural_similarity_index_measure(pred, target, data_range=data_range, reduction="none")
    assert isinstance(out, torch.Tensor)  # tuple only with return_full_image / return_contrast_sensitivity
    return out.float()


BASE_METRICS: tuple[str, ...] = ("l1", "psnr", "ssim")
_SCALED = {"psnr": psnr_per_image, "ssim": ssim_per_image}


def image_metrics(
    pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0
) -> dict[str, torch.Tensor]:
    """``{"l1", "psnr", "ssim"}`` of each image, (B,) float32 each; shapes as :func:`l1_per_image`."""
    return {
        "l1": l1_per_image(pred, target),
        **{m: fn(pred, target, data_range) for m, fn in _SCALED.items()},
    }


class BinnedImageMetrics(Metric):
    """L1, PSNR and SSIM (plus optional extra per-image metrics) averaged per NVIDIA hole-ratio bin and overall.

    Per-bin sums and counts are metric states reduced with ``sum``, so they are exact under DDP. Images whose hole
    ratio falls in no bin (≤ 1 % or > 60 % holes) count towards the overall means only.

    ``compute()`` returns ``<m>`` and ``count`` (overall) and, for every bin of
    :data:`inpaint.data.masks.ratio.BIN_NAMES` that has samples, ``<m>/<bin>`` and ``count/<bin>``, for each metric
    ``m`` in ``l1``, ``psnr``, ``ssim`` and ``extra_metrics``. Before any update the overall values are NaN.

    Args:
        data_range: peak image value.
        extra_metrics: names of further per-image metrics (e.g. ``"lpips"``) whose values are passed to
            :meth:`update` through ``precomputed``.
    """

    is_differentiable = False
    higher_is_better = None  # mixed: lower L1 is better, higher PSNR/SSIM is better
    full_state_update = False

    count: torch.Tensor

    def __init__(self, data_range: float = 1.0, extra_metrics: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_range = data_range
        self.metric_names: tuple[str, ...] = BASE_METRICS + tuple(
            m for m in extra_metrics if m not in BASE_METRICS
        )
        # One slot per bin plus a last slot for out-of-bin images. float64 sums: thousands of PSNR values
        # (~30 each) summed in float32 would lose a few thousandths of a dB.
        n = len(BIN_NAMES) + 1
        for name in ("count", *(f"sum_{m}" for m in self.metric_names)):
            self.add_state(name, default=torch.zeros(n, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        hole_ratio: torch.Tensor,
        precomputed: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Add a batch.

        Args:
            pred: (B, 3, H, W) composited output in [0, 1].
            target: (B, 3, H, W) ground truth in [0, 1].
            hole_ratio: (B,) fraction of hole pixels of each sample's mask (see :func:`inpaint.data.masks.ratio.hole_ratio`).
            precomputed: (B,) values of any metric already computed for this batch (skips recomputing it); must
                hold every ``extra_metrics`` name.
        """
        hole_ratio = torch.as_tensor(hole_ratio).reshape(-1)
        if hole_ratio.numel() != pred.shape[0]:
            raise ValueError(
                f"hole_ratio has {hole_ratio.numel()} entries for a batch of {pred.shape[0]} images"
            )
        values = dict(precomputed or {})
        missing = [m for m in self.metric_names if m not in values]
        if any(m not in BASE_METRICS for m in missing):
            raise ValueError(f"precomputed must hold the extra metrics {missing}")
        pred, target = pred.detach(), target.detach()
        for m in missing:
            values[m] = l1_per_image(pred, target) if m == "l1" else _SCALED[m](pred, target, self.data_range)
        bins = hole_ratio_bin(hole_ratio.detach().cpu()).to(self.count.device)
        bins = torch.where(bins < 0, len(BIN_NAMES), bins)
        for m in self.metric_names:
            v = torch.as_tensor(values[m]).detach().reshape(-1)
            if v.numel() != bins.numel():
                raise ValueError(f"{m} has {v.numel()} values for a batch of {bins.numel()} images")
            state: torch.Tensor = getattr(self, f"sum_{m}")
            state.index_add_(0, bins, v.to(state))
        self.count.index_add_(0, bins, torch.ones_like(bins, dtype=self.count.dtype))

    def compute(self) -> dict[str, torch.Tensor]:
        """Means per bin (only bins with samples) and overall; see the class docstring for the keys."""
        total = self.count.sum()
        sums = {m: getattr(self, f"sum_{m}") for m in self.metric_names}
        out: dict[str, torch.Tensor] = {}
        for m, state in sums.items():
            out[m] = (state.sum() / total).float() if total > 0 else torch.tensor(float("nan"))
        out["count"] = total.float()
        for i, name in enumerate(BIN_NAMES):
            n = self.count[i]
            if n > 0:
                for m, state in sums.items():
                    out[f"{m}/{name}"] = (state[i] / n).float()
                out[f"count/{name}"] = n.float()
        return out


COLOUR_BIAS = ("bias_r", "bias_g", "bias_b")


def hole_colour_bias(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per image, the mean signed error of each channel over its hole pixels (0 where there is no hole).

    A colour cast of the fills (green lawns filled brown) shows here even where PSNR looks acceptable.

    Args:
        output, target: (B, 3, H, W) in [0, 1]. mask: (B, 1, H, W), 1 = valid.

    Returns:
        ``{"bias_r", "bias_g", "bias_b"}``, each (B,) float32 (0-1 units).
    """
    hole = 1.0 - mask.float()
    area = hole.sum(dim=(2, 3)).clamp_min(1.0)
    bias = ((output.float() - target.float()) * hole).sum(dim=(2, 3)) / area
    return {name: bias[:, c] for c, name in enumerate(COLOUR_BIAS)}
