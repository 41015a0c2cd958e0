"""Sharded streaming with webdataset tar files: writing shards and reading them split across ranks and workers.

Shard format (written by :func:`write_shards`, ``python -m inpaint.data.pack``): one sample per image with the
original encoded bytes under its extension (``jpg``, ``png``...) and a ``json`` entry ``{"source": path, "key": key}``;
``index.json`` in the output folder maps shard file names to sample counts.

Reading (:class:`ShardStream`): shard ``i`` (in sorted order) belongs to slot ``i % (world_size * num_workers)``, i.e.
to exactly one (rank, worker) pair, so every sample is read once per epoch across all ranks. Each epoch a slot
visits its shards in a new order and passes samples through a seeded shuffle buffer. When shard sizes are known
(from ``index.json``) the stream has a length Lightning can use; under DDP every worker position is cut to the
smallest count across ranks (``equalize``), so all ranks run the same number of batches (with equal-size shards,
as ``pack`` writes, this drops at most the remainder of the last shard). ``samples_per_epoch`` instead fixes the
epoch length, cycling through a slot's shards as needed (samples may then repeat within an epoch).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from inpaint.data._rng import STREAM_TAGS, rng_for, stable_hash
from inpaint.data.datasets import DecodePolicy, SharedEpoch, SkipCounter, to_sample
from inpaint.data.imageio import IMAGE_EXTENSIONS, ImageDecodeError, load_rgb
from inpaint.data.masks.factory import MaskProvider
from inpaint.data.sources import DatasetLayoutError, ImageRecord
from inpaint.data.transforms import ImageTooSmallError, apply_transform
from inpaint.io import atomic_output

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
IMAGE_KEYS = tuple(e.lstrip(".") for e in IMAGE_EXTENSIONS)
_IMAGE_TAG = 0x494D4147
_SHUFFLE_TAG = 0x53485546


# ------------------------------------------------------------------------------------------------------------- URLs


def _is_remote(url: str) -> bool:
    return url.startswith("pipe:") or "://" in url


def expand_shard_urls(spec: str | Sequence[str], root: str | os.PathLike[str] | None = None) -> list[str]:
    """Shard URLs from a pattern: local glob (``train-*.tar``), brace range (``train-{000000..000009}.tar``),
    ``::``-separated list, http(s)/``pipe:`` command, or a list of any of these. Relative local paths are taken
    relative to ``root``.

    Raises:
        DatasetLayoutError: a local pattern matches no file.
    """
    from webdataset.shardlists import expand_urls  # "::" lists, {a..b} ranges, $WDS_ variables

    specs = [spec] if isinstance(spec, str) else list(spec)
    items = [item for s in specs for item in expand_urls(str(s))]
    urls: list[str] = []
    for item in items:
        if _is_remote(item):
            urls.append(item)
            continue
        path = Path(os.path.expanduser(item))
        if not path.is_absolute() and root is not None:
            path = Path(os.path.expanduser(str(root))) / path
        if any(c in str(path) for c in "*?["):
            matches = sorted(glob.glob(str(path)))
            if not matches:
                raise DatasetLayoutError(f"shards: pattern {path} matches no file (expected tar shards)")
            urls.extend(matches)
        elif path.is_file():
            urls.append(str(path))
        else:
            raise DatasetLayoutError(f"shards: {path} not found (expected a tar shard)")
    if not urls:
        raise DatasetLayoutError(f"shards: no shards in {spec!r}")
    return urls


def read_shard_counts(urls: Sequence[str]) -> list[int] | None:
    """Per-shard sample counts from the ``index.json`` next to local shards; ``None`` if any is unknown."""
    cache: dict[Path, dict[str, int]] = {}
    counts = []
    for url in urls:
        if _is_remote(url):
            return None
        p = Path(url)
        if p.parent not in cache:
            index = p.parent / INDEX_FILE
            try:
                cache[p.parent] = {k: int(v) for k, v in json.loads(index.read_text())["shards"].items()}
            except (OSError, ValueError, KeyError, TypeError):
                cache[p.parent] = {}
        if p.name not in cache[p.parent]:
            return None
        counts.append(cache[p.parent][p.name])
    return counts


# ---------------------------------------------------------------------------------------------------------- writing


@dataclass
class PackSummary:
    """What :func:`write_shards` did."""

    written: int = 0
    skipped: int = 0
    shards: list[tuple[str, int]] = field(default_factory=list)


def shard_key(key: str) -> str:
    """A webdataset-safe sample key: the extension is dropped and dots in the base name become ``_`` (webdataset
    splits a member name at the first dot of its base name)."""
    key = key.lstrip("/")
    stem, ext = os.path.splitext(key)
    if ext.lower() in IMAGE_EXTENSIONS:
        key = stem
    head, _, base = key.rpartition("/")
    base = re.sub(r"[.\s]", "_", base) or "_"
    return f"{head}/{base}" if head else base


def write_shards(
    records: Iterable[ImageRecord],
    out_dir: str | os.PathLike[str],
    *,
    prefix: str = "train",
    max_count: int = 10_000,
    max_size: int = 1 << 30,
    verify: bool = True,
    overwrite: bool = False,
    split_info: Mapping[str, Any] | None = None,
) -> PackSummary:
    """Write images into ``<out_dir>/<prefix>-000000.tar``, ... and record counts in ``<out_dir>/index.json``.

    Args:
        records: images to pack (e.g. from :func:`inpaint.data.sources.build_records`).
        max_count: samples per shard at most.
        max_size: bytes per shard at most (a single larger image still gets its own shard).
        verify: decode every image and skip (with a warning, counted) those that fail.
        overwrite: remove existing ``<prefix>-*.tar`` first; without it, existing shards are an error.
        split_info: how the records were selected (source, root, split, val_fraction); stored in ``index.json``
            under ``"splits"`` so that the next ``pack`` into the same folder can refuse an overlapping split.

    Files are written with :func:`inpaint.io.atomic_output`, so a crash never leaves a truncated shard.
    """
    if max_count < 1 or max_size < 1:
        raise ValueError(f"max_count and max_size must be positive, got {max_count}, {max_size}")
    out = _clear_shards(Path(out_dir), prefix, overwrite)
    summary = PackSummary()
    seen: set[str] = set()
    # Leaving this block on an error removes the open shard's temporary file.
    with _ShardSink(out, prefix, max_count, max_size) as sink:
        for rec in records:
            data = _read_record(rec, verify)
            if data is None:
                summary.skipped += 1
                continue
            sink.add(_unique_key(rec, seen), rec, data)
            summary.written += 1
        sink.finish()
    summary.shards = sink.shards
    _update_index(out, prefix, summary.shards, split_info)
    return summary


def _clear_shards(out: Path, prefix: str, overwrite: bool) -> Path:
    """Create ``out`` and remove its ``<prefix>-*.tar`` shards; without ``overwrite``, existing ones are an error."""
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob(f"{prefix}-*.tar"))
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already has {len(existing)} shards named {prefix}-*.tar; pass overwrite=True"
        )
    for f in existing:
        f.unlink()
    return out


def _read_record(rec: ImageRecord, verify: bool) -> bytes | None:
    """The encoded bytes of ``rec``; ``None`` (with a warning) when unreadable or, with ``verify``, undecodable."""
    try:
        data = Path(rec.path).read_bytes()
        if verify:
            load_rgb(data, name=rec.path)
    except (OSError, ImageDecodeError) as err:
        log.warning("pack: skipping %s (%s)", rec.path, err)
        return None
    return data


def _unique_key(rec: ImageRecord, seen: set[str]) -> str:
    """The shard key of ``rec``, added to ``seen``; two records with one key are an error."""
    key = shard_key(rec.key)
    if key in seen:
        raise ValueError(f"pack: two images map to the shard key {key!r} (second: {rec.path})")
    seen.add(key)
    return key


class _ShardSink:
    """Writes samples into ``<prefix>-000000.tar``, ``<prefix>-000001.tar``, ..., starting a new shard when the open
    one holds ``max_count`` samples or the next image would take it past ``max_size`` bytes.

    The open shard is written through :func:`inpaint.io.atomic_output`, entered on an exit stack: a finished shard
    is renamed into place, and leaving the ``with`` block on an error removes the open shard's temporary file.
    """

    def __init__(self, out: Path, prefix: str, max_count: int, max_size: int) -> None:
        self.out, self.prefix, self.max_count, self.max_size = out, prefix, max_count, max_size
        self.shards: list[tuple[str, int]] = []  # (file name, samples) of the finished shards
        self._pending = contextlib.ExitStack()  # the open shard's atomic_output
        self._writer: Any = None
        self._count = self._size = 0

    def __enter__(self) -> _ShardSink:
        self._pending.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._pending.__exit__(*exc)

    def _name(self) -> str:
        return f"{self.prefix}-{len(self.shards):06d}.tar"

    def add(self, key: str, rec: ImageRecord, data: bytes) -> None:
        """Write ``data`` (the encoded image of ``rec``) and its ``json`` metadata as sample ``key``."""
        ext = Path(rec.path).suffix.lower().lstrip(".") or "jpg"
        meta = json.dumps({"source": rec.path, "key": rec.key}).encode()
        if self._writer is not None and (
            self._count >= self.max_count or self._size + len(data) > self.max_size
        ):
            self.finish()
        if self._writer is None:
            self._open()
        self._writer.write({"__key__": key, ext: data, "json": meta})
        self._count += 1
        self._size += len(data) + len(meta) + 1536  # tar headers

    def _open(self) -> None:
        from webdataset import TarWriter  # imported on use, as everywhere in this module

        tmp = self._pending.enter_context(atomic_output(self.out / self._name()))
        self._writer = TarWriter(str(tmp), encoder=False, mtime=0.0, format="PAX_FORMAT")
        self._count = self._size = 0

    def finish(self) -> None:
        """Close the open shard (if any) and rename it into place."""
        if self._writer is None:
            return
        self._writer.close()
        self._pending.close()
        self.shards.append((self._name(), self._count))
        self._writer = None


def read_index(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``index.json`` of a shard folder (``{"shards": {name: count}, "splits": {prefix: info}}``); empty if
    there is none or it is not valid JSON."""
    index = Path(out_dir) / INDEX_FILE
    if not index.is_file():
        return {"shards": {}}
    try:
        data = json.loads(index.read_text())
    except ValueError:
        log.warning("pack: %s is not valid JSON; rewriting it", index)
        return {"shards": {}}
    return data if isinstance(data, dict) else {"shards": {}}


