"""Helpers for the training tests: compose the real Hydra config in-process, or run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None):
    """Run ``python -m inpaint.train ARGS`` in ``cwd``; returns the CompletedProcess (output captured)."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "inpaint.train", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
