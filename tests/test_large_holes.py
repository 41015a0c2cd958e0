"""Large holes in smooth content come back smooth: no cells, no tint (issue: nested squares tinted magenta and green).

A small real PConvUNet, built as the demo's (``conf/model/demo.yaml``: ``model.net``), is trained for a few seconds
on smooth fields (flat colours and linear ramps) with holes well within its reach, as the demo's network is trained
on small crops. A hole far wider than that reach is then filled with the policy the demo ships (``model.inference``):
it must come back within a few 8-bit levels of the truth in its core, with no blockiness. A network predicting the
colours itself (the paper's), filling the same hole by its own recursive coarse passes, does not: the check can fail.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from inpaint.config import CONF_DIR
from inpaint.evaluation.tune import option_grid
from inpaint.inference import InferenceOptions, Inpainter
from inpaint.models import PConvUNet

LEVEL = 1 / 255


def _smooth_fields(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3, size, size) flat colours and linear ramps in [0.1, 0.9]."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    base = 0.2 + 0.6 * torch.rand(n, 3, 1, 1, generator=generator)
    slope = (
        0.2
        * (torch.rand(n, 3, 2, generator=generator) - 0.5)
        * (torch.rand(n, 1, 1, generator=generator) > 0.3)
    )
    return (base + slope[..., 0, None, None] * x + slope[..., 1, None, None] * y).clamp(0.1, 0.9)


def _box_holes(n: int, size: int, generator: torch.Generator, low: int, high: int) -> torch.Tensor:
    """(n, 1, size, size) masks, 1 = valid, each with one box hole of side ``low``..``high`` pixels."""
    mask = torch.ones(n, 1, size, size)
    for i in range(n):
        h, w = (int(torch.randint(low, high + 1, (1,), generator=generator)) for _ in range(2))
        y0, x0 = (int(torch.randint(0, size - s + 1, (1,), generator=generator)) for s in (h, w))
        mask[i, :, y0 : y0 + h, x0 : x0 + w] = 0
    return mask


def _demo_config() -> dict:
    return yaml.safe_load((CONF_DIR / "model" / "demo.yaml").read_text())


def _trained(membrane_residual: bool) -> PConvUNet:
    """3 levels, trained 150 steps on 32² smooth fields with holes of 4-12 px (its reach: about 10 px)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    net = PConvUNet(levels=3, base_channels=16, membrane_residual=membrane_residual)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        image = _smooth_fields(16, 32, generator)
        mask = _box_holes(16, 32, generator, 4, 12)
        out = net(image * mask, mask)
        loss = ((out - image).abs() * (1 + 5 * (1 - mask))).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


@pytest.fixture(scope="module")
def demo_network() -> PConvUNet:
    """Built as the demo's (conf/model/demo.yaml: ``net.membrane_residual``)."""
    return _trained(_demo_config()["net"]["membrane_residual"])


@pytest.fixture(scope="module")
def plain_network() -> PConvUNet:
    """The paper's output: the network predicts the colours itself."""
    return _trained(False)


def _demo_options() -> InferenceOptions:
    return InferenceOptions.from_mapping(_demo_config()["inference"], "conf/model/demo.yaml")


def _second_difference(error: torch.Tensor) -> float:
    """Max absolute second difference along rows and columns: 0 on a ramp; a cell edge shows as a jump."""
    rows = error[..., 2:, :] - 2 * error[..., 1:-1, :] + error[..., :-2, :]
    cols = error[..., :, 2:] - 2 * error[..., :, 1:-1] + error[..., :, :-2]
    return max(float(rows.abs().max()), float(cols.abs().max()))


def _fill_errors(net: PConvUNet, options: InferenceOptions) -> dict[str, float]:
    """Errors (8-bit levels) of filling a 40² hole in 64² smooth images (6 of them): in its core (the 20² farther
    than 10 px from any known pixel, beyond the network's reach) the max error and blockiness; over the whole hole
    the mean error."""
    generator = torch.Generator().manual_seed(1)
    image = _smooth_fields(6, 64, generator)
    mask = torch.ones(6, 1, 64, 64)
    mask[..., 12:52, 12:52] = 0
    with torch.no_grad():
        filled = Inpainter(net, options=options).inpaint_tensor(image, mask)
    error = (filled - image) / LEVEL
    core = error[..., 22:42, 22:42]
    return {
        "core_max": float(core.abs().max()),
        "core_blockiness": _second_difference(core),
        "hole_mean": float(error[..., 12:52, 12:52].abs().mean()),
    }


def test_the_demo_policy_fills_a_large_hole_in_smooth_content_smoothly(demo_network):
    """The core, beyond the network's reach, comes back within a few levels with no cells; next to the known
    pixels the small network's own error remains (measured: 0.5 levels mean over the hole, 0.3 at most in the core;
    4.7 mean for the same policy on a network predicting colours itself)."""
    errors = _fill_errors(demo_network, _demo_options())
    assert errors["core_max"] <= 3.0, errors
    assert errors["core_blockiness"] <= 1.0, errors
    assert errors["hole_mean"] <= 6.0, errors


def test_every_policy_tune_tries_passes_and_one_pass_does_not(demo_network):
    """``python -m inpaint.tune`` may store any candidate of its default grid (``conf/tune.yaml``) as the
    checkpoint's default, so each must pass the check above. One pass of the same network fails it: the core is left
    to a network that never saw a hole that wide (measured: 20 levels off in the core, blockiness 33)."""
    grid = yaml.safe_load((CONF_DIR / "tune.yaml").read_text())["grid"]
    for options in option_grid(grid):
        errors = _fill_errors(demo_network, options)
        assert errors["core_max"] <= 3.0 and errors["core_blockiness"] <= 1.0, (options.describe(), errors)
    errors = _fill_errors(demo_network, InferenceOptions())
    assert errors["core_max"] > 3.0 and errors["core_blockiness"] > 1.0, errors


def test_the_networks_own_coarse_passes_do_not(plain_network):
    """What the check above guards against: a network predicting colours itself, the same hole, its recursive
    coarse passes (measured: 176 levels off in the core, 62 on average over the hole)."""
    errors = _fill_errors(plain_network, InferenceOptions())
    assert errors["core_max"] > 3.0 and errors["hole_mean"] > 6.0, errors
