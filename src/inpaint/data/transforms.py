"""Image augmentation pipelines (albumentations) built from ``conf/data`` keys, plus the pre-crop steps.

Only images go through these pipelines; masks are generated at the crop size and never augmented here, so their
polarity and binariness cannot change. Randomness comes from a NumPy generator handed to the pipeline per sample
(:func:`apply_transform`), so results do not depend on the worker that runs them.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

# albumentations checks PyPI for a newer version at import; the default experiment must run offline and quietly.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402

from inpaint.data.config import TransformConfig, from_mapping  # noqa: E402

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}
TRAIN_CROPS = ("random_crop", "random_resized_crop", "scaled_crop", "resize_random_crop", "resize")
EVAL_CROPS = ("center_crop", "resize_center_crop", "resize", "resize_random_crop")
SMALL_IMAGE_MODES = ("resize", "pad", "skip")


class ImageTooSmallError(ValueError):
    """An image is smaller than the crop and ``small_images=skip``."""


def _interp(name: str) -> int:
    if name not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {name!r}")
    return INTERPOLATIONS[name]


class ScaledSquareCrop(A.ImageOnlyTransform):
    """A random square crop whose side is a random fraction of the image's shorter side, resized to ``size``.

    The fraction is drawn log-uniformly from ``scale`` (so each octave of zoom is equally likely): with
    ``scale=(0.25, 1.0)`` a crop shows anything from a quarter of the shorter side (fine detail) to the whole
    shorter side (the photo downscaled), without ever stretching the aspect ratio.

    Args:
        size: output side in pixels.
        scale: ``(low, high)`` fractions of the shorter side, ``0 < low <= high <= 1``.
        interpolation: OpenCV flag used to resize the crop.
    """

    def __init__(
        self, size: int, scale: tuple[float, float] = (0.25, 1.0), interpolation: int = cv2.INTER_AREA
    ) -> None:
        super().__init__(p=1.0)
        low, high = float(scale[0]), float(scale[1])
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scaled_crop scale must satisfy 0 < low <= high <= 1, got {scale}")
        self.size, self.scale, self.interpolation = int(size), (low, high), interpolation

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        frac = math.exp(self.py_random.uniform(math.log(self.scale[0]), math.log(self.scale[1])))
        side = max(1, min(h, w, round(min(h, w) * frac)))
        y0 = self.py_random.randint(0, h - side)
        x0 = self.py_random.randint(0, w - side)
        return {"box": (y0, x0, side)}

    def apply(self, img: np.ndarray, box: tuple[int, int, int], **params: Any) -> np.ndarray:
        y0, x0, side = box
        crop = img[y0 : y0 + side, x0 : x0 + side]
        if side == self.size:
            return np.ascontiguousarray(crop)
        interp = self.interpolation if side > self.size else cv2.INTER_CUBIC  # area averaging only shrinks
        return cv2.resize(crop, (self.size, self.size), interpolation=interp)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("size", "scale", "interpolation")


def build_transform(
    spec: TransformConfig | Mapping[str, Any], image_size: int, *, train: bool, interpolation: str = "area"
) -> A.Compose:
    """The albumentations pipeline of a split. Input: (H, W, 3) uint8 with both sides >= ``image_size``.

    Args:
        spec: a :class:`~inpaint.data.config.TransformConfig` (or a mapping that becomes one): train ``crop`` one of
            :data:`TRAIN_CROPS` (default ``random_crop``), eval ``crop`` one of :data:`EVAL_CROPS` (default
            ``center_crop``); eval crops are fixed, each sample's random draws coming from its index.
        image_size: output side.
        train: training pipeline (crops, flips, rotations) or evaluation pipeline (crops only).
        interpolation: resampling of resize-based crops.

    Returns:
        ``A.Compose`` producing (image_size, image_size, 3) uint8.
    """
    cfg = from_mapping(TransformConfig, spec, "train_transform" if train else "val_transform")
    interp = _interp(interpolation)
    if train:
        ops = _train_crop(cfg, int(image_size), interp)
        if cfg.hflip > 0:
            ops.append(A.HorizontalFlip(p=cfg.hflip))
        if cfg.rotate90 > 0:
            ops.append(A.RandomRotate90(p=cfg.rotate90))
    else:
        ops = _eval_crop(cfg, int(image_size), interp)
    return A.Compose(ops)


def _train_crop(cfg: TransformConfig, s: int, interp: int) -> list[A.BasicTransform]:
    crop = cfg.crop or "random_crop"
    if crop == "random_crop":
        return [A.RandomCrop(height=s, width=s)]
    if crop == "random_resized_crop":
        return [A.RandomResizedCrop(size=(s, s), scale=cfg.scale, ratio=cfg.ratio, interpolation=interp)]
    if crop == "scaled_crop":
        return [ScaledSquareCrop(s, cfg.side_fraction, interp)]
    if crop == "resize_random_crop":
        return [A.SmallestMaxSize(max_size=s, interpolation=interp), A.RandomCrop(height=s, width=s)]
    if crop == "resize":
        return [A.Resize(height=s, width=s, interpolation=interp)]
    raise ValueError(f"train_transform.crop must be one of {TRAIN_CROPS}, got {crop!r}")


def _eval_crop(cfg: TransformConfig, s: int, interp: int) -> list[A.BasicTransform]:
    crop = cfg.crop or "center_crop"
    if crop == "center_crop":
        return [A.CenterCrop(height=s, width=s)]
    if crop == "resize_center_crop":
        return [A.SmallestMaxSize(max_size=s, interpolation=interp), A.CenterCrop(height=s, width=s)]
    if crop == "resize":
        return [A.Resize(height=s, width=s, interpolation=interp)]
    if crop == "resize_random_crop":
        short = int(cfg.short_side or s)
        if short < s:
            raise ValueError(f"val_transform.short_side must be >= the crop size {s}, got {short}")
        return [A.SmallestMaxSize(max_size=short, interpolation=interp), A.RandomCrop(height=s, width=s)]
    raise ValueError(f"val_transform.crop must be one of {EVAL_CROPS}, got {crop!r}")


def apply_transform(transform: A.Compose, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Run ``transform`` on one image with randomness drawn from ``rng`` only.

    Args:
        image: (H, W, 3) uint8.

    Returns:
        The transformed (h, w, 3) uint8 image.
    """
    transform.set_random_state(rng, random.Random(int(rng.integers(1 << 62))))
    return transform(image=image)["image"]


