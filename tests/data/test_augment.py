"""Batch colour augmentation (inpaint.data.augment) and the colour bias it exists to prevent."""

from __future__ import annotations

import pytest
import torch
import yaml

from inpaint.config import CONF_DIR
from inpaint.data.augment import ColourAugmentation
from inpaint.models import PConvUNet

DEMO_AUGMENT = yaml.safe_load((CONF_DIR / "model" / "demo.yaml").read_text())["augment"]


def test_output_is_a_valid_image_batch_in_the_same_layout():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    y = ColourAugmentation(**DEMO_AUGMENT)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert y.is_contiguous(memory_format=torch.channels_last)
    # every sample gets its own colour variant
    means = y.mean(dim=(2, 3))
    assert len({tuple(m.round(decimals=3).tolist()) for m in means}) == 8


def test_no_op_settings_leave_the_batch_unchanged():
    x = torch.rand(4, 3, 8, 8)
    aug = ColourAugmentation(channel_shuffle=0, channel_gain=0, jitter=0, grayscale=0)
    assert torch.equal(aug(x), x)


@pytest.mark.parametrize("kwargs", [{"jitter": 1.5}, {"channel_gain": 1.0}, {"grayscale": -0.1}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        ColourAugmentation(**kwargs)


def _colour_fields(n: int, low: torch.Tensor, high: torch.Tensor, g: torch.Generator, size: int = 32):
    base = torch.rand(n, 3, 1, 1, generator=g) * (high - low) + low
    ramp = torch.linspace(-1, 1, size)
    gradient = (
        (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 0.2 * (ramp.view(1, 1, -1, 1) + ramp.view(1, 1, 1, -1))
    )
    return (base + gradient + 0.02 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)


def _square_holes(n: int, g: torch.Generator, size: int = 32) -> torch.Tensor:
    mask = torch.ones(n, 1, size, size)
    for i in range(n):
        s = int(torch.randint(6, 16, (1,), generator=g))
        y, x = torch.randint(0, size - s, (2,), generator=g).tolist()
        mask[i, :, y : y + s, x : x + s] = 0
    return mask


@pytest.mark.slow
def test_fills_take_the_context_colour_not_the_training_photos_colour():
    """Trained a few dozen steps on green images only, with the demo's colour augmentation, the network fills red,
    blue, yellow and purple images with their own colour: much closer to it than a constant grey would be. Without
    the augmentation the same training paints green into them (the bias this guards against)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    green = _colour_fields(
        256, torch.tensor([0.0, 0.5, 0.0]).view(1, 3, 1, 1), torch.tensor([0.3, 1.0, 0.3]).view(1, 3, 1, 1), g
    )
    net, aug = PConvUNet(levels=4, base_channels=16), ColourAugmentation(**DEMO_AUGMENT)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(60):
        x, m = aug(green[torch.randint(0, 256, (16,), generator=g)]), _square_holes(16, g)
        out = net(x * m, m)
        loss = (m * (out - x)).abs().mean() + 6 * ((1 - m) * (out - x)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    colours = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.2, 0.8], [0.9, 0.8, 0.1], [0.5, 0.1, 0.6]]).view(
        4, 3, 1, 1
    )
    test = (colours + 0.02 * torch.randn(4, 3, 32, 32, generator=g)).clamp(0, 1)
    mask = torch.ones(4, 1, 32, 32)
    mask[:, :, 10:22, 10:22] = 0
    with torch.no_grad():
        out = net.eval()(test * mask, mask).clamp(0, 1)
    hole = (mask == 0).expand_as(test)
    fill, truth = (t[hole].view(4, 3, -1).mean(-1) for t in (out, test))
    fill_error = (fill - truth).abs().mean(1)
    grey_error = (0.5 - truth).abs().mean(1)
    assert bool((fill_error < grey_error).all()), (fill, truth)
    assert float(fill_error.mean()) < 0.5 * float(grey_error.mean()), (fill, truth)
