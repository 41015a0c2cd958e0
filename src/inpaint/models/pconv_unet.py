"""The partial-convolution U-Net of Liu et al. (2018), Table/Section 3.3 of the paper.

Encoder: ``levels`` stride-2 partial convolutions (kernels 7, 5, 5, 3, 3, ...; channels 64, 128, 256, 512, ...),
BatchNorm on all but the first, ReLU. Decoder: nearest x2 upsampling of features and mask, concatenation with the
mirror encoder output (the last step with the input image and mask), a 3x3 partial convolution, BatchNorm +
LeakyReLU(0.2), except the last layer (no BN, no activation). Masks travel beside the features through every layer
and skip connection; a concatenation of features with different masks is handled by passing per-pixel counts of
valid channels (multi-channel partial-convolution semantics, ``sum1 = C_in * k^2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inpaint.nn import PartialConv2d

ENCODER_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)
ENCODER_CHANNELS = (64, 128, 256, 512, 512, 512, 512, 512)


@dataclass(frozen=True)
class LayerSpec:
    """One row of the layer table: name, kernel, stride, in/out channels, BatchNorm, activation."""

    name: str
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    batch_norm: bool
    activation: str  # "relu", "leaky_relu" or "none"


def layer_table(levels: int = 8, in_channels: int = 3, out_channels: int = 3) -> list[LayerSpec]:
    """The network's layers, encoder PConv1..L then decoder PConv(L+1)..2L, as in the paper for levels=8."""
    if not 1 <= levels <= len(ENCODER_KERNELS):
        raise ValueError(f"levels must be in 1..{len(ENCODER_KERNELS)}, got {levels}")
    enc_ch = ENCODER_CHANNELS[:levels]
    specs: list[LayerSpec] = []
    prev = in_channels
    for i in range(levels):
        k = ENCODER_KERNELS[i]
        specs.append(LayerSpec(f"enc{i + 1}", k, 2, prev, enc_ch[i], batch_norm=i > 0, activation="relu"))
        prev = enc_ch[i]
    # Decoder level i restores the resolution of encoder output i (i = 0 is the input image itself).
    skip_ch = (in_channels, *enc_ch)
    for n, i in enumerate(range(levels - 1, -1, -1)):
        last = i == 0
        out = out_channels if last else skip_ch[i]
        specs.append(
            LayerSpec(
                f"dec{levels + n + 1}",
                3,
                1,
                prev + skip_ch[i],
                out,
                batch_norm=not last,
                activation="none" if last else "leaky_relu",
            )
        )
        prev = out
    return specs


class FreezableBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, once :meth:`freeze` is called, normalises with its running statistics and keeps its affine
    parameters fixed whatever ``train()``/``eval()`` is called later (Lightning switches modes every epoch)."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.frozen = False

    def freeze(self) -> None:
        self.frozen = True
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.frozen:
            return super().forward(x)
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + (", frozen=True" if self.frozen else "")


