"""Batch colour augmentation on the training device (kornia), applied after the batch reached it.

Why it matters: a network trained on a handful of photos learns *their* colours and paints them into every hole (a
green lawn filled with brown-purple). When every training crop comes in a random colour variant, the only way to
predict a hole's colour is to read it from the pixels around the hole, which is what inpainting needs. Per-sample
geometry (crops, scales, flips, rotations) stays in the albumentations pipeline of :mod:`inpaint.data.transforms`;
colour work on whole batches belongs on the GPU, so the CPU loaders stay light.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ColourAugmentation"]


class ColourAugmentation(nn.Module):
    """Random colour variants of a batch, drawn independently per sample.

    In order: a random permutation of the RGB channels (probability ``channel_shuffle``), a gain per channel drawn
    from ``[1 - channel_gain, 1 + channel_gain]``, kornia's colour jitter (``brightness``, ``contrast``,
    ``saturation``, ``hue`` as in :class:`kornia.augmentation.ColorJitter`) with probability ``jitter``, and full
    grayscale with probability ``grayscale``. The result is clamped to [0, 1].

    Args:
        channel_shuffle: probability of permuting the channels.
        channel_gain: half-width of the per-channel gain interval (0 disables it).
        brightness, contrast, saturation, hue: kornia ``ColorJitter`` ranges.
        jitter: probability of applying the colour jitter.
        grayscale: probability of a grayscale sample.

    Shapes:
        image: (B, 3, H, W) float in [0, 1]; returns the same shape, dtype and memory format.

    Example:
        >>> aug = ColourAugmentation()
        >>> x = torch.rand(4, 3, 16, 16)
        >>> y = aug(x)
        >>> y.shape == x.shape and bool(y.min() >= 0) and bool(y.max() <= 1)
        True
    """

    def __init__(
        self,
        channel_shuffle: float = 0.5,
        channel_gain: float = 0.4,
        brightness: float = 0.15,
        contrast: float = 0.3,
        saturation: float = 0.5,
        hue: float = 0.5,
        jitter: float = 0.8,
        grayscale: float = 0.1,
    ) -> None:
        super().__init__()
        import kornia.augmentation as K

        for name, p in (("channel_shuffle", channel_shuffle), ("jitter", jitter), ("grayscale", grayscale)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {p}")
        if not 0.0 <= channel_gain < 1.0:
            raise ValueError(f"channel_gain must be in [0, 1), got {channel_gain}")
        self.channel_gain = float(channel_gain)
        self.shuffle = K.RandomChannelShuffle(p=channel_shuffle) if channel_shuffle > 0 else nn.Identity()
        self.jitter = (
            K.ColorJitter(brightness, contrast, saturation, hue, p=jitter) if jitter > 0 else nn.Identity()
        )
        self.gray = K.RandomGrayscale(p=grayscale) if grayscale > 0 else nn.Identity()

    @torch.no_grad()
    def forward(self, image: Tensor) -> Tensor:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"ColourAugmentation expects (B, 3, H, W) images, got {tuple(image.shape)}")
        fmt = torch.channels_last if image.is_contiguous(memory_format=torch.channels_last) else None
        x = self.shuffle(image.float())
        if self.channel_gain > 0:
            gain = torch.empty(x.shape[0], 3, 1, 1, device=x.device).uniform_(
                1.0 - self.channel_gain, 1.0 + self.channel_gain
            )
            x = (x * gain).clamp_(0.0, 1.0)
        x = self.gray(self.jitter(x)).clamp_(0.0, 1.0).to(image.dtype)
        return x.contiguous(memory_format=fmt) if fmt is not None else x.contiguous()
