"""Robust image decoding: any common file to an RGB ``uint8`` array, or a clear :class:`ImageDecodeError`.

Grayscale, alpha, palette, CMYK, 16-bit and float images are all converted to 8-bit RGB, so the rest of the
pipeline sees one format. Unreadable, zero-byte and truncated files raise :class:`ImageDecodeError` naming the file;
callers decide whether to skip (datasets) or stop (CLIs).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
    ".gif",
)

_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,  # PIL raises it for some malformed headers
    EOFError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
)


class ImageDecodeError(ValueError):
    """An image file (or in-memory encoded image) could not be decoded."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_rgb(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> np.ndarray:
    """Decode an image to RGB.

    Args:
        source: a file path, or the encoded bytes of an image (e.g. read from a tar shard).
        name: what to call the image in error messages (defaults to the path, or ``"<bytes>"``).

    Returns:
        (H, W, 3) ``uint8`` array. 16-bit images are scaled to 8 bits, alpha is dropped, EXIF rotation is applied.

    Raises:
        ImageDecodeError: the data is empty, not an image, truncated or otherwise undecodable.
    """
    label = (
        name if name is not None else ("<bytes>" if isinstance(source, bytes | bytearray) else str(source))
    )
    if isinstance(source, bytes | bytearray):
        if len(source) == 0:
            raise ImageDecodeError(f"{label}: empty data (0 bytes), expected an encoded image")
        fp: io.BytesIO | str = io.BytesIO(source)
    else:
        path = os.fspath(source)
        try:
            size = os.path.getsize(path)
        except OSError as err:
            raise ImageDecodeError(f"{label}: cannot read file ({err})") from err
        if size == 0:
            raise ImageDecodeError(f"{label}: zero-byte file, expected an encoded image")
        fp = path
    try:
        with warnings.catch_warnings():
            # PIL warns (rather than fails) on some damaged files; we want an error we can count.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                img.load()  # decode everything now: truncated files fail here, not later in a transform
                img = ImageOps.exif_transpose(img) or img
                return to_rgb_uint8(img)
    except _DECODE_ERRORS as err:
        raise ImageDecodeError(f"{label}: cannot decode image ({type(err).__name__}: {err})") from err
    except Image.DecompressionBombWarning as err:
        raise ImageDecodeError(f"{label}: image too large to decode safely ({err})") from err


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to (H, W, 3) uint8 RGB (as :func:`load_rgb` does after decoding).

    Raises:
        ValueError: a float image with NaN/inf pixels or values outside [0, 1] and 0..255.
    """
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy()
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            gray = _float_gray_to_255(arr)
        elif mode.startswith("I;16") or int(arr.max(initial=0)) > 255:
            gray = np.clip(arr.astype(np.float64), 0, 65535) / 257.0  # 65535 -> 255
        else:
            gray = np.clip(arr, 0, 255).astype(np.float64)
        gray8 = np.rint(gray).astype(np.uint8)
        return np.repeat(gray8[:, :, None], 3, axis=2)
    if mode in ("P", "PA") and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL recommends going through RGBA for palettes with transparency
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _float_gray_to_255(arr: np.ndarray) -> np.ndarray:
    """A float image on the 0..255 scale: [0, 1] images are scaled up, 0..255 ones kept.

    Anything else is refused (raised as :class:`ValueError`, reported as undecodable): a NaN or infinite pixel (the
    old ``nanmax`` scale guess turned one ``+inf`` into an all-black image), or values outside both ranges.
    """
    if not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise ValueError(
            f"float image has {bad} NaN or infinite pixel(s); expected finite values in [0, 1] or 0..255"
        )
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo < 0.0 or hi > 255.0:
        raise ValueError(f"float image values span [{lo:g}, {hi:g}]; expected [0, 1] or 0..255")
    return arr.astype(np.float64) * (255.0 if hi <= 1.0 else 1.0)


MASK_THRESHOLD = 127
"""8-bit level above which a mask pixel counts as white (a hole in user-facing masks, everywhere in the project).

Half of full scale rather than "nonzero", so that a mask saved as JPEG, or resized with interpolation, does not turn
its faint compression noise into speckled holes. Binary masks (0/255, 0/1, bool) are read the same either way.
"""


def binarize_mask(level: np.ndarray, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """True where a mask is white: ``level > threshold`` on the 0..255 scale.

    Masks whose largest value is at most 1 (bool, 0/1 integers, floats in [0, 1]) are on the 0..1 scale, so there
    the test is ``level > threshold / 255``; this keeps 0/1 masks working with any threshold below 255.

    Args:
        level: (H, W) bool or numeric array.
        threshold: 8-bit level, 0 <= threshold < 255 (0 means "nonzero").

    Returns:
        (H, W) bool array.

    >>> binarize_mask(np.array([[0, 3, 128, 255]], dtype=np.uint8)).tolist()
    [[False, False, True, True]]
    >>> binarize_mask(np.array([[0, 1]]), threshold=200).tolist()
    [[False, True]]
    """
    if not 0 <= threshold < 255:
        raise ValueError(f"mask threshold must be in [0, 255), got {threshold}")
    arr = np.asarray(level)
    if arr.dtype == np.bool_:
        return arr.copy()
    peak = float(arr.max(initial=0))
    return arr > (threshold / 255.0 if peak <= 1.0 else threshold)


def read_binary_image(
    path: str | os.PathLike[str] | bytes, *, name: str | None = None, threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """Read a mask-like image and threshold it with :func:`binarize_mask` on its brightest colour channel.

    Args:
        path: file path or encoded bytes.
        name: label for error messages.
        threshold: 8-bit level above which a pixel is white (default :data:`MASK_THRESHOLD`).

    Returns:
        (H, W) bool array, ``True`` = white pixel. No polarity is implied; callers map white to hole or valid.
    """
    return binarize_mask(load_rgb(path, name=name).max(axis=2), threshold)
