"""Data for inpainting: image sources, mask generators and readers, transforms, shards and the DataModule.

Conventions: images are float (3, H, W) in [0, 1]; masks are float (1, H, W) with **1 = valid pixel, 0 = hole**.
Mask files on disk (written by ``make_eval_masks``, read from NVIDIA's releases) are converted at the boundary;
files we write use the user-facing convention, white = hole.

Public API (imported lazily so ``import inpaint.data`` stays cheap):

- :func:`build_datamodule`, :class:`InpaintingDataModule` - train/val/test loaders from ``conf/data`` + ``conf/masks``.
- :mod:`inpaint.data.masks`: generators, NVIDIA's masks, fixed mask sets, hole ratios.
- :func:`write_eval_mask_set`, :func:`build_mask_sampler`, :func:`build_mask_provider`, generator classes.
- :mod:`inpaint.data.sources` (one module per layout; any class with ``records(split)``), :func:`build_records`;
  :func:`load_rgb`.
- :func:`write_shards`, :class:`ShardStream`, :func:`expand_shard_urls`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_datamodule": "inpaint.data.datamodule",
    "InpaintingDataModule": "inpaint.data.datamodule",
    "InpaintDataLoader": "inpaint.data.datamodule",
    "InpaintingDataset": "inpaint.data.datasets",
    "ShardStream": "inpaint.data.shards",
    "write_shards": "inpaint.data.shards",
    "expand_shard_urls": "inpaint.data.shards",
    "FixedMaskSet": "inpaint.data.masks.nvidia",
    "NvidiaTrainMasks": "inpaint.data.masks.nvidia",
    "load_nvidia_test_masks": "inpaint.data.masks.nvidia",
    "load_mask_file": "inpaint.data.masks.nvidia",
    "detect_polarity": "inpaint.data.masks.nvidia",
    "load_mask_set": "inpaint.data.masks.sets",
    "write_eval_mask_set": "inpaint.data.masks.sets",
    "binned_mask": "inpaint.data.masks.sets",
    "MaskSampler": "inpaint.data.masks.generators",
    "ShapesMaskGenerator": "inpaint.data.masks.generators",
    "StrokesMaskGenerator": "inpaint.data.masks.generators",
    "MixtureMaskGenerator": "inpaint.data.masks.generators",
    "resize_mask_nearest": "inpaint.data.masks.generators",
    "build_mask_sampler": "inpaint.data.masks.factory",
    "build_mask_provider": "inpaint.data.masks.factory",
    "PRESET_NAMES": "inpaint.data.masks.factory",
    "preset_spec": "inpaint.data.masks.factory",
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
