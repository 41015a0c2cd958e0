"""Naive reference implementation: the baseline every benchmark ratio is measured against.

Written to the common formulation found in most partial-convolution code (NVIDIA's multi-channel layer, naoto0804's
loss), deliberately without any of the library's optimisations:

- :class:`NaivePartialConv2d` computes ``sumM`` by convolving the full (C_out, C_in, k, k) mask with a ones kernel (as
  expensive as the real convolution) and keeps the updated mask with C_out channels; the ratio uses NVIDIA's eps form.
- :class:`NaivePConvUNet` concatenates full multi-channel masks in the decoder. Its parameter and buffer names are
  those of :class:`inpaint.models.PConvUNet`, so one state dict loads into both and outputs can be compared exactly.
- :class:`NaiveInpaintingLoss` runs three separate VGG16 passes (output, composite, target) with autograd on for all
  three (no ``torch.no_grad`` for the target), with the same formulas as the library (docs/loss.md; Liu et al.
  2018, section 3, "Loss Functions"): L1 terms averaged over all elements, Gram matrices ``F F^T / (C H W)``,
  total variation over the one-pixel dilation of the hole.

Everything is float32, contiguous (NCHW) and eager. Masks: float, 1 = valid pixel, 0 = hole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint.losses import PAPER_WEIGHTS
from inpaint.models import layer_table
from inpaint.models.pconv_unet import LayerSpec

__all__ = [
    "NaiveInpaintingLoss",
    "NaivePConvBlock",
    "NaivePConvUNet",
    "NaivePartialConv2d",
    "naive_gram",
    "naive_vgg16_features",
]

# NVIDIA's layer divides by (sumM + eps); in float32 the eps changes the ratio by < 1e-8 relative.
_EPS = 1e-8


class NaivePartialConv2d(nn.Conv2d):
    """Multi-channel partial convolution, NVIDIA style.

    Shapes:
        x: (B, C_in, H, W); mask: (B, C_in, H, W), 1 = valid.
        Returns ``(y, new_mask)``: y (B, C_out, H', W'), new_mask (B, C_out, H', W') (all channels equal).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, bias: bool
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.sum1 = float(in_channels * kernel_size * kernel_size)
        # The full ones kernel of the common formulation: costs as many FLOPs as the feature convolution itself.
        self.register_buffer(
            "mask_kernel", torch.ones(out_channels, in_channels, kernel_size, kernel_size), persistent=False
        )

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            sum_m = F.conv2d(mask, self.mask_kernel, None, self.stride, self.padding)
            ratio = self.sum1 / (sum_m + _EPS)
            new_mask = torch.clamp(sum_m, 0.0, 1.0)
            ratio = ratio * new_mask
        raw = F.conv2d(x * mask, self.weight, self.bias, self.stride, self.padding)
        if self.bias is not None:
            b = self.bias.view(1, -1, 1, 1)
            out = ((raw - b) * ratio + b) * new_mask
        else:
            out = raw * ratio
        return out, new_mask


