"""Inpainting files: photos paired with their masks (one pair, or two folders matched by name), each filled and
written to an output that replaces nothing it should not.

:func:`plan_pairs` turns an ``image`` / ``mask`` / ``output`` triple of paths (files or folders) into :class:`Pair`
s, :func:`fill_pair` fills one pair and writes the result. Masks: white = hole (:func:`inpaint.hole_masks.load_mask`).
A 16-bit PNG or TIFF photo is filled at 16 bits and written so where the output format allows. What ``python -m
inpaint.predict`` does, without its printing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpaint.data.imageio import MASK_THRESHOLD
from inpaint.hole_masks import load_mask
from inpaint.io import InputError, blocking_file
from inpaint.photos import SIXTEEN_BIT_FORMATS, load_16_bit, load_photo, output_format, write_photo

__all__ = ["Pair", "PathsError", "check_output", "fill_pair", "find_pairs", "plan_pairs"]


class PathsError(ValueError):
    """Paths that cannot work together whatever the files hold: an image file with a mask folder, an output that
    cannot be created (a usage error, where :class:`~inpaint.io.InputError` is a problem of one file)."""


@dataclass(frozen=True)
class Pair:
    """A photo, its mask, and where the result goes."""

    image: Path
    mask: Path
    output: Path


def plan_pairs(image: Path, mask: Path, output: Path) -> tuple[list[Pair], list[str]]:
    """The (image, mask, output) pairs that ``image``, ``mask`` and ``output`` name, and the problems found while
    pairing them: two files and an output file (or a folder to write ``<stem>.png`` into), or two folders matched by
    :func:`find_pairs` and an output folder.

    Raises:
        InputError: a missing input, or no image at all in the image folder.
        PathsError: file and folder mixed, an output that cannot be written (a file where a folder should be, an
            unknown format).
    """
    for path, what in ((image, "image"), (mask, "mask")):
        if not path.exists():
            raise InputError(f"{what} not found: {path}")
    if image.is_dir() != mask.is_dir():
        raise PathsError(f"--image and --mask must both be files or both be folders (got {image} and {mask})")
    blocker = blocking_file(output / "x")
    if blocker is not None and blocker != output:
        raise PathsError(f"cannot write {output}: {blocker} is a file, not a folder")
    if image.is_dir():
        if output.exists() and not output.is_dir():
            raise PathsError(f"--output must be a folder when --image is a folder; {output} is a file")
        pairs, problems = find_pairs(image, mask, output)
        if not pairs and not problems:
            raise InputError(f"no images found in {image}")
        return pairs, problems
    out = output / f"{image.stem}.png" if output.is_dir() else output
    if output_format(out) is None:
        raise PathsError(f"cannot write {out}: unknown image format {out.suffix!r} (use e.g. .png)")
    return [Pair(image, mask, out)], []


def find_pairs(image_dir: Path, mask_dir: Path, output_dir: Path) -> tuple[list[Pair], list[str]]:
    """Match images to masks by name.

    An image ``<stem>.<ext>`` takes the mask ``<stem>.<any image ext>`` from ``mask_dir`` or, failing that, the one
    file ``<stem>_mask*.<ext>`` (LaMa's naming). Files named ``*_mask*`` are never treated as images, so masks may
    live in the image folder. Outputs are ``output_dir/<stem>.png``.

    Returns:
        ``(pairs, problems)``: problems name images without a mask (or with several candidates), and images whose
        outputs would collide.

    >>> import tempfile
    >>> photos, masks = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> for path in (photos / "a.jpg", photos / "b.jpg", photos / "c.jpg", masks / "a.png", masks / "b_mask.png"):
    ...     path.touch()
    >>> pairs, problems = find_pairs(photos, masks, Path("out"))
    >>> [(p.image.name, p.mask.name, p.output.as_posix()) for p in pairs]
    [('a.jpg', 'a.png', 'out/a.png'), ('b.jpg', 'b_mask.png', 'out/b.png')]
    >>> [p.split(": ", 1)[1] for p in problems]
    ['no mask named c.<ext> or c_mask*.<ext> in ...']
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


def _images_in(folder: Path) -> list[Path]:
    from inpaint.data.imageio import is_image_file

    return sorted(
        p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    )


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


def check_output(pair: Pair, overwrite: bool = False) -> None:
    """Refuse to replace an existing file (above all the input image or mask) unless ``overwrite``.

    Raises:
        InputError: the output exists (or is a folder); the message says which input it is, if one.
    """
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


def fill_pair(
    inpainter: Any,
    pair: Pair,
    invert_mask: bool = False,
    overwrite: bool = False,
    mask_threshold: float = MASK_THRESHOLD,
) -> str | None:
    """Inpaint one image with its mask and write the result atomically to ``pair.output``.

    A photo with 16 bits per channel (PNG, TIFF) is filled at 16 bits and written so where the output format allows
    (PNG, TIFF); otherwise results are 8-bit RGB.

    Args:
        inpainter: an :class:`~inpaint.inference.Inpainter` (or anything with its call and ``inpaint_tensor``).
        pair: the files.
        invert_mask: the mask marks holes in black instead of white.
        overwrite: replace an existing output file.
        mask_threshold: 8-bit level above which a mask pixel is white.

    Returns:
        A warning for the user (a mask that is almost all hole: most likely inverted), or None. Filled either way.

    Raises:
        InputError: unreadable image or mask, size mismatch, empty or full mask, an existing output file without
            ``overwrite``.
        OSError: the output cannot be written; the message names the output file.
    """
    from inpaint.inference import SuspiciousMaskWarning, suspicious_mask

    check_output(pair, overwrite)
    image = load_photo(pair.image)
    hole = load_mask(pair.mask, invert_mask, mask_threshold)
    if hole.shape != image.shape[:2]:
        raise InputError(
            f"size mismatch: image {pair.image} is {image.shape[1]}x{image.shape[0]} but mask {pair.mask} is "
            f"{hole.shape[1]}x{hole.shape[0]} (WxH){_orientation_hint(pair, hole.shape)}"
        )
    warning = suspicious_mask(hole, str(pair.mask))
    if warning is not None:
        warning += f"; {'drop' if invert_mask else 'pass'} --invert-mask if black marks the holes"
    deep = load_16_bit(pair.image) if output_format(pair.output) in SIXTEEN_BIT_FORMATS else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SuspiciousMaskWarning)  # returned, in the words of the tool's flags
        if deep is not None and deep.shape[:2] == hole.shape:
            write_photo(pair.output, _fill_16_bit(inpainter, deep, hole))
        else:
            write_photo(pair.output, inpainter(image, hole))
    return warning


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


def _fill_16_bit(inpainter: Any, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill a (H, W, 3) uint16 photo at 16-bit precision; known pixels are copied from the input."""
    import torch

    x = torch.from_numpy(image.astype(np.float32) / 65535.0).permute(2, 0, 1)[None]
    m = torch.from_numpy(~hole)[None, None].float()
    fill = inpainter.inpaint_tensor(x, m)[0].permute(1, 2, 0).cpu().numpy()
    filled = np.rint(np.clip(fill, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return np.where(hole[..., None], filled, image)
