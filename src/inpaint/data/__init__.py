"""Data for inpainting: image sources, mask generators and readers, transforms, shards and the DataModule.

Conventions: images are float (3, H, W) in [0, 1]; masks are float (1, H, W) with **1 = valid pixel, 0 = hole**.
Mask files on disk (written by ``make_eval_masks``, read from NVIDIA's releases) are converted at the boundary;
files we write use the user-facing convention, white = hole.

Public API (imported lazily so ``import inpaint.data`` stays cheap):

- :func:`build_datamodule`, :class:`InpaintingDataModule` - train/val/test loaders from ``conf/data`` + ``conf/masks``;
  :func:`build_eval_dataset` - a val/test dataset with fixed masks, for evaluation code.
- :func:`load_eval_masks`, :func:`load_mask_set`, :func:`load_nvidia_test_masks` -> :class:`FixedMaskSet`.
- :func:`write_eval_mask_set`, :func:`build_mask_sampler`, :func:`build_mask_provider`, generator classes.
- :func:`build_records` and the per-layout record functions; :func:`load_rgb`.
- :func:`write_shards`, :class:`ShardStream`, :func:`expand_shard_urls`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_datamodule": "inpaint.data.datamodule",
    "build_eval_dataset": "inpaint.data.datamodule",
    "InpaintingDataModule": "inpaint.data.datamodule",
    "InpaintDataLoader": "inpaint.data.datamodule",
    "InpaintingDataset": "inpaint.data.datasets",
    "ShardStream": "inpaint.data.shards",
    "write_shards": "inpaint.data.shards",
    "expand_shard_urls": "inpaint.data.shards",
    "FixedMaskSet": "inpaint.data.nvidia_masks",
    "NvidiaTrainMasks": "inpaint.data.nvidia_masks",
    "load_nvidia_test_masks": "inpaint.data.nvidia_masks",
    "load_mask_file": "inpaint.data.nvidia_masks",
    "detect_polarity": "inpaint.data.nvidia_masks",
    "load_eval_masks": "inpaint.data.mask_sets",
    "load_mask_set": "inpaint.data.mask_sets",
    "write_eval_mask_set": "inpaint.data.mask_sets",
    "binned_mask": "inpaint.data.mask_sets",
    "MaskSampler": "inpaint.data.mask_generators",
    "ShapesMaskGenerator": "inpaint.data.mask_generators",
    "StrokesMaskGenerator": "inpaint.data.mask_generators",
    "MixtureMaskGenerator": "inpaint.data.mask_generators",
    "resize_mask_nearest": "inpaint.data.mask_generators",
    "build_mask_sampler": "inpaint.data.mask_factory",
    "build_mask_provider": "inpaint.data.mask_factory",
    "PRESETS": "inpaint.data.mask_factory",
    "ImageRecord": "inpaint.data.sources",
    "DatasetLayoutError": "inpaint.data.sources",
    "build_records": "inpaint.data.sources",
    "load_rgb": "inpaint.data.imageio",
    "ImageDecodeError": "inpaint.data.imageio",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'inpaint.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
