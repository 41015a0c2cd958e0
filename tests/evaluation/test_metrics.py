"""Metric functions on known values and the binned torchmetrics accumulator."""

from __future__ import annotations

import math

import pytest
import torch

from inpaint.data.masks.ratio import BIN_NAMES
from inpaint.evaluation.metrics import (
    MAX_PSNR,
    BinnedImageMetrics,
    l1_per_image,
    psnr_per_image,
    ssim_per_image,
)


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    # Values kept inside [0.2, 0.8] so added noise of small amplitude never clips.
    return 0.2 + 0.6 * torch.rand(3, 3, 32, 40, generator=g)


def test_identical_images(images: torch.Tensor) -> None:
    assert torch.equal(l1_per_image(images, images), torch.zeros(3))
    assert torch.allclose(psnr_per_image(images, images), torch.full((3,), MAX_PSNR))
    assert torch.allclose(ssim_per_image(images, images), torch.ones(3), atol=1e-5)


def test_constant_offset_gives_exact_l1_and_psnr(images: torch.Tensor) -> None:
    pred = images + 0.1  # MSE = 0.01 -> PSNR = 20 dB; L1 = 0.1
    assert torch.allclose(l1_per_image(pred, images), torch.full((3,), 0.1), atol=1e-6)
    assert torch.allclose(psnr_per_image(pred, images), torch.full((3,), 20.0), atol=1e-4)


def test_gaussian_noise_psnr_matches_sigma(images: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(1)
    sigma = 0.05
    noise = sigma * torch.randn(images.shape, generator=g)
    psnr = psnr_per_image(images + noise, images)
    expected = -10 * math.log10(sigma**2)  # 26.02 dB
    assert torch.allclose(psnr, torch.full((3,), expected), atol=0.1)
    # SSIM falls clearly below 1 with noise, and more with more noise.
    s1 = ssim_per_image(images + noise, images)
    s2 = ssim_per_image(images + 2 * noise, images)
    assert (s1 < 0.99).all() and (s2 < s1).all()


def test_per_image_values_are_independent(images: torch.Tensor) -> None:
    pred = images.clone()
    pred[1] += 0.1
    psnr = psnr_per_image(pred, images)
    assert psnr[0] == MAX_PSNR and psnr[2] == MAX_PSNR
    assert abs(psnr[1].item() - 20.0) < 1e-3


def test_half_precision_input_is_computed_in_float32(images: torch.Tensor) -> None:
    out = psnr_per_image((images + 0.1).half(), images.half())
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.full((3,), 20.0), atol=0.05)


def test_metrics_under_bf16_autocast_equal_float32() -> None:
    """Validation runs under the trainer's precision (bf16-mixed in the demo); the metrics must not."""
    from skimage import data

    photo = torch.from_numpy(data.astronaut()[100:228, 150:278].copy()).permute(2, 0, 1)[None].float() / 255
    noisy = (photo + 0.01 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    exact = {f.__name__: f(noisy, photo) for f in (psnr_per_image, ssim_per_image)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = {f.__name__: f(noisy, photo) for f in (psnr_per_image, ssim_per_image)}
    for name, value in exact.items():
        assert torch.allclose(under[name], value, atol=1e-5), (name, under[name], value)


def test_shape_mismatch_raises(images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="same shape"):
        l1_per_image(images, images[:, :, :-1])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        psnr_per_image(images[0], images[0])


def test_binned_metrics_bin_edges_and_overall(images: torch.Tensor) -> None:
    metric = BinnedImageMetrics()
    pred = images.clone()
    pred[0] += 0.1  # 20 dB, L1 0.1
    pred[1] += 0.01  # 40 dB, L1 0.01
    pred[2] += 0.1
    # 0.1 sits on the upper edge of (0.01, 0.1]; 0.10001 goes to (0.1, 0.2]; 0.01 is in no bin. float64, because
    # float32(0.1) is 0.1 + 1.5e-9, past hole_ratio_bin's 1e-9 tolerance.
    metric.update(pred, images, torch.tensor([0.1, 0.10001, 0.01], dtype=torch.float64))
    out = metric.compute()
    assert out["count/01-10"].item() == 1 and out["count/10-20"].item() == 1
    assert abs(out["psnr/01-10"].item() - 20.0) < 1e-3
    assert abs(out["psnr/10-20"].item() - 40.0) < 1e-3
    assert abs(out["l1/10-20"].item() - 0.01) < 1e-6
    # Overall includes the out-of-bin image.
    assert out["count"].item() == 3
    assert abs(out["psnr"].item() - (20 + 40 + 20) / 3) < 1e-3
    assert abs(out["l1"].item() - 0.07) < 1e-6
    for name in BIN_NAMES[2:]:
        assert f"psnr/{name}" not in out and f"count/{name}" not in out


def test_binned_metrics_accumulate_and_reset(images: torch.Tensor) -> None:
    metric = BinnedImageMetrics()
    metric.update(images + 0.1, images, torch.full((3,), 0.35))
    metric.update(images, images, torch.full((3,), 0.35))
    out = metric.compute()
    assert out["count/30-40"].item() == 6
    assert abs(out["l1/30-40"].item() - 0.05) < 1e-6
    assert abs(out["psnr/30-40"].item() - (20 + MAX_PSNR) / 2) < 1e-3
    assert set(out) == {"l1", "psnr", "ssim", "count", "l1/30-40", "psnr/30-40", "ssim/30-40", "count/30-40"}
    metric.reset()
    metric.update(images, images, torch.full((3,), 0.55))
    out = metric.compute()
    assert "count/30-40" not in out and out["count/50-60"].item() == 3


def test_binned_metrics_rejects_wrong_ratio_length(images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="hole_ratio"):
        BinnedImageMetrics().update(images, images, torch.tensor([0.2, 0.3]))


def test_binned_metrics_empty_is_nan() -> None:
    metric = BinnedImageMetrics()
    with pytest.warns(UserWarning):  # torchmetrics warns when compute() precedes update()
        out = metric.compute()
    assert math.isnan(out["psnr"].item()) and out["count"].item() == 0


def test_binned_metrics_extra_and_precomputed_values(images: torch.Tensor) -> None:
    metric = BinnedImageMetrics(extra_metrics=("lpips",))
    ratio = torch.tensor([0.05, 0.05, 0.25], dtype=torch.float64)
    with pytest.raises(ValueError, match="lpips"):
        metric.update(images, images, ratio)
    # Precomputed values are used as given (here deliberately not the true PSNR, to show they are not recomputed).
    metric.update(
        images, images, ratio, precomputed={"lpips": torch.tensor([0.1, 0.3, 0.5]), "psnr": torch.ones(3)}
    )
    out = metric.compute()
    assert abs(out["lpips/01-10"].item() - 0.2) < 1e-6 and abs(out["lpips/20-30"].item() - 0.5) < 1e-6
    assert out["psnr"].item() == 1.0
    assert out["l1"].item() == 0.0  # computed, since not given
