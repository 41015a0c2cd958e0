"""Fixtures of the training tests: the real Hydra config composed in-process (``train_config``) and the real CLI run
in a subprocess (``train_cli``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from inpaint.config import CONF_DIR
from tests.training.slurm_cluster import SlurmCluster, why_unavailable

# The folder that holds the `tests` package: on the PYTHONPATH of CLI runs, so that they (and their DDP children)
# can build the callbacks of tests/training/doubles.py from `_target_`.
REPO_ROOT = Path(__file__).resolve().parents[2]


class TrainConfig:
    """Composes the config `python -m inpaint.train <overrides>` would run."""

    CONF_DIR = CONF_DIR
    # Overrides that make any experiment tiny enough for a 2-core CPU: 64x64 crops, 4 levels at the smoke
    # experiment's widths, no workers, no VGG download.
    TINY = (
        "trainer=cpu",
        "data.image_size=64",
        "data.batch_size=2",
        "data.num_workers=0",
        "model.net.levels=4",
        "model.net.base_channels=16",
        "loss.vgg_weights=random",
        "logger=csv",
    )

    def compose(self, overrides: list[str], output_dir: Path) -> DictConfig:
        """The config `python -m inpaint.train <overrides>` would run, writing into ``output_dir``."""
        with initialize_config_dir(config_dir=str(self.CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
        return cfg


class TrainCli:
    """Runs ``python -m inpaint.train`` in a subprocess, W&B offline, with the test doubles importable."""

    @staticmethod
    def env(extra: dict[str, str] | None = None) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
        return {**env, "PYTHONPATH": path, **(extra or {})}

    def run(
        self, args: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m inpaint.train ARGS`` in ``cwd``; returns the CompletedProcess (output captured)."""
        return subprocess.run(
            [sys.executable, "-m", "inpaint.train", *args],
            cwd=cwd,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def train_config() -> TrainConfig:
    return TrainConfig()


@pytest.fixture(scope="session")
def train_cli() -> TrainCli:
    return TrainCli()


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A real one-node SLURM cluster (munged, slurmctld, slurmd) for this test session. Skipped with the reason
    where it cannot start; INPAINT_REQUIRE_SLURM=1 (CI) turns that skip into a failure."""
    reason = why_unavailable()
    if reason:
        if os.environ.get("INPAINT_REQUIRE_SLURM"):
            pytest.fail(f"INPAINT_REQUIRE_SLURM is set but {reason}")
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()
