"""The membrane: the smoothest fill of a hole through its border (Laplace's equation), and the pyramid helpers it
is solved with. Imports torch only.

Each hole pixel becomes the mean of its four neighbours, the known pixels next to the hole holding their values
(no slope across the image's edges). The fill is exact on flat colour and linear gradients, and every value it
fills is a weighted mean of border colours. Solved coarse to fine: the same problem at half the resolution,
upsampled as the start, then :data:`HARMONIC_SWEEPS` Jacobi sweeps at each scale.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["HARMONIC_SWEEPS", "dilate", "downscale_known", "harmonic_fill", "membrane_fill", "upscale"]

# Jacobi sweeps per level. On a linear ramp the result is within one 8-bit level of the exact interpolant, across a
# 20x22-px hole (2e-3, tests/test_inference.py) as across a 600x700-px one (3e-3); the demo's validation PSNR is the
# same from 10 to 400 sweeps (docs/demo.md).
HARMONIC_SWEEPS = 50


def membrane_fill(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """The smoothest fill through the known pixels: each hole pixel the mean of its four neighbours (Laplace's
    equation, the known pixels at the hole's border as boundary values).

    Every filled value is a weighted mean of border colours, so it cannot add a colour cast of its own: its colour
    error in a report is what the image content gives any fill from the border (the ``membrane`` baseline).

    Args:
        image: (B, C, H, W) float in [0, 1]. known: (B, 1, H, W) bool, True = known pixel.

    Returns:
        (B, C, H, W), ``image`` on the known pixels.

    >>> image = torch.zeros(1, 1, 1, 5)
    >>> image[..., -1] = 1.0
    >>> known = torch.tensor([True, False, False, False, True]).reshape(1, 1, 1, 5)
    >>> [round(float(v), 3) for v in membrane_fill(image, known).flatten()]
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    return harmonic_fill(torch.where(known, image, 0.0), known)


def harmonic_fill(values: torch.Tensor, known: torch.Tensor, sweeps: int = HARMONIC_SWEEPS) -> torch.Tensor:
    """``values`` on the ``known`` pixels, interpolated into the others harmonically (each the mean of its 4
    neighbours; no slope across the image's edges). Only the known pixels next to an unknown one matter.

    ``values`` may lie in [-1, 1] (a difference of two images, as Poisson blending interpolates).
    """
    h, w = values.shape[-2:]
    border = known & dilate(~known, 1)
    start = torch.zeros_like(values)
    if max(h, w) > 2 and bool(border.any()):
        # The pyramid helpers clamp to [0, 1]; the values (differences of two images) lie in [-1, 1].
        shifted = torch.where(border, values + 1.0, 0.0) / 2
        small, small_known = downscale_known(shifted, border, ((h + 1) // 2, (w + 1) // 2), rule="any")
        start = upscale((harmonic_fill(small * 2 - 1.0, small_known, sweeps) + 1.0) / 2, (h, w)) * 2 - 1.0
    u = torch.where(known, values, start)
    for _ in range(sweeps):
        p = F.pad(u, (1, 1, 1, 1), mode="replicate")
        mean4 = p[..., :-2, 1:-1] + p[..., 2:, 1:-1]
        mean4 += p[..., 1:-1, :-2]
        mean4 += p[..., 1:-1, 2:]
        u = torch.where(known, values, mean4.mul_(0.25))
    return u


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within ``radius`` (chessboard distance) of a True pixel of the bool (B, 1, H, W) ``mask``."""
    return F.max_pool2d(mask.float(), 2 * radius + 1, stride=1, padding=radius) > 0.5


def downscale_known(
    image: torch.Tensor, known: torch.Tensor, size: tuple[int, int], rule: Literal["any", "all"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-average ``image`` (0 where not ``known``) over its known pixels only.

    A small pixel is known when it covers ``"any"`` known pixel or only (``"all"``) known pixels; it then holds the
    mean of the known pixels it covers. Other small pixels are holes (value 0).
    """
    weight = F.interpolate(known.float(), size=size, mode="area")
    total = F.interpolate(image, size=size, mode="area")
    small_known = weight > 0 if rule == "any" else weight >= 1.0 - 1e-6
    return torch.where(small_known, total / weight.clamp_min(1e-12), 0.0).clamp_(0.0, 1.0), small_known


def upscale(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling to ``size``, clamped to [0, 1]."""
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
