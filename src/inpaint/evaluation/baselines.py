"""Classical inpainting baselines: OpenCV's Telea (fast marching) and Navier–Stokes, and the membrane.

All take the same tensors as the model at evaluation time, so the numbers are computed on identical images and
masks. They work on 8-bit images: the input is quantised for the fill, and the result is composited with the
original float image so that known pixels carry no quantisation error. The membrane (the smoothest fill through the
border, :func:`inpaint.inference.membrane_fill`) is a reference more than a rival: its fill is a weighted mean of
the border's colours, so its colour error is what the image content alone gives.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from inpaint.inference import membrane_fill

__all__ = ["BASELINES", "inpaint_membrane", "inpaint_navier_stokes", "inpaint_opencv_batch", "inpaint_telea"]

DEFAULT_RADIUS = 3  # pixels of neighbourhood considered around each hole pixel (OpenCV's inpaintRadius)


def _check(image: np.ndarray, hole: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"image must be HxWx3 (or HxWx1) uint8, got {image.dtype} of shape {image.shape}")
    if hole.shape != image.shape[:2]:
        raise ValueError(f"hole mask must be {image.shape[:2]}, got {hole.shape}")


def _opencv_inpaint(image: np.ndarray, hole: np.ndarray, flag: int, radius: float) -> np.ndarray:
    _check(image, hole)
    hole_u8 = (np.asarray(hole) != 0).astype(np.uint8)
    return cv2.inpaint(np.ascontiguousarray(image), hole_u8, float(radius), flag).reshape(image.shape)


def inpaint_telea(image: np.ndarray, hole: np.ndarray, radius: float = DEFAULT_RADIUS) -> np.ndarray:
    """Telea's fast-marching inpainting (``cv2.INPAINT_TELEA``).

    Args:
        image: (H, W, 3) uint8.
        hole: (H, W), nonzero = hole to fill.
        radius: neighbourhood radius in pixels.

    Returns:
        (H, W, 3) uint8; known pixels unchanged.
    """
    return _opencv_inpaint(image, hole, cv2.INPAINT_TELEA, radius)


def inpaint_navier_stokes(image: np.ndarray, hole: np.ndarray, radius: float = DEFAULT_RADIUS) -> np.ndarray:
    """Navier–Stokes based inpainting (``cv2.INPAINT_NS``); arguments as :func:`inpaint_telea`."""
    return _opencv_inpaint(image, hole, cv2.INPAINT_NS, radius)


def inpaint_membrane(image: np.ndarray, hole: np.ndarray, radius: float = DEFAULT_RADIUS) -> np.ndarray:
    """The membrane through the known pixels (:func:`inpaint.inference.membrane_fill`); arguments as
    :func:`inpaint_telea` (``radius`` is not used: every border pixel counts)."""
    _check(image, hole)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    known = torch.from_numpy(np.asarray(hole) == 0)[None, None]
    filled = membrane_fill(x, known)[0].permute(1, 2, 0).mul(255.0).round().clamp(0, 255)
    return filled.to(torch.uint8).numpy()


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "telea": inpaint_telea,
    "navier_stokes": inpaint_navier_stokes,
    "membrane": inpaint_membrane,
}


def inpaint_opencv_batch(
    image: torch.Tensor, mask: torch.Tensor, method: str = "telea", radius: float = DEFAULT_RADIUS
) -> torch.Tensor:
    """Run an OpenCV baseline on a batch in the library's convention.

    Args:
        image: (B, 3, H, W) float in [0, 1].
        mask: (B, 1, H, W), 1 = valid, 0 = hole.
        method: a key of :data:`BASELINES` (``"telea"`` or ``"navier_stokes"``).
        radius: neighbourhood radius in pixels.

    Returns:
        (B, 3, H, W) float32 on the input's device: ``image`` where mask = 1, the baseline's fill in the holes.
    """
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose from {sorted(BASELINES)}")
    if image.dim() != 4 or image.shape[1] != 3 or mask.shape != (image.shape[0], 1, *image.shape[-2:]):
        raise ValueError(
            f"expected image (B,3,H,W) and mask (B,1,H,W), got {tuple(image.shape)} and {tuple(mask.shape)}"
        )
    fn = BASELINES[method]
    img = image.detach().float().clamp(0, 1)
    valid = mask.detach().float() > 0.5
    u8 = img.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    holes = (~valid[:, 0]).cpu().numpy()
    filled = np.stack([fn(u8[i], holes[i], radius) for i in range(u8.shape[0])])
    fill = torch.from_numpy(filled).to(image.device).permute(0, 3, 1, 2).float().div(255.0)
    return torch.where(valid, img, fill)