class PConvBlock(nn.Module):
    """Partial convolution + optional BatchNorm + activation. Shapes as :meth:`PartialConv2d.forward_masked`."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.spec = spec
        self.conv = PartialConv2d(
            spec.in_channels,
            spec.out_channels,
            spec.kernel,
            stride=spec.stride,
            padding=spec.kernel // 2,
            bias=not spec.batch_norm,  # BatchNorm's shift makes a conv bias redundant
            multi_channel=True,
        )
        self.bn = FreezableBatchNorm2d(spec.out_channels) if spec.batch_norm else None
        if spec.activation == "relu":
            self.act: nn.Module = nn.ReLU(inplace=True)
        elif spec.activation == "leaky_relu":
            self.act = nn.LeakyReLU(0.2, inplace=True)
        else:
            self.act = nn.Identity()

    def forward(self, x_masked: torch.Tensor, valid_count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, new_mask = self.conv.forward_masked(x_masked, valid_count)
        if self.bn is not None:
            h = self.bn(h)
        return self.act(h), new_mask


class PConvUNet(nn.Module):
    """Partial-convolution U-Net.

    Args:
        levels: encoder depth; 8 for 512x512 inputs as in the paper, 7 for 256x256. H and W must be divisible by
            ``2**levels``.
        in_channels: image channels.
        out_channels: output channels.

    Shapes:
        image: (B, in_channels, H, W), float in [0, 1].
        mask: (B, 1, H, W) or (B, in_channels, H, W), 1 = valid, 0 = hole (the library's internal convention).
        Returns (B, out_channels, H, W): the raw prediction everywhere; composite with the known pixels yourself.
    """

    def __init__(self, levels: int = 8, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        self.levels = levels
        self.in_channels = in_channels
        self.out_channels = out_channels
        specs = layer_table(levels, in_channels, out_channels)
        self.encoder = nn.ModuleList(PConvBlock(s) for s in specs[:levels])
        self.decoder = nn.ModuleList(PConvBlock(s) for s in specs[levels:])

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this."""
        return 2**self.levels

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError naming the nearest valid sizes unless both are multiples of ``2**levels``."""
        m = self.size_multiple
        if height % m or width % m or height == 0 or width == 0:

            def near(v: int) -> str:
                lo, hi = (v // m) * m, (v // m + 1) * m
                return f"{hi}" if lo == 0 else f"{lo} or {hi}"

            raise ValueError(
                f"PConvUNet(levels={self.levels}) needs H and W divisible by 2**{self.levels} = {m}; "
                f"got {height}x{width}. Nearest valid: H {near(height)}, W {near(width)} "
                f"(or pad and mark the padding as hole, as inpaint.Inpainter does)."
            )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"image must be (B, {self.in_channels}, H, W), got {tuple(image.shape)}")
        if (
            mask.dim() != 4
            or mask.shape[1] not in (1, self.in_channels)
            or mask.shape[-2:] != image.shape[-2:]
        ):
            raise ValueError(
                f"mask must be (B, 1 or {self.in_channels}, {image.shape[-2]}, {image.shape[-1]}), "
                f"got {tuple(mask.shape)}"
            )
        self.check_size(image.shape[-2], image.shape[-1])
        mask = mask.detach().float()
        x = image * mask.to(image.dtype)
        # Masks travel as per-pixel counts of valid input channels: a one-channel mask shared by C channels counts C.
        count = mask * self.in_channels if mask.shape[1] == 1 else mask.sum(dim=1, keepdim=True)

        skips: list[tuple[torch.Tensor, torch.Tensor]] = [(x, count)]
        h = x
        for block in self.encoder:
            h, new_mask = block(h, count)
            # BatchNorm and the activation make hole outputs nonzero; the next layer needs them zero.
            h = h * new_mask.to(h.dtype)
            count = new_mask * h.shape[1]
            skips.append((h, count))

        h, count = skips.pop()
        for i, block in enumerate(self.decoder):
            skip_h, skip_count = skips.pop()
            up_h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            up_count = F.interpolate(count, scale_factor=2.0, mode="nearest")
            h, new_mask = block(torch.cat([up_h, skip_h], dim=1), up_count + skip_count)
            if i < len(self.decoder) - 1:
                h = h * new_mask.to(h.dtype)
                count = new_mask * h.shape[1]
        return h

    def freeze_encoder_bn(self) -> None:
        """Freeze encoder BatchNorm (running statistics and affine parameters) for the fine-tuning phase.

        The freeze survives later ``train()`` calls; decoder BatchNorm keeps training.
        """
        for block in self.encoder:
            if block.bn is not None:
                block.bn.freeze()

    @property
    def encoder_bn_frozen(self) -> bool:
        bns = [b.bn for b in self.encoder if b.bn is not None]
        return bool(bns) and all(bn.frozen for bn in bns)
