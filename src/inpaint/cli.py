"""What the command-line tools share (predict, export, the page): argument types that turn a bad value into
argparse's one-line usage error, and the :class:`~inpaint.inference.Inpainter`'s inference flags.

The tools themselves only parse their arguments and call the library; nothing here reads or writes a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from inpaint.inference import INFERENCE_DEFAULTS, SELF_ENSEMBLE_SIZES

__all__ = ["add_inference_options", "inference_options", "path_argument", "pixels", "strength"]


def path_argument(text: str) -> Path:
    """argparse type of the tools' paths: a non-empty path (``Path("")`` would be the working directory).

    >>> path_argument("photos/a.png").parts
    ('photos', 'a.png')
    >>> path_argument(" ")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must not be empty
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def pixels(text: str) -> int:
    """argparse type: a positive whole number of pixels.

    >>> pixels("12")
    12
    >>> pixels("0")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must be a positive number of pixels, got '0'
    """
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text!r}")
    return int(text)


def strength(text: str) -> float:
    """argparse type: a number from 0 to 1.

    >>> strength("0.75")
    0.75
    >>> strength("nan")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must be a number from 0 to 1, got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Add the :class:`~inpaint.inference.Inpainter`'s inference options as flags (predict and the page share
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
        type=pixels,
        default=INFERENCE_DEFAULTS["coarse_beyond"],
        metavar="PIXELS",
        help="fill hole pixels farther than PIXELS from the known ones at half resolution, and let the network fill "
        "only the ring along the hole's border (default: off)",
    )
    parser.add_argument(
        "--poisson-blend",
        type=strength,
        default=INFERENCE_DEFAULTS["poisson_blend"],
        metavar="STRENGTH",
        help="shift each fill towards the known pixels along the hole's border by a smooth (harmonic) correction; "
        "1 = Poisson blending, 0 = off (default)",
    )


def inference_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :meth:`Inpainter.from_checkpoint <inpaint.inference.Inpainter.from_checkpoint>`
    given by :func:`add_inference_options`' flags."""
    return {name: getattr(args, name) for name in INFERENCE_DEFAULTS}
