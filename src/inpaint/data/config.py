"""What a ``conf/data`` file may say: :class:`DataConfig` and its two :class:`TransformConfig` s.

The keys every source shares (loaders, crops, splits, transforms) are fields here, with their types and defaults;
the source's own keys (Places2's ``variant``, a folder's ``val_root``, ...) are the constructor arguments of its class
(:mod:`inpaint.data.sources`). A key that is neither (``data.batchsize=8``) fails at once with the list of valid keys
and the closest one, instead of being ignored. ``conf/data/base.yaml`` sets the shared keys; each source's file states
only what differs. Paths of the on-disk layouts are documented in ``docs/data.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inpaint.config import ConfigError

__all__ = ["DataConfig", "TransformConfig", "from_mapping", "unknown_keys_message"]


@dataclass(frozen=True)
class TransformConfig:
    """Per-sample crop and flips (albumentations); see :func:`inpaint.data.transforms.build_transform`.

    Args:
        crop: train ``random_crop | random_resized_crop | scaled_crop | resize_random_crop | resize``; evaluation
            ``center_crop | resize_center_crop | resize | resize_random_crop`` (random crops are fixed per sample).
        scale: ``random_resized_crop``: range of the crop's area as a fraction of the image.
        ratio: ``random_resized_crop``: aspect-ratio range.
        side_fraction: ``scaled_crop``: range (log-uniform) of the square crop's side as a fraction of the shorter side.
        short_side: evaluation ``resize_random_crop``: the shorter side is resized to this first (default: the crop).
        hflip: probability of a horizontal flip (train).
        rotate90: probability of a random multiple of 90 degrees (train).
    """

    crop: str | None = None
    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    side_fraction: tuple[float, float] = (0.25, 1.0)
    short_side: int | None = None
    hflip: float = 0.5
    rotate90: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    """A data source and how its loaders run.

    The source is a class named by ``_target_`` (here ``target``) or a built-in's name (``source``: places2 | celeba
    | celeba_hq | folder | samples | shards), constructed from ``root`` and ``source_keys``: the config's keys that
    are not fields here. Everything else is shared: crop sizes, batch and loader settings, the splits that serve
    validation and test, transforms.
    """

    source: str | None = None
    target: str | None = None
    source_keys: Mapping[str, Any] = field(default_factory=dict)
    root: str | None = None
    image_size: int = 256  # training crop side (a multiple of 2**levels)
    eval_image_size: int | None = None  # validation/test crop side; None = image_size
    batch_size: int = 16  # per device
    num_workers: int = 8
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2
    multiprocessing_context: str | None = None
    seed: int = 0
    samples_per_epoch: int | None = None
    val_repeats: int = 1
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    holdout_fraction: float = 0.0
    val_split: str = "val"
    test_split: str = "val"
    cache_decoded: bool = False
    drop_last: bool = True
    interpolation: str = "area"
    small_images: str = "resize"
    face_crop: int | None = None
    train_transform: TransformConfig = field(default_factory=TransformConfig)
    val_transform: TransformConfig = field(default_factory=TransformConfig)

    @property
    def source_name(self) -> str:
        """The source in messages: its built-in name or its class name."""
        return self.source or str(self.target).rpartition(".")[2]

    def replace(self, **changes: Any) -> DataConfig:
        """A copy with some fields changed (e.g. the evaluation's batch size)."""
        return dataclasses.replace(self, **changes)


def from_mapping(cls: type[Any], values: Mapping[str, Any] | Any, what: str) -> Any:
    """Build the dataclass ``cls`` from a mapping (plain or OmegaConf), or return an instance as it is.

    Raises:
        ValueError: a key ``cls`` does not have, naming the closest valid key and listing all of them.
    """
    if isinstance(values, cls):
        return values
    from inpaint.config import to_plain

    plain = to_plain(values, what) if values is not None else {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    source_keys: dict[str, Any] = {}
    if cls is DataConfig:
        plain, source_keys = _split_source_keys(dict(plain), fields, what)
    unknown = sorted(set(plain) - set(fields))
    if unknown:
        raise ConfigError(unknown_keys_message(unknown, list(fields), what))
    kwargs: dict[str, Any] = {"source_keys": source_keys} if cls is DataConfig else {}
    for name, value in plain.items():
        if name.endswith("_transform"):
            value = from_mapping(TransformConfig, value or {}, f"{what}.{name}")
        elif isinstance(value, list) and cls is TransformConfig:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def unknown_keys_message(unknown: list[str], valid: list[str], what: str) -> str:
    """``what: unknown key(s) 'x' (did you mean 'y'?). Valid keys: ...``"""
    close = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
    hints = "; ".join(f"{k!r}" + (f" (did you mean {m[0]!r}?)" if m else "") for k, m in close.items())
    return f"{what}: unknown key(s) {hints}. Valid keys: {', '.join(sorted(valid))}"


def _split_source_keys(
    plain: dict[str, Any], fields: Mapping[str, Any], what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(shared keys, the source's own keys) of a data config; the source checks its own when it is built
    (:func:`inpaint.data.sources.build_source`)."""
    if "_target_" in plain:
        plain["target"] = plain.pop("_target_")
    if not plain.get("source") and not plain.get("target"):
        raise ConfigError(
            f"{what}: needs '_target_' (a source class) or 'source' (places2 | celeba | celeba_hq | folder | samples "
            "| shards)"
        )
    own = {k: plain.pop(k) for k in list(plain) if k not in fields}
    return plain, own
