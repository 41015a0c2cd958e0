"""Inference API: :class:`Inpainter` fills the holes of images of any size with a trained partial-convolution U-Net.

User-facing convention (OpenCV / LaMa): the mask is H x W and **nonzero = hole to fill**; 0/255, 0/1 and bool masks
all work. Inside the library the mask is float with 1 = valid, 0 = hole; the conversion happens here, at the
boundary, and nowhere else.
"""

from __future__ import annotations

import logging
import os
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from inpaint.checkpoint import load_model

__all__ = ["Inpainter", "hole_mask_to_valid", "image_to_uint8_array", "pad_to_multiple"]

log = logging.getLogger(__name__)


def image_to_uint8_array(image: np.ndarray | Image.Image, name: str = "image") -> np.ndarray:
    """An RGB image as an (H, W, 3) uint8 array.

    Args:
        image: (H, W, 3) uint8 array, or a PIL image of any mode (converted to RGB).
        name: used in error messages.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"{name} must be an HxWx3 uint8 array or a PIL image, got {arr.dtype} array of shape {arr.shape}"
        )
    return arr


def hole_mask_to_valid(mask: np.ndarray | Image.Image, name: str = "mask") -> np.ndarray:
    """Convert a user mask (nonzero = hole) to the library's convention.

    Args:
        mask: (H, W) or (H, W, 1) array of bool, integers (0/1 or 0/255) or floats, or a PIL image (any mode is
            converted to 8-bit grayscale first). Nonzero pixels are holes.
        name: used in error messages.

    Returns:
        (H, W) float32 array with 1 = valid (known) pixel, 0 = hole.
    """
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be HxW (nonzero = hole), got an array of shape {arr.shape}")
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name} must be numeric or bool, got dtype {arr.dtype}")
    return (arr == 0).astype(np.float32)


def pad_to_multiple(
    image: torch.Tensor, mask: torch.Tensor, multiple: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Pad on the bottom/right so that H and W are multiples of ``multiple``; the padding is marked as hole.

    Args:
        image: (B, C, H, W).
        mask: (B, 1, H, W), 1 = valid.
        multiple: e.g. ``2**levels``.

    Returns:
        ``(padded image, padded mask, (H, W))`` with the original size for cropping back.
    """
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # The padded pixels' value does not matter: the mask marks them as hole and the network zeroes holes.
        image = F.pad(image, (0, pw, 0, ph), value=0.0)
        mask = F.pad(mask, (0, pw, 0, ph), value=0.0)
    return image, mask, (h, w)


class Inpainter:
    """Fill holes with a partial-convolution U-Net.

    Args:
        model: a network with ``forward(image (B,3,H,W) [0,1], mask (B,1,H,W) 1=valid) -> (B,3,H,W)`` and a
            ``levels`` attribute (H and W must be multiples of ``2**levels``), e.g. :class:`inpaint.models.PConvUNet`.
        device: where to run it.
        config: the model config it was built from (kept for reference / export).

    Example::

        inpainter = Inpainter.from_checkpoint("last.ckpt", device="cpu")
        result = inpainter(image, mask)  # image HxWx3 uint8 (or PIL), mask HxW nonzero = hole
    """

    def __init__(
        self, model: nn.Module, device: str | torch.device = "cpu", config: dict[str, Any] | None = None
    ) -> None:
        self.device = torch.device(device)
        # channels_last: faster convolutions and less memory (benchmarks/RESULTS.md: 665 -> 585 ms, 416 -> 316 MiB
        # for one 512x512 image on the 2-core CPU), identical outputs.
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.config = dict(config or {})
        levels = getattr(model, "levels", None)
        if not isinstance(levels, int):
            raise TypeError(f"model must expose an integer `levels` attribute, got {levels!r}")
        self.size_multiple = 2**levels

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Inpainter:
        """Load a Lightning ``.ckpt`` or an exported ``.safetensors`` safely (see :mod:`inpaint.checkpoint`)."""
        model, config = load_model(path, map_location="cpu")
        return cls(model, device=device, config=config)

    @torch.inference_mode()
    def inpaint_tensor(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Batched inpainting in the library's convention; any H, W.

        Args:
            image: (B, 3, H, W) float in [0, 1] (hole pixels may hold anything).
            mask: (B, 1, H, W) float, 1 = valid, 0 = hole.

        Returns:
            (B, 3, H, W) float32 composite on the input's device: the input where mask = 1, the network output
            clamped to [0, 1] in the holes.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(
                f"mask must be (B, 1, {image.shape[-2]}, {image.shape[-1]}), got {tuple(mask.shape)}"
            )
        out_device = image.device
        image = image.to(self.device, torch.float32)
        mask = (mask.to(self.device, torch.float32) > 0.5).float()
        padded, padded_mask, (h, w) = pad_to_multiple(image, mask, self.size_multiple)
        cl = torch.channels_last
        pred = self.model(
            (padded * padded_mask).contiguous(memory_format=cl), padded_mask.contiguous(memory_format=cl)
        )
        pred = pred[..., :h, :w].float().clamp(0.0, 1.0)
        return (mask * image + (1.0 - mask) * pred).to(out_device)

    @overload
    def __call__(self, image: Image.Image, mask: np.ndarray | Image.Image) -> Image.Image: ...
    @overload
    def __call__(self, image: np.ndarray, mask: np.ndarray | Image.Image) -> np.ndarray: ...

    def __call__(
        self, image: np.ndarray | Image.Image, mask: np.ndarray | Image.Image
    ) -> np.ndarray | Image.Image:
        """Inpaint one image.

        Args:
            image: (H, W, 3) uint8 RGB array or PIL image; any size.
            mask: (H, W) with nonzero = hole to fill (bool, 0/1, 0/255 or float), or a PIL image.

        Returns:
            The filled image, same size and type as ``image`` (uint8 array or RGB PIL image). Known pixels are
            returned bit-identical.
        """
        arr = image_to_uint8_array(image)
        valid = hole_mask_to_valid(mask)
        if valid.shape != arr.shape[:2]:
            raise ValueError(
                f"mask is {valid.shape[1]}x{valid.shape[0]} (WxH) but image is {arr.shape[1]}x{arr.shape[0]}"
            )
        if valid.all():
            log.warning("mask has no hole pixels (nonzero = hole); returning the image unchanged")
            out = arr.copy()
        else:
            x = torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
            m = torch.from_numpy(valid)[None, None]
            filled = self.inpaint_tensor(x, m)[0].permute(1, 2, 0).mul(255.0).round().clamp(0, 255)
            filled_u8 = filled.to(torch.uint8).cpu().numpy()
            # Copy known pixels from the input bytes, so they are bit-identical whatever the float round trip does.
            out = np.where(valid[..., None] > 0, arr, filled_u8)
        return Image.fromarray(out) if isinstance(image, Image.Image) else out
