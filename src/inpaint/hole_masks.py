"""Hole masks from the user, as (H, W) bool arrays with True = hole: from a mask file (white = hole, the project's
one threshold) and from the strokes painted in the page's editor (alpha = hole).

The rule for a mask's pixels is the API's (:func:`inpaint.inference.mask_to_hole`); this module adds reading the file,
and messages that name the file and say what it holds when it cannot be used. The library's own convention (float,
1 = valid) starts at :class:`~inpaint.inference.Inpainter`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from inpaint.data.imageio import MASK_THRESHOLD
from inpaint.io import InputError

__all__ = ["ALPHA_HOLE_THRESHOLD", "hole_mask_from_editor", "load_mask"]

# Stroke pixels whose alpha is at most this are not hole: the eraser and the brush's anti-aliased rim can leave
# near-invisible alpha that the user does not see as paint.
ALPHA_HOLE_THRESHOLD = 8


def load_mask(
    path: str | os.PathLike[str], invert: bool = False, threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """Read a mask file as an (H, W) bool array, True = hole, by the API's rule
    (:func:`inpaint.inference.mask_to_hole`: a white pixel, or a dark one with ``invert``; a mask drawn only in the
    alpha channel is read from it).

    Raises:
        InputError: unreadable file, or a mask without holes or without known pixels (the API's check); the message
            names the file and says what it holds.
    """
    from inpaint.inference import check_hole_mask, mask_to_hole

    pixels = _mask_pixels(Path(path))
    hole = mask_to_hole(pixels, str(path), threshold)
    hole = ~hole if invert else hole
    try:
        check_hole_mask(hole, str(path))
    except ValueError as e:
        raise InputError(f"{e}{_uniform_mask_hint(pixels, hole, invert, threshold)}") from None
    return hole


def _mask_pixels(path: Path) -> np.ndarray:
    """The mask file as (H, W, 3) uint8, or (H, W, 4) when it has an alpha channel (decoded as photos are)."""
    from inpaint.data.imageio import ImageDecodeError, load_rgb

    try:
        colour = load_rgb(path)
    except ImageDecodeError as e:
        raise InputError(str(e)) from None
    with Image.open(path) as im:  # decodable: load_rgb just did
        if not (im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info):
            return colour
        from PIL import ImageOps

        alpha = np.asarray((ImageOps.exif_transpose(im) or im).convert("RGBA"))[..., 3]
    return np.dstack([colour, alpha])


def _uniform_mask_hint(pixels: np.ndarray, hole: np.ndarray, invert: bool, threshold: float) -> str:
    """What the mask holds when it has no hole or no known pixel. Never ``--invert-mask``: inverting a mask that
    is one colour everywhere gives the other failure."""
    from inpaint.inference import _mask_level

    peak = float(np.max(_mask_level(pixels)))
    if not hole.any() and not invert and 0 < peak <= threshold:
        return (
            f" (its brightest pixel is level {peak:g} of 255, not above --mask-threshold {threshold:g}: lower the "
            "threshold if those pixels are holes)"
        )
    colour = "dark pixels (--invert-mask)" if invert else "white pixels"
    return f" (holes are its {colour}, and {'it has none' if not hole.any() else 'it has nothing else'})"


def hole_mask_from_editor(value: dict[str, Any] | None, shape: tuple[int, int]) -> np.ndarray:
    """The painted hole as an (H, W) bool array (True = hole) at the photo's resolution.

    Args:
        value: the page's image editor value ``{"background", "layers", "composite"}`` with RGBA numpy layers. The
            hole is wherever any layer has paint (alpha above :data:`ALPHA_HOLE_THRESHOLD`), whatever its colour.
        shape: the photo's (H, W). Layers of another size (a canvas that scaled the photo) are resized to it with
            nearest-neighbour sampling, so the mask stays binary.

    Raises:
        InputError: no photo in the editor, nothing painted, or the whole photo painted.

    A stroke painted on a half-size preview of a 4x6 photo:

    >>> layer = np.zeros((2, 3, 4), np.uint8)
    >>> layer[0, 1, 3] = 255  # opaque paint
    >>> hole_mask_from_editor({"background": np.zeros((2, 3, 4), np.uint8), "layers": [layer]}, (4, 6)).astype(int)
    array([[0, 0, 1, 1, 0, 0],
           [0, 0, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0]])
    """
    if not value or value.get("background") is None:
        raise InputError("There is no photo in the editor: upload a photo or pick a sample first.")
    hole = np.zeros(shape, dtype=bool)
    for layer in value.get("layers") or []:
        arr = np.asarray(layer)
        if arr.ndim != 3 or arr.shape[2] != 4:
            continue  # a layer without alpha carries no strokes we can tell apart from the photo
        painted = arr[..., 3] > ALPHA_HOLE_THRESHOLD
        if painted.shape != shape:
            painted = cv2.resize(painted.view(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        hole |= painted
    if not hole.any():
        raise InputError(
            "Nothing is painted: paint over the part of the photo to fill with the brush, then run."
        )
    if hole.all():
        raise InputError("The whole photo is painted: leave some of it unpainted for the fill to start from.")
    return hole
