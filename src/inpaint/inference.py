"""Inference API: :class:`Inpainter` fills the holes of images of any size with a trained partial-convolution U-Net.

User-facing convention (OpenCV / LaMa): the mask is H x W and **white = hole to fill**; 0/255, 0/1 and bool masks
all work (nonzero = hole), and a grey-level mask (e.g. saved as JPEG) is thresholded at half scale, above
:data:`~inpaint.data.imageio.MASK_THRESHOLD` = 127 of 255, the same level used for every mask file in the project.
Inside the library the mask is float with 1 = valid, 0 = hole; the conversion happens here, at the
boundary, and nowhere else.

Inference policy (why: a hole wider than the network's reach cannot be filled in one pass, and a full-resolution pass
over a 12-megapixel photo needs ~10 GB):

1. **Working resolution.** An image whose longer side exceeds ``max_side`` (default :data:`DEFAULT_MAX_SIDE`) is
   downscaled (area average) so that its longer side is ``max_side``; a working pixel that covers any known pixel is
   known and holds the average of the known pixels it covers. The network runs only at this size, so its memory is
   bounded whatever the photo's size.
2. **Coarser passes for what the network cannot reach.** Partial convolutions output exactly 0 where a window sees
   no valid pixel, so hole pixels farther from every known pixel than the network's reach come out as (0, 0, 0). Those
   are filled by repeating the pass at half the resolution (the image filled so far as input; a coarse pixel is known
   only if everything it covers is filled, so the network, not an average, fills the rest), again and again until the
   network reaches them; the coarse fill is upsampled (bilinear) into the unreached pixels only.
   With ``coarse_beyond=D`` the same coarser pass also fills, first, every hole pixel farther than ``D`` pixels from
   the known ones (a small network's fill is least reliable there); the network then fills the ring of width ``D``
   along the hole's border at full resolution, with that coarse fill as known context.
   With ``poisson_blend=a`` each pass's fill is shifted by ``a`` times a smooth correction that makes it meet the
   known pixels along the hole's border (Poisson blending, see :class:`Inpainter`).
3. **Composite.** The working-resolution fill is upsampled (bilinear) to the full size and used **only in the hole**:
   known pixels are returned bit-identical (with ``grow_hole=G``, each hole first grows by ``G`` pixels at full
   resolution, and the pixels it adds count as hole).

Hole pixels that no pass reaches (only when the known region around them is thinner than the network's reach at
every scale, or with a network that fills nothing) are filled by smooth interpolation of the known pixels (a
pull-push average pyramid), with an :class:`UnfilledHoleWarning`.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from inpaint.checkpoint import load_model, stored_inference_options
from inpaint.data.imageio import MASK_THRESHOLD, binarize_mask
from inpaint.nn.membrane import dilate, downscale_known, harmonic_fill, membrane_fill, upscale

__all__ = [
    "DEFAULT_MAX_SIDE",
    "InferenceOptions",
    "SELF_ENSEMBLE_SIZES",
    "SUSPICIOUS_HOLE_RATIO",
    "Inpainter",
    "SuspiciousMaskWarning",
    "UnfilledHoleWarning",
    "check_hole_mask",
    "hole_mask_to_valid",
    "image_to_uint8_array",
    "mask_to_hole",
    "membrane_fill",
    "pad_to_multiple",
    "suspicious_mask",
]


# Longest side of the working resolution. Measured on the 2-core CPU (benchmarks/RESULTS.md, 8 levels): a 4000x3000
# photo needs 2.0 GB peak RSS (whole process) at 1024 and 3.5 GB at 2048, too close to a 4 GB budget; 1024 is also
# closer to the 256-512 px the network is trained on.
DEFAULT_MAX_SIDE = 1024

# The self-ensemble's transforms (horizontal flip, quarter turns), in the order they are added: 2 = identity and
# mirror, 4 = also both upside down, 8 = all of them. The demo network is trained on all 8 orientations.
DIHEDRAL: tuple[tuple[bool, int], ...] = (
    (False, 0),
    (True, 0),
    (False, 2),
    (True, 2),
    (False, 1),
    (True, 1),
    (False, 3),
    (True, 3),
)
SELF_ENSEMBLE_SIZES = (1, 2, 4, 8)

# A mask with at least this fraction of hole pixels is most likely inverted (black = hole) or not a mask at all: the
# fill then has almost nothing to work from. Such masks are filled, with a SuspiciousMaskWarning (predict and the page
# print it). The masks of training and evaluation stop at 60 % (NVIDIA's largest bin).
SUSPICIOUS_HOLE_RATIO = 0.95


FAR_FILLS = ("network", "smooth")


def _option(help: str, convert: type, valid: Any, expected: str, **argparse_settings: Any) -> Any:
    """A field's metadata: its command-line help, how the flag's text becomes a value, the check of a value
    (``valid(value) -> bool``, ``expected`` says what it wants), other argparse settings."""
    return {"help": help, "convert": convert, "valid": valid, "expected": expected, **argparse_settings}


@dataclass(frozen=True)
class InferenceOptions:
    """How :class:`Inpainter` uses its network beyond one plain pass: one definition of each option, its default,
    its check, its command-line flag and its line in a report (``predict``, the page and ``evaluate`` all use this).

    A checkpoint carries the options that were chosen for it on validation (``python -m inpaint.tune``, or the
    training config's ``model.inference``); :meth:`Inpainter.from_checkpoint` uses them unless told otherwise. The
    defaults here (one plain pass) apply to a checkpoint that carries none.

    Attributes:
        self_ensemble: 1 (default: the network once), or 2, 4, 8: the mean of the network's fills of the image
            under that many flips and quarter turns (:data:`DIHEDRAL`), each undone. Costs that many passes;
            smooths the noise of a small or briefly trained network (measured for the demo: docs/demo.md).
        coarse_beyond: 0 (default, off), or a number of pixels ``D``: hole pixels farther than ``D`` from every
            known pixel (chessboard distance, at the working resolution) are filled by the pass at half the
            resolution, recursively, and the network fills only the ``D``-wide ring along the hole's border (see
            the module docstring). For a network whose deepest level sees less of a large hole than in training
            (the demo: docs/demo.md); a network trained at the working resolution should not need it.
        poisson_blend: 0 (default, off) to 1: strength of a correction added to each pass's fill so that it meets
            the known pixels along the hole's border. The network's error on the known pixels next to the hole,
            ``image - output``, is interpolated across the hole harmonically (Laplace's equation with those values
            on the border, :data:`~inpaint.nn.membrane.HARMONIC_SWEEPS`) and ``poisson_blend`` times it is added
            to the fill; 1 is Poisson blending (the fill keeps its gradients, takes the border's values; Pérez et
            al., 2003). Removes the seams and local colour offsets of a small network (measured for the demo:
            docs/demo.md).
        grow_hole: 0 (default, off), or a number of pixels ``G``: every hole grows by ``G`` pixels (chessboard
            distance, at full resolution) before it is filled, so that the fringe a tight mask leaves around an
            object (its halo, shadow, JPEG ringing) is filled too rather than copied into the fill; the pixels it
            adds are returned filled, not unchanged.

    >>> InferenceOptions(self_ensemble=8, poisson_blend=0.5).describe()
    'self_ensemble=8, poisson_blend=0.5'
    >>> InferenceOptions().describe()
    'one pass of the network'
    >>> InferenceOptions.from_mapping({"self_ensemble": 3}, "demo.ckpt")
    Traceback (most recent call last):
    ...
    ValueError: demo.ckpt: inference option self_ensemble must be one of (1, 2, 4, 8), got 3
    """

    self_ensemble: int = field(
        default=1,
        metadata=_option(
            "mean fill over this many flips / quarter turns of the image: 1 (off), 2, 4 or 8",
            int,
            lambda v: v in SELF_ENSEMBLE_SIZES,
            f"one of {SELF_ENSEMBLE_SIZES}",
            choices=SELF_ENSEMBLE_SIZES,
        ),
    )
    coarse_beyond: int = field(
        default=0,
        metadata=_option(
            "hole pixels farther than this many pixels from the known ones are filled first by the far fill "
            "(--far-fill), the network then fills the ring along the border; 0 = off",
            int,
            lambda v: _is_int(v) and v >= 0,
            "a number of pixels >= 0",
            metavar="PIXELS",
        ),
    )
    far_fill: str = field(
        default="network",
        metadata=_option(
            "what fills the hole beyond --coarse-beyond: 'network' (its pass at half the resolution, recursively) or "
            "'smooth' (a membrane through the known pixels: exact on flat colour and gradients, no cells)",
            str,
            lambda v: v in FAR_FILLS,
            f"one of {FAR_FILLS}",
            choices=FAR_FILLS,
        ),
    )
    poisson_blend: float = field(
        default=0.0,
        metadata=_option(
            "0 (off) to 1: shift each fill so that it meets the known pixels along the hole's border",
            float,
            lambda v: _is_number(v) and 0 <= v <= 1,
            "a number from 0 to 1",
            metavar="STRENGTH",
        ),
    )
    grow_hole: int = field(
        default=0,
        metadata=_option(
            "grow every hole by this many pixels before filling: the halo, shadow or JPEG fringe around an object "
            "that a tight mask leaves behind is filled too; 0 = off",
            int,
            lambda v: _is_int(v) and v >= 0,
            "a number of pixels >= 0",
            metavar="PIXELS",
        ),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.metadata["valid"](value):
                raise ValueError(f"inference option {f.name} must be {f.metadata['expected']}, got {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, source: str | None = None) -> InferenceOptions:
        """Options from a mapping (a checkpoint's, a config's); missing keys take the defaults.

        Raises:
            ValueError: an unknown key or a value out of range, naming ``source`` (a file, a config key).
        """
        values = dict(values or {})
        names = [f.name for f in fields(cls)]
        prefix = f"{source}: " if source else ""
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{prefix}unknown inference option(s) {unknown}; known: {names}")
        if values.get("coarse_beyond", 0) is None:
            values.pop("coarse_beyond")  # None meant "off" before 0 did
        try:
            return cls(**values)
        except ValueError as e:
            raise ValueError(f"{prefix}{e}") from None

    def replace(self, **changes: Any) -> InferenceOptions:
        """A copy with some options changed (``None`` values are ignored: "not given")."""
        given = {k: v for k, v in changes.items() if v is not None}
        return self.from_mapping({**self.to_dict(), **given})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The options that differ from one plain pass, as ``name=value``; a report's and a CLI's line."""
        default = InferenceOptions()
        changed = [
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in self.to_dict().items()
            if v != getattr(default, k)
        ]
        return ", ".join(changed) or "one pass of the network"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One ``--self-ensemble``-style flag per option; unset flags are ``None`` (= the checkpoint's value)."""
        group = parser.add_argument_group("inference options (default: what the checkpoint carries)")
        for f in fields(cls):
            meta = {k: v for k, v in f.metadata.items() if k not in ("valid", "expected")}
            parse = _flag_parser(f.name, meta.pop("convert"))
            group.add_argument(f"--{f.name.replace('_', '-')}", default=None, type=parse, **meta)

    @classmethod
    def overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The options given on a command line parsed with :meth:`add_arguments`."""
        return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}


def _flag_parser(name: str, convert: type) -> Any:
    """argparse ``type`` of an option's flag: the text converted and checked as the options check it, so that a
    bad value is argparse's one-line usage error."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = text  # the check below names what is expected
        try:
            InferenceOptions(**{name: value})
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    parse.__name__ = convert.__name__  # argparse names the type in its messages
    return parse


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class UnfilledHoleWarning(RuntimeWarning):
    """Some hole pixels were reached by no pass of the network; they were filled by interpolation instead."""


class SuspiciousMaskWarning(UserWarning):
    """The mask leaves almost no known pixel (at least :data:`SUSPICIOUS_HOLE_RATIO` of it is hole): probably
    inverted; the fill is made up from the few known pixels."""


def suspicious_mask(hole: np.ndarray, name: str = "mask") -> str | None:
    """A one-sentence warning when at least :data:`SUSPICIOUS_HOLE_RATIO` of ``hole`` is hole, else None.

    Args:
        hole: (H, W) bool array, True = hole.
        name: used in the message (the CLI passes the file name).
    """
    ratio = float(np.mean(hole, dtype=np.float64))
    if ratio < SUSPICIOUS_HOLE_RATIO:
        return None
    known = int(hole.size - np.count_nonzero(hole))
    return (
        f"{name}: {ratio:.1%} of the pixels are holes (only {known} known pixel{'s' * (known != 1)}), at least "
        f"{SUSPICIOUS_HOLE_RATIO:.0%}: the fill is made up from almost nothing. Is the mask inverted? Holes are the "
        f"white (nonzero) pixels"
    )


def check_hole_mask(hole: np.ndarray, name: str = "mask") -> None:
    """Refuse a mask that leaves nothing to do or nothing to work from (the API and the CLI share this check).

    Args:
        hole: (H, W) bool array, True = hole.
        name: used in the message (the CLI passes the file name).

    Raises:
        ValueError: no hole pixel, or no known pixel.
    """
    if not hole.any():
        raise ValueError(f"{name}: mask has no hole pixels (nonzero = hole), nothing to inpaint")
    if hole.all():
        raise ValueError(f"{name}: every pixel is a hole, nothing to inpaint from")


def image_to_uint8_array(image: np.ndarray | Image.Image, name: str = "image") -> np.ndarray:
    """An RGB image as an (H, W, 3) uint8 array.

    Args:
        image: (H, W, 3) uint8 array, or a PIL image of any mode (converted to RGB as image files are; a float
            image must be finite and in [0, 1] or 0..255).
        name: used in error messages.
    """
    if isinstance(image, Image.Image):
        # The same conversion as for image files (16-bit, float, palette ...), so both refuse the same bad images.
        from inpaint.data.imageio import to_rgb_uint8

        return to_rgb_uint8(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"{name} must be an HxWx3 uint8 array or a PIL image, got {arr.dtype} array of shape {arr.shape}"
        )
    return arr


def mask_to_hole(
    mask: np.ndarray | Image.Image, name: str = "mask", threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """The hole of a user mask (white = hole), by the one rule of the API and of mask files (``predict``).

    Args:
        mask: an array of bool, integers (0/1 or 0/255) or floats, (H, W) or (H, W, 1); (H, W, 3) colour; (H, W, 2) or
            (H, W, 4) with alpha last; or a PIL image of any mode. A pixel is white when its brightest colour channel
            is above ``threshold`` on the 0..255 scale (above ``threshold / 255`` for masks on the 0..1 scale, see
            :func:`inpaint.data.imageio.binarize_mask`), so binary masks read as "nonzero = hole". With an alpha
            channel that varies, a pixel counts as it looks on black (colour times opacity); where that is one colour
            everywhere, e.g. black strokes on a transparent layer, the alpha channel is the mask (opaque = hole).
        name: used in error messages.
        threshold: 8-bit level (default :data:`~inpaint.data.imageio.MASK_THRESHOLD`, 127).

    Returns:
        (H, W) bool array, True = hole.
    """
    arr = _mask_array(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ValueError(
            f"{name} must be HxW, HxWx3 or HxWx4 (white = hole), got an array of shape {arr.shape}"
        )
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name} must be numeric or bool, got dtype {arr.dtype}")
    return binarize_mask(_mask_level(arr), threshold)


def _mask_array(mask: np.ndarray | Image.Image) -> np.ndarray:
    """A PIL mask as an array that keeps its alpha channel (RGBA) if it has one, converted as image files are."""
    if not isinstance(mask, Image.Image):
        return np.asarray(mask)
    if mask.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in mask.info:
        return np.asarray(mask.convert("RGBA"))
    from inpaint.data.imageio import to_rgb_uint8

    return to_rgb_uint8(mask)


def _mask_level(arr: np.ndarray) -> np.ndarray:
    """(H, W) brightness of a mask array (see :func:`mask_to_hole`): the brightest colour channel, seen on black
    where an alpha channel varies, or the alpha itself where the colour says nothing."""
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 3:
        return arr.max(axis=2)
    colour, alpha = arr[..., :-1].max(axis=2), arr[..., -1]
    if alpha.min() == alpha.max():
        return colour  # a constant alpha (typically opaque) carries no mask
    opacity = alpha.astype(np.float32) / (255.0 if float(alpha.max()) > 1.0 else 1.0)
    seen = colour.astype(np.float32) * opacity
    return alpha if seen.min() == seen.max() else seen


def hole_mask_to_valid(
    mask: np.ndarray | Image.Image, name: str = "mask", threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """Convert a user mask (white = hole, read by :func:`mask_to_hole`) to the library's convention.

    Returns:
        (H, W) float32 array with 1 = valid (known) pixel, 0 = hole.
    """
    return (~mask_to_hole(mask, name, threshold)).astype(np.float32)


def pad_to_multiple(
    image: torch.Tensor, mask: torch.Tensor, multiple: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Pad on the bottom/right so that H and W are multiples of ``multiple``; the padding is marked as hole.

    Args:
        image: (B, C, H, W).
        mask: (B, 1, H, W), 1 = valid.
        multiple: e.g. ``2**levels``.

    Returns:
        ``(padded image, padded mask, (H, W))`` with the original size for cropping back.
    """
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # The padded pixels' value does not matter: the mask marks them as hole and the network zeroes holes.
        image = F.pad(image, (0, pw, 0, ph), value=0.0)
        mask = F.pad(mask, (0, pw, 0, ph), value=0.0)
    return image, mask, (h, w)


class Inpainter:
    """Fill holes with a partial-convolution U-Net.

    Args:
        model: a network with ``forward(image (B,3,H,W) [0,1], mask (B,1,H,W) 1=valid) -> (B,3,H,W)`` and a
            ``levels`` attribute (H and W must be multiples of ``2**levels``), e.g. :class:`inpaint.models.PConvUNet`.
        device: where to run it.
        config: the model config it was built from (kept for reference / export).
        max_side: longest side of the working resolution (see the module docstring); ``None`` = full resolution.
        options: the :class:`InferenceOptions` (default: one plain pass); keyword arguments (``self_ensemble=8``)
            change single options.

    With a trained model::

        inpainter = Inpainter.from_checkpoint("last.ckpt", device="cpu")
        result = inpainter(image, mask)  # image HxWx3 uint8 (or PIL), mask HxW nonzero = hole

    Shapes: ``inpainter(image, mask)`` takes an (H, W, 3) uint8 array (or a PIL image) and an (H, W) mask with
    white = hole, and returns the same type and size; ``inpaint_tensor(image, mask)`` takes (B, 3, H, W) float in
    [0, 1] and (B, 1, H, W) with 1 = valid and returns (B, 3, H, W) float32. Either way the result is the composite
    ``M * image + (1 - M) * fill``: known pixels come back unchanged. Any H and W work: the network's input is padded
    to a multiple of ``2**levels`` (the padding counts as hole) and cropped back.

    Examples:
        Any module with the U-Net's interface works, here a tiny randomly initialised
        :class:`~inpaint.models.PConvUNet` (its fill is noise, but the contract is the same as for a trained one):

        >>> import numpy as np
        >>> import torch
        >>> from inpaint import Inpainter
        >>> from inpaint.models import PConvUNet
        >>> _ = torch.manual_seed(0)
        >>> inpainter = Inpainter(PConvUNet(levels=3, base_channels=8), device="cpu")
        >>> image = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
        >>> hole = np.zeros((50, 70), dtype=np.uint8)
        >>> hole[10:30, 20:45] = 255  # white = hole to fill
        >>> result = inpainter(image, hole)
        >>> result.shape, result.dtype
        ((50, 70, 3), dtype('uint8'))
        >>> bool((result[hole == 0] == image[hole == 0]).all())  # known pixels: bit-identical
        True

        The batched tensor form, in the library's convention (mask 1 = valid):

        >>> x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, 50, 70) in [0, 1]
        >>> m = torch.from_numpy(hole == 0)[None, None].float()  # (1, 1, 50, 70)
        >>> out = inpainter.inpaint_tensor(x, m)
        >>> out.shape, out.dtype
        (torch.Size([1, 3, 50, 70]), torch.float32)
        >>> torch.equal(out * m, x * m), bool(out.min() >= 0), bool(out.max() <= 1)
        (True, True, True)

        A mask without holes (or without known pixels) is refused:

        >>> inpainter(image, np.zeros((50, 70), dtype=bool))
        Traceback (most recent call last):
            ...
        ValueError: mask: mask has no hole pixels (nonzero = hole), nothing to inpaint
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "cpu",
        config: dict[str, Any] | None = None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        options: InferenceOptions | None = None,
        **option_values: Any,
    ) -> None:
        self.options = (options or InferenceOptions()).replace(**option_values)
        self.device = torch.device(device)
        # channels_last: faster convolutions and less memory (benchmarks/RESULTS.md: 665 -> 585 ms, 416 -> 316 MiB
        # for one 512x512 image on the 2-core CPU), identical outputs.
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.config = dict(config or {})
        levels = getattr(model, "levels", None)
        if not isinstance(levels, int):
            raise TypeError(f"model must expose an integer `levels` attribute, got {levels!r}")
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be a positive number of pixels or None, got {max_side}")
        self.size_multiple = 2**levels
        self.max_side = max_side

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        max_side: int | None = DEFAULT_MAX_SIDE,
        options: InferenceOptions | None = None,
        **option_values: Any,
    ) -> Inpainter:
        """Load a Lightning ``.ckpt`` or an exported ``.safetensors`` safely (see :mod:`inpaint.checkpoint`).

        ``max_side``: longest side of the working resolution (see the module docstring); ``None`` runs the network
        at full resolution (memory grows with the image: ~10 GB for 4000x3000). The inference options are those the
        checkpoint carries (the defaults for one that carries none), unless ``options`` replaces them; keyword
        arguments (``self_ensemble=1`` ...) change single options. ``inpainter.options`` says what is used.
        """
        model, config = load_model(path, map_location="cpu")
        base = options or InferenceOptions.from_mapping(stored_inference_options(path), str(path))
        return cls(model, device=device, config=config, max_side=max_side, options=base, **option_values)

    @torch.inference_mode()
    def inpaint_tensor(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Batched inpainting in the library's convention; any H, W (policy: see the module docstring).

        Args:
            image: (B, 3, H, W) float. Known pixels must be finite and in [0, 1] (a 0-255 image is refused, not
                guessed: divide it by 255); hole pixels may hold anything, NaN and inf included, and are never read.
            mask: (B, 1, H, W) float, 1 = valid, 0 = hole (> 0.5 counts as valid). Every image needs a known pixel.

        Returns:
            (B, 3, H, W) float32 composite on the input's device: the input where mask = 1 (bit-identical), the
            fill in [0, 1] in the holes.

        Raises:
            ValueError: wrong shapes, a NaN in the mask, a non-finite or out-of-range known pixel, an image without
                any known pixel.
        """
        return self._inpaint_tensor(image, mask, self.options.grow_hole)

    def _inpaint_tensor(self, image: torch.Tensor, mask: torch.Tensor, grow_hole: int) -> torch.Tensor:
        out_device = image.device
        image, valid = self._checked(image, mask, grow_hole)
        h, w = image.shape[-2:]
        work = _working_size(h, w, self.max_side)
        if work == (h, w):
            fill = self._fill_hole(image, valid)
        else:
            small, small_valid = downscale_known(image, valid, work, rule="any")
            fill = upscale(self._fill_hole(small, small_valid), (h, w))
        return torch.where(valid, image, fill).to(out_device)

    def _checked(
        self, image: torch.Tensor, mask: torch.Tensor, grow_hole: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated inputs on the model's device: float32 image with zeros in the holes, bool (B, 1, H, W) mask
        with each hole grown by ``grow_hole`` pixels."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(
                f"mask must be (B, 1, {image.shape[-2]}, {image.shape[-1]}), got {tuple(mask.shape)}"
            )
        mask = mask.to(self.device, torch.float32)
        if torch.isnan(mask).any():
            raise ValueError("mask contains NaN; expected 1 = valid, 0 = hole")
        valid = mask > 0.5
        if grow_hole:
            valid = ~dilate(~valid, grow_hole)
        empty = ~valid.flatten(1).any(dim=1)
        if empty.any():
            grown = f" once grow_hole={grow_hole} has grown the holes" if grow_hole else ""
            raise ValueError(
                f"image(s) {empty.nonzero().flatten().tolist()} of the batch have no known pixel{grown}: "
                "nothing to inpaint from"
            )
        image = image.to(self.device, torch.float32)
        finite = torch.isfinite(image).all(dim=1, keepdim=True)
        bad = valid & ~finite
        if bad.any():
            b, _, y, x = bad.nonzero()[0].tolist()
            raise ValueError(
                f"image has {int(bad.sum())} known (non-hole) pixel(s) with NaN or infinite values, the first at "
                f"batch {b}, row {y}, column {x}; only hole pixels may hold anything"
            )
        # Select, don't multiply: NaN * 0 is NaN, so a multiplied-away hole would still poison the network.
        image = torch.where(valid, image, 0.0)
        lo, hi = float(image.amin()), float(image.amax())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"known pixels must be in [0, 1] (the library's convention), found values in [{lo:g}, {hi:g}]"
                + ("; divide a 0-255 image by 255" if hi <= 255.0 and lo >= 0.0 else "")
            )
        return image, valid

    def _fill_hole(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``image`` (zeros in the holes) with every hole pixel filled, at its own resolution."""
        out, done = self._fill(image, valid)
        if not bool(done.all()):
            warnings.warn(
                f"{int((~done).sum())} hole pixel(s) are beyond the network's reach at every scale (the known region "
                "around them is too thin); they were filled by smooth interpolation of the known pixels",
                UnfilledHoleWarning,
                stacklevel=4,
            )
            out = _pull_push(out, done)
        return out

    def _fill(self, image: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's fill where it reaches, then coarser passes for the rest; returns ``(image, filled)``."""
        if bool(known.all()) or not bool(known.any()):
            return image, known
        opts = self.options
        if opts.coarse_beyond:
            # Far from the border: filled first, then context for the network's ring below.
            far = ~known & ~dilate(known, opts.coarse_beyond)
            if opts.far_fill == "smooth":
                image, known = torch.where(far, harmonic_fill(image, known), image), known | far
            else:
                image, known = self._coarser(image, known, far)
        pred, reached = self._predict(image, known)
        if opts.poisson_blend > 0:
            residual = torch.where(known, image - pred, 0.0)
            pred = pred.add_(harmonic_fill(residual, known), alpha=opts.poisson_blend).clamp_(0.0, 1.0)
        out, done = torch.where(known, image, pred), known | reached
        return self._coarser(out, done, ~done)

    def _coarser(
        self, image: torch.Tensor, known: torch.Tensor, wanted: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill the ``wanted`` pixels from a pass at half the resolution; returns ``(image, known | filled)``."""
        h, w = image.shape[-2:]
        if not bool(wanted.any()) or max(h, w) <= 1:
            return image, known
        # A coarse pixel counts as known only if all the pixels it covers are known, so the rest is left to the
        # network (not averaged away) at every scale.
        small, small_known = downscale_known(image, known, ((h + 1) // 2, (w + 1) // 2), rule="all")
        coarse, coarse_done = self._fill(small, small_known)
        # Use an upsampled value only where every coarse pixel that contributes to it was filled.
        usable = wanted & (upscale(coarse_done.float(), (h, w)) >= 1.0 - 1e-6)
        return torch.where(usable, upscale(coarse, (h, w)), image), known | usable

    def _predict(self, image: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's output in [0, 1] and where it reached: all-zero output = no valid pixel in its reach.

        With a self-ensemble, the mean over the transformed copies that reached each pixel.
        """
        padded, padded_mask, (h, w) = pad_to_multiple(image, valid.float(), self.size_multiple)
        total, count = torch.zeros_like(padded), torch.zeros_like(padded_mask)
        cl = torch.channels_last
        for transform in DIHEDRAL[: self.options.self_ensemble]:
            x, m = _dihedral(padded, transform), _dihedral(padded_mask, transform)
            raw = self.model(x.contiguous(memory_format=cl), m.contiguous(memory_format=cl))
            raw = _dihedral(raw.float(), transform, inverse=True)
            reached = (raw != 0).any(dim=1, keepdim=True)
            total += torch.where(reached, raw.clamp(0.0, 1.0), 0.0)
            count += reached
        pred = total / count.clamp_min(1.0)
        return pred[..., :h, :w], (count > 0)[..., :h, :w]

    @overload
    def __call__(
        self, image: Image.Image, mask: np.ndarray | Image.Image, mask_threshold: float = ...
    ) -> Image.Image: ...
    @overload
    def __call__(
        self, image: np.ndarray, mask: np.ndarray | Image.Image, mask_threshold: float = ...
    ) -> np.ndarray: ...

    def __call__(
        self,
        image: np.ndarray | Image.Image,
        mask: np.ndarray | Image.Image,
        mask_threshold: float = MASK_THRESHOLD,
    ) -> np.ndarray | Image.Image:
        """Inpaint one image.

        Args:
            image: (H, W, 3) uint8 RGB array or PIL image; any size (large ones are filled at a working resolution,
                see the module docstring).
            mask: (H, W), white = hole to fill (bool, 0/1, 0/255 or float); (H, W, 3) or (H, W, 4) as a mask file
                read by ``predict``; or a PIL image (the one rule: :func:`mask_to_hole`).
            mask_threshold: 8-bit level above which a mask pixel is white (see :func:`mask_to_hole`).

        Returns:
            The filled image, same size and type as ``image`` (uint8 array or RGB PIL image). Known pixels are
            returned bit-identical.

        Raises:
            ValueError: wrong types or sizes, a mask without holes or without known pixels (as the CLI).

        Warns:
            SuspiciousMaskWarning: at least :data:`SUSPICIOUS_HOLE_RATIO` of the mask is hole (inverted?).
        """
        arr = image_to_uint8_array(image)
        hole = mask_to_hole(mask, threshold=mask_threshold)
        if hole.shape != arr.shape[:2]:
            raise ValueError(
                f"mask is {hole.shape[1]}x{hole.shape[0]} (WxH) but image is {arr.shape[1]}x{arr.shape[0]}"
                + _orientation_note(image, hole.shape)
            )
        check_hole_mask(hole)
        warning = suspicious_mask(hole)
        if warning is not None:
            warnings.warn(
                f"{warning}; invert it if black marks the holes", SuspiciousMaskWarning, stacklevel=2
            )
        hole = self._grown(hole)
        with torch.inference_mode():
            # torch.from_numpy shares memory and warns on read-only arrays (np.asarray(pil_image) is one): copy those.
            pixels = arr if arr.flags.writeable else arr.copy()
            x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
            m = torch.from_numpy(~hole)[None, None].float()
            filled = self._inpaint_tensor(x, m, grow_hole=0)[0].mul_(255.0).round_().clamp_(0, 255)
            filled_u8 = filled.to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        # Copy known pixels from the input bytes, so they are bit-identical whatever the float round trip does.
        out = np.where(hole[..., None], filled_u8, arr)
        return Image.fromarray(out) if isinstance(image, Image.Image) else out

    def _grown(self, hole: np.ndarray) -> np.ndarray:
        """The (H, W) bool hole grown by the ``grow_hole`` option (here, so that the pixels it adds are filled, not
        copied back from the input)."""
        if not self.options.grow_hole:
            return hole
        with torch.inference_mode():
            grown = dilate(torch.from_numpy(hole)[None, None], self.options.grow_hole)[0, 0].numpy()
        if grown.all():
            raise ValueError(
                f"mask: every pixel is a hole once grow_hole={self.options.grow_hole} has grown them"
            )
        return grown


# EXIF orientations (TIFF tag 274) that swap width and height: the photo is shown turned by a quarter.
EXIF_ORIENTATION_TAG = 0x0112
QUARTER_TURN_ORIENTATIONS = (5, 6, 7, 8)


def _orientation_note(image: object, mask_hw: tuple[int, ...]) -> str:
    """A hint for a size mismatch caused by a PIL image's EXIF orientation (the mask drawn on the turned photo)."""
    if not isinstance(image, Image.Image):
        return ""
    orientation = image.getexif().get(EXIF_ORIENTATION_TAG)
    if orientation not in QUARTER_TURN_ORIENTATIONS or tuple(mask_hw) != (image.width, image.height):
        return ""
    return (
        f"; the image's EXIF orientation ({orientation}) shows it turned by a quarter, which is the mask's size: "
        "pass PIL.ImageOps.exif_transpose(image), as predict reads photos"
    )


def _dihedral(x: torch.Tensor, transform: tuple[bool, int], inverse: bool = False) -> torch.Tensor:
    """One of the 8 flips/rotations of the square: a horizontal flip, then ``k`` quarter turns (undone backwards)."""
    flip, k = transform
    if inverse:
        x = torch.rot90(x, -k, dims=(-2, -1))
        return x.flip(-1) if flip else x
    x = x.flip(-1) if flip else x
    return torch.rot90(x, k, dims=(-2, -1))


def _working_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _pull_push(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill the unknown pixels (value 0) by smooth interpolation: average the known pixels into ever coarser images
    until every pixel is covered, then upsample back (a mipmap "pull-push" fill). Needs a known pixel per image."""
    h, w = image.shape[-2:]
    if bool(known.all()) or max(h, w) <= 1:
        return image
    small, small_known = downscale_known(image, known, ((h + 1) // 2, (w + 1) // 2), rule="any")
    return torch.where(known, image, upscale(_pull_push(small, small_known), (h, w)))
