"""Masks from configuration: samplers from ``conf/masks/*.yaml`` specs and per-split mask providers.

A masks config has a ``seed``, a ``train`` spec and an ``eval`` spec (``null`` = the train generator, binned: eval
sample ``i`` gets a fixed mask in NVIDIA bin ``i % 6``). A spec is a mapping with a ``type``:

- ``shapes``: PConv-Keras-style lines, circles, ellipse arcs (:class:`ShapesMaskGenerator` fields).
- ``strokes``: LaMa-style brush strokes + boxes (:class:`StrokesMaskGenerator` fields).
- ``objects``: object-sized boxes and blobs (:class:`ObjectMaskGenerator` fields).
- ``mixture``: ``components`` = specs (a list, or a mapping name -> spec) each with a ``weight``.
- ``_target_: my_module.MyGenerator`` instead of a ``type``: any class of any importable module, constructed from the
  spec's other keys, whose ``sample(rng, height, width)`` returns an ``(H, W)`` mask, 1 = valid, 0 = hole
  (``docs/extending.md``). The built-in types are built the same way (:func:`construct_generator`).

The generators' preset values live only in ``conf/masks/generator/*.yaml``; a preset name such as ``"mixed"`` is
read from ``conf/masks/<name>.yaml`` (:func:`preset_spec`).
- ``nvidia_train``: raw NVIDIA masks + augmentation (:class:`NvidiaTrainMasks` arguments, ``root`` required).
- eval only: ``nvidia_test`` (``root``, ``bins``, ``polarity``, ``cache``), ``mask_set`` (``path``, ``bins``).

Generator specs accept ``hole_ratio: [low, high]`` to constrain every mask to ``low < ratio <= high``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from inpaint.config import construct, import_target, to_plain
from inpaint.data._rng import STREAM_TAGS, rng_for
from inpaint.data.masks.generators import (
    ExternalMaskSampler,
    MaskSampler,
    MixtureMaskGenerator,
    ObjectMaskGenerator,
    ShapesMaskGenerator,
    StrokesMaskGenerator,
)
from inpaint.data.masks.nvidia import FixedMaskSet, NvidiaTrainMasks, load_nvidia_test_masks
from inpaint.data.masks.ratio import HOLE_RATIO_BINS
from inpaint.data.masks.sets import binned_mask, load_mask_set

_MASK_TAG = 0x4D41534B  # separates mask draws from image-augmentation draws that share a seed

# The generator presets live in one place, conf/masks/generator/*.yaml; a preset name is read from there.
PRESET_NAMES = ("mixed", "strokes", "lama_thin", "lama_medium", "lama_thick", "objects", "demo")


def preset_spec(name: str) -> dict[str, Any]:
    """The training-mask spec of ``conf/masks/<name>.yaml`` (``mixed``, ``strokes``, ``lama_thin`` ...)."""
    from inpaint.config import compose

    if name not in PRESET_NAMES:
        raise ValueError(f"unknown mask preset {name!r}; choose one of {list(PRESET_NAMES)}")
    return to_plain(compose("train", [f"masks={name}"]).masks.train, f"masks={name}")


GENERATORS = {"shapes": ShapesMaskGenerator, "strokes": StrokesMaskGenerator, "objects": ObjectMaskGenerator}
_TUPLE_FIELDS = {
    "num_lines",
    "num_circles",
    "num_ellipses",
    "num_strokes",
    "num_boxes",
    "box_size",
    "num_objects",
    "size",
}


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"mask spec field {name!r} must be a [low, high] pair, got {value!r}")
    return value[0], value[1]


def construct_generator(cls: type[Any], keys: Mapping[str, Any], what: str) -> Any:
    """A generator from its spec's keys (:func:`inpaint.config.construct`), the ``[low, high]`` fields of the
    built-in ones checked; the hole-ratio bounds are set through ``hole_ratio``, not by hand."""
    if cls in GENERATORS.values():
        keys = {k: (_pair(v, k) if k in _TUPLE_FIELDS else v) for k, v in keys.items()}
    return construct(cls, keys, what, reserved=("min_hole_ratio", "max_hole_ratio"))


def build_mask_sampler(spec: Mapping[str, Any] | str) -> MaskSampler:
    """A random mask sampler from a spec mapping (see module doc) or a preset name (``"mixed"``, ``"lama_thin"``...).

    Raises:
        ValueError: unknown type or ``_target_``, or fields that the generator does not accept (named in the message).
    """
    spec = dict(preset_spec(spec) if isinstance(spec, str) else to_plain(spec))
    kind, target = spec.pop("type", None), spec.pop("_target_", None)
    spec.pop("weight", None)
    hole_ratio = spec.pop("hole_ratio", None)
    if kind is not None and target is not None:
        raise ValueError(
            f"a mask spec has either a 'type' or a '_target_', not both (type {kind!r}, _target_ {target!r})"
        )
    if kind == "mixture":
        sampler = _mixture(spec)
    elif kind == "nvidia_train":
        sampler = _nvidia_train(spec)
    elif target is not None:
        generator = construct_generator(import_target(target, "mask spec"), spec, f"mask generator {target}")
        sampler = generator if isinstance(generator, MaskSampler) else ExternalMaskSampler(generator)
    elif kind in GENERATORS:
        sampler = construct_generator(GENERATORS[kind], spec, f"{kind} mask spec")
    else:
        raise ValueError(
            f"unknown mask type {kind!r} for a random sampler; expected {', '.join(GENERATORS)}, mixture, "
            "nvidia_train, or a _target_ naming your own generator class"
        )
    if hole_ratio is not None:
        lo, hi = _pair(hole_ratio, "hole_ratio")
        sampler = sampler.with_hole_ratio_range(float(lo), float(hi))
    return sampler


def _mixture(spec: dict[str, Any]) -> MaskSampler:
    comps = spec.pop("components", None)
    if spec:
        raise ValueError(f"mixture spec has unknown fields {sorted(spec)}")
    if isinstance(comps, Mapping):  # named components, as the YAML composes them
        comps = list(comps.values())
    if not comps:
        raise ValueError("mixture spec needs non-empty 'components'")
    return MixtureMaskGenerator(
        components=[build_mask_sampler(c) for c in comps],
        weights=[float(dict(c).get("weight", 1.0)) for c in comps],
    )


def _nvidia_train(spec: dict[str, Any]) -> MaskSampler:
    if not spec.get("root") or spec.get("root") == "???":
        raise ValueError("nvidia_train masks need 'root': the folder of NVIDIA's raw training masks")
    root = spec.pop("root")
    for k in ("dilation", "scale"):
        if k in spec:
            spec[k] = _pair(spec[k], k)
    return NvidiaTrainMasks(root, **spec)


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


@dataclass(frozen=True)
class MasksConfig:
    """What a ``conf/masks`` file may say (a misspelt key is an error naming the valid ones).

    Args:
        train: the training generator spec (a mapping with a ``type``, or a preset name).
        eval: the validation/test spec: None = the train generator, fixed per sample and binned; a generator spec;
            ``{type: nvidia_test, root, bins, polarity, cache}``; or ``{type: mask_set, path, bins}``.
        name: a label used in mask keys.
        seed: base seed; train mask (epoch, i) and eval mask i are pure functions of it.
        root: the folder of NVIDIA's masks, referenced by the specs (``${..root}``).
    """

    train: Any
    eval: Any = None
    name: str = "masks"
    seed: int = 0
    root: str | None = None


@dataclass(frozen=True)
class _FileEval:
    """The keys of the file-based evaluation masks."""

    type: str
    root: str | None = None
    path: str | None = None
    bins: Any = None
    polarity: str = "auto"
    cache: str | None = None


def build_mask_provider(masks: MasksConfig | Mapping[str, Any], split: str) -> MaskProvider:
    """The mask provider of ``split`` (``"train"``, ``"val"`` or ``"test"``) from a masks config.

    Train uses the ``train`` spec with fresh masks each epoch; val and test use the ``eval`` spec (fixed), with
    different draws for val and test when the masks are generated.
    """
    from inpaint.data.config import from_mapping

    cfg = from_mapping(MasksConfig, masks, "masks config")
    if split not in STREAM_TAGS:
        raise ValueError(f"split must be one of {sorted(STREAM_TAGS)}, got {split!r}")
    stream = STREAM_TAGS[split]
    if split == "train":
        return RandomMaskProvider(build_mask_sampler(cfg.train), cfg.seed, stream, cfg.name)
    if cfg.eval is None:
        return BinnedMaskProvider(build_mask_sampler(cfg.train), cfg.seed, stream, cfg.name)
    if dict(cfg.eval).get("type") not in ("nvidia_test", "mask_set"):
        return BinnedMaskProvider(build_mask_sampler(cfg.eval), cfg.seed, stream, cfg.name)
    spec = from_mapping(_FileEval, cfg.eval, "masks.eval")
    if spec.type == "nvidia_test":
        if not spec.root or spec.root == "???":
            raise ValueError("nvidia_test masks need 'root': the folder of NVIDIA's test masks")
        return FileMaskProvider(
            load_nvidia_test_masks(spec.root, bins=spec.bins, polarity=spec.polarity, cache=spec.cache)
        )
    if not spec.path:
        raise ValueError(
            "mask_set eval masks need 'path': a folder written by inpaint.data.masks.make_eval_masks"
        )
    return FileMaskProvider(load_mask_set(spec.path, bins=spec.bins))
