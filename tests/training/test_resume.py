"""Long runs: resume at an epoch boundary, history kept across resumes, the exit after a preemption signal, the
final validation. Real CLI runs of the smoke experiment (the scheduler path itself: test_slurm.py)."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from inpaint.data.datamodule import InpaintDataLoader


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _steps(rows: list[dict[str, str]], key: str) -> list[int]:
    return [int(r["step"]) for r in rows if r.get(key)]


def test_a_loader_with_persistent_workers_resumes_one_pass_only():
    """The skip of a mid-epoch resume applies to the pass it was loaded for, not to every later pass of the
    persistent worker iterator (which would make every epoch empty: a run that never ends)."""
    loader = InpaintDataLoader(
        list(range(8)), batch_size=2, num_workers=1, persistent_workers=True, epoch_fn=None, split="train"
    )
    loader.load_state_dict(
        {"epoch": 0, "batches": 4}
    )  # the whole of pass 0 was trained before the checkpoint
    assert list(loader) == []
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert len(list(loader)) == 4


@pytest.mark.slow
def test_resume_after_an_epoch_boundary_continues_and_keeps_every_metric_row(tmp_path, train_cli):
    """The first run ends exactly at the end of an epoch; the second, started in the same directory without any
    flag, resumes (no endless empty epochs) and metrics.csv and the learning curve keep the first run's rows, each
    step once."""
    run_dir = tmp_path / "run"
    common = [
        "+experiment=smoke",
        "data.samples_per_epoch=40",
        "data.batch_size=4",  # 10 batches per epoch
        "data.num_workers=2",  # persistent workers: the iterator that outlives a pass
        "trainer.val_check_interval=10",
        "callbacks.image_grids.every_n_steps=0",
        f"hydra.run.dir={run_dir}",
    ]
    first = train_cli.run([*common, "trainer.max_steps=20"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = train_cli.run([*common, "trainer.max_steps=30"], cwd=tmp_path, timeout=240)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resuming from" in second.stdout + second.stderr
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 30
    rows = _rows(run_dir / "csv" / "metrics.csv")
    assert _steps(rows, "train/loss") == list(range(30))  # both parts, each step once, in order
    assert _steps(rows, "val/psnr") == [9, 19, 29]  # logged at the step index of the validation's last batch
    curve = [r for r in _rows(run_dir / "learning_curve.csv") if r["step"]]
    assert [float(r["step"]) for r in curve] == [10.0, 20.0, 30.0]
    seconds = [float(r["seconds"]) for r in curve]
    assert seconds == sorted(seconds), "the resumed curve's wall time starts again at zero"


@pytest.mark.slow
def test_a_preemption_signal_saves_and_exits_without_another_validation(tmp_path):
    """SIGUSR1 mid-run: last.ckpt at the end of the batch, exit status 0, and no validation pass after the signal
    (validation every step here, so one would show as a learning-curve row at the checkpoint's step)."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inpaint.train",
            "+experiment=smoke",
            "trainer.max_steps=400",
            "trainer.val_check_interval=1",
            "callbacks.image_grids.every_n_steps=0",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    curve = run_dir / "learning_curve.csv"
    deadline = time.monotonic() + 240
    while not (curve.is_file() and len(_rows(curve)) >= 5) and proc.poll() is None:
        assert time.monotonic() < deadline, "no validation within 240 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGUSR1)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    assert "SIGUSR1: checkpoint saved" in output
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "global_step"
    ]
    validated = [float(r["step"]) for r in _rows(curve) if r["step"]]
    assert 0 < step < 400 and max(validated) < step, (step, validated)


@pytest.mark.slow
def test_the_final_weights_are_validated_when_the_interval_does_not_end_at_max_steps(tmp_path, train_cli):
    run_dir = tmp_path / "run"
    proc = train_cli.run(
        [
            "+experiment=smoke",
            "trainer.max_steps=10",
            "trainer.val_check_interval=4",
            "callbacks.model_checkpoint.save_top_k=-1",  # keep every validated checkpoint
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    best = sorted(p.name.split("-")[0] for p in (run_dir / "checkpoints").glob("step*.ckpt"))
    assert best == ["step0000004", "step0000008", "step0000010"]
