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
