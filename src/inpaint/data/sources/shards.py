"""Tar shards written by ``python -m inpaint.data.pack``: a source that is streamed, not listed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shards:
    """The shards source of a data config (``conf/data/shards.yaml``); :mod:`inpaint.data.shards` reads them.

    Args:
        root: folder of the shards (relative patterns are taken relative to it).
        train_shards, val_shards, test_shards: a glob, brace range, absolute path, ``http(s)://`` URL or ``pipe:CMD``
            per split; ``test_shards=None`` reads the validation shards.
        shuffle_buffer: samples held per worker for shuffling (train only); 0 = shard order only.
        ddp_equalize: under DDP, cut each worker position to the smallest count across ranks.
    """

    root: str | None = None
    train_shards: str | None = None
    val_shards: str | None = None
    test_shards: str | None = None
    shuffle_buffer: int = 1000
    ddp_equalize: bool = True

    def spec(self, split: str) -> str:
        """The shard pattern of ``split`` (the test split falls back to the validation shards)."""
        spec = {
            "train": self.train_shards,
            "val": self.val_shards,
            "test": self.test_shards or self.val_shards,
        }
        if not spec[split]:
            raise ValueError(f"shards data config needs '{split}_shards' (a glob, brace pattern or URL)")
        return str(spec[split])
