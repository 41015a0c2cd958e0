"""inpaint.training.callbacks: image grids (uint8, right layout)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytorch_lightning as pl
import torch

from inpaint.training.callbacks import PreemptionCheckpoint, make_grid


def test_grid_is_uint8_rows_of_masked_output_composite_truth():
    torch.manual_seed(0)
    image = torch.rand(3, 3, 8, 8)
    mask = torch.ones(3, 1, 8, 8)
    mask[:, :, 2:5, 2:5] = 0
    output = torch.zeros(3, 3, 8, 8)
    grid = make_grid(image, mask, output, max_images=2)
    # tiles of 8 px, 4 px apart, under an 18 px header of column labels: 2 rows x 4 columns
    assert grid.dtype == np.uint8 and grid.shape == (18 + 2 * (8 + 4) + 4, 4 + 4 * (8 + 4), 3)
    # W&B renders float [0,1] images black; uint8 must use the full range
    assert grid.max() > 200
    first = grid[18 : 18 + 8].astype(np.float32) / 255
    masked, out, comp, truth = (first[:, 4 + i * 12 : 4 + i * 12 + 8] for i in range(4))
    np.testing.assert_allclose(truth, image[0].permute(1, 2, 0).numpy(), atol=1 / 255)
    assert np.all(masked[2:5, 2:5] == 1.0), "holes are shown white in the masked input"
    assert np.all(out == 0)
    assert np.all(comp[2:5, 2:5] == 0) and np.allclose(comp[0, 0], truth[0, 0], atol=1 / 255)


class _SignalAtStep(pl.Callback):
    """Sends SIGTERM to this process after the other callbacks have seen batch ``step`` end: the moment at which
    Lightning's own handler would raise SIGTERMException before any checkpoint is written."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


class _Linear(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_preemption_checkpoint_saves_even_when_the_signal_lands_between_batches(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=4)
    preemption = PreemptionCheckpoint(dirpath=str(tmp_path))
    trainer = pl.Trainer(
        max_steps=12,
        callbacks=[preemption, _SignalAtStep(3)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    before = signal.getsignal(signal.SIGTERM)
    trainer.fit(_Linear(), data)  # a SIGTERMException (SystemExit) here would fail the test
    assert preemption.saved_path == tmp_path / "last.ckpt"
    assert torch.load(preemption.saved_path, weights_only=True)["global_step"] == 4
    assert trainer.global_step == 4
    assert signal.getsignal(signal.SIGTERM) == before
