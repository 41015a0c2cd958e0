"""Command line inpainting: ``python -m inpaint.predict`` (console script ``inpaint-predict``).

One image::

    python -m inpaint.predict -c last.ckpt -i photo.jpg -m photo_mask.png -o filled.png

Folders (masks matched to images by name: ``a.jpg`` <- ``a.png`` or ``a_mask*.png``)::

    python -m inpaint.predict -c last.ckpt -i images/ -m masks/ -o results/

Masks: **white = hole to fill** (OpenCV / LaMa); 0/255 and 0/1 files both work, and grey levels count as white above
127 of 255 (``--mask-threshold``), the one threshold the project uses for every mask file, so a mask saved as JPEG
does not get speckled holes; colour masks count by their brightest channel, and a mask drawn only in its alpha channel
(opaque strokes on a transparent layer) is read from it; the API reads arrays by the same rule. ``--invert-mask`` for
masks where black marks the holes; a mask that is at least 95 % hole (:data:`~inpaint.inference.SUSPICIOUS_HOLE_RATIO`)
is filled with a warning that suggests it. Outputs are written atomically (temporary file + rename) and never replace
an existing file (an input photo in particular, e.g. ``-o photo.png -i photo.png`` or ``-o`` = the input folder)
unless ``--overwrite`` is given. A bad input (missing or unreadable file, size mismatch, a mask without holes or with
nothing but holes, an existing output, an output that cannot be written) is reported in one ``error:`` line with its
file name (``--debug`` adds the traceback); in folder mode the other pairs are still processed, and the exit status is
1 if anything failed. Large photos are filled at a working resolution (``--max-side``, see :mod:`inpaint.inference`).

Known pixels come back bit-identical in PNG, TIFF, BMP, lossless WebP and the other :data:`EXACT_FORMATS`; a JPEG or
GIF output is written with a warning (lossy compression, 256 colours). A 16-bit PNG or TIFF photo is filled at 16 bits
and written at 16 bits as PNG or TIFF (with a warning for an 8-bit output format).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpaint.checkpoint import CheckpointError
from inpaint.data.imageio import MASK_THRESHOLD
from inpaint.inference import DEFAULT_MAX_SIDE, INFERENCE_DEFAULTS, SELF_ENSEMBLE_SIZES
from inpaint.io import atomic_output, blocking_file, describe_os_error

__all__ = [
    "EXACT_FORMATS",
    "InputError",
    "add_inference_options",
    "check_output",
    "find_pairs",
    "inference_options",
    "load_mask",
    "lossy_output_warning",
    "main",
    "path_argument",
    "predict_pair",
]

log = logging.getLogger(__name__)

# Output formats (PIL's names) that store 8-bit RGB exactly, so known pixels come back bit-identical (checked for
# each by tests/test_predict.py); WebP is written in its lossless mode. Any other format (JPEG, GIF's 256 colours,
# AVIF, ICO ...) is written with a warning. PNG and TIFF also keep 16-bit photos at 16 bits.
EXACT_FORMATS = ("PNG", "TIFF", "BMP", "DIB", "PPM", "TGA", "SGI", "QOI", "JPEG2000", "IM", "PCX", "WEBP")
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"WEBP": {"lossless": True}}


class InputError(ValueError):
    """An input image or mask cannot be used; the message names the file."""


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path
    output: Path


def load_mask(path: Path, invert: bool = False, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """Read a mask file as an (H, W) bool array, True = hole, by the API's rule
    (:func:`inpaint.inference.mask_to_hole`: a white pixel, or a dark one with ``invert``; a mask drawn only in the
    alpha channel is read from it).

    Raises:
        InputError: unreadable file, or a mask without holes or without known pixels (the API's check).
    """
    from inpaint.inference import check_hole_mask, mask_to_hole

    pixels = _mask_pixels(path)
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


def _load_image(path: Path) -> np.ndarray:
    from inpaint.data.imageio import ImageDecodeError, load_rgb

    try:
        return load_rgb(path)
    except ImageDecodeError as e:
        raise InputError(str(e)) from None


def predict_pair(
    inpainter: object,
    pair: Pair,
    invert_mask: bool = False,
    overwrite: bool = False,
    mask_threshold: float = MASK_THRESHOLD,
) -> Path:
    """Inpaint one image with its mask and write the result atomically; returns the output path.

    A photo with 16 bits per channel (PNG, TIFF) is filled at 16 bits and written so where the output format allows
    (PNG, TIFF); otherwise results are 8-bit RGB.

    Raises:
        InputError: unreadable image or mask, size mismatch, empty or full mask, an existing output file without
            ``overwrite``.
        OSError: the output cannot be written; the message names the output file.
    """
    from inpaint.inference import SuspiciousMaskWarning, suspicious_mask

    check_output(pair, overwrite)
    image = _load_image(pair.image)
    hole = load_mask(pair.mask, invert_mask, mask_threshold)
    if hole.shape != image.shape[:2]:
        raise InputError(
            f"size mismatch: image {pair.image} is {image.shape[1]}x{image.shape[0]} but mask {pair.mask} is "
            f"{hole.shape[1]}x{hole.shape[0]} (WxH){_orientation_hint(pair, hole.shape)}"
        )
    warning = suspicious_mask(hole, str(pair.mask))
    if warning is not None:
        flag = "drop --invert-mask" if invert_mask else "pass --invert-mask"
        print(f"warning: {warning}; {flag} if black marks the holes", file=sys.stderr)
    deep = _load_16_bit(pair.image) if _output_format(pair.output) in SIXTEEN_BIT_FORMATS else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SuspiciousMaskWarning)  # printed above, with the CLI's flag
        if deep is not None and deep.shape[:2] == hole.shape:
            _write_16_bit(pair.output, _fill_16_bit(inpainter, deep, hole))
        else:
            _write(pair.output, inpainter(image, hole))  # type: ignore[operator]
    return pair.output


def _orientation_hint(pair: Pair, mask_hw: tuple[int, ...]) -> str:
    """Why the sizes may differ: a photo shown turned by its EXIF orientation, the mask drawn on the stored one."""
    from inpaint.inference import EXIF_ORIENTATION_TAG, QUARTER_TURN_ORIENTATIONS

    try:
        with Image.open(pair.image) as im:
            orientation, stored = im.getexif().get(EXIF_ORIENTATION_TAG), im.size
    except OSError:
        return ""
    if orientation not in QUARTER_TURN_ORIENTATIONS or tuple(mask_hw) != stored[::-1]:
        return ""
    return (
        f"; the photo's EXIF orientation ({orientation}) turns it by a quarter, and predict uses photos as they are "
        f"shown, while the mask matches the stored, unturned {stored[0]}x{stored[1]} pixels: turn the mask the same "
        "way (or save the photo without its orientation tag)"
    )


def _output_format(path: Path) -> str | None:
    return Image.registered_extensions().get(path.suffix.lower())


def lossy_output_warning(output: Path, sixteen_bit_input: bool = False) -> str | None:
    """Why ``output``'s format will not hold the result exactly (known pixels changed, or 16 bits cut to 8), or None."""
    fmt = _output_format(output)
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


def _write(path: Path, image: np.ndarray) -> None:
    fmt = _output_format(path)
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **_SAVE_OPTIONS.get(fmt or "", {}))


