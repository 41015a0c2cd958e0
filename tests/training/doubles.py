"""Test doubles that training runs build by `_target_` (``+callbacks.x._target_=tests.training.doubles.X``).

They live in an importable module, not in a conftest, because DDP child processes and CLI runs instantiate them from
the config: the CLI-run fixture puts the repository root on their PYTHONPATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class DistributedAudit(pl.Callback):
    """Records, per rank, the sample keys it trained on and a checksum of its final weights, as
    ``<output_dir>/audit/rank<R>.json``: ranks should see disjoint samples and end with identical weights. A run
    resumed in the same directory writes ``rank<R>.part<N>.json`` (N = 1, 2, ...) beside the earlier parts."""

    def __init__(self, output_dir: str | None = None) -> None:
        self.output_dir = output_dir
        self.keys: list[str] = []
        self.mask_keys: list[str] = []  # unique per (epoch, sample): "<masks>/seed<s>/e<epoch>/<index>"

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.keys.extend(str(k) for k in batch.get("key", []))
        self.mask_keys.extend(str(k) for k in batch.get("mask_key", []))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # Parameters only: BatchNorm statistics are per rank unless sync_batchnorm is on.
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.net.named_parameters()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        finite = all(bool(t.float().isfinite().all()) for t in pl_module.net.state_dict().values())
        folder = Path(self.output_dir or trainer.default_root_dir) / "audit"
        folder.mkdir(parents=True, exist_ok=True)
        out, part = folder / f"rank{trainer.global_rank}.json", 0
        while out.exists():
            part += 1
            out = folder / f"rank{trainer.global_rank}.part{part}.json"
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "keys": self.keys,
            "mask_keys": self.mask_keys,
            "net_sha256": digest.hexdigest(),
            "net_finite": finite,
            "nonfinite_skipped": getattr(pl_module, "nonfinite_skipped", None),
        }
        out.write_text(json.dumps(record))


class PoisonBatch(pl.Callback):
    """Puts a NaN into the training batch of one rank at one optimiser step (the other ranks stay clean)."""

    def __init__(self, rank: int = 1, step: int = 1) -> None:
        self.rank, self.step = rank, step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            batch["image"][0, 0, 0, 0] = float("nan")


class SignalRank(pl.Callback):
    """Sends ``signum`` to this process at optimiser step ``step`` on one rank only (a partial preemption)."""

    def __init__(self, rank: int = 1, step: int = 2, signum: int = int(signal.SIGUSR1)) -> None:
        self.rank, self.step, self.signum = rank, step, signum

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class Heartbeat(pl.Callback):
    """Writes the global step to ``<output_dir>/heartbeat/rank<R>`` after every training batch, so that a test knows
    how far a run in another process has got; ``delay`` seconds of sleep per batch keep a tiny run going long enough
    to be signalled in the middle."""

    def __init__(self, output_dir: str | None = None, delay: float = 0.0) -> None:
        self.output_dir, self.delay = output_dir, delay

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        folder = Path(self.output_dir or trainer.default_root_dir) / "heartbeat"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".rank{trainer.global_rank}.tmp"
        tmp.write_text(str(trainer.global_step))
        tmp.replace(folder / f"rank{trainer.global_rank}")
        time.sleep(self.delay)
