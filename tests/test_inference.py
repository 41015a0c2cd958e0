"""The Inpainter API: any size, known pixels untouched, mask polarity and dtypes, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _eval_fixtures import box_hole_mask, make_tiny_checkpoint
from inpaint import Inpainter
from inpaint.inference import hole_mask_to_valid, pad_to_multiple


@pytest.fixture(scope="module")
def inpainter(tmp_path_factory: pytest.TempPathFactory) -> Inpainter:
    return Inpainter.from_checkpoint(
        make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "t.ckpt"), device="cpu"
    )


H, W = 37, 53  # odd, and not multiples of 2**levels: exercises padding cheaply


@pytest.fixture
def odd_image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_odd_size_same_shape_and_known_pixels_bit_identical(inpainter: Inpainter) -> None:
    image = np.random.default_rng(0).integers(0, 256, (301, 457, 3), dtype=np.uint8)
    hole = box_hole_mask(301, 457, 0.3, seed=1) > 0
    out = inpainter(image, hole)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], image[~hole])
    assert not np.array_equal(out[hole], image[hole])


def test_small_odd_size(inpainter: Inpainter, odd_image: np.ndarray) -> None:
    hole = box_hole_mask(H, W, 0.3, seed=1) > 0
    out = inpainter(odd_image, hole)
    assert out.shape == odd_image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], odd_image[~hole])
    # The holes were really filled by the network, not left as they were.
    assert not np.array_equal(out[hole], odd_image[hole])


@pytest.mark.parametrize("kind", ["uint8_255", "uint8_1", "bool", "float", "pil"])
def test_mask_encodings_agree(inpainter: Inpainter, odd_image: np.ndarray, kind: str) -> None:
    hole = box_hole_mask(H, W, 0.2, seed=2) > 0
    reference = inpainter(odd_image, hole)
    mask = {
        "uint8_255": hole.astype(np.uint8) * 255,
        "uint8_1": hole.astype(np.uint8),
        "bool": hole,
        "float": hole.astype(np.float32),
        "pil": Image.fromarray(hole.astype(np.uint8) * 255),
    }[kind]
    assert np.array_equal(inpainter(odd_image, mask), reference)


def test_pil_in_pil_out(inpainter: Inpainter, odd_image: np.ndarray) -> None:
    hole = box_hole_mask(H, W, 0.2, seed=3)
    out = inpainter(Image.fromarray(odd_image), hole)
    assert isinstance(out, Image.Image) and out.size == (W, H) and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), inpainter(odd_image, hole))


def test_hole_content_does_not_matter(inpainter: Inpainter, odd_image: np.ndarray) -> None:
    hole = box_hole_mask(H, W, 0.3, seed=4) > 0
    other = odd_image.copy()
    other[hole] = 0
    assert np.array_equal(inpainter(odd_image, hole), inpainter(other, hole))


def test_empty_mask_returns_image_unchanged(inpainter: Inpainter, odd_image: np.ndarray) -> None:
    out = inpainter(odd_image, np.zeros((H, W), np.uint8))
    assert np.array_equal(out, odd_image) and out is not odd_image


def test_bad_inputs(inpainter: Inpainter, odd_image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=f"mask is {W}x{H - 1} .* image is {W}x{H}"):
        inpainter(odd_image, np.ones((H - 1, W), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        inpainter(odd_image.astype(np.float32), np.ones((H, W), np.uint8))
    with pytest.raises(ValueError, match="HxW"):
        inpainter(odd_image, np.ones((H, W, 3), np.uint8))


def test_inpaint_tensor_matches_unpadded_model(inpainter: Inpainter) -> None:
    """On a size that needs no padding the API is exactly composite(model(x, m))."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 72, generator=g)
    m = (torch.rand(2, 1, 64, 72, generator=g) > 0.3).float()
    with torch.no_grad():
        raw = inpainter.model(x, m).clamp(0, 1)
    expected = m * x + (1 - m) * raw
    assert torch.allclose(inpainter.inpaint_tensor(x, m), expected, atol=1e-6)


def test_padding_is_hole() -> None:
    x = torch.rand(1, 3, 5, 9)
    m = torch.ones(1, 1, 5, 9)
    px, pm, size = pad_to_multiple(x, m, 8)
    assert px.shape[-2:] == (8, 16) and size == (5, 9)
    assert pm[..., :5, :9].eq(1).all() and pm[..., 5:, :].eq(0).all() and pm[..., :, 9:].eq(0).all()


def test_hole_mask_to_valid_polarity() -> None:
    assert hole_mask_to_valid(np.array([[0, 255], [1, 0]], np.uint8)).tolist() == [[1, 0], [0, 1]]
    assert hole_mask_to_valid(np.array([[[True], [False]]])).tolist() == [[0, 1]]


def test_export_loads_identically(inpainter: Inpainter, odd_image: np.ndarray, tmp_path: Path) -> None:
    from inpaint.checkpoint import save_weights

    out = save_weights(tmp_path / "w.safetensors", inpainter.model, inpainter.config)
    again = Inpainter.from_checkpoint(out)
    hole = box_hole_mask(H, W, 0.25, seed=5)
    assert np.array_equal(again(odd_image, hole), inpainter(odd_image, hole))