def is_16_bit(path: Path) -> bool:
    """Whether an image file stores more than 8 bits per channel (16-bit PNG or TIFF, read from the header)."""
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


def _load_16_bit(path: Path) -> np.ndarray | None:
    """A 16-bit photo as (H, W, 3) uint16 RGB, turned by its EXIF orientation as :func:`load_rgb` does; None for
    8-bit files (and anything OpenCV does not read as 16-bit)."""
    import cv2

    if not is_16_bit(path):
        return None
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None or arr.dtype != np.uint16:
        return None
    arr = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr[..., 2::-1]  # BGR(A) -> RGB
    with Image.open(path) as im:
        orientation = im.getexif().get(0x0112, 1)
    return np.ascontiguousarray(_exif_orient(arr, orientation))


def _exif_orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """``arr`` (H, W, C) turned as PIL's ``ImageOps.exif_transpose`` turns an image with that EXIF orientation."""
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


def _fill_16_bit(inpainter: Any, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill a (H, W, 3) uint16 photo at 16-bit precision; known pixels are copied from the input."""
    import torch

    x = torch.from_numpy(image.astype(np.float32) / 65535.0).permute(2, 0, 1)[None]
    m = torch.from_numpy(~hole)[None, None].float()
    fill = inpainter.inpaint_tensor(x, m)[0].permute(1, 2, 0).cpu().numpy()
    filled = np.rint(np.clip(fill, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return np.where(hole[..., None], filled, image)


def _write_16_bit(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, data = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(image[..., ::-1]))  # RGB -> BGR
    if not ok:
        raise OSError(f"cannot encode a 16-bit {path.suffix} image for {path}")
    with atomic_output(path) as tmp:
        tmp.write_bytes(data.tobytes())  # through Python, so a full disk is an OSError naming the file


def check_output(pair: Pair, overwrite: bool = False) -> None:
    """Refuse to replace an existing file (above all the input image or mask) unless ``overwrite``."""
    if overwrite or not pair.output.exists():
        return
    out = pair.output.resolve()
    role = next(
        (f" (the input {r})" for r, p in (("image", pair.image), ("mask", pair.mask)) if p.resolve() == out),
        "",
    )
    kind = "a folder" if pair.output.is_dir() else "exists"
    raise InputError(
        f"{pair.output}: {kind}{role}; not replacing it. Choose another --output, or pass --overwrite to replace it"
    )


def _images_in(folder: Path) -> list[Path]:
    from inpaint.data.imageio import is_image_file

    return sorted(
        p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    )


def find_pairs(image_dir: Path, mask_dir: Path, output_dir: Path) -> tuple[list[Pair], list[str]]:
    """Match images to masks by name.

    An image ``<stem>.<ext>`` takes the mask ``<stem>.<any image ext>`` from ``mask_dir`` or, failing that, the one
    file ``<stem>_mask*.<ext>`` (LaMa's naming). Files named ``*_mask*`` are never treated as images, so masks may
    live in the image folder. Outputs are ``output_dir/<stem>.png``.

    Returns:
        ``(pairs, problems)``: problems name images without a mask (or with several candidates), and images whose
        outputs would collide.
    """
    masks = _images_in(mask_dir)
    by_stem: dict[str, list[Path]] = {}
    for m in masks:
        by_stem.setdefault(m.stem, []).append(m)
    pairs: list[Pair] = []
    problems: list[str] = []
    for image in _images_in(image_dir):
        if "_mask" in image.stem:
            continue
        exact = [m for m in by_stem.get(image.stem, []) if m.resolve() != image.resolve()]
        candidates = exact or [m for m in masks if m.stem.startswith(f"{image.stem}_mask")]
        if len(candidates) == 1:
            pairs.append(Pair(image, candidates[0], output_dir / f"{image.stem}.png"))
        elif not candidates:
            problems.append(
                f"{image}: no mask named {image.stem}.<ext> or {image.stem}_mask*.<ext> in {mask_dir}"
            )
        else:
            names = ", ".join(c.name for c in candidates)
            problems.append(f"{image}: several masks match ({names}); keep one")
    return _without_shared_outputs(pairs, problems)


def _without_shared_outputs(pairs: list[Pair], problems: list[str]) -> tuple[list[Pair], list[str]]:
    """Drop images that would be written to the same file (``a.jpg`` and ``a.png`` both give ``a.png``)."""
    by_output: dict[Path, list[Pair]] = {}
    for pair in pairs:
        by_output.setdefault(pair.output, []).append(pair)
    for output, group in by_output.items():
        if len(group) > 1:
            names = ", ".join(str(p.image) for p in group)
            problems.append(f"{names}: would all be written to {output}; rename all but one")
    return [p for p in pairs if len(by_output[p.output]) == 1], problems


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 <= value < 255:
        raise argparse.ArgumentTypeError(f"must be in [0, 255), got {text}")
    return value


def _pixels(text: str) -> int:
    """argparse type: a positive whole number of pixels."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text!r}")
    return int(text)


def _strength(text: str) -> float:
    """argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Add the :class:`~inpaint.inference.Inpainter`'s inference options as flags (predict and the app share
    them); :func:`inference_options` reads them back."""
    parser.add_argument(
        "--self-ensemble",
        type=int,
        choices=SELF_ENSEMBLE_SIZES,
        default=INFERENCE_DEFAULTS["self_ensemble"],
        help="average the fills of 1, 2, 4 or 8 flipped / rotated copies of the image (that many times slower; "
        "default 1)",
    )
    parser.add_argument(
        "--coarse-beyond",
        type=_pixels,
        default=INFERENCE_DEFAULTS["coarse_beyond"],
        metavar="PIXELS",
        help="fill hole pixels farther than PIXELS from the known ones at half resolution, and let the network fill "
        "only the ring along the hole's border (default: off)",
    )
    parser.add_argument(
        "--poisson-blend",
        type=_strength,
        default=INFERENCE_DEFAULTS["poisson_blend"],
        metavar="STRENGTH",
        help="shift each fill towards the known pixels along the hole's border by a smooth (harmonic) correction; "
        "1 = Poisson blending, 0 = off (default)",
    )


def inference_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :meth:`Inpainter.from_checkpoint <inpaint.inference.Inpainter.from_checkpoint>`
    given by :func:`add_inference_options`' flags."""
    return {name: getattr(args, name) for name in INFERENCE_DEFAULTS}


def path_argument(text: str) -> Path:
    """argparse type of the CLIs' paths: a non-empty path (``Path("")`` would be the working directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def _side(text: str) -> int:
    """argparse type for --max-side: 0 (full resolution) or a positive number of pixels."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(
            f"must be 0 (full resolution) or a positive number of pixels, got {text!r}"
        )
    return int(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inpaint-predict",
        description="Fill the holes of images with a trained partial-convolution U-Net. "
        "Masks: nonzero (white) = hole to fill.",
    )
    p.add_argument(
        "-c",
        "--checkpoint",
        required=True,
        type=path_argument,
        help="Lightning .ckpt or exported .safetensors",
    )
    p.add_argument(
        "-i", "--image", required=True, type=path_argument, help="image file, or a folder of images"
    )
    p.add_argument(
        "-m",
        "--mask",
        required=True,
        type=path_argument,
        help="mask file, or a folder of masks matched by name",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=path_argument,
        help="output file (one image) or folder (folders / one image); .png or .tif keep known pixels exact "
        "(and 16-bit photos at 16 bits), JPEG and GIF do not",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    p.add_argument(
        "--invert-mask", action="store_true", help="masks mark holes in black (zero) instead of white"
    )
    p.add_argument(
        "--mask-threshold",
        type=_threshold,
        default=MASK_THRESHOLD,
        help=f"8-bit level above which a mask pixel is white (default {MASK_THRESHOLD}: JPEG noise in a mask "
        "does not become holes; 0 = any nonzero pixel). 0/1 masks are scaled to 0/255 first",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (by default an existing file, e.g. an input photo, is never replaced)",
    )
    p.add_argument(
        "--max-side",
        type=_side,
        default=DEFAULT_MAX_SIDE,
        help=f"longest side of the working resolution: larger photos are filled downscaled and composited back at "
        f"full resolution (default {DEFAULT_MAX_SIDE}; 0 = full resolution, memory grows with the photo)",
    )
    add_inference_options(p)
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


class _UsageError(Exception):
    """Arguments that cannot work together; exit status 2."""


def _plan(args: argparse.Namespace) -> tuple[list[Pair], list[str]]:
    """The (image, mask, output) pairs to process and the problems found while pairing them.

    Raises:
        InputError: a missing input or no image at all (exit status 1).
        _UsageError: file and folder mixed, an output path that cannot be written (exit status 2).
    """
    image, mask, output = args.image, args.mask, args.output
    for path, what in ((args.checkpoint, "checkpoint"), (image, "image"), (mask, "mask")):
        if not path.exists():
            raise InputError(f"{what} not found: {path}")
    if image.is_dir() != mask.is_dir():
        raise _UsageError(
            f"--image and --mask must both be files or both be folders (got {image} and {mask})"
        )
    blocker = blocking_file(output / "x")
    if blocker is not None and blocker != output:
        raise _UsageError(f"cannot write {output}: {blocker} is a file, not a folder")
    if image.is_dir():
        if output.exists() and not output.is_dir():
            raise _UsageError(f"--output must be a folder when --image is a folder; {output} is a file")
        pairs, problems = find_pairs(image, mask, output)
        if not pairs and not problems:
            raise InputError(f"no images found in {image}")
        return pairs, problems
    out = output / f"{image.stem}.png" if output.is_dir() else output
    if _output_format(out) is None:
        raise _UsageError(f"cannot write {out}: unknown image format {out.suffix!r} (use e.g. .png)")
    return [Pair(image, mask, out)], []


def _load_inpainter(args: argparse.Namespace) -> Any:
    """The model as the flags ask. Raises :class:`CheckpointError`, or RuntimeError/ValueError for the device."""
    from inpaint.inference import Inpainter

    return Inpainter.from_checkpoint(
        args.checkpoint, device=args.device, max_side=args.max_side or None, **inference_options(args)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 some input failed, 2 usage error).

    Errors are one ``error:`` line naming the file; ``--debug`` adds the traceback.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def fail(msg: str, code: int = 1) -> int:
        if args.debug:
            traceback.print_exc()
        print(f"error: {msg}", file=sys.stderr)
        return code

    try:
        pairs, problems = _plan(args)
    except InputError as e:
        return fail(str(e))
    except _UsageError as e:
        return fail(str(e), 2)
    if len(pairs) == 1 and not args.image.is_dir():
        warning = lossy_output_warning(pairs[0].output, is_16_bit(pairs[0].image))
        if warning is not None:
            print(f"warning: {warning}", file=sys.stderr)
    try:
        inpainter = _load_inpainter(args)
    except CheckpointError as e:
        return fail(str(e))
    except (RuntimeError, ValueError) as e:  # e.g. an unavailable device
        return fail(f"cannot set up the model on device {args.device!r}: {e}")
    log.info("model: %s", args.checkpoint)

    written = 0
    for pair in pairs:
        try:
            predict_pair(inpainter, pair, args.invert_mask, args.overwrite, args.mask_threshold)
            written += 1
            log.info("%s + %s -> %s", pair.image, pair.mask, pair.output)
        except InputError as e:
            problems.append(str(e))
            fail(str(e))
        except OSError as e:  # the output could not be written: permissions, a full disk, a read-only disk
            problems.append(f"cannot write {describe_os_error(e)}")
            fail(problems[-1])
    if problems:
        print(f"{written} written, {len(problems)} failed:", file=sys.stderr)
        for msg in problems:
            print(f"  - {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
