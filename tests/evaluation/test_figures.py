"""inpaint.evaluation.figures.image_grid: column labels stay inside their columns."""

from __future__ import annotations

import numpy as np
import torch

from inpaint.evaluation.figures import image_grid


def test_a_label_wider_than_its_column_wraps_instead_of_running_into_the_next():
    tiles = [[torch.full((3, 96, 96), 0.5), torch.full((3, 96, 96), 0.5)]]
    short = image_grid(tiles, col_labels=["input", ""], min_tile=0)
    long = image_grid(tiles, col_labels=["Membrane (border colours only) and more words", ""], min_tile=0)
    head = long.shape[0] - short.shape[0] + 18  # the taller header holds the extra lines
    assert head >= 18 + 2 * 14
    second_column = long[:head, 4 + 96 + 4 :]
    assert (second_column == 255).all()  # nothing drawn over the neighbour's header
    first_column = long[:head, :100]
    assert (first_column < 128).any(axis=(1, 2)).sum() > 2 * 10  # the label's lines are there
    assert np.array_equal(long[head:], short[18:])  # the tiles themselves are unchanged
