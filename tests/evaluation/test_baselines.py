"""OpenCV Telea / Navier–Stokes baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaint.evaluation.baselines import BASELINES, inpaint_membrane, inpaint_opencv_batch
from inpaint.evaluation.metrics import psnr_per_image


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_fills_holes_and_keeps_known_pixels(method: str, tiny) -> None:
    img = tiny.photos(1, 64)[0]
    hole = tiny.hole_mask(64, 64, 0.2, seed=0) > 0
    out = BASELINES[method](img, hole, 3)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], img[~hole])
    assert not np.array_equal(out[hole], img[hole])


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_smooth_image_is_recovered_closely(method: str) -> None:
    """A linear ramp is what diffusion-style inpainting reconstructs well: far better than a gray fill."""
    y, x = np.mgrid[0:64, 0:64]
    ramp = np.stack([x * 3, y * 3, (x + y) * 1.5], axis=-1).astype(np.uint8)
    img = torch.from_numpy(ramp).permute(2, 0, 1)[None].float() / 255
    mask = torch.ones(1, 1, 64, 64)
    mask[..., 24:40, 24:40] = 0
    out = inpaint_opencv_batch(img, mask, method)
    gray = mask * img + (1 - mask) * 0.5
    assert psnr_per_image(out, img).item() > psnr_per_image(gray, img).item() + 10


def test_batch_keeps_float_known_pixels_exactly() -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 32, 32, generator=g)  # not on the uint8 grid
    mask = (torch.rand(2, 1, 32, 32, generator=g) > 0.2).float()
    out = inpaint_opencv_batch(img, mask, "telea")
    assert out.shape == img.shape and out.dtype == torch.float32
    assert torch.equal(out * mask, img * mask)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        inpaint_opencv_batch(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8), "patchmatch")


def test_the_membrane_fills_a_hole_with_a_weighted_mean_of_its_border() -> None:
    # Left half black, right half white, a hole across the edge: every fill value lies between the border's
    # colours, and along each row it rises from the black side to the white side (no cast, no overshoot).
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, 20:] = 255
    hole = np.zeros((20, 40), bool)
    hole[5:15, 10:30] = True
    out = inpaint_membrane(image, hole)
    assert (out[~hole] == image[~hole]).all()
    row = out[10, 10:30, 0].astype(int)
    assert (np.diff(row) >= 0).all() and row[0] < 100 and row[-1] > 155
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # grey in, grey out
    assert "membrane" in BASELINES
