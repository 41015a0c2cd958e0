"""inpaint.hole_masks: the hole the user painted in the page's editor (alpha = hole, at the photo's resolution).
Mask files (white = hole) are tested through predict's command line (``test_predict.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint.hole_masks import ALPHA_HOLE_THRESHOLD, hole_mask_from_editor
from inpaint.io import InputError

H, W = 37, 53


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def painted_layer(
    hole: np.ndarray, alpha: int = 255, color: tuple[int, int, int] = (255, 0, 255)
) -> np.ndarray:
    """An editor layer (RGBA) with paint of ``alpha`` where ``hole``; RGB is 0 under alpha 0, as the canvas exports."""
    layer = np.zeros((*hole.shape, 4), np.uint8)
    layer[hole] = (*color, alpha)
    return layer


def editor_value(image: np.ndarray, *layers: np.ndarray) -> dict[str, object]:
    return {"background": np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]), "layers": list(layers)}


def test_mask_is_where_a_layer_has_paint(image: np.ndarray, tiny) -> None:
    hole = tiny.hole_mask(H, W, 0.2, seed=1) > 0
    assert np.array_equal(hole_mask_from_editor(editor_value(image, painted_layer(hole)), (H, W)), hole)
    # The colour does not matter, the alpha does: semi-transparent paint counts, faint eraser residue does not.
    assert np.array_equal(
        hole_mask_from_editor(editor_value(image, painted_layer(hole, 150, (0, 0, 0))), (H, W)), hole
    )
    residue = painted_layer(~hole, ALPHA_HOLE_THRESHOLD)
    assert np.array_equal(
        hole_mask_from_editor(editor_value(image, painted_layer(hole), residue), (H, W)), hole
    )


def test_mask_is_the_union_of_layers(image: np.ndarray, tiny) -> None:
    a = tiny.hole_mask(H, W, 0.1, seed=2) > 0
    b = tiny.hole_mask(H, W, 0.1, seed=3) > 0
    assert np.array_equal(
        hole_mask_from_editor(editor_value(image, painted_layer(a), painted_layer(b)), (H, W)), a | b
    )


def test_mask_from_a_scaled_canvas_is_resized_to_the_photo(image: np.ndarray) -> None:
    small = np.zeros((H, W), bool)
    small[10:20, 5:30] = True
    big = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)  # the canvas at twice the photo's size
    out = hole_mask_from_editor(editor_value(image, painted_layer(big)), (H, W))
    assert out.dtype == bool and np.array_equal(out, small)


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "no photo in the editor"),
        ({"background": None, "layers": []}, "no photo in the editor"),
        ("empty", "Nothing is painted"),
        ("rgb", "Nothing is painted"),
        ("all", "The whole photo is painted"),
    ],
)
def test_mask_errors(image: np.ndarray, value: object, message: str) -> None:
    if value == "empty":
        value = editor_value(image, painted_layer(np.zeros((H, W), bool)))
    elif value == "rgb":  # a layer without alpha cannot hold strokes
        value = editor_value(image, np.full((H, W, 3), 255, np.uint8))
    elif value == "all":
        value = editor_value(image, painted_layer(np.ones((H, W), bool)))
    with pytest.raises(InputError, match=message):
        hole_mask_from_editor(value, (H, W))  # type: ignore[arg-type]
