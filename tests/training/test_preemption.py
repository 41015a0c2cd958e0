"""inpaint.training.preemption: flag-only handlers, the checkpoint at a batch end, and who requeues (the scheduler
path end to end: test_slurm.py)."""

from __future__ import annotations

import os
import signal

import pytest
import pytorch_lightning as pl
import torch

from inpaint.training.preemption import PreemptionCheckpoint


class _SignalAtStep(pl.Callback):
    """Sends ``signum`` to this process after the other callbacks have seen batch ``step`` end: for SIGTERM, the
    moment at which Lightning's own handler would raise SIGTERMException before any checkpoint is written."""

    def __init__(self, step: int, signum: int = signal.SIGTERM):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class _Linear(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(tmp_path, signum: int) -> tuple[pl.Trainer, PreemptionCheckpoint]:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=4)
    preemption = PreemptionCheckpoint(dirpath=str(tmp_path))
    trainer = pl.Trainer(
        max_steps=12,
        callbacks=[preemption, _SignalAtStep(3, signum)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_Linear(), data)  # a SIGTERMException (SystemExit) here would fail the test
    return trainer, preemption


def test_preemption_checkpoint_saves_even_when_the_signal_lands_between_batches(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    trainer, preemption = _fit(tmp_path, signal.SIGTERM)
    assert preemption.saved_path == tmp_path / "last.ckpt"
    assert torch.load(preemption.saved_path, weights_only=True)["global_step"] == 4
    assert trainer.global_step == 4
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.fixture
def earlier_handler():
    """A SIGUSR2 and a SIGTERM handler installed before the run (as submitit installs its own), recording calls."""
    calls: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, frame: calls.append(signum))
        for s in (signal.SIGUSR2, signal.SIGTERM)
    }
    yield calls
    for s, handler in previous.items():
        signal.signal(s, handler)


def test_a_warning_signal_is_handed_to_the_handler_installed_before_the_run(tmp_path, earlier_handler):
    """USR2 (submitit's): the run saves first, and only then calls the earlier handler (which requeues)."""
    before = signal.getsignal(signal.SIGUSR2)
    trainer, preemption = _fit(tmp_path, signal.SIGUSR2)
    assert preemption.saved_path is not None and earlier_handler == [], (
        "the earlier handler ran during training"
    )
    assert signal.getsignal(signal.SIGUSR2) == before
    preemption.hand_over(trainer)
    assert earlier_handler == [signal.SIGUSR2]


def test_sigterm_is_not_handed_over(tmp_path, earlier_handler):
    """SIGTERM is the stop itself (scancel, kill): saved, and nothing asks for the job to come back."""
    trainer, preemption = _fit(tmp_path, signal.SIGTERM)
    preemption.hand_over(trainer)
    assert preemption.saved_path is not None and earlier_handler == []


def test_a_finished_run_is_not_handed_over(tmp_path, earlier_handler):
    """A signal that arrives when training has already ended (no checkpoint written for it) requeues nothing."""
    trainer, preemption = _fit(tmp_path, signal.SIGUSR2)
    preemption.saved_path = None  # as after a run that reached max_steps before the signal
    preemption.hand_over(trainer)
    assert earlier_handler == []
