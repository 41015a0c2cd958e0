"""Preemption and requeue under a real SLURM scheduler (a one-node cluster started by the ``slurm_cluster`` fixture).

A run is signalled the way SLURM warns a job before its time limit (``scancel --signal``, what ``--signal=USR1@120``
sends), writes ``last.ckpt``, is requeued, and the requeued job continues in the same run directory, from the same
step and the same position in the epoch, without any flag: its final weights equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]

MAX_STEPS = 24
# The smoke experiment, 8 batches per epoch (the signal lands mid-epoch), validation only at the last step, and the
# test doubles: the trained sample keys per part, and a heartbeat that slows each step down to 0.25 s.
COMMON = [
    "+experiment=smoke",
    f"trainer.max_steps={MAX_STEPS}",
    "trainer.val_check_interval=1000",
    "data.samples_per_epoch=32",
    "data.batch_size=4",
    "callbacks.image_grids.every_n_steps=0",
    "callbacks.preemption.check_every_n_steps=1",
    "+callbacks.audit._target_=tests.training.doubles.DistributedAudit",
    "+callbacks.beat._target_=tests.training.doubles.Heartbeat",
    "+callbacks.beat.delay=0.25",
]


def _wait_for(condition, timeout: float, what: str, log=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{log()}")
        time.sleep(0.5)


def _step(run_dir: Path, rank: int = 0) -> int:
    beat = run_dir / "heartbeat" / f"rank{rank}"
    try:
        return int(beat.read_text())
    except (OSError, ValueError):
        return -1


def _net(ckpt: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.")}


def _parts(run_dir: Path, rank: int = 0) -> list[dict]:
    audit = run_dir / "audit"
    files = [audit / f"rank{rank}.json", *sorted(audit.glob(f"rank{rank}.part*.json"))]
    return [json.loads(f.read_text()) for f in files if f.is_file()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, train_cli) -> Path:
    """The same run without a scheduler or a signal: what the preempted runs must end with."""
    out = tmp_path_factory.mktemp("whole") / "run"
    proc = train_cli.run([*COMMON, "callbacks.beat.delay=0", f"hydra.run.dir={out}"], cwd=out.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _assert_continued(run_dir: Path, whole: Path, parts: int = 2) -> None:
    """One run directory, preempted once and finished by the requeued job exactly as the uninterrupted run."""
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == MAX_STEPS
    recorded = _parts(run_dir)
    assert len(recorded) == parts, [p["global_step"] for p in recorded]
    first, rest = recorded[0], recorded[-1]
    assert 0 < first["global_step"] < MAX_STEPS, "the first job was not stopped in the middle"
    # The requeued job started at the step the first one stopped at and trained exactly the samples that were left.
    expected = _parts(whole)[0]["mask_keys"]
    assert first["mask_keys"] + rest["mask_keys"] == expected
    for name, value in _net(whole / "checkpoints" / "last.ckpt").items():
        torch.testing.assert_close(_net(run_dir / "checkpoints" / "last.ckpt")[name], value, rtol=0, atol=0)
    assert not list(run_dir.rglob("hpc_ckpt*")), "Lightning's own SLURM checkpoint was written"


def test_submitit_launcher_job_is_checkpointed_requeued_and_continues(
    tmp_path, train_cli, slurm_cluster, uninterrupted
):
    """(a) ``--multirun hydra/launcher=slurm``: submitit's USR2, the launcher resubmits the same Hydra job."""
    sweep = tmp_path / "sweep"
    args = [
        "--multirun",
        "hydra/launcher=slurm",
        *COMMON,
        f"hydra.sweep.dir={sweep}",
        f"hydra.launcher.submitit_folder={sweep}/.submitit/%j",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=2",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.timeout_min=20",
    ]
    env = train_cli.env(slurm_cluster.env)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "inpaint.train", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run_dir = sweep / "0"
    try:
        _wait_for(lambda: _step(run_dir) >= 4, 180, "the job to train a few steps", slurm_cluster.logs)
        (job_id,) = [p.name for p in (sweep / ".submitit").iterdir() if p.name.isdigit()]
        slurm_cluster.run("scancel", "--signal=USR2", job_id, check=True)
        slurm_cluster.wait_job(job_id, {"PENDING"}, 120)
        slurm_cluster.release(job_id)
        output, _ = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    logs = "".join(p.read_text() for p in sorted((sweep / ".submitit").rglob("*_log.*")))
    assert launcher.returncode == 0, output[-3000:] + logs[-5000:]
    assert slurm_cluster.job(job_id).get("Restarts") == "1"
    assert "resuming from" in logs
    _assert_continued(run_dir, uninterrupted)


