"""The partial-convolution U-Net of Liu et al. (2018), section 3.2 of the paper (see docs/method.md).

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
from inpaint.nn.membrane import membrane_fill

ENCODER_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)
ENCODER_CHANNELS = (64, 128, 256, 512, 512, 512, 512, 512)  # the paper's, i.e. base_channels = 64


def encoder_channels(levels: int, base_channels: int = 64) -> tuple[int, ...]:
    """Encoder widths ``base, 2 base, 4 base, 8 base, 8 base, ...``; ``base_channels=64`` gives the paper's table."""
    if base_channels < 1:
        raise ValueError(f"base_channels must be >= 1, got {base_channels}")
    return tuple(base_channels * min(2**i, 8) for i in range(levels))


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


def layer_table(
    levels: int = 8, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64
) -> list[LayerSpec]:
    """The network's layers, encoder PConv1..L then decoder PConv(L+1)..2L, as in the paper for levels=8 and
    ``base_channels=64``."""
    if not 1 <= levels <= len(ENCODER_KERNELS):
        raise ValueError(f"levels must be in 1..{len(ENCODER_KERNELS)}, got {levels}")
    enc_ch = encoder_channels(levels, base_channels)
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


class FrozenBatchNorm2d(nn.Module):
    """A BatchNorm2d turned into a fixed per-channel affine map: its running statistics and affine parameters, as
    buffers, applied exactly as an eval-mode BatchNorm would.

    The fine-tuning phase of the paper freezes the encoder's BatchNorm. Being a plain module rather than a
    ``_BatchNorm`` is what makes the freeze hold everywhere: ``train()``/``eval()`` switches cannot undo it, the
    optimiser has nothing to update, and ``SyncBatchNorm.convert_sync_batchnorm`` (Lightning's ``sync_batchnorm``)
    leaves it alone while it converts the decoder's BatchNorm. State-dict keys are those of ``nn.BatchNorm2d``, so
    checkpoints load either way.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((num_features,), value))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @classmethod
    def from_batch_norm(cls, bn: nn.modules.batchnorm._BatchNorm) -> FrozenBatchNorm2d:
        """A frozen copy of ``bn``'s current statistics and affine parameters."""
        frozen = cls(bn.num_features, bn.eps)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                getattr(frozen, name).copy_(getattr(bn, name).detach())
        return frozen.to(bn.running_mean.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


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
        self.bn: nn.Module | None = nn.BatchNorm2d(spec.out_channels) if spec.batch_norm else None
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


def _membrane(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The membrane fill of ``image``'s holes (pixels with any channel masked), in float32, outside autograd."""
    known = mask.detach().amin(dim=1, keepdim=True) > 0.5
    with torch.no_grad(), torch.autocast(image.device.type, enabled=False):
        return membrane_fill(image.detach().float(), known)


class PConvUNet(nn.Module):
    """Partial-convolution U-Net.

    Args:
        levels: encoder depth; 8 for 512x512 inputs as in the paper, 7 for 256x256. H and W must be divisible by
            ``2**levels``.
        in_channels: image channels.
        out_channels: output channels.
        base_channels: width of the first encoder layer; the others follow the paper's doubling up to 8x. 64 is
            the paper's network; smaller values give a narrower network of the same structure (the CPU demo uses 32:
            a quarter of the compute, so four times the training steps in the same time).
        membrane_residual: False (the paper): the last layer's output is the prediction. True: the prediction is
            the membrane through the known pixels (:func:`inpaint.nn.membrane.membrane_fill`, the smoothest fill
            of each hole from its border) plus the last layer's output, which so learns only what a smooth fill
            gets wrong. Not part of the paper: for a network trained too briefly to learn low frequencies itself
            (the CPU demo: docs/demo.md).

    Shapes:
        image: (B, in_channels, H, W), float in [0, 1].
        mask: (B, 1, H, W) or (B, in_channels, H, W), 1 = valid, 0 = hole (the library's internal convention).
        Returns (B, out_channels, H, W): the raw prediction everywhere; composite with the known pixels yourself:
        ``I_comp = M * image + (1 - M) * output``.

    The image enters multiplied by its mask, so hole pixels never influence the output. Each encoder level halves H
    and W (stride-2 partial convolution); each decoder level upsamples features and mask by 2 (nearest) and
    concatenates the encoder output of the same size, so the output has the input's size.

    Examples:
        A tiny, randomly initialised network (3 levels, so H and W must be multiples of ``2**3 = 8``):

        >>> import torch
        >>> from inpaint.models import PConvUNet, layer_table
        >>> net = PConvUNet(levels=3, base_channels=8).eval()
        >>> [(s.name, s.kernel, s.stride, s.in_channels, s.out_channels) for s in layer_table(3, base_channels=8)]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('enc1', 7, 2, 3, 8), ('enc2', 5, 2, 8, 16), ('enc3', 5, 2, 16, 32),
         ('dec4', 3, 1, 48, 16), ('dec5', 3, 1, 24, 8), ('dec6', 3, 1, 11, 3)]
        >>> image = torch.rand(2, 3, 64, 64)
        >>> mask = torch.ones(2, 1, 64, 64)
        >>> mask[..., 16:40, 20:48] = 0  # hole
        >>> with torch.no_grad():
        ...     output = net(image, mask)
        >>> output.shape
        torch.Size([2, 3, 64, 64])

        What the hole holds does not matter, and the composite keeps every known pixel:

        >>> garbage = image.clone()
        >>> garbage[..., 16:40, 20:48] = 123.0
        >>> with torch.no_grad():
        ...     torch.equal(net(garbage, mask), output)
        True
        >>> composite = mask * image + (1 - mask) * output
        >>> torch.equal(composite[mask.expand_as(image) == 1], image[mask.expand_as(image) == 1])
        True

        Other sizes are refused with the nearest valid ones (:class:`inpaint.Inpainter` pads instead):

        >>> net(torch.rand(1, 3, 60, 60), torch.ones(1, 1, 60, 60))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: PConvUNet(levels=3) needs H and W divisible by 2**3 = 8; got 60x60. Nearest valid: H 56 or 64, ...
    """

    def __init__(
        self,
        levels: int = 8,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        membrane_residual: bool = False,
    ) -> None:
        super().__init__()
        if membrane_residual and out_channels != in_channels:
            raise ValueError(
                f"membrane_residual adds the membrane of the {in_channels}-channel image to the output, so "
                f"out_channels must equal in_channels; got {out_channels}"
            )
        self.membrane_residual = membrane_residual
        self.levels = levels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_channels = base_channels
        specs = layer_table(levels, in_channels, out_channels, base_channels)
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
        if self.membrane_residual:
            # Only where the last layer reached: a 0 elsewhere tells inference to use a coarser pass.
            h = h + (_membrane(image, mask) * new_mask).to(h.dtype)
        return h

    def freeze_encoder_bn(self) -> None:
        """Freeze encoder BatchNorm (running statistics and affine parameters) for the fine-tuning phase.

        Each encoder BatchNorm becomes a :class:`FrozenBatchNorm2d` with its current values: the freeze survives
        ``train()`` calls and ``sync_batchnorm`` conversion; decoder BatchNorm keeps training (and syncing).
        """
        for block in self.encoder:
            if isinstance(block.bn, nn.modules.batchnorm._BatchNorm):
                block.bn = FrozenBatchNorm2d.from_batch_norm(block.bn)

    @property
    def encoder_bn_frozen(self) -> bool:
        bns = [b.bn for b in self.encoder if b.bn is not None]
        return bool(bns) and all(isinstance(bn, FrozenBatchNorm2d) for bn in bns)