class NaivePConvBlock(nn.Module):
    """Naive partial convolution + plain BatchNorm2d + activation; attribute names as the library's PConvBlock."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.conv = NaivePartialConv2d(
            spec.in_channels,
            spec.out_channels,
            spec.kernel,
            spec.stride,
            spec.kernel // 2,
            bias=not spec.batch_norm,
        )
        self.bn = nn.BatchNorm2d(spec.out_channels) if spec.batch_norm else None
        self.activation = spec.activation

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h, new_mask = self.conv(x, mask)
        if self.bn is not None:
            h = self.bn(h)
        if self.activation == "relu":
            h = F.relu(h)
        elif self.activation == "leaky_relu":
            h = F.leaky_relu(h, 0.2)
        return h, new_mask


class NaivePConvUNet(nn.Module):
    """The partial-convolution U-Net with full multi-channel masks; loads a :class:`inpaint.models.PConvUNet` state
    dict as it is.

    Shapes:
        image: (B, in_channels, H, W) in [0, 1]; mask: (B, 1, H, W) or (B, in_channels, H, W), 1 = valid.
        Returns (B, out_channels, H, W).
    """

    def __init__(self, levels: int = 8, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        self.levels = levels
        self.in_channels = in_channels
        specs = layer_table(levels, in_channels, out_channels)
        self.encoder = nn.ModuleList(NaivePConvBlock(s) for s in specs[:levels])
        self.decoder = nn.ModuleList(NaivePConvBlock(s) for s in specs[levels:])

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        mask = mask.expand(-1, self.in_channels, -1, -1).contiguous()
        skips = [(image, mask)]
        h, m = image, mask
        for block in self.encoder:
            h, m = block(h, m)
            skips.append((h, m))
        h, m = skips.pop()
        for block in self.decoder:
            skip_h, skip_m = skips.pop()
            h = torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), skip_h], dim=1)
            m = torch.cat([F.interpolate(m, scale_factor=2.0, mode="nearest"), skip_m], dim=1)
            h, m = block(h, m)
        return h


def naive_vgg16_features() -> nn.ModuleList:
    """torchvision ``vgg16().features[:17]`` split into the three slices [0:5], [5:10], [10:17] (pool1..pool3).

    The flat indices of the library's ``VGG16FeatureExtractor.features`` map to ``(slice, index - start)``; use
    :meth:`NaiveInpaintingLoss.load_vgg_from` to copy its weights.
    """
    cfg = ((3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), "M")
    layers: list[nn.Module] = []
    for c in cfg:
        if c == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c[0], c[1], 3, padding=1), nn.ReLU(inplace=True)]
    return nn.ModuleList(
        [nn.Sequential(*layers[0:5]), nn.Sequential(*layers[5:10]), nn.Sequential(*layers[10:17])]
    )


def naive_gram(feat: Tensor) -> Tensor:
    """Gram matrix ``F F^T / (C H W)``: (B, C, H, W) -> (B, C, C)."""
    b, c, h, w = feat.shape
    f = feat.view(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


class NaiveInpaintingLoss(nn.Module):
    """Liu et al.'s loss with three separate VGG16 passes (formulas and weights: docs/loss.md).

    Args:
        weights: multipliers of the terms; the paper's by default.

    ``forward(output, target, mask)`` with output/target (B, 3, H, W) in [0, 1] and mask (B, 1 or 3, H, W),
    1 = valid, returns a dict of the unweighted terms ``valid, hole, perceptual, style_out, style_comp, tv`` and
    their weighted sum ``total`` (the keys of :class:`inpaint.losses.InpaintingLoss`).
    """

    # The paper's weights (the constants, not the code, are shared with the library).
    DEFAULT_WEIGHTS = dict(PAPER_WEIGHTS)

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.weights = dict(self.DEFAULT_WEIGHTS if weights is None else weights)
        self.vgg = naive_vgg16_features()
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def load_vgg_from(self, flat_features: nn.Sequential) -> None:
        """Copy the weights of a flat ``features[:17]`` (e.g. the library's ``VGG16FeatureExtractor.features``)."""
        starts = (0, 5, 10)
        state = {}
        for key, value in flat_features.state_dict().items():
            idx, name = key.split(".")
            s = max(i for i, st in enumerate(starts) if int(idx) >= st)
            state[f"{s}.{int(idx) - starts[s]}.{name}"] = value
        self.vgg.load_state_dict(state)

    def extract(self, x: Tensor) -> list[Tensor]:
        """pool1, pool2, pool3 activations of (B, 3, H, W) images in [0, 1]."""
        h = (x - self.mean) / self.std
        feats = []
        for block in self.vgg:
            h = block(h)
            feats.append(h)
        return feats

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        mask = mask.expand_as(output)
        comp = mask * target + (1 - mask) * output
        valid = torch.mean(torch.abs(mask * (output - target)))
        hole = torch.mean(torch.abs((1 - mask) * (output - target)))
        # Three separate passes, the target one with autograd enabled, as in most reimplementations.
        f_out = self.extract(output)
        f_comp = self.extract(comp)
        f_gt = self.extract(target)
        perceptual = output.new_zeros(())
        style_out = output.new_zeros(())
        style_comp = output.new_zeros(())
        for fo, fc, fg in zip(f_out, f_comp, f_gt, strict=True):
            perceptual = perceptual + torch.mean(torch.abs(fo - fg)) + torch.mean(torch.abs(fc - fg))
            g_gt = naive_gram(fg)
            style_out = style_out + torch.mean(torch.abs(naive_gram(fo) - g_gt))
            style_comp = style_comp + torch.mean(torch.abs(naive_gram(fc) - g_gt))
        tv = naive_tv(comp, mask[:, :1])
        terms = {
            "valid": valid,
            "hole": hole,
            "perceptual": perceptual,
            "style_out": style_out,
            "style_comp": style_comp,
            "tv": tv,
        }
        terms["total"] = sum(self.weights[k] * v for k, v in terms.items())
        return terms


def naive_tv(comp: Tensor, mask: Tensor) -> Tensor:
    """Total variation of ``comp`` over the 1-pixel dilation R of the hole region.

    A pair of horizontally or vertically adjacent pixels counts when both lie in R; the sum of |differences| is
    divided by B*C*H*W. The image border is not a hole.

    Args:
        comp: (B, C, H, W); mask: (B, 1, H, W), 1 = valid.
    """
    hole = 1 - mask
    region = (F.max_pool2d(hole, 3, stride=1, padding=1) > 0).to(comp.dtype)
    dh = torch.abs(comp[:, :, :, 1:] - comp[:, :, :, :-1]) * region[:, :, :, 1:] * region[:, :, :, :-1]
    dv = torch.abs(comp[:, :, 1:, :] - comp[:, :, :-1, :]) * region[:, :, 1:, :] * region[:, :, :-1, :]
    n = comp.shape[1] * comp.shape[2] * comp.shape[3]
    return (dh.sum() + dv.sum()) / (n * comp.shape[0])
