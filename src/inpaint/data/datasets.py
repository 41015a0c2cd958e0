"""Map-style inpainting dataset: image records + a mask provider + an augmentation pipeline -> sample dicts.

A sample is ``{"image": (3, S, S) float [0, 1], "mask": (1, S, S) float 1 = valid, "hole_ratio": () float32,
"key": source path, "mask_key": where the mask came from}``. Sample ``i`` of epoch ``e`` is a pure function of
``(seed, split, e, i)`` — crops, flips and masks alike — so it does not depend on worker count or rank. Validation
and test ignore the epoch (fixed crops and fixed masks).

Unreadable images (zero-byte, truncated, not an image) are skipped: a warning names the file, a counter shared
with the worker processes is incremented, and the next record takes its place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from inpaint.data._rng import STREAM_TAGS, rng_for
from inpaint.data.imageio import ImageDecodeError, load_rgb
from inpaint.data.masks.factory import MaskProvider
from inpaint.data.sources import ImageRecord
from inpaint.data.transforms import ImageTooSmallError, apply_transform, center_square_crop, ensure_min_size

log = logging.getLogger(__name__)

_IMAGE_TAG = 0x494D4147  # separates image-augmentation draws from mask draws of the same (epoch, index)
MAX_WORKER_SLOTS = 256
_WARN_LIMIT = 20  # per process: after this many skip warnings, only the counter keeps counting


class SkipCounter:
    """Counts skipped images across DataLoader workers without locks.

    A shared-memory int64 tensor with one slot per process (main = slot 0, worker ``w`` = slot ``w + 1``): each
    process only writes its own slot, so increments cannot race; the main process reads the sum.
    """

    def __init__(self) -> None:
        self._slots = torch.zeros(MAX_WORKER_SLOTS + 1, dtype=torch.int64).share_memory_()

    def add(self, n: int = 1) -> None:
        info = get_worker_info()
        slot = 0 if info is None else 1 + info.id % MAX_WORKER_SLOTS
        self._slots[slot] += n

    @property
    def total(self) -> int:
        return int(self._slots.sum())


class SharedEpoch:
    """An epoch number written by the main process and read by (persistent) workers through shared memory."""

    def __init__(self, epoch: int = 0) -> None:
        self._value = torch.full((1,), int(epoch), dtype=torch.int64).share_memory_()

    def set(self, epoch: int) -> None:
        self._value[0] = int(epoch)

    def get(self) -> int:
        return int(self._value[0])


class DecodePolicy:
    """What happens to an image between decoding and the augmentation pipeline (picklable config holder)."""

    def __init__(
        self, image_size: int, *, face_crop: int | None = None, small_images: str = "resize"
    ) -> None:
        self.image_size = int(image_size)
        self.face_crop = int(face_crop) if face_crop else None
        self.small_images = small_images

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.face_crop:
            image = center_square_crop(image, self.face_crop)
        return ensure_min_size(image, self.image_size, self.small_images)


def to_sample(image: np.ndarray, mask: np.ndarray, key: str, mask_key: str) -> dict[str, Any]:
    """Pack an (S, S, 3) uint8 image and an (S, S) float mask (1 = valid) into the sample dict.

    The conversion is done in NumPy: per-sample tensors are small, and torch's intra-op thread pool only adds
    overhead here (it made this step ~10x slower on a busy machine when loading in the main process).
    """
    if image.shape[:2] != mask.shape:
        raise RuntimeError(f"{key}: image {image.shape[:2]} and mask {mask.shape} sizes differ")
    chw = np.empty((3, *image.shape[:2]), np.float32)
    np.multiply(image.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=chw)
    m = np.ascontiguousarray(mask, dtype=np.float32)[None]
    ratio = np.float32(1.0 - np.count_nonzero(m) / m.size)
    return {
        "image": torch.from_numpy(chw),
        "mask": torch.from_numpy(m),
        "hole_ratio": torch.tensor(ratio, dtype=torch.float32),
        "key": key,
        "mask_key": mask_key,
    }


class InpaintingDataset(Dataset):
    """Images from a list of files, each paired with a mask, as inpainting samples.

    Args:
        records: images of the split (see :mod:`inpaint.data.sources`).
        masks: mask provider of the split (random for train, fixed for val/test).
        transform: albumentations pipeline producing ``image_size`` squares.
        policy: pre-crop decoding policy (face crop, small images).
        split: ``"train"``, ``"val"`` or ``"test"``.
        seed: base seed of the image augmentation.
        length: virtual length; ``None`` = one sample per record (times ``repeats``). A train epoch of ``length``
            samples cycles through the records (sample ``i`` uses record ``i % n``).
        repeats: eval only: each record is used ``repeats`` times in a row with different fixed masks.
        max_skips: how many consecutive unreadable records a sample may skip before raising.
        cache_decoded: keep decoded images in memory (per process); for tiny sources such as ``samples`` whose
            few large photos would otherwise be decoded again for every crop.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        masks: MaskProvider,
        transform: Any,
        policy: DecodePolicy,
        *,
        split: str,
        seed: int = 0,
        length: int | None = None,
        repeats: int = 1,
        max_skips: int = 100,
        cache_decoded: bool = False,
    ) -> None:
        if not records:
            raise ValueError(f"{split} dataset has no images")
        if split not in STREAM_TAGS:
            raise ValueError(f"split must be one of {sorted(STREAM_TAGS)}, got {split!r}")
        self.records = list(records)
        self.masks = masks
        self.transform = transform
        self.policy = policy
        self.split = split
        self.seed = int(seed)
        self.repeats = max(1, int(repeats))
        self.length = int(length) if length is not None else len(self.records) * self.repeats
        if self.length < 1:
            raise ValueError(f"{split} dataset length must be positive, got {self.length}")
        self.max_skips = int(max_skips)
        self.skipped = SkipCounter()
        self.epoch = SharedEpoch()
        self.cache_decoded = bool(cache_decoded)
        self._cache: dict[int, np.ndarray] = {}  # per process, filled lazily in each worker
        self._bad: set[int] = set()  # per process: records known to be unreadable
        self._warned = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Called by the loader in the main process; workers see it through shared memory."""
        self.epoch.set(epoch)

    def _record_index(self, index: int) -> int:
        if self.split == "train":
            return index % len(self.records)
        return (index // self.repeats) % len(self.records)

    def _load(self, start: int) -> tuple[np.ndarray, ImageRecord]:
        """Decode record ``start``, or the next usable one. Counts one skip per sample whose own image is unusable
        (so a pass over the records counts each bad file once)."""
        n = len(self.records)
        for k in range(min(n, self.max_skips)):
            r = (start + k) % n
            rec = self.records[r]
            if r in self._cache:
                return self._cache[r], rec
            if r not in self._bad:
                try:
                    image = self.policy(load_rgb(rec.path, name=rec.path))
                    if self.cache_decoded:
                        self._cache[r] = image
                    return image, rec
                except (ImageDecodeError, ImageTooSmallError) as err:
                    self._bad.add(r)
                    self._warned += 1
                    if self._warned <= _WARN_LIMIT:
                        log.warning("skipping image (%s split): %s", self.split, err)
                        if self._warned == _WARN_LIMIT:
                            log.warning(
                                "further skip warnings of this %s loader process are suppressed", self.split
                            )
            if k == 0:
                self.skipped.add(1)
        raise RuntimeError(
            f"{self.split}: {min(n, self.max_skips)} consecutive images starting at {self.records[start].path} "
            "could not be used; check the dataset (see the warnings above)"
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample ``index``: image (3, S, S) float [0, 1], mask (1, S, S) float 1 = valid, hole_ratio, key."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.split} dataset of length {self.length}")
        # val/test ignore the epoch: the same crops and masks every epoch
        epoch = self.epoch.get() if self.split == "train" else 0
        image, rec = self._load(self._record_index(index))
        rng = rng_for(self.seed, _IMAGE_TAG, STREAM_TAGS[self.split], epoch, index)
        image = apply_transform(self.transform, image, rng)
        size = self.policy.image_size
        if image.shape[:2] != (size, size):
            raise RuntimeError(f"{rec.path}: transform produced {image.shape[:2]}, expected {(size, size)}")
        mask, mask_key = self.masks.get(index, epoch, size, size)
        return to_sample(image, mask, rec.path, mask_key)
