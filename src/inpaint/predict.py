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

Known pixels come back bit-identical in PNG, TIFF, BMP, lossless WebP and the other
:data:`~inpaint.photos.EXACT_FORMATS`; a JPEG or GIF output is written with a warning (lossy compression, 256 colours).
A 16-bit PNG or TIFF photo is filled at 16 bits and written at 16 bits as PNG or TIFF (with a warning for an 8-bit
output format).

This module only parses the arguments and reports: the work is :mod:`inpaint.batch` (pairing, filling, writing),
:mod:`inpaint.photos` and :mod:`inpaint.hole_masks` (the files).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from inpaint.batch import Pair, PathsError, fill_pair, plan_pairs
from inpaint.checkpoint import CheckpointError
from inpaint.cli import console_logging, path_argument
from inpaint.data.imageio import MASK_THRESHOLD
from inpaint.inference import DEFAULT_MAX_SIDE, InferenceOptions
from inpaint.io import InputError, describe_os_error
from inpaint.photos import is_16_bit, lossy_output_warning

__all__ = ["main"]

log = logging.getLogger(__name__)


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 <= value < 255:
        raise argparse.ArgumentTypeError(f"must be in [0, 255), got {text}")
    return value


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
    InferenceOptions.add_arguments(p)
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def _plan(args: argparse.Namespace) -> tuple[list[Pair], list[str]]:
    """The pairs to fill; the checkpoint is checked first, so that a wrong path fails before any work."""
    if not args.checkpoint.exists():
        raise InputError(f"checkpoint not found: {args.checkpoint}")
    return plan_pairs(args.image, args.mask, args.output)


def _load_inpainter(args: argparse.Namespace) -> Any:
    """The model as the flags ask. Raises :class:`CheckpointError`, or RuntimeError/ValueError for the device."""
    from inpaint.inference import Inpainter

    inpainter = Inpainter.from_checkpoint(
        args.checkpoint,
        device=args.device,
        max_side=args.max_side or None,
        **InferenceOptions.overrides(args),
    )
    log.info("inference options: %s", inpainter.options.describe())
    return inpainter


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 some input failed, 2 usage error).

    Errors are one ``error:`` line naming the file; ``--debug`` adds the traceback.
    """
    args = _parser().parse_args(argv)
    console_logging()

    def fail(msg: str, code: int = 1) -> int:
        if args.debug:
            traceback.print_exc()
        print(f"error: {msg}", file=sys.stderr)
        return code

    try:
        pairs, problems = _plan(args)
    except InputError as e:
        return fail(str(e))
    except PathsError as e:
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
            warning = fill_pair(inpainter, pair, args.invert_mask, args.overwrite, args.mask_threshold)
            if warning is not None:
                print(f"warning: {warning}", file=sys.stderr)
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
