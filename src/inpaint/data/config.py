"""What a ``conf/data`` file may say: :class:`DataConfig` and its two :class:`TransformConfig` s.

Every key of every data config is a field here, with its type and default, so a class shows what it accepts and a
misspelt key (``data.batchsize=8``) fails at once with the list of valid keys and the closest one, instead of being
ignored. ``conf/data/base.yaml`` sets the loader keys that every source shares; each source's file states only what
differs. Paths of the on-disk layouts are documented in ``docs/data.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_VAL_FRACTION", "DataConfig", "TransformConfig", "from_mapping"]

DEFAULT_VAL_FRACTION = (
    0.05  # the folder source's hash-based hold-out, also what `python -m inpaint.data.pack` uses
)


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
    """A data source and how its loaders run. Keys of one source are ignored by the others.

    Common: ``source`` (places2 | celeba | celeba_hq | folder | samples | shards), ``root``, crop sizes, batch and
    loader settings, the splits that serve validation and test, transforms. Source-specific: places2 ``variant``,
    ``resolution``; celeba_hq ``image_dir``, ``train_list``, ``val_list``, ``test_list``; folder ``file_list``,
    ``val_root``, ``val_file_list``, ``val_fraction``, ``test_fraction``; samples ``val_images``, ``test_images``; shards
    ``train_shards``, ``val_shards``, ``test_shards``, ``shuffle_buffer``, ``ddp_equalize``.
    """

    source: str
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
    # places2
    variant: str = "standard"
    resolution: str = "256"
    # celeba_hq
    image_dir: str | None = None
    train_list: str | None = None
    val_list: str | None = None
    test_list: str | None = None
    # folder
    file_list: str | None = None
    val_root: str | None = None
    val_file_list: str | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = 0.0
    # samples
    val_images: tuple[str, ...] | None = None
    test_images: tuple[str, ...] | None = None
    # shards
    train_shards: str | None = None
    val_shards: str | None = None
    test_shards: str | None = None
    shuffle_buffer: int = 1000
    ddp_equalize: bool = True

    def replace(self, **changes: Any) -> DataConfig:
        """A copy with some fields changed (e.g. the evaluation's batch size)."""
        return dataclasses.replace(self, **changes)

    def split_list(self, split: str) -> str | None:
        """The list file of a CelebA-HQ split."""
        return {"train": self.train_list, "val": self.val_list, "test": self.test_list}[split]


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
    unknown = sorted(set(plain) - set(fields))
    if unknown:
        close = {k: difflib.get_close_matches(k, list(fields), n=1) for k in unknown}
        hints = "; ".join(f"{k!r}" + (f" (did you mean {m[0]!r}?)" if m else "") for k, m in close.items())
        raise ValueError(f"{what}: unknown key(s) {hints}. Valid keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in plain.items():
        if name.endswith("_transform"):
            value = from_mapping(TransformConfig, value or {}, f"{what}.{name}")
        elif isinstance(value, list) and cls in (DataConfig, TransformConfig):
            value = tuple(value)
        kwargs[name] = value
    if cls is DataConfig and "source" not in kwargs:
        raise ValueError(f"{what}: needs 'source' (places2 | celeba | celeba_hq | folder | samples | shards)")
    return cls(**kwargs)
