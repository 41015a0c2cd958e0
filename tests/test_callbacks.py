"""inpaint.callbacks: image grids (uint8, right layout) and atomic PNG writes."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from inpaint.callbacks import make_grid, save_png_atomic


def test_grid_is_uint8_rows_of_masked_output_composite_truth():
    torch.manual_seed(0)
    image = torch.rand(3, 3, 8, 8)
    mask = torch.ones(3, 1, 8, 8)
    mask[:, :, 2:5, 2:5] = 0
    output = torch.zeros(3, 3, 8, 8)
    grid = make_grid(image, mask, output, max_images=2)
    assert grid.dtype == np.uint8 and grid.shape == (16, 32, 3)
    # W&B renders float [0,1] images black; uint8 must use the full range
    assert grid.max() > 200
    first = grid[:8].astype(np.float32) / 255
    masked, out, comp, truth = (first[:, i * 8 : (i + 1) * 8] for i in range(4))
    np.testing.assert_allclose(truth, image[0].permute(1, 2, 0).numpy(), atol=1 / 255)
    assert np.all(masked[2:5, 2:5] == 1.0), "holes are shown white in the masked input"
    assert np.all(out == 0)
    assert np.all(comp[2:5, 2:5] == 0) and np.allclose(comp[0, 0], truth[0, 0], atol=1 / 255)


def test_save_png_atomic_leaves_no_temp_files(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "grid.png"
    save_png_atomic(arr, path)
    assert np.array_equal(np.asarray(Image.open(path)), arr)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]
