"""inpaint.data.masks.ratio: ratios and NVIDIA bins, edges included."""

from __future__ import annotations

import torch

from inpaint.data.masks.ratio import BIN_NAMES, HOLE_RATIO_BINS, hole_ratio, hole_ratio_bin


def test_bins_are_nvidias():
    assert HOLE_RATIO_BINS[0] == (0.01, 0.1) and HOLE_RATIO_BINS[-1] == (0.5, 0.6)
    assert BIN_NAMES == ("01-10", "10-20", "20-30", "30-40", "40-50", "50-60")


def test_bin_edges_are_left_open_right_closed():
    ratios = torch.tensor([0.0, 0.01, 0.010001, 0.1, 0.100001, 0.2, 0.6, 0.61, 1.0])
    assert hole_ratio_bin(ratios).tolist() == [-1, -1, 0, 0, 1, 1, 5, -1, -1]


def test_exact_ratio_from_a_mask_lands_in_its_bin():
    # 1000 holes in 100x100 is exactly 10 %: the (0.01, 0.1] bin, also when stored as float32
    mask = torch.ones(1, 1, 100, 100)
    mask.view(-1)[:1000] = 0
    r = hole_ratio(mask)
    assert r.item() == 0.1
    assert hole_ratio_bin(r).item() == 0
    assert hole_ratio_bin(r.float()).item() == 0


def test_three_channel_mask_hole_if_any_channel_is():
    mask = torch.ones(1, 3, 2, 2)
    mask[0, 1, 0, 0] = 0
    assert hole_ratio(mask).item() == 0.25
