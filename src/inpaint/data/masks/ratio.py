"""Hole-ratio bins of the NVIDIA Irregular Mask test set, shared by data, training and evaluation.

A mask's hole ratio is the fraction of hole pixels. Bins are half-open on the left, ``(low, high]``, as in the
NVIDIA release: (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]. Ratios outside every bin map to -1.
"""

from __future__ import annotations

import torch

HOLE_RATIO_BINS: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)

BIN_NAMES: tuple[str, ...] = tuple(f"{int(lo * 100):02d}-{int(hi * 100):02d}" for lo, hi in HOLE_RATIO_BINS)


def hole_ratio(mask: torch.Tensor) -> torch.Tensor:
    """Fraction of hole pixels per sample.

    Args:
        mask: (B, C, H, W) or (B, H, W), 1 = valid, 0 = hole. With C > 1 a pixel is a hole if any channel is.

    Returns:
        (B,) float64 tensor in [0, 1].
    """
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4:
        raise ValueError(f"mask must be (B,C,H,W) or (B,H,W), got shape {tuple(mask.shape)}")
    holes = (mask.amin(dim=1) <= 0.5).flatten(1)
    # Exact integer counts divided in float64: a ratio of exactly 0.1 must stay 0.1, not 0.1 + 1.5e-9 (float32).
    return holes.sum(dim=1).double() / holes.shape[1]


def hole_ratio_bin(ratio: torch.Tensor | float) -> torch.Tensor:
    """Index of the NVIDIA bin each ratio falls in, ``(low, high]``; -1 where none.

    Args:
        ratio: scalar or (B,) tensor of hole ratios in [0, 1].

    Returns:
        long tensor of the same shape with values in {-1, 0, ..., 5}.
    """
    r = torch.as_tensor(ratio, dtype=torch.float64)
    # A tolerance above float32 rounding (~1e-8 near 0.1) so that a ratio of 0.1 stored in float32 still lands in
    # (0.01, 0.1]; far below the 1/(512*512) ~ 4e-6 step between mask ratios.
    eps = 1e-7
    out = torch.full(r.shape, -1, dtype=torch.long)
    for i, (lo, hi) in enumerate(HOLE_RATIO_BINS):
        out = torch.where((r > lo + eps) & (r <= hi + eps), torch.tensor(i), out)
    return out
