"""What a run does when a scheduler says it must stop: the project's one signal policy (docs/training.md).

* **Which signals.** ``SIGUSR1`` and ``SIGUSR2`` are a scheduler's warning before a time limit or a preemption
  (``sbatch --signal=USR1@120``; submitit asks SLURM for ``USR2``); ``SIGTERM`` is the stop itself (``scancel``,
  a preemption without warning, ``kill``). While a trainer runs (validation, fit or test), each only raises a flag.
* **Who saves.** :class:`PreemptionCheckpoint`, and nobody else: at the end of the next training batch (under DDP the
  next one the ranks agree on, so a signal that reached one rank cannot hang the others) every rank takes part in
  writing ``checkpoints/last.ckpt``, and training stops at once, without the validation pass Lightning would run on
  a stop. Lightning's own SLURM handler (a save from inside the signal handler, ``hpc_ckpt_*.ckpt``, its own
  requeue) is switched off by :func:`cluster_plugins`.
* **Who requeues.** After the run has closed its files, :meth:`PreemptionCheckpoint.hand_over`: for ``USR1``/``USR2``
  the handler that was installed before the run, if any (submitit's, which resubmits the same Hydra job), else, in
  a SLURM batch job, ``scontrol requeue $SLURM_JOB_ID`` from global rank 0. ``SIGTERM`` is not requeued: the
  scheduler (or the user who cancelled) decides. Outside SLURM nothing is requeued.
* **Who resumes.** A run started in a directory that holds ``checkpoints/last.ckpt`` continues from it
  (:func:`inpaint.training.run.resolve_ckpt_path`): the requeued job, which runs in the same directory, needs no flag.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.utilities import rank_zero_only

__all__ = ["PREEMPTION_SIGNALS", "PreemptionCheckpoint", "cluster_plugins", "requeue_slurm_job"]

log = logging.getLogger(__name__)

PREEMPTION_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2") if hasattr(signal, name)
)
# The warnings before a deadline: the job should come back. SIGTERM is the stop itself.
WARNING_SIGNALS = tuple(s for s in PREEMPTION_SIGNALS if s != signal.SIGTERM)


def cluster_plugins() -> list[Any]:
    """Trainer plugins for the cluster this process runs in: under SLURM, Lightning's SLURM environment with its
    auto-requeue off (the project saves and requeues, see the module docstring); elsewhere none."""
    if SLURMEnvironment.detect():
        return [SLURMEnvironment(auto_requeue=False)]
    return []


def requeue_slurm_job(job_id: str) -> bool:
    """``scontrol requeue JOB_ID``; returns whether SLURM accepted it (the reason is logged when not).

    SLURM ends the job's processes as soon as it accepts, so this must be the last thing a run does.
    """
    try:
        subprocess.run(
            ["scontrol", "requeue", job_id], check=True, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as err:
        reason = getattr(err, "stderr", None) or err
        log.error(
            "could not requeue SLURM job %s (%s): submit it again to resume", job_id, str(reason).strip()
        )
        return False
    log.warning("requeued SLURM job %s: it resumes from its last checkpoint in the same directory", job_id)
    return True


Handler = Callable[[int, Any], Any] | int | None


class PreemptionCheckpoint(pl.Callback):
    """Write ``<dirpath>/last.ckpt`` at the end of a training batch after a preemption signal, stop at once, and hand
    the job back to the scheduler (:meth:`hand_over`). The policy is the module docstring's.

    Args:
        dirpath: checkpoint folder (default ``<default_root_dir>/checkpoints``).
        filename: checkpoint file name.
        check_every_n_steps: under DDP, optimiser steps between agreements (each is one tiny all-reduce).
    """

    def __init__(
        self, dirpath: str | None = None, filename: str = "last.ckpt", check_every_n_steps: int = 10
    ) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.dirpath = dirpath
        self.filename = filename
        self.check_every_n_steps = check_every_n_steps
        self.signum: int | None = None  # the first preemption signal received
        self.saved_path: Path | None = None
        self._installed: dict[int, Handler] = {}  # signal -> the handler ours replaced, for this stage
        self._before_run: dict[int, Handler] = {}  # signal -> the handler before the first stage (submitit's)

    @property
    def signalled(self) -> bool:
        return self.signum is not None

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("PreemptionCheckpoint: signal handlers can only be installed in the main thread")
            return
        for signum in PREEMPTION_SIGNALS:
            previous = signal.signal(signum, self._on_signal)
            if previous != self._on_signal:
                self._installed.setdefault(signum, previous)
                self._before_run.setdefault(signum, previous)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._install()  # validation before fitting and testing after it are covered too

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registers its own SIGTERM handler when fit starts (it raises between two batches, without a
        # checkpoint) and chains ours into it: installing ours alone again, now, keeps it out of the way.
        self._install()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Lightning has restored the handlers it found (ours) by now; put back the ones ours replaced.
        for signum, handler in self._installed.items():
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._installed = {}

    def _agreed(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        if trainer.world_size == 1:
            return self.signalled
        if trainer.global_step % self.check_every_n_steps:
            return False
        # The signal number itself, so that every rank knows which policy applies (see hand_over).
        flag = torch.tensor([float(self.signum or 0)], device=pl_module.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if self.signum is None and flag.item() > 0:
            self.signum = int(flag.item())
        return self.signalled

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.saved_path is not None or not self._agreed(trainer, pl_module):
            return
        path = Path(self.dirpath or Path(trainer.default_root_dir) / "checkpoints") / self.filename
        trainer.save_checkpoint(path)  # every rank takes part (a barrier), rank 0 writes
        self.saved_path = path
        trainer.should_stop = True
        # Lightning validates when a run is asked to stop; after a preemption that pass (100 batches at 512² plus
        # the OpenCV baselines, say) would outlast the scheduler's grace period, and the checkpoint is written.
        trainer.limit_val_batches = 0
        rank_zero_only(log.warning)(
            "%s: checkpoint saved to %s at global step %d; stopping (it resumes from there when run again in %s)",
            signal.Signals(self.signum).name,
            path,
            trainer.global_step,
            Path(trainer.default_root_dir),
        )

    def hand_over(self, trainer: pl.Trainer) -> None:
        """Give a preempted job back to its scheduler, as the last act of a run (SLURM ends the job when it accepts
        a requeue). Does nothing unless training was stopped by a warning signal and its checkpoint written."""
        if self.saved_path is None or self.signum not in WARNING_SIGNALS:
            return
        previous = self._before_run.get(self.signum)
        if callable(previous):
            # A handler from before the run, e.g. submitit's: it resubmits the same job (and may exit the process).
            log.info("calling the %s handler installed before the run", signal.Signals(self.signum).name)
            previous(self.signum, None)
        elif trainer.is_global_zero and SLURMEnvironment.detect():
            requeue_slurm_job(os.environ["SLURM_JOB_ID"])
