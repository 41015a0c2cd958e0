"""The user's photos: reading them (8 or 16 bits, EXIF orientation, an optional size limit) and writing results.

Reading: :func:`load_photo` decodes any common file to (H, W, 3) uint8 RGB, the photo as it is shown (turned by its
EXIF orientation); an unreadable file, or one over the size limit (checked from the header, before decoding), is one
:class:`~inpaint.io.InputError` naming the file. A 16-bit PNG or TIFF can also be read at full depth
(:func:`load_16_bit`), so that predict fills it at 16 bits.

Writing: :func:`write_photo` picks the format from the file's suffix. Known pixels come back bit-identical in the
:data:`EXACT_FORMATS`; :func:`lossy_output_warning` says when a format will not hold the result exactly. Every write
is atomic (:func:`inpaint.io.atomic_output`).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from inpaint.io import InputError, atomic_output

__all__ = [
    "EXACT_FORMATS",
    "FAST_PNG_LEVEL",
    "SIXTEEN_BIT_FORMATS",
    "check_photo_size",
    "exif_orient",
    "is_16_bit",
    "load_16_bit",
    "load_photo",
    "lossy_output_warning",
    "output_format",
    "preview",
    "write_photo",
    "write_png",
]

log = logging.getLogger(__name__)

# Output formats (PIL's names) that store 8-bit RGB exactly, so known pixels come back bit-identical (checked for
# each by tests/test_predict.py); WebP is written in its lossless mode. Any other format (JPEG, GIF's 256 colours,
# AVIF, ICO ...) is written with a warning. PNG and TIFF also keep 16-bit photos at 16 bits.
EXACT_FORMATS = ("PNG", "TIFF", "BMP", "DIB", "PPM", "TGA", "SGI", "QOI", "JPEG2000", "IM", "PCX", "WEBP")
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"WEBP": {"lossless": True}}
# zlib level of the PNGs written for the page (its download, its previews): level 1 writes a photo several times
# faster than PIL's default 6, for a somewhat larger file (lossless either way).
FAST_PNG_LEVEL = 1
_PIL_OPEN_ERRORS = (OSError, ValueError, SyntaxError, EOFError)


# ---------------------------------------------------------------------------------------------------------- reading


def check_photo_size(width: int, height: int, max_side: int) -> None:
    """Raise :class:`~inpaint.io.InputError` unless the photo's longer side is at most ``max_side`` pixels.

    >>> check_photo_size(4096, 10, max_side=4096)
    >>> check_photo_size(10, 300, max_side=299)
    Traceback (most recent call last):
        ...
    inpaint.io.InputError: The photo is 10x300 pixels; ...
    """
    if max(width, height) > max_side:
        raise InputError(
            f"The photo is {width}x{height} pixels; this page accepts photos up to {max_side} pixels on the longer "
            f"side. Resize it, or restart the page with a larger --max-upload-side."
        )


def load_photo(
    path: str | os.PathLike[str], max_side: int | None = None, *, name: str | None = None
) -> np.ndarray:
    """Decode a photo file to (H, W, 3) uint8 RGB, turned by its EXIF orientation (16-bit files scaled to 8 bits).

    Args:
        path: the file.
        max_side: the largest accepted longer side in pixels, checked from the file's header before decoding (so
            that a huge photo costs no memory); None = any size.
        name: what the user calls the file (an upload's own name). Messages then name only it: neither the path
            nor the decoder's text, which may hold it. Default: the path, and the decoder's reason.

    Raises:
        InputError: the file is not a readable image, or the photo is larger than ``max_side``.
    """
    from inpaint.data.imageio import ImageDecodeError, load_rgb

    path = Path(path)
    if max_side is not None:
        size = _header_size(path, name or str(path), max_side)
        if size is not None:
            check_photo_size(*size, max_side)
    try:
        image = load_rgb(path, name=name)
    except ImageDecodeError as e:
        if name is None:
            raise InputError(str(e)) from None
        log.info("unreadable upload: %s", e)
        raise InputError(
            f"Could not read {name} as an image. Upload a photo file (PNG, JPEG, WebP, BMP or TIFF)."
        ) from None
    if max_side is not None:
        check_photo_size(image.shape[1], image.shape[0], max_side)
    return image


def _header_size(path: Path, name: str, max_side: int) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding the pixels; None when PIL cannot even open it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except Image.DecompressionBombError:
        # PIL refuses to open images of hundreds of megapixels: certainly above any sensible limit.
        raise InputError(
            f"{name} is far larger than this page accepts ({max_side} pixels on the longer side)."
        ) from None
    except _PIL_OPEN_ERRORS:
        return None


def is_16_bit(path: str | os.PathLike[str]) -> bool:
    """Whether an image file stores more than 8 bits per channel (16-bit PNG or TIFF, read from the header)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I;16") or im.mode in ("I", "F"):
                return True
            if im.format == "PNG":
                with path.open("rb") as f:
                    return f.read(25)[24] > 8  # the IHDR chunk's bit depth
            if im.format == "TIFF":
                bits = im.tag_v2.get(258, (8,))
                return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    except (OSError, ValueError, IndexError):
        pass
    return False


def load_16_bit(path: str | os.PathLike[str]) -> np.ndarray | None:
    """A 16-bit photo as (H, W, 3) uint16 RGB, turned by its EXIF orientation as :func:`load_photo` turns it; None
    for 8-bit files (and anything OpenCV does not read as 16-bit)."""
    from inpaint.inference import EXIF_ORIENTATION_TAG

    if not is_16_bit(path):
        return None
    arr = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None or arr.dtype != np.uint16:
        return None
    arr = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr[..., 2::-1]  # BGR(A) -> RGB
    with Image.open(path) as im:
        orientation = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
    return np.ascontiguousarray(exif_orient(arr, orientation))


def exif_orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """``arr`` (H, W, C) turned as PIL's ``ImageOps.exif_transpose`` turns an image with that EXIF orientation.

    >>> a = np.arange(6).reshape(2, 3, 1)
    >>> exif_orient(a, 6)[..., 0]  # 6: a quarter turn clockwise
    array([[3, 0],
           [4, 1],
           [5, 2]])
    """
    transpose = arr.transpose(1, 0, 2)
    return {
        2: arr[:, ::-1],
        3: arr[::-1, ::-1],
        4: arr[::-1],
        5: transpose,
        6: transpose[:, ::-1],
        7: transpose[::-1, ::-1],
        8: transpose[::-1],
    }.get(orientation, arr)


# ---------------------------------------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike[str]) -> str | None:
    """PIL's name of the format a file with this suffix is written in, or None for an unknown suffix.

    >>> output_format("a.PNG"), output_format("b.jpg"), output_format("c.xyz")
    ('PNG', 'JPEG', None)
    """
    return Image.registered_extensions().get(Path(path).suffix.lower())


def lossy_output_warning(output: str | os.PathLike[str], sixteen_bit_input: bool = False) -> str | None:
    """Why ``output``'s format will not hold the result exactly (known pixels changed, or 16 bits cut to 8), or None.

    >>> lossy_output_warning("out.png") is None
    True
    >>> lossy_output_warning("out.jpg")
    'out.jpg: JPEG stores the result with lossy compression, so even the known pixels will differ from the photo; ...'
    """
    fmt = output_format(output)
    if fmt is not None and fmt not in EXACT_FORMATS:
        why = "a palette of 256 colours" if fmt == "GIF" else "lossy compression"
        return (
            f"{output}: {fmt} stores the result with {why}, so even the known pixels will differ from the photo; "
            "write .png (or .tif) to keep them bit-identical"
        )
    if sixteen_bit_input and fmt not in SIXTEEN_BIT_FORMATS:
        return (
            f"{output}: {fmt} holds 8 bits per channel, the photo has 16; write .png or .tif to keep 16 bits"
        )
    return None


def write_photo(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 or uint16 RGB image in the format of ``path``'s suffix, atomically; returns the path.

    uint16 images need a 16-bit format (:data:`SIXTEEN_BIT_FORMATS`). WebP is written lossless.

    Raises:
        OSError: the file cannot be written (or encoded); the message names ``path``.
    """
    path = Path(path)
    if image.dtype == np.uint16:
        ok, data = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(image[..., ::-1]))  # RGB -> BGR
        if not ok:
            raise OSError(f"cannot encode a 16-bit {path.suffix} image for {path}")
        with atomic_output(path) as tmp:
            tmp.write_bytes(data.tobytes())  # through Python, so a full disk is an OSError naming the file
        return path
    fmt = output_format(path)
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **_SAVE_OPTIONS.get(fmt or "", {}))
    return path


def preview(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` (H, W, C) uint8 scaled down (area average) so that its longer side is at most ``side``; returned
    as is when it already fits.

    >>> preview(np.zeros((300, 1200, 3), np.uint8), 600).shape
    (150, 600, 3)
    """
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_png(path: str | os.PathLike[str], image: np.ndarray, compress_level: int = FAST_PNG_LEVEL) -> Path:
    """Write ``image`` (H, W, C) uint8 as a lossless PNG, atomically, with fast compression by default (PIL's
    default level 6 is several times slower on a photo's noise); returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", compress_level=compress_level)
    return path
