"""Perceptual metrics that need pretrained weights: LPIPS (AlexNet) and FID (Inception).

They are computed only where their weights are already on disk (``auto``) or when asked for (``on``, which may
download); otherwise the report lists them as skipped, with the reason. Nothing here downloads under ``auto``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["FID_WEIGHTS", "LPIPS_WEIGHTS", "WEIGHT_MODES", "build_fid", "build_lpips", "weights_file"]

log = logging.getLogger(__name__)

# torchvision's ImageNet AlexNet (the LPIPS backbone) and torch-fidelity's FID Inception weights, as cached by torch hub.
LPIPS_WEIGHTS = "alexnet-owt-7be5be79.pth"
FID_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
WEIGHT_MODES = ("auto", "on", "off")


def weights_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def build_lpips(mode: str, device: torch.device) -> tuple[nn.Module | None, str | None]:
    """LPIPS (AlexNet) network, or None and the reason it is skipped."""
    if mode == "off":
        return None, "disabled (lpips=off)"
    weights = weights_file(LPIPS_WEIGHTS)
    if mode == "auto" and not weights.is_file():
        return None, (
            f"needs torchvision's ImageNet AlexNet weights {weights}; not found, and lpips=auto never downloads "
            f"(run with lpips=on where a network exists, or copy the file there)"
        )
    from torchmetrics.functional.image.lpips import _LPIPS

    # The linear calibration layers ship with torchmetrics; the AlexNet backbone comes from torchvision's cache.
    net = _LPIPS(pretrained=True, net="alex").to(device).eval()
    log.info("LPIPS: AlexNet weights from %s", weights)
    return net, None


def build_fid(mode: str, methods: Sequence[str]) -> tuple[dict[str, nn.Module] | None, str | None]:
    """One FrechetInceptionDistance per method, or None and the reason FID is skipped."""
    if mode == "off":
        return None, "disabled (fid=off)"
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        reason = "needs the torch-fidelity package (pip install torch-fidelity) and its Inception weights"
        if mode == "on":
            raise RuntimeError(f"fid=on but FID {reason}") from None
        return None, reason
    weights = weights_file(FID_WEIGHTS)
    if mode == "auto" and not weights.is_file():
        return None, (
            f"needs torch-fidelity's Inception weights {weights}; not found, and fid=auto never downloads "
            f"(run with fid=on where a network exists)"
        )
    from torchmetrics.image.fid import FrechetInceptionDistance

    return {m: FrechetInceptionDistance(feature=2048, normalize=True) for m in methods}, None
