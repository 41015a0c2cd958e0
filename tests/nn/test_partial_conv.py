"""inpaint.nn.PartialConv2d against an independent float64 reference (NVIDIA's formula, via unfold)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inpaint.nn import PartialConv2d


def reference_partial_conv(x, mask, weight, bias, stride, padding, dilation, multi_channel):
    """Direct float64 evaluation: per window, W^T(X*M) * sum1/sumM + b where sumM > 0, else 0."""
    x, mask, weight = x.double(), mask.double(), weight.double()
    b, c, h, w = x.shape
    co, _, kh, kw = weight.shape
    full_mask = mask if multi_channel else mask.expand(b, c, h, w)
    cols_x = F.unfold(x * full_mask, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols_m = F.unfold(mask, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    sum_m = cols_m.sum(dim=1, keepdim=True)  # (B, 1, L)
    sum1 = (c if multi_channel else 1) * kh * kw
    raw = torch.einsum("ok,bkl->bol", weight.reshape(co, -1), cols_x)
    valid = sum_m > 0
    out = torch.where(valid, raw * sum1 / torch.where(valid, sum_m, 1.0), 0.0)
    if bias is not None:
        out = out + bias.double().view(1, -1, 1) * valid
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    return out.view(b, co, ho, wo), valid.double().view(b, 1, ho, wo)


CONFIGS = [
    # kernel, stride, padding, dilation
    (3, 1, 1, 1),
    (7, 2, 3, 1),
    (5, 2, 2, 1),
    (3, 2, 0, 1),
    (3, 1, 2, 2),
    (4, 3, 1, 1),
    (1, 1, 0, 1),
]


@pytest.mark.parametrize("multi_channel", [False, True])
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation"), CONFIGS)
def test_matches_float64_reference(kernel, stride, padding, dilation, multi_channel):
    torch.manual_seed(kernel * 100 + stride * 10 + padding + dilation)
    cin, cout = 4, 5
    layer = PartialConv2d(
        cin, cout, kernel, stride, padding, dilation, bias=True, multi_channel=multi_channel
    )
    x = torch.randn(2, cin, 17, 14)
    mask = (torch.rand(2, cin if multi_channel else 1, 17, 14) > 0.6).float()
    mask[0, ..., 5:12, 3:11] = 0  # a large hole so that some windows see no valid pixel at all
    y, new_mask = layer(x, mask)
    ref_y, ref_mask = reference_partial_conv(
        x, mask, layer.weight, layer.bias, stride, padding, dilation, multi_channel
    )
    assert y.shape == ref_y.shape
    assert new_mask.shape == (2, 1, *ref_y.shape[-2:])
    assert (ref_mask == 0).any() and (ref_mask == 1).any(), "test must cover both valid and all-hole windows"
    torch.testing.assert_close(new_mask.double(), ref_mask, rtol=0, atol=0)
    assert (y.double() - ref_y).abs().max().item() <= 1e-5 * max(1.0, ref_y.abs().max().item())


def test_sum1_is_cin_k2_for_multi_channel_masks():
    layer = PartialConv2d(3, 1, 3, padding=1, bias=False, multi_channel=True)
    assert layer.sum1 == 27
    single = PartialConv2d(3, 1, 3, padding=1, bias=False)
    assert single.sum1 == 9


def test_hole_values_do_not_matter():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 8, 5, stride=2, padding=2)
    x = torch.randn(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.4).float()
    x2 = x + (1 - mask) * torch.randn_like(x) * 100
    y1, m1 = layer(x, mask)
    y2, m2 = layer(x2, mask)
    assert torch.equal(m1, m2)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-5)


def test_all_hole_gives_zero_output_and_mask():
    layer = PartialConv2d(3, 4, 3, padding=1, bias=True)
    torch.nn.init.constant_(layer.bias, 5.0)  # the bias must not leak into hole outputs
    x = torch.randn(1, 3, 8, 8)
    y, new_mask = layer(x, torch.zeros(1, 1, 8, 8))
    assert torch.isfinite(y).all()
    assert torch.count_nonzero(y) == 0
    assert torch.count_nonzero(new_mask) == 0


def test_all_valid_equals_conv2d_away_from_border():
    torch.manual_seed(1)
    layer = PartialConv2d(3, 6, 3, padding=1)
    conv = torch.nn.Conv2d(3, 6, 3, padding=1)
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 12, 12)
    y, new_mask = layer(x, torch.ones(2, 1, 12, 12))
    torch.testing.assert_close(y[..., 1:-1, 1:-1], conv(x)[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask, torch.ones_like(new_mask))
    # At the border zero padding counts as hole, so the output is renormalised, not equal to the plain conv.
    assert not torch.allclose(y[..., 0, :], conv(x)[..., 0, :])


def test_state_dict_holds_only_weight_and_bias():
    layer = PartialConv2d(3, 4, 3)
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert set(PartialConv2d(3, 4, 3, bias=False).state_dict()) == {"weight"}


def test_no_cached_mask_state_between_calls():
    torch.manual_seed(2)
    layer = PartialConv2d(2, 2, 3, padding=1)
    x = torch.randn(1, 2, 8, 8)
    m1 = (torch.rand(1, 1, 8, 8) > 0.5).float()
    m2 = torch.ones(1, 1, 8, 8)
    y1, _ = layer(x, m1)
    layer(x, m2)
    y1_again, _ = layer(x, m1)
    assert torch.equal(y1, y1_again)
    # a different batch size right after must work too
    layer(torch.randn(3, 2, 8, 8), torch.ones(3, 1, 8, 8))


def test_bf16_autocast_finite_and_mask_bit_identical():
    torch.manual_seed(3)
    layer = PartialConv2d(4, 8, 3, stride=2, padding=1, multi_channel=True)
    x = torch.randn(2, 4, 32, 32)
    mask = (torch.rand(2, 4, 32, 32) > 0.7).float()
    mask[:, :, :16, :16] = 0
    y32, m32 = layer(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y16, m16 = layer(x, mask)
    assert y16.dtype == torch.bfloat16
    assert torch.isfinite(y16).all()
    assert m16.dtype == torch.float32
    assert torch.equal(m16, m32)
    assert (y16.float() - y32).abs().max() < 0.05 * y32.abs().max()


def test_gradients_reach_weight_and_bias_not_mask():
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    mask = (torch.rand(1, 1, 8, 8) > 0.3).float().requires_grad_(True)
    y, new_mask = layer(x, mask)
    y.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.bias.grad is not None and layer.bias.grad.abs().sum() > 0
    assert mask.grad is None
    assert not new_mask.requires_grad
    # gradient w.r.t. hole pixels of x is zero
    assert torch.all(x.grad[(mask.detach() == 0).expand_as(x)] == 0)


def test_forward_masked_equals_forward_with_concatenated_masks():
    """The U-Net's count-based path is the multi-channel partial convolution of the concatenation."""
    torch.manual_seed(4)
    layer = PartialConv2d(5, 3, 3, padding=1, multi_channel=True)
    a, b = torch.randn(1, 2, 8, 8), torch.randn(1, 3, 8, 8)
    ma, mb = (torch.rand(1, 1, 8, 8) > 0.5).float(), (torch.rand(1, 1, 8, 8) > 0.5).float()
    full_mask = torch.cat([ma.expand(1, 2, 8, 8), mb.expand(1, 3, 8, 8)], dim=1)
    y_ref, m_ref = layer(torch.cat([a, b], dim=1), full_mask)
    y, m = layer.forward_masked(torch.cat([a * ma, b * mb], dim=1), 2 * ma + 3 * mb)
    torch.testing.assert_close(y, y_ref)
    assert torch.equal(m, m_ref)


def test_wrong_mask_shape_is_a_clear_error():
    layer = PartialConv2d(3, 4, 3)
    with pytest.raises(ValueError, match="expects a mask of shape"):
        layer(torch.randn(1, 3, 8, 8), torch.ones(1, 3, 8, 8))
