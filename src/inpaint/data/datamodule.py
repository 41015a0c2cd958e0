"""``InpaintingDataModule``: train/val/test loaders for any source and mask config, plus :func:`build_datamodule`.

Batches are dicts: ``image`` (B, 3, S, S) float [0, 1], ``mask`` (B, 1, S, S) float 1 = valid, ``hole_ratio`` (B,)
float32, ``key`` list[str] (source path or shard key), ``mask_key`` list[str]. Validation and test masks are fixed
(the same every epoch, independent of workers and ranks); train masks are fresh each epoch yet reproducible.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler

from inpaint.config import ConfigError
from inpaint.data.config import DataConfig, from_mapping
from inpaint.data.datasets import DecodePolicy, InpaintingDataset
from inpaint.data.masks.factory import BinnedMaskProvider, MaskProvider, MasksConfig, build_mask_provider
from inpaint.data.shards import ShardStream, expand_shard_urls, read_shard_counts
from inpaint.data.sources import ImageRecord, Shards, build_source, split_records
from inpaint.data.transforms import build_transform

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed the global RNGs of a worker from torch's per-worker seed.

    Our own draws use explicit counter-based generators; this covers any library code that reaches for ``random``,
    ``np.random`` or OpenCV's RNG, so workers never share a stream. OpenCV threading is turned off in workers, where
    the worker processes already provide the parallelism.
    """
    seed = torch.initial_seed() % (1 << 32)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeding the legacy global RNG is the point here
    cv2.setRNGSeed(int(seed % (1 << 31)))
    cv2.setNumThreads(0)


