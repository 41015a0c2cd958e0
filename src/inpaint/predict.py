"""Command line inpainting: ``python -m inpaint.predict`` (console script ``inpaint-predict``).

One image::

    python -m inpaint.predict -c last.ckpt -i photo.jpg -m photo_mask.png -o filled.png

Folders (masks matched to images by name: ``a.jpg`` <- ``a.png`` or ``a_mask*.png``)::

    python -m inpaint.predict -c last.ckpt -i images/ -m masks/ -o results/

Masks: **white = hole to fill** (OpenCV / LaMa); 0/255 and 0/1 files both work, and grey levels count as white above
127 of 255 (``--mask-threshold``), the one threshold the project uses for every mask file, so a mask saved as JPEG
does not get speckled holes. ``--invert-mask`` for masks where black marks the holes. Outputs are written atomically
(temporary file + rename) and never replace an existing file (an input photo in particular, e.g.
``-o photo.png -i photo.png`` or ``-o`` = the input folder) unless ``--overwrite`` is given. A bad input (missing or unreadable file, size mismatch, a mask without holes or with nothing
but holes, an existing output) is reported with its file name; in folder mode the other pairs are still processed, and
the exit status is 1 if anything failed. Large photos are filled at a working resolution (``--max-side``, see
:mod:`inpaint.inference`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpaint.checkpoint import CheckpointError
from inpaint.data.imageio import MASK_THRESHOLD
from inpaint.inference import DEFAULT_MAX_SIDE, INFERENCE_DEFAULTS, SELF_ENSEMBLE_SIZES
from inpaint.io import atomic_output

__all__ = [
    "InputError",
    "add_inference_options",
    "check_output",
    "find_pairs",
    "inference_options",
    "load_mask",
    "main",
    "predict_pair",
]

log = logging.getLogger(__name__)


class InputError(ValueError):
    """An input image or mask cannot be used; the message names the file."""


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path
    output: Path


def load_mask(path: Path, invert: bool = False, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """Read a mask file as an (H, W) bool array, True = hole: a white pixel (brightest channel above ``threshold``
    of 255; above ``threshold / 255`` in a 0/1 file), or a dark one with ``invert``.

    Raises:
        InputError: unreadable file, or a mask without holes or without known pixels (the API's check).
    """
    from inpaint.data.imageio import ImageDecodeError, read_binary_image
    from inpaint.inference import check_hole_mask

    try:
        hole = read_binary_image(path, threshold=threshold)
    except ImageDecodeError as e:
        raise InputError(str(e)) from None
    hole = ~hole if invert else hole
    try:
        check_hole_mask(hole, str(path))
    except ValueError as e:
        if not hole.any():
            hint = "" if invert else "; if your masks mark holes in black, pass --invert-mask"
            hint = (
                f" (holes are {'dark' if invert else 'white'} pixels, threshold {threshold:g} of 255){hint}"
            )
        else:
            hint = f" ({'drop' if invert else 'pass'} --invert-mask if black marks the holes)"
        raise InputError(f"{e}{hint}") from None
    return hole


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

    Raises:
        InputError: unreadable image or mask, size mismatch, empty or full mask, an existing output file without
            ``overwrite``.
    """
    check_output(pair, overwrite)
    image = _load_image(pair.image)
    hole = load_mask(pair.mask, invert_mask, mask_threshold)
    if hole.shape != image.shape[:2]:
        raise InputError(
            f"size mismatch: image {pair.image} is {image.shape[1]}x{image.shape[0]} but mask {pair.mask} is "
            f"{hole.shape[1]}x{hole.shape[0]} (WxH)"
        )
    result = inpainter(image, hole)  # type: ignore[operator]
    with atomic_output(pair.output) as tmp:
        Image.fromarray(result).save(tmp)
    return pair.output


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inpaint-predict",
        description="Fill the holes of images with a trained partial-convolution U-Net. "
        "Masks: nonzero (white) = hole to fill.",
    )
    p.add_argument(
        "-c", "--checkpoint", required=True, type=Path, help="Lightning .ckpt or exported .safetensors"
    )
    p.add_argument("-i", "--image", required=True, type=Path, help="image file, or a folder of images")
    p.add_argument(
        "-m", "--mask", required=True, type=Path, help="mask file, or a folder of masks matched by name"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="output file (one image) or folder (folders / one image)",
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
        type=int,
        default=DEFAULT_MAX_SIDE,
        help=f"longest side of the working resolution: larger photos are filled downscaled and composited back at "
        f"full resolution (default {DEFAULT_MAX_SIDE}; 0 = full resolution, memory grows with the photo)",
    )
    add_inference_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 some input failed, 2 usage error)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def fail(msg: str, code: int = 1) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return code

    image, mask, output = args.image, args.mask, args.output
    for path, what in ((args.checkpoint, "checkpoint"), (image, "image"), (mask, "mask")):
        if not path.exists():
            return fail(f"{what} not found: {path}")
    if image.is_dir() != mask.is_dir():
        return fail(f"--image and --mask must both be files or both be folders (got {image} and {mask})", 2)
    if image.is_dir():
        if output.exists() and not output.is_dir():
            return fail(f"--output must be a folder when --image is a folder; {output} is a file", 2)
        pairs, problems = find_pairs(image, mask, output)
        if not pairs and not problems:
            return fail(f"no images found in {image}")
    else:
        out = output / f"{image.stem}.png" if output.is_dir() else output
        if out.suffix.lower() not in Image.registered_extensions():
            return fail(f"cannot write {out}: unknown image format {out.suffix!r} (use e.g. .png)", 2)
        pairs, problems = [Pair(image, mask, out)], []

    from inpaint.inference import Inpainter

    try:
        inpainter = Inpainter.from_checkpoint(
            args.checkpoint,
            device=args.device,
            max_side=args.max_side or None,
            **inference_options(args),
        )
    except CheckpointError as e:
        return fail(str(e))
    except (RuntimeError, ValueError) as e:  # e.g. an unavailable device
        return fail(f"cannot set up the model on device {args.device!r}: {e}")

    written = 0
    for pair in pairs:
        try:
            predict_pair(inpainter, pair, args.invert_mask, args.overwrite, args.mask_threshold)
            written += 1
            log.info("%s + %s -> %s", pair.image, pair.mask, pair.output)
        except (
            InputError,
            OSError,
        ) as e:  # OSError: the output could not be written (permissions, disk full)
            problems.append(str(e))
            print(f"error: {e}", file=sys.stderr)
    if problems:
        print(f"{written} written, {len(problems)} failed:", file=sys.stderr)
        for msg in problems:
            print(f"  - {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
