"""Partial convolution (Liu et al., 2018), exact to NVIDIA's formulation.

For every output position with window mask sum ``sumM > 0``::

    y = W^T (X * M) * sum1 / sumM + b,   new_mask = 1

and ``y = 0`` (not ``b``), ``new_mask = 0`` where ``sumM = 0``. ``sum1`` is the number of mask elements in the
window: ``C_in * kh * kw`` for a per-channel mask, ``kh * kw`` for one mask channel shared by all input channels.
Zero padding of the mask counts as hole.

Masks are float with 1 = valid, 0 = hole. Mask arithmetic runs in float32 with autocast disabled, so the updated
mask is bit-identical under bf16/fp16 autocast and no ``eps`` is needed: the ratio is a masked division.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class PartialConv2d(nn.Conv2d):
    """2-D partial convolution.

    Args:
        in_channels: input feature channels ``C_in``.
        out_channels: output feature channels ``C_out``.
        kernel_size, stride, padding, dilation: as in :class:`torch.nn.Conv2d` (zero padding only).
        bias: learn an additive bias, applied only where the output is valid.
        multi_channel: the mask has one channel per input channel, (B, C_in, H, W), and ``sum1 = C_in * kh * kw``;
            otherwise it is (B, 1, H, W), shared by all channels, and ``sum1 = kh * kw``.

    Shapes:
        x: (B, C_in, H, W); mask: (B, 1, H, W) or (B, C_in, H, W) with ``multi_channel``; 1 = valid.
        Returns ``(y, new_mask)`` with y (B, C_out, H', W') and new_mask (B, 1, H', W') in {0, 1}, float32.
        H' and W' are those of :class:`torch.nn.Conv2d` with the same arguments.

    Maths, per output position (see docs/method.md; Liu et al. 2018, section 3.1)::

        sumM = sum of the mask over the window (zero padding counts as hole)
        y        = W^T (X * M) * sum1 / sumM + b     if sumM > 0
        y        = 0                                 if sumM = 0   (not b)
        new_mask = 1 if sumM > 0 else 0

    Examples:
        A 4x4 hole in an 8x8 image: a 3x3 partial convolution shrinks it by one pixel on every side. Where a window
        sees only hole, the output is exactly 0 (not the bias) and the updated mask is 0.

        >>> import torch
        >>> from inpaint.nn import PartialConv2d
        >>> conv = PartialConv2d(3, 8, kernel_size=3, padding=1)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> mask = torch.ones(2, 1, 8, 8)
        >>> mask[..., 2:6, 2:6] = 0  # hole
        >>> y, new_mask = conv(x, mask)
        >>> y.shape, new_mask.shape
        (torch.Size([2, 8, 8, 8]), torch.Size([2, 1, 8, 8]))
        >>> new_mask[0, 0, 1:7, 1:7]
        tensor([[1., 1., 1., 1., 1., 1.],
                [1., 1., 1., 1., 1., 1.],
                [1., 1., 0., 0., 1., 1.],
                [1., 1., 0., 0., 1., 1.],
                [1., 1., 1., 1., 1., 1.],
                [1., 1., 1., 1., 1., 1.]])
        >>> bool((y[..., 3:5, 3:5] == 0).all())  # fully-holed windows: exactly 0
        True

        The factor ``sum1 / sumM`` rescales a window as if it were fully valid: with unit weights and no bias, a
        constant image of ones gives ``C_in * k * k = 27`` everywhere, also in the corners, whose window sees 4 of
        its 9 pixels (the zero padding is hole) and is scaled by 9/4.

        >>> with torch.no_grad():
        ...     _ = conv.weight.fill_(1.0)
        ...     _ = conv.bias.zero_()
        >>> conv.sum1
        9.0
        >>> y, new_mask = conv(torch.ones(1, 3, 4, 4), torch.ones(1, 1, 4, 4))
        >>> y[0, 0].detach()
        tensor([[27., 27., 27., 27.],
                [27., 27., 27., 27.],
                [27., 27., 27., 27.],
                [27., 27., 27., 27.]])

        With ``multi_channel=True`` the mask has one channel per input channel and ``sum1 = C_in * k * k``:

        >>> PartialConv2d(3, 8, kernel_size=3, multi_channel=True).sum1
        27.0

        Strided, as in the U-Net's encoder (the mask is downsampled with the features):

        >>> y, new_mask = PartialConv2d(3, 8, kernel_size=3, stride=2, padding=1)(x, mask)
        >>> y.shape, new_mask.shape
        (torch.Size([2, 8, 4, 4]), torch.Size([2, 1, 4, 4]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        multi_channel: bool = False,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
            padding_mode="zeros",
        )
        self.multi_channel = multi_channel
        kh, kw = _pair(kernel_size)
        self.sum1 = float((in_channels if multi_channel else 1) * kh * kw)
        # A (1, 1, kh, kw) window of ones: sum-pools a one-channel mask (count) map. Not a learnable or saved tensor.
        self.register_buffer("_window", torch.ones(1, 1, kh, kw), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        expected = self.in_channels if self.multi_channel else 1
        if mask.dim() != 4 or mask.shape[1] != expected or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"PartialConv2d(multi_channel={self.multi_channel}) expects a mask of shape "
                f"(B, {expected}, {x.shape[-2]}, {x.shape[-1]}), got {tuple(mask.shape)}"
            )
        mask = mask.detach()
        valid_count = mask.float().sum(dim=1, keepdim=True) if self.multi_channel else mask.float()
        return self.forward_masked(x * mask.to(x.dtype), valid_count)

    def forward_masked(
        self, x_masked: torch.Tensor, valid_count: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Partial convolution of an input whose holes are already zero.

        Lets a caller that concatenates features with different masks (the U-Net decoder) pass the per-pixel
        number of valid input channels instead of materialising a (B, C_in, H, W) mask.

        Args:
            x_masked: (B, C_in, H, W), equal to ``x * mask``.
            valid_count: (B, 1, H, W), the mask summed over channels (= the mask itself for one channel).

        Returns:
            ``(y, new_mask)`` as :meth:`forward`.
        """
        ratio, new_mask = self.mask_ratio(valid_count)
        raw = F.conv2d(x_masked, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        # Renormalise in float32 (ratio can be C_in*k^2 at window edges), then return to the compute dtype.
        out = raw.float() * ratio
        if self.bias is not None:
            out = out + self.bias.float().view(1, -1, 1, 1) * new_mask
        return out.to(raw.dtype), new_mask

    def mask_ratio(self, valid_count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``sum1 / sumM`` where the window holds a valid element (0 elsewhere), and the updated mask.

        Args:
            valid_count: (B, 1, H, W) channel-summed mask.

        Returns:
            ``(ratio, new_mask)``, both (B, 1, H', W') float32.
        """
        with torch.no_grad(), torch.autocast(device_type=valid_count.device.type, enabled=False):
            window_sum = F.conv2d(
                valid_count.float(), self._window.float(), None, self.stride, self.padding, self.dilation
            )
            valid = window_sum > 0
            new_mask = valid.float()
            # Masked division: no eps, so nothing under- or overflows; all-hole windows get ratio 0.
            ratio = torch.where(valid, self.sum1 / torch.where(valid, window_sum, 1.0), 0.0)
        return ratio, new_mask

    def extra_repr(self) -> str:
        return super().extra_repr() + f", multi_channel={self.multi_channel}"
