"""Helpers for the training tests: compose the real Hydra config in-process, or run the real CLI in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import inpaint

CONF_DIR = Path(inpaint.__file__).resolve().parent / "conf"

# Overrides that make any experiment tiny enough for a 2-core CPU: 64x64 crops, 4 levels, no workers, no VGG download.
TINY = [
    "trainer=cpu",
    "data.image_size=64",
    "data.batch_size=2",
    "data.num_workers=0",
    "model.net.levels=4",
    "loss.vgg_weights=random",
    "logger=csv",
]


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config `python -m inpaint.train <overrides>` would run, writing into ``output_dir``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: W&B offline, and this folder importable so that DDP children can build the
    test-only callbacks below (``+callbacks.x._target_=_train_helpers.X``)."""
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    return {**env, "PYTHONPATH": path, **(extra or {})}


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None):
    """Run ``python -m inpaint.train ARGS`` in ``cwd``; returns the CompletedProcess (output captured)."""
    full_env = cli_env()
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "inpaint.train", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class DistributedAudit(pl.Callback):
    """Records, per rank, the sample keys it trained on and a checksum of its final weights, as
    ``<output_dir>/audit/rank<R>.json``: ranks should see disjoint samples and end with identical weights."""

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
        out = Path(self.output_dir or trainer.default_root_dir) / "audit" / f"rank{trainer.global_rank}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
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
