"""Masks from configuration: samplers from ``conf/masks/*.yaml`` specs and per-split mask providers.

A masks config has a ``seed``, a ``train`` spec and an ``eval`` spec (``null`` = the train generator, binned: eval
sample ``i`` gets a fixed mask in NVIDIA bin ``i % 6``). A spec is a mapping with a ``type``:

- ``shapes``: PConv-Keras-style lines, circles, ellipse arcs (:class:`ShapesMaskGenerator` fields).
- ``strokes``: LaMa-style brush strokes + boxes (:class:`StrokesMaskGenerator` fields).
- ``mixture``: ``components`` = list of specs each with a ``weight``.
- ``nvidia_train``: raw NVIDIA masks + augmentation (:class:`NvidiaTrainMasks` arguments, ``root`` required).
- eval only: ``nvidia_test`` (``root``, ``bins``, ``polarity``, ``cache``), ``mask_set`` (``path``, ``bins``).

Generator specs accept ``hole_ratio: [low, high]`` to constrain every mask to ``low < ratio <= high``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from inpaint.config import to_plain
from inpaint.data._rng import STREAM_TAGS, rng_for
from inpaint.data.masks.generators import (
    MaskSampler,
    MixtureMaskGenerator,
    ShapesMaskGenerator,
    StrokesMaskGenerator,
)
from inpaint.data.masks.nvidia import FixedMaskSet, NvidiaTrainMasks, load_nvidia_test_masks
from inpaint.data.masks.ratio import HOLE_RATIO_BINS
from inpaint.data.masks.sets import binned_mask, load_mask_set

_MASK_TAG = 0x4D41534B  # separates mask draws from image-augmentation draws that share a seed

# Built-in parameter sets (the same values are spelled out in conf/masks/*.yaml). LaMa-style values follow
# REFERENCE §5 and are pixel sizes at 256²; PConv-Keras-style values follow its generator.
PRESETS: dict[str, dict[str, Any]] = {
    "strokes": {
        "type": "shapes",
        "num_lines": [1, 20],
        "num_circles": [1, 20],
        "num_ellipses": [1, 20],
        "min_thickness": 3,
        "thickness_frac": 0.03,
        "radius_frac": 0.03,
        "axis_frac": 0.5,
    },
    "lama_thin": {
        "type": "strokes",
        "num_strokes": [4, 50],
        "min_width": 2,
        "max_width": 10,
        "min_length": 5,
        "max_length": 40,
        "max_vertices": 5,
        "max_angle": 1.5708,
        "box_prob": 0.0,
        "num_boxes": [1, 3],
        "box_size": [10, 50],
        "reference_size": 256,
        "hole_ratio": [0.0, 0.5],
    },
    "lama_medium": {
        "type": "strokes",
        "num_strokes": [4, 5],
        "min_width": 5,
        "max_width": 50,
        "min_length": 10,
        "max_length": 100,
        "max_vertices": 5,
        "max_angle": 1.5708,
        "box_prob": 0.3,
        "num_boxes": [1, 3],
        "box_size": [10, 50],
        "reference_size": 256,
        "hole_ratio": [0.0, 0.5],
    },
    "lama_thick": {
        "type": "strokes",
        "num_strokes": [1, 5],
        "min_width": 10,
        "max_width": 100,
        "min_length": 10,
        "max_length": 200,
        "max_vertices": 5,
        "max_angle": 1.5708,
        "box_prob": 0.3,
        "num_boxes": [1, 3],
        "box_size": [30, 150],
        "reference_size": 256,
        "hole_ratio": [0.0, 0.5],
    },
}
PRESETS["mixed"] = {
    "type": "mixture",
    "components": [
        {"weight": 0.25, **PRESETS["strokes"]},
        {"weight": 0.25, **PRESETS["lama_thin"]},
        {"weight": 0.25, **PRESETS["lama_medium"]},
        {"weight": 0.25, **PRESETS["lama_thick"]},
    ],
}

_TUPLE_FIELDS = {"num_lines", "num_circles", "num_ellipses", "num_strokes", "num_boxes", "box_size"}


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"mask spec field {name!r} must be a [low, high] pair, got {value!r}")
    return value[0], value[1]


def build_mask_sampler(spec: Mapping[str, Any] | str) -> MaskSampler:
    """A random mask sampler from a spec mapping (see module doc) or a preset name (``"mixed"``, ``"lama_thin"``...).

    Raises:
        ValueError: unknown type, or fields that the type does not accept (named in the message).
    """
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown mask preset {spec!r}; choose one of {sorted(PRESETS)}")
        spec = PRESETS[spec]
    spec = dict(to_plain(spec))
    kind = spec.pop("type", None)
    spec.pop("weight", None)
    hole_ratio = spec.pop("hole_ratio", None)
    if kind == "mixture":
        comps = spec.pop("components", None)
        if spec:
            raise ValueError(f"mixture spec has unknown fields {sorted(spec)}")
        if not comps:
            raise ValueError("mixture spec needs a non-empty 'components' list")
        sampler: MaskSampler = MixtureMaskGenerator(
            components=[build_mask_sampler(c) for c in comps],
            weights=[float(dict(c).get("weight", 1.0)) for c in comps],
        )
    elif kind in ("shapes", "strokes"):
        cls = ShapesMaskGenerator if kind == "shapes" else StrokesMaskGenerator
        allowed = set(cls.__dataclass_fields__) - {"min_hole_ratio", "max_hole_ratio"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(
                f"{kind} mask spec has unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        kwargs = {k: (_pair(v, k) if k in _TUPLE_FIELDS else v) for k, v in spec.items()}
        sampler = cls(**kwargs)
    elif kind == "nvidia_train":
        if not spec.get("root") or spec.get("root") == "???":
            raise ValueError("nvidia_train masks need 'root': the folder of NVIDIA's raw training masks")
        root = spec.pop("root")
        for k in ("dilation", "scale"):
            if k in spec:
                spec[k] = _pair(spec[k], k)
        sampler = NvidiaTrainMasks(root, **spec)
    else:
        raise ValueError(
            f"unknown mask type {kind!r} for a random sampler; expected shapes, strokes, mixture or nvidia_train"
        )
    if hole_ratio is not None:
        lo, hi = _pair(hole_ratio, "hole_ratio")
        sampler = sampler.with_hole_ratio_range(float(lo), float(hi))
    return sampler


class MaskProvider(ABC):
    """Gives the mask of sample ``index`` of a split. ``fixed`` providers ignore the epoch (validation/test)."""

    fixed: bool = False

    @abstractmethod
    def get(self, index: int, epoch: int, height: int, width: int) -> tuple[np.ndarray, str]:
        """(mask (height, width) float32 1 = valid, key describing where it came from)."""


class RandomMaskProvider(MaskProvider):
    """Fresh masks every epoch: mask of (epoch, index) = ``sampler.sample(rng_for(seed, tag, stream, epoch, index))``."""

    fixed = False

    def __init__(self, sampler: MaskSampler, seed: int, stream: int, name: str) -> None:
        self.sampler, self.seed, self.stream, self.name = sampler, int(seed), int(stream), name

    def get(self, index: int, epoch: int, height: int, width: int) -> tuple[np.ndarray, str]:
        rng = rng_for(self.seed, _MASK_TAG, self.stream, epoch, index)
        return self.sampler.sample(rng, height, width), f"{self.name}/seed{self.seed}/e{epoch}/{index}"


class BinnedMaskProvider(MaskProvider):
    """Fixed generated masks covering the NVIDIA bins: sample ``i`` gets a mask in bin ``i % 6``."""

    fixed = True

    def __init__(self, sampler: MaskSampler, seed: int, stream: int, name: str) -> None:
        self.sampler, self.seed, self.stream, self.name = sampler, int(seed), int(stream), name

    def get(self, index: int, epoch: int, height: int, width: int) -> tuple[np.ndarray, str]:
        b = index % len(HOLE_RATIO_BINS)
        mask = binned_mask(self.sampler, b, height, width, key=(self.seed, _MASK_TAG, self.stream, index))
        return mask, f"{self.name}/seed{self.seed}/bin{b}/{index}"

    def check(self, height: int, width: int) -> None:
        """Fail early (in the main process, with a clear message) if some bin is unreachable at this size."""
        for b in range(len(HOLE_RATIO_BINS)):
            self.get(b, 0, height, width)


class FileMaskProvider(MaskProvider):
    """Fixed masks from files: sample ``i`` gets file ``i % len(set)``, resized with nearest neighbour."""

    fixed = True

    def __init__(self, mask_set: FixedMaskSet) -> None:
        self.mask_set = mask_set

    def get(self, index: int, epoch: int, height: int, width: int) -> tuple[np.ndarray, str]:
        mask = self.mask_set.array(index, height, width)
        return mask, str(self.mask_set.entries[index % len(self.mask_set)].path)


def build_mask_provider(masks_cfg: Mapping[str, Any], split: str) -> MaskProvider:
    """The mask provider of ``split`` (``"train"``, ``"val"`` or ``"test"``) from a masks config.

    Train uses the ``train`` spec with fresh masks each epoch; val and test use the ``eval`` spec (fixed), with
    different draws for val and test when the masks are generated.
    """
    cfg = to_plain(masks_cfg, "masks config")
    if split not in STREAM_TAGS:
        raise ValueError(f"split must be one of {sorted(STREAM_TAGS)}, got {split!r}")
    seed = int(cfg.get("seed", 0))
    stream = STREAM_TAGS[split]
    name = str(cfg.get("name", "masks"))
    if "train" not in cfg:
        raise ValueError(f"masks config needs a 'train' spec; got keys {sorted(cfg)}")
    if split == "train":
        return RandomMaskProvider(build_mask_sampler(cfg["train"]), seed, stream, name)
    spec = cfg.get("eval")
    if spec is None:
        return BinnedMaskProvider(build_mask_sampler(cfg["train"]), seed, stream, name)
    spec = dict(spec)
    kind = spec.get("type")
    if kind == "nvidia_test":
        root = spec.get("root")
        if not root or root == "???":
            raise ValueError("nvidia_test masks need 'root': the folder of NVIDIA's test masks")
        return FileMaskProvider(
            load_nvidia_test_masks(
                root, bins=spec.get("bins"), polarity=spec.get("polarity", "auto"), cache=spec.get("cache")
            )
        )
    if kind == "mask_set":
        if not spec.get("path"):
            raise ValueError(
                "mask_set eval masks need 'path': a folder written by inpaint.data.masks.make_eval_masks"
            )
        return FileMaskProvider(load_mask_set(spec["path"], bins=spec.get("bins")))
    return BinnedMaskProvider(build_mask_sampler(spec), seed, stream, name)