def center_square_crop(image: np.ndarray, side: int) -> np.ndarray:
    """Central ``side`` x ``side`` crop (clipped to the image), e.g. CelebA's 178² face crop of 178x218 images."""
    h, w = image.shape[:2]
    side = min(int(side), h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return image[y0 : y0 + side, x0 : x0 + side]


def ensure_min_size(
    image: np.ndarray, size: int, mode: str = "resize", *, interpolation: str = "cubic"
) -> np.ndarray:
    """Make both sides at least ``size``: ``resize`` (upscale keeping aspect), ``pad`` (reflect) or ``skip``.

    Args:
        image: (H, W, 3) uint8.

    Raises:
        ImageTooSmallError: with ``mode="skip"`` when the image is smaller than ``size`` (the dataset skips it).
    """
    h, w = image.shape[:2]
    if h >= size and w >= size:
        return image
    if mode == "resize":
        f = size / min(h, w)
        nh, nw = max(size, round(h * f)), max(size, round(w * f))
        return cv2.resize(image, (nw, nh), interpolation=_interp(interpolation))
    if mode == "pad":
        ph, pw = max(0, size - h), max(0, size - w)
        border = cv2.BORDER_REFLECT_101 if min(h, w) > 1 else cv2.BORDER_REPLICATE
        return cv2.copyMakeBorder(image, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2, border)
    if mode == "skip":
        raise ImageTooSmallError(
            f"image of {w}x{h} is smaller than the crop size {size} (data.small_images=skip)"
        )
    raise ValueError(f"small_images must be one of {SMALL_IMAGE_MODES}, got {mode!r}")