SBATCH_SCRIPT = REPO_ROOT / "docs" / "slurm" / "train.sbatch"


def test_sbatch_script_ddp_job_is_checkpointed_requeued_and_continues(
    tmp_path, train_cli, slurm_cluster, uninterrupted
):
    """(b) The documented ``sbatch`` script, DDP over 2 tasks under ``srun`` (gloo): both ranks get USR1, agree,
    save, rank 0 requeues; the requeued job resumes in its run directory (named after the job id)."""
    env = train_cli.env(slurm_cluster.env)
    env["PATH"] = (
        f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` in the script: this venv
    )
    job_id = slurm_cluster.sbatch(
        # The script asks for 8 GPUs and 8 tasks: this node has 2 CPUs and no GPU.
        "--ntasks-per-node=2",
        "--gpus-per-node=0",
        "--cpus-per-task=1",
        "--mem=2G",
        str(SBATCH_SCRIPT),
        *COMMON,
        "trainer.accelerator=cpu",
        "trainer.sync_batchnorm=false",
        # Two ranks share the 32 samples of an epoch: half the batch each keeps the global batch and sample order.
        "data.batch_size=2",
        cwd=tmp_path,
        env=env,
    )
    fields = slurm_cluster.job(job_id)
    run_dir = tmp_path / "outputs" / "slurm" / f"{fields['JobName']}-{job_id}"
    log_file = tmp_path / f"slurm-{fields['JobName']}-{job_id}.out"

    def log() -> str:
        return (log_file.read_text()[-6000:] if log_file.is_file() else "(no job log)") + slurm_cluster.logs()

    def running() -> bool:
        state = slurm_cluster.job(job_id).get("JobState")
        assert state in ("PENDING", "RUNNING"), f"job {job_id} is {state}\n{log()}"
        return min(_step(run_dir, 0), _step(run_dir, 1)) >= 4

    _wait_for(running, 240, "both ranks to train a few steps", log)
    slurm_cluster.run("scancel", "--signal=USR1", job_id, check=True)
    slurm_cluster.wait_job(job_id, {"PENDING"}, 120)
    slurm_cluster.release(job_id)
    fields = slurm_cluster.wait_job(job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, 400)
    assert fields["JobState"] == "COMPLETED", log()
    assert fields["Restarts"] == "1"
    text = log_file.read_text()
    assert "SIGUSR1: checkpoint saved" in text and "resuming from" in text, log()
    for rank in (0, 1):
        parts = _parts(run_dir, rank)
        assert len(parts) == 2 and parts[0]["global_step"] == parts[1]["global_step"] - (
            MAX_STEPS - parts[0]["global_step"]
        )
    assert _parts(run_dir, 0)[-1]["net_sha256"] == _parts(run_dir, 1)[-1]["net_sha256"]
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == MAX_STEPS
    # Together the two ranks of both parts trained exactly the samples of one uninterrupted run.
    trained = sorted(k for rank in (0, 1) for p in _parts(run_dir, rank) for k in p["mask_keys"])
    assert trained == sorted(_parts(uninterrupted)[0]["mask_keys"])
    assert not list(run_dir.rglob("hpc_ckpt*")), "Lightning's own SLURM checkpoint was written"
