"""inpaint.training.callbacks: image grids (uint8, right layout)."""

from __future__ import annotations

import numpy as np
import torch

from inpaint.training.callbacks import make_grid


def test_grid_is_uint8_rows_of_masked_output_composite_truth():
    torch.manual_seed(0)
    image = torch.rand(3, 3, 8, 8)
    mask = torch.ones(3, 1, 8, 8)
    mask[:, :, 2:5, 2:5] = 0
    output = torch.zeros(3, 3, 8, 8)
    grid = make_grid(image, mask, output, max_images=2)
    # tiles of 8 px, 4 px apart, under a header of column labels (lines of 14 px, wrapped at the tiles' width):
    # 2 rows x 4 columns
    head = grid.shape[0] - (2 * (8 + 4) + 4)
    assert head >= 18 and (head - 4) % 14 == 0, grid.shape
    assert grid.dtype == np.uint8 and grid.shape[1:] == (4 + 4 * (8 + 4), 3)
    # W&B renders float [0,1] images black; uint8 must use the full range
    assert grid.max() > 200
    first = grid[head : head + 8].astype(np.float32) / 255
    masked, out, comp, truth = (first[:, 4 + i * 12 : 4 + i * 12 + 8] for i in range(4))
    np.testing.assert_allclose(truth, image[0].permute(1, 2, 0).numpy(), atol=1 / 255)
    assert np.all(masked[2:5, 2:5] == 1.0), "holes are shown white in the masked input"
    assert np.all(out == 0)
    assert np.all(comp[2:5, 2:5] == 0) and np.allclose(comp[0, 0], truth[0, 0], atol=1 / 255)


def test_step_budget_ends_the_run_and_its_schedule_within_the_time(tmp_path):
    """Steps of ~20 ms and a 3-second budget: far fewer than max_steps fit; the run ends at the chosen length,
    a multiple of 10, and the cosine schedule (which reads trainer.max_steps) has reached its end there."""
    import time

    import pytorch_lightning as pl

    from inpaint.training.callbacks import StepBudget
    from inpaint.training.module import lr_factor

    class Slow(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            time.sleep(0.02)
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            factor = lr_factor("cosine", 0, lambda: self.trainer.max_steps, 0.0)
            return {
                "optimizer": opt,
                "lr_scheduler": {
                    "scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor),
                    "interval": "step",
                },
            }

    budget = StepBudget(minutes=0.05, calibrate_at=20, multiple=10)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=4)
    trainer = pl.Trainer(
        max_steps=100_000,
        callbacks=[budget],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    module = Slow()
    start = time.monotonic()
    trainer.fit(module, data)
    assert budget.max_steps is not None and 20 <= budget.max_steps < 1000 and budget.max_steps % 10 == 0
    assert trainer.global_step == budget.max_steps
    assert time.monotonic() - start < 60  # the run stopped by itself, long before max_steps
    assert module.lr_schedulers().get_last_lr()[0] < 1e-3  # the cosine ended with the run
    assert budget.state_dict() == {"max_steps": budget.max_steps}  # kept by checkpoints for a resume