def _update_index(
    out: Path, prefix: str, shards: list[tuple[str, int]], split_info: Mapping[str, Any] | None = None
) -> None:
    data = read_index(out)
    kept = {k: v for k, v in data.get("shards", {}).items() if not k.startswith(f"{prefix}-")}
    kept.update(dict(shards))
    data["shards"] = dict(sorted(kept.items()))
    splits = {k: v for k, v in data.get("splits", {}).items() if k != prefix}
    if split_info is not None:
        splits[prefix] = dict(split_info)
    if splits:
        data["splits"] = dict(sorted(splits.items()))
    else:
        data.pop("splits", None)
    with atomic_output(out / INDEX_FILE) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


# ---------------------------------------------------------------------------------------------------------- reading


def _sample_image(sample: dict[str, Any]) -> tuple[str, bytes] | None:
    for k in IMAGE_KEYS:
        if k in sample:
            return k, sample[k]
    return None


class ShardStream(IterableDataset):
    """Streams inpainting samples from tar shards (see module doc for the split and length rules).

    Args:
        urls: expanded shard URLs (:func:`expand_shard_urls`), local paths or remote/``pipe:`` URLs.
        masks, transform, policy, split, seed: as for :class:`inpaint.data.datasets.InpaintingDataset`; the
            per-sample index is a stable hash of the sample key, so masks and crops do not depend on the split.
        rank, world_size: this process's DDP rank and the number of ranks.
        shuffle_buffer: samples held for shuffling per worker (train); 0 disables.
        counts: samples per shard, or ``None`` (unknown length unless ``samples_per_epoch``).
        samples_per_epoch: fixed epoch length over all ranks (cycles shards); ``None`` = one pass.
        equalize: with known counts and ``world_size > 1``, cut worker positions to the minimum across ranks.
    """

    def __init__(
        self,
        urls: Sequence[str],
        masks: MaskProvider,
        transform: Any,
        policy: DecodePolicy,
        *,
        split: str,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 1000,
        counts: Sequence[int] | None = None,
        samples_per_epoch: int | None = None,
        equalize: bool = True,
    ) -> None:
        super().__init__()
        if not urls:
            raise ValueError("ShardStream needs at least one shard")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world size {world_size}")
        if counts is not None and len(counts) != len(urls):
            raise ValueError(f"{len(counts)} counts for {len(urls)} shards")
        self.urls = list(urls)
        self.masks, self.transform, self.policy = masks, transform, policy
        self.split, self.seed = split, int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.shuffle_buffer = int(shuffle_buffer) if split == "train" else 0
        self.counts = list(counts) if counts is not None else None
        self.samples_per_epoch = int(samples_per_epoch) if samples_per_epoch else None
        self.equalize = bool(equalize)
        self.num_workers = (
            1  # set by the loader (set_num_workers) so that lengths can be computed in the main process
        )
        self.skipped = SkipCounter()
        self.epoch = SharedEpoch()
        if world_size > 1 and len(self.urls) < world_size and self.samples_per_epoch is None:
            log.warning("shards: %d shards for %d ranks; some ranks get none", len(self.urls), world_size)

    # -- bookkeeping shared by the main process (lengths) and the workers (iteration)

    def set_epoch(self, epoch: int) -> None:
        self.epoch.set(epoch)

    def set_num_workers(self, num_workers: int) -> None:
        self.num_workers = max(1, int(num_workers))

    def _slots(self) -> int:
        return self.world_size * self.num_workers

    def _slot_shards(self, rank: int, worker: int) -> list[int]:
        slot, n = rank * self.num_workers + worker, self._slots()
        own = list(range(slot, len(self.urls), n))
        if not own and self.samples_per_epoch is not None:
            own = [
                slot % len(self.urls)
            ]  # fixed-length mode may reuse shards when there are fewer than slots
        return own

    def worker_quota(self, worker: int) -> int | None:
        """Samples worker ``worker`` of this rank yields per epoch, or ``None`` if unknown."""
        if self.samples_per_epoch is not None:
            per_rank = math.ceil(self.samples_per_epoch / self.world_size)
            return per_rank // self.num_workers + (1 if worker < per_rank % self.num_workers else 0)
        if self.counts is None:
            return None

        def count(r: int) -> int:
            return sum(self.counts[i] for i in self._slot_shards(r, worker))  # type: ignore[index]

        if self.equalize and self.world_size > 1:
            return min(count(r) for r in range(self.world_size))
        return count(self.rank)

    def __len__(self) -> int:
        """Samples this rank yields per epoch; ``TypeError`` when unknown (no counts, no ``samples_per_epoch``)."""
        quotas = [self.worker_quota(w) for w in range(self.num_workers)]
        if any(q is None for q in quotas):
            raise TypeError("shard stream length unknown: no index.json counts and no samples_per_epoch")
        return int(sum(quotas))  # type: ignore[arg-type]

    def num_batches(self, batch_size: int, drop_last: bool) -> int:
        """Batches this rank yields per epoch: each worker batches its own samples, so partial batches add up."""
        quotas = [self.worker_quota(w) for w in range(self.num_workers)]
        if any(q is None for q in quotas):
            raise TypeError("shard stream length unknown")
        div = (lambda q: q // batch_size) if drop_last else (lambda q: math.ceil(q / batch_size))
        return int(sum(div(q) for q in quotas))  # type: ignore[operator]

    # -- iteration (runs in a worker)

    def _handler(self, exn: Exception) -> bool:
        self.skipped.add(1)
        log.warning("shards: skipping unreadable data (%s)", exn)
        return True

    def _raw_samples(self, shard_ids: list[int], epoch: int, worker: int) -> Iterator[dict[str, Any]]:
        from webdataset.tariterators import tarfile_samples

        cycle = 0
        while True:
            order = list(shard_ids)
            if self.split == "train":
                rng_for(self.seed, _SHUFFLE_TAG, epoch, self.rank, worker, cycle).shuffle(order)
            n = 0
            for sample in tarfile_samples(({"url": self.urls[i]} for i in order), handler=self._handler):
                n += 1
                yield sample
            if self.samples_per_epoch is None or n == 0:  # one pass, or nothing readable: do not spin
                return
            cycle += 1

    def _shuffled(
        self, samples: Iterator[dict[str, Any]], epoch: int, worker: int
    ) -> Iterator[dict[str, Any]]:
        if self.shuffle_buffer <= 1:
            yield from samples
            return
        rng = rng_for(self.seed, _SHUFFLE_TAG, STREAM_TAGS[self.split], epoch, self.rank, worker, 1)
        buf: list[dict[str, Any]] = []
        for s in samples:
            if len(buf) < self.shuffle_buffer:
                buf.append(s)
                continue
            j = int(rng.integers(len(buf)))
            buf[j], s = s, buf[j]
            yield s
        rng.shuffle(buf)  # type: ignore[arg-type]
        yield from buf

    def _decode(self, raw: dict[str, Any], epoch: int) -> dict[str, Any] | None:
        key = str(raw.get("__key__"))
        found = _sample_image(raw)
        if found is None:
            self._handler(
                ValueError(f"{raw.get('__url__')}:{key}: no image entry (expected one of {IMAGE_KEYS})")
            )
            return None
        try:
            image = self.policy(load_rgb(found[1], name=f"{raw.get('__url__')}:{key}.{found[0]}"))
        except (ImageDecodeError, ImageTooSmallError) as err:
            self._handler(err)
            return None
        index = stable_hash(key)
        rng = rng_for(self.seed, _IMAGE_TAG, STREAM_TAGS[self.split], epoch, index)
        image = apply_transform(self.transform, image, rng)
        size = self.policy.image_size
        mask, mask_key = self.masks.get(index, epoch, size, size)
        return to_sample(image, mask, key, mask_key)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        if num_workers != self.num_workers:
            # lengths were computed for another worker count; iterate correctly and say so
            log.warning(
                "shards: loader has %d workers but the stream expected %d", num_workers, self.num_workers
            )
            self.num_workers = num_workers
        epoch = self.epoch.get() if self.split == "train" else 0
        quota = self.worker_quota(worker)
        produced = 0
        if quota == 0:
            return
        last: dict[str, Any] | None = None
        raw = self._shuffled(
            self._raw_samples(self._slot_shards(self.rank, worker), epoch, worker), epoch, worker
        )
        for item in raw:
            sample = self._decode(item, epoch)
            if sample is None:
                continue
            yield sample
            last = sample
            produced += 1
            if quota is not None and produced >= quota:
                return
        if quota is not None and produced < quota:
            # Under DDP every rank must run the same number of batches, or the collective ops hang: pad with
            # repeats of the last sample (announced) rather than end the epoch early on this rank.
            pad = self.world_size > 1 and last is not None
            log.warning(
                "shards: worker %d of rank %d produced %d of its %d samples (skipped data)%s",
                worker,
                self.rank,
                produced,
                quota,
                "; repeating its last sample to keep ranks in step" if pad else "",
            )
            while pad and produced < quota:
                yield last
                produced += 1
