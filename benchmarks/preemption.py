"""Seconds from a preemption signal to the exit of ``python -m inpaint.train`` (run from the repository root)::

    .venv/bin/python -m benchmarks.preemption [--runs 3] [--experiment demo|smoke]

Each run starts the training CLI in a temporary directory, waits until it trains (its first training image grid is
written at step 1), waits a further random 0-3 s so that the signal lands anywhere in a step, sends ``SIGUSR1`` and
measures the time until the process has exited, and the time from the signal to the checkpoint's write. The same run
logs the mean step time (from its progress), the floor of the exit time: the step in flight has to finish. Prints the
medians as a Markdown table. A scheduler's warning (``--signal=USR1@<seconds>``) must exceed that time.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import machine_info

EXPERIMENTS = {
    "demo": [],  # what `make train` runs: the default config
    "smoke": ["+experiment=smoke", "trainer.max_steps=100000"],
}


def one_run(experiment: str, seed: int) -> dict[str, float]:
    """One signalled run: seconds from SIGUSR1 to the exit and to the checkpoint, and the steps it had done."""
    with tempfile.TemporaryDirectory(prefix="inpaint-preempt-") as tmp:
        run_dir = Path(tmp) / "run"
        args = [
            *EXPERIMENTS[experiment],
            "validate_first=false",
            "print_config=false",
            f"hydra.run.dir={run_dir}",
        ]
        proc = subprocess.Popen(
            [sys.executable, "-m", "inpaint.train", *args],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        first_grid = run_dir / "images" / "train_images_step0000001.png"
        while not first_grid.exists():
            if proc.poll() is not None:
                raise SystemExit(f"the {experiment} run ended before it trained (status {proc.returncode})")
            time.sleep(0.05)
        started = time.monotonic()
        time.sleep(random.Random(seed).uniform(0.0, 3.0))
        signalled, signalled_wall = time.monotonic(), time.time()
        proc.send_signal(signal.SIGUSR1)
        status = proc.wait(timeout=600)
        exited = time.monotonic()
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        if status != 0 or not ckpt.is_file():
            raise SystemExit(f"the {experiment} run exited with status {status} and no checkpoint")
        steps = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)["global_step"]
        return {
            "exit": exited - signalled,
            "checkpoint": ckpt.stat().st_mtime - signalled_wall,
            "step": (signalled - started) / max(1, steps - 1),
            "steps": float(steps),
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.preemption", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--experiment", choices=sorted(EXPERIMENTS), action="append")
    args = p.parse_args(argv)
    print(" · ".join(f"{k}: {v}" for k, v in machine_info().items()))
    print("\n| config | runs | signal → checkpoint written (s) | signal → exit (s) | one training step (s) |")
    print("|---|---|---|---|---|")
    for experiment in args.experiment or ["demo", "smoke"]:
        runs = [one_run(experiment, seed) for seed in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"| {experiment} | {len(runs)} | {med['checkpoint']:.2f} | {med['exit']:.2f} | {med['step']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