class _PassIterator:
    """Wraps a DataLoader iterator to log the skipped-image count when a pass ends (last batch or exhaustion)."""

    def __init__(self, inner: Iterator[Any], length: int | None, on_end: Callable[[], None]) -> None:
        self._inner, self._length, self._on_end, self._n, self._done = inner, length, on_end, 0, False

    def __iter__(self) -> _PassIterator:
        return self

    def __next__(self) -> Any:
        try:
            batch = next(self._inner)
        except StopIteration:
            self._finish()
            raise
        self._n += 1
        if self._length is not None and self._n >= self._length:
            self._finish()  # Lightning stops at len(loader) without asking for one more batch
        return batch

    def __len__(self) -> int:
        return len(self._inner)  # type: ignore[arg-type]

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._on_end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class EvalShardSampler(DistributedSampler):
    """Evaluation indices of one rank: ``rank, rank + world, ...`` — every sample on exactly one rank, none repeated
    (Lightning's default pads the last batches with repeats, which the per-bin counts would include). A
    ``DistributedSampler``, so that Lightning keeps it instead of injecting its own.

    Only with fewer samples than ranks does a rank get a repeated sample (every rank must take part in the metrics'
    synchronisation at the end of the pass); a warning says so.
    """

    def __init__(self, dataset: Any, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        n = len(dataset)
        self.indices = list(range(rank, n, num_replicas)) or [rank % n]
        if n < num_replicas and rank == 0:
            log.warning("only %d evaluation samples for %d ranks: some ranks repeat one", n, num_replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _ResumableBatches:
    """The loader's batch sampler minus the first ``loader.skip_batches`` batches of the pass that is starting.

    The count is read when a pass starts, not when this object is made: with persistent workers, DataLoader builds
    its iterator (and takes this object) once, then only resets it for every later pass, so a count fixed at
    construction would skip the same batches of every epoch (an endless run of empty epochs after a resume).
    """

    def __init__(self, loader: InpaintDataLoader) -> None:
        self.loader = loader

    def _inner(self) -> Any:
        return DataLoader._index_sampler.fget(self.loader)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(iter(self._inner()), self.loader.skip_batches, None)

    def __len__(self) -> int:
        return len(self._inner())  # the pass's nominal length; a resumed pass simply ends early


class InpaintDataLoader(DataLoader):
    """A DataLoader that tells its dataset the epoch before each pass, logs skipped images after it and, for a
    mid-epoch resume, continues an interrupted pass where it stopped.

    The resume state (``state_dict``, saved by Lightning in every checkpoint) is the epoch and the number of its
    batches the training loop had taken; sample ``i`` of epoch ``e`` and the epoch's order are pure functions of the
    seed, so the resumed pass skips exactly those batches (by index, without loading them).

    Args:
        epoch_fn: returns the current epoch (e.g. the trainer's); ``None`` or a ``None`` result = count passes.
        progress_fn: returns how many batches of the current pass the training loop has taken (for
            ``state_dict``); ``None`` = not resumable mid-epoch.
        split: name used in log lines.
    """

    def __init__(
        self,
        *args: Any,
        epoch_fn: Callable[[], int | None] | None = None,
        progress_fn: Callable[[], int] | None = None,
        split: str = "",
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.epoch_fn = epoch_fn
        self.progress_fn = progress_fn
        self.split = split
        self._passes = 0
        self._epoch = 0
        self._skips_at_start = 0
        self.skip_batches = 0  # batches of the starting pass to leave out (a mid-epoch resume)
        self._resumable = _ResumableBatches(self)
        self._resume: tuple[int, int] | None = None
        self._last_pass: _PassIterator | None = None

    def state_dict(self) -> dict[str, int]:
        """The current pass: ``{"epoch", "batches"}`` (batches the training loop has taken from it)."""
        return {"epoch": self._epoch, "batches": int(self.progress_fn()) if self.progress_fn else 0}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Resume: the next pass of epoch ``state["epoch"]`` starts after its first ``state["batches"]`` batches."""
        self._resume = (int(state["epoch"]), int(state["batches"]))

    @property
    def _index_sampler(self) -> Any:  # DataLoader's iterators draw their indices from here
        return self._resumable

    def __len__(self) -> int:
        ds = self.dataset
        if isinstance(ds, ShardStream):
            return ds.num_batches(self.batch_size or 1, self.drop_last)
        return super().__len__()

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        if self._last_pass is not None:
            self._last_pass._finish()  # a pass cut short (e.g. limit_train_batches) is reported now
        ds = self.dataset
        epoch = self.epoch_fn() if self.epoch_fn is not None else None
        epoch = self._passes if epoch is None else int(epoch)
        self._epoch = epoch
        for obj in (ds, self.sampler):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)
        if isinstance(ds, ShardStream):
            ds.set_num_workers(self.num_workers)
        self._skips_at_start = ds.skipped.total if hasattr(ds, "skipped") else 0
        self._passes += 1
        try:
            length: int | None = len(self)
        except TypeError:
            length = None
        if self._resume is not None and self._resume[0] == epoch and self._resume[1] > 0:
            self.skip_batches = self._resume[1]
            log.info("%s: resuming epoch %d after its first %d batches", self.split, epoch, self.skip_batches)
            length = None if length is None else max(0, length - self.skip_batches)
        self._resume = None
        try:
            self._last_pass = _PassIterator(super().__iter__(), length, lambda: self._report(epoch))
        finally:
            self.skip_batches = 0
        return self._last_pass

    def _report(self, epoch: int) -> None:
        ds = self.dataset
        if not hasattr(ds, "skipped"):
            return
        total = ds.skipped.total
        now = total - self._skips_at_start
        level = logging.WARNING if now else logging.DEBUG  # say nothing when nothing was skipped
        log.log(
            level, "%s epoch %d: skipped %d unreadable images (%d since start)", self.split, epoch, now, total
        )


class InpaintingDataModule(pl.LightningDataModule):
    """Lightning data module for inpainting: train/val/test loaders of a data source with masks.

    Args:
        data: a :class:`~inpaint.data.config.DataConfig`, or a ``conf/data`` mapping (DictConfig or dict) that becomes
            one; an unknown key is an error naming the valid ones.
        masks: a :class:`~inpaint.data.masks.factory.MasksConfig` or a ``conf/masks`` mapping that becomes one.
    """

    def __init__(self, data: DataConfig | Mapping[str, Any], masks: MasksConfig | Mapping[str, Any]) -> None:
        super().__init__()
        self.config: DataConfig = from_mapping(DataConfig, data, "data config")
        self.source = build_source(self.config)
        self.masks: MasksConfig = from_mapping(MasksConfig, masks, "masks config")
        c = self.config
        self.image_size = int(c.image_size)
        # Validation/test may use larger crops than training: the network is fully convolutional, and small training
        # crops buy many more steps where compute is scarce (the CPU demo trains on 64², evaluates on 128²).
        self.eval_image_size = int(c.eval_image_size or self.image_size)
        self.batch_size = int(c.batch_size)
        self.num_workers = int(c.num_workers)
        for key, value, least in (
            ("image_size", self.image_size, 8),
            ("eval_image_size", self.eval_image_size, 8),
            ("batch_size", self.batch_size, 1),
            ("num_workers", self.num_workers, 0),
        ):
            if value < least:
                raise ConfigError(f"data.{key} must be at least {least}, got {value}")
        self.datasets: dict[str, InpaintingDataset | ShardStream] = {}
        self._listed: dict[str, list[ImageRecord]] = {}

    # -------------------------------------------------------------------------------------------- construction

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is not None:
            return int(trainer.global_rank), int(trainer.world_size)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _current_epoch(self) -> int | None:
        trainer = self.trainer
        return int(trainer.current_epoch) if trainer is not None else None

    def size(self, split: str) -> int:
        """Crop side of ``split``: ``image_size`` for train, ``eval_image_size`` for val and test."""
        return self.image_size if split == "train" else self.eval_image_size

    def _masks(self, split: str) -> MaskProvider:
        try:
            provider = build_mask_provider(self.masks, split)
            if isinstance(provider, BinnedMaskProvider):
                size = self.size(split)
                provider.check(size, size)  # unreachable bins fail here, not inside a worker
        except (ValueError, RuntimeError) as e:  # a spec, or a generator, that cannot give this split's masks
            raise ConfigError(f"masks ({split}): {e}") from None
        return provider

    def _policy(self, split: str) -> DecodePolicy:
        return DecodePolicy(
            self.size(split), face_crop=self.config.face_crop, small_images=self.config.small_images
        )

    def _transform(self, split: str) -> Any:
        c = self.config
        spec = c.train_transform if split == "train" else c.val_transform
        return build_transform(spec, self.size(split), train=split == "train", interpolation=c.interpolation)

    def _source_split(self, split: str) -> str:
        return "train" if split == "train" else str(getattr(self.config, f"{split}_split"))

    @property
    def test_is_validation(self) -> bool:
        """Whether the test loader reads the same images as the validation loader (checkpoint selection): then test
        numbers of a checkpoint selected by validation are optimistic, and reports must say so."""
        if isinstance(self.source, Shards):
            return self.source.spec("test") == self.source.spec("val")
        val, test = self._source_split("val"), self._source_split("test")
        return val == test or self._records(test) == self._records(val)

    def _records(self, source_split: str) -> list[ImageRecord]:
        """The records of a split of the source, listed once (Places2's train list has 1.8 M lines)."""
        if source_split not in self._listed:
            self._listed[source_split] = split_records(self.source, self.config, source_split)
        return self._listed[source_split]

    def build_dataset(self, split: str) -> InpaintingDataset | ShardStream:
        """Construct the dataset of ``split`` (``"train"``, ``"val"``, ``"test"``) without caching it."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        c = self.config
        if isinstance(self.source, Shards):
            return self._build_shards(split, self.source)
        records = self._records(self._source_split(split))
        limit = getattr(
            c, f"limit_{split}"
        )  # limit_val / limit_test apply to whichever source split serves them
        if limit is not None:
            records = records[: int(limit)]
        length = c.samples_per_epoch if split == "train" else None
        repeats = 1 if split == "train" else c.val_repeats
        ds = InpaintingDataset(
            records,
            self._masks(split),
            self._transform(split),
            self._policy(split),
            split=split,
            seed=c.seed,
            length=length,
            repeats=repeats,
            cache_decoded=c.cache_decoded,
        )
        log.info("%s: %d images from %s (%d samples per epoch)", split, len(records), c.source_name, len(ds))
        return ds

    def _build_shards(self, split: str, shards: Shards) -> ShardStream:
        c = self.config
        spec = shards.spec(split)
        urls = expand_shard_urls(spec, c.root)
        counts = read_shard_counts(urls)
        rank, world = self._rank_world()
        spe = c.samples_per_epoch if split == "train" else None
        if counts is None and spe is None:
            log.warning(
                "%s shards: no index.json counts for %s; the epoch length is unknown (set data.samples_per_epoch)",
                split,
                spec,
            )
        ds = ShardStream(
            urls,
            self._masks(split),
            self._transform(split),
            self._policy(split),
            split=split,
            seed=c.seed,
            rank=rank,
            world_size=world,
            shuffle_buffer=shards.shuffle_buffer,
            counts=counts,
            samples_per_epoch=spe,
            equalize=shards.ddp_equalize,
        )
        ds.set_num_workers(self.num_workers)
        log.info("%s: %d shards (rank %d of %d)", split, len(urls), rank, world)
        return ds

    # ------------------------------------------------------------------------------------------------ Lightning

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs (``fit``: train + val, ``validate``: val, ``test``: test)."""
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}.get(
            stage or "", SPLITS
        )
        for split in wanted:
            if split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def _loader(self, split: str) -> InpaintDataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        ds = self.datasets[split]
        c = self.config
        workers = self.num_workers
        pin = c.pin_memory
        if pin and not torch.cuda.is_available():
            if not getattr(self, "_pin_logged", False):
                log.debug("pin_memory requested but no CUDA device is available; not pinning")
                self._pin_logged = True
            pin = False
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size,
            "num_workers": workers,
            "pin_memory": pin,
            "worker_init_fn": seed_worker,
            "drop_last": c.drop_last if split == "train" else False,
            "persistent_workers": c.persistent_workers and workers > 0,
        }
        if workers > 0:
            kwargs["prefetch_factor"] = c.prefetch_factor
            if c.multiprocessing_context:
                kwargs["multiprocessing_context"] = c.multiprocessing_context
        if isinstance(ds, InpaintingDataset):
            rank, world = self._rank_world()
            if split == "train":
                # A seeded order per epoch (also on one device), so that a resumed run can continue mid-epoch.
                kwargs["sampler"] = DistributedSampler(
                    ds, num_replicas=world, rank=rank, shuffle=True, seed=c.seed
                )
            elif world > 1:
                kwargs["sampler"] = EvalShardSampler(ds, num_replicas=world, rank=rank)
        train = split == "train"
        return InpaintDataLoader(
            ds,
            epoch_fn=self._current_epoch if train else None,
            progress_fn=self._batches_taken if train and isinstance(ds, InpaintingDataset) else None,
            split=split,
            **kwargs,
        )

    def _batches_taken(self) -> int:
        """Batches of the current epoch the training loop has taken (Lightning's own progress counter)."""
        trainer = self.trainer
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.ready) if trainer is not None else 0

    def train_dataloader(self) -> InpaintDataLoader:
        return self._loader("train")

    def val_dataloader(self) -> InpaintDataLoader:
        return self._loader("val")

    def test_dataloader(self) -> InpaintDataLoader:
        return self._loader("test")


def build_datamodule(
    data_cfg: DataConfig | Mapping[str, Any], masks_cfg: Mapping[str, Any]
) -> InpaintingDataModule:
    """The entry point used by ``inpaint.train``: ``build_datamodule(cfg.data, cfg.masks)``.

    Args:
        data_cfg: a ``conf/data`` config (DictConfig or dict).
        masks_cfg: a ``conf/masks`` config (DictConfig or dict).
    """
    return InpaintingDataModule(data_cfg, masks_cfg)
