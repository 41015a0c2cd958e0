"""NVIDIA Irregular Mask readers: polarity detection, training augmentation, test masks by hole-ratio bin."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint.data._rng import rng_for
from inpaint.data.masks.generators import mask_hole_ratio
from inpaint.data.masks.nvidia import (
    MaskLayoutError,
    NvidiaTrainMasks,
    detect_polarity,
    list_mask_files,
    load_nvidia_test_masks,
)
from inpaint.data.masks.ratio import hole_ratio_bin

# Two masks per bin, from the middle of each NVIDIA bin.
TEST_RATIOS = tuple(r for r in (0.05, 0.15, 0.25, 0.35, 0.45, 0.55) for _ in range(2))


@pytest.fixture(scope="module")
def test_masks(tmp_path_factory, fake_data):
    root = tmp_path_factory.mktemp("nv")
    fake_data.nvidia(root / "white" / "mask" / "testing_mask_dataset", TEST_RATIOS, white_hole=True)
    fake_data.nvidia(root / "black", TEST_RATIOS, white_hole=False)
    return root


@pytest.mark.parametrize(
    "folder,expected", [("white/mask/testing_mask_dataset", "white_hole"), ("black", "black_hole")]
)
def test_polarity_detection(test_masks, folder, expected):
    assert detect_polarity(list_mask_files(test_masks / folder)) == expected


def test_inverted_files_give_the_same_internal_masks(test_masks):
    white = load_nvidia_test_masks(test_masks / "white")  # finds mask/testing_mask_dataset below the root
    black = load_nvidia_test_masks(test_masks / "black")
    assert white.polarity == "white_hole" and black.polarity == "black_hole"
    for i in range(len(white)):
        assert np.array_equal(white.array(i), black.array(i))
    # wrong explicit polarity gives the complement, i.e. the setting is honoured
    forced = load_nvidia_test_masks(test_masks / "black", polarity="white_hole")
    by_path = {e.path: i for i, e in enumerate(black.entries)}
    j = next(i for i, e in enumerate(forced.entries) if e.path in by_path)
    assert np.array_equal(forced.array(j), 1.0 - black.array(by_path[forced.entries[j].path]))


def test_test_masks_selected_by_measured_bin(test_masks, tmp_path):
    cache = tmp_path / "ratios.csv"
    sel = load_nvidia_test_masks(test_masks / "black", bins=["10-20", 4], cache=cache)
    assert sorted({e.bin for e in sel.entries}) == [1, 4] and len(sel) == 4
    for i in range(len(sel)):
        item = sel[i]
        assert item["mask"].shape == (1, 64, 64) and item["mask"].dtype.is_floating_point
        measured = 1.0 - float(item["mask"].mean())
        assert int(hole_ratio_bin(measured)) == item["bin"]  # internal polarity: 0 = hole
    assert cache.is_file()
    again = load_nvidia_test_masks(test_masks / "black", bins=[1, 4], cache=cache)  # read from the cache
    assert [e.path for e in again.entries] == [e.path for e in sel.entries]
    assert sel.bins()["10-20"] == 2 and sel.bins()["50-60"] == 0
    resized = sel.array(0, 32, 48)
    assert resized.shape == (32, 48) and set(np.unique(resized)) <= {0.0, 1.0}


def test_bad_bins_and_layout_errors(test_masks, tmp_path):
    with pytest.raises(ValueError, match="unknown hole-ratio bin"):
        load_nvidia_test_masks(test_masks / "black", bins=["10-30"])
    with pytest.raises(MaskLayoutError, match="does not exist"):
        load_nvidia_test_masks(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MaskLayoutError, match="testing_mask_dataset"):
        load_nvidia_test_masks(tmp_path / "empty")


def test_training_masks_augmented_binary_and_deterministic(tmp_path, fake_data):
    root = fake_data.nvidia(
        tmp_path / "irregular_mask" / "disocclusion_img_mask", (0.1, 0.2, 0.3, 0.8), size=96
    )
    masks = NvidiaTrainMasks(tmp_path, polarity="white_hole")
    assert len(masks) == 4 and masks.folder == root
    outs = [masks.sample(rng_for(0, i), 40, 56) for i in range(12)]
    for m in outs:
        assert m.shape == (40, 56) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    assert np.array_equal(masks.sample(rng_for(0, 3), 40, 56), outs[3])
    assert len({m.tobytes() for m in outs}) == len(outs)  # augmentation makes every draw different


def test_training_dilation_only_grows_holes(tmp_path, fake_data):
    fake_data.nvidia(tmp_path, (0.2,), size=64)
    plain = NvidiaTrainMasks(
        tmp_path, polarity="white_hole", dilation=(1, 1), rotation=0, scale=(1, 1), flip=False
    )
    dilated = NvidiaTrainMasks(
        tmp_path, polarity="white_hole", dilation=(9, 9), rotation=0, scale=(1, 1), flip=False
    )
    a, b = plain.sample(rng_for(1), 64, 64), dilated.sample(rng_for(1), 64, 64)
    assert mask_hole_ratio(b) > mask_hole_ratio(a)
    assert np.all(b <= a)  # every hole of the raw mask is still a hole


def test_training_masks_hole_ratio_range(tmp_path, fake_data):
    fake_data.nvidia(tmp_path, (0.05, 0.25, 0.45), size=64)
    masks = NvidiaTrainMasks(tmp_path, polarity="white_hole").with_hole_ratio_range(0.2, 0.5)
    for i in range(10):
        assert 0.2 < mask_hole_ratio(masks.sample(rng_for(5, i), 64, 64)) <= 0.5


def test_bin_ordered_release_covers_every_bin_in_any_prefix(tmp_path, fake_data):
    """NVIDIA's release is stored bin by bin; 12 evaluated images must still see all six bins."""
    from inpaint.data.masks.factory import build_mask_provider
    from inpaint.data.masks.sets import write_eval_mask_set

    ratios = tuple(r for r in (0.05, 0.15, 0.25, 0.35, 0.45, 0.55) for _ in range(4))  # 24 files, bin order
    fake_data.nvidia(tmp_path / "nv", ratios)
    provider = build_mask_provider(
        {"name": "nv", "train": "mixed", "eval": {"type": "nvidia_test", "root": str(tmp_path / "nv")}}, "val"
    )
    bins = [int(hole_ratio_bin(mask_hole_ratio(provider.get(i, 0, 64, 64)[0]))) for i in range(12)]
    assert sorted(set(bins)) == [0, 1, 2, 3, 4, 5] and bins[:6] == [0, 1, 2, 3, 4, 5]
    # the same for a set written by make_eval_masks (also written bin by bin)
    from inpaint.data.masks.factory import build_mask_sampler

    write_eval_mask_set(tmp_path / "set", build_mask_sampler("mixed"), per_bin=3, size=64, seed=0)
    provider = build_mask_provider(
        {"name": "s", "train": "mixed", "eval": {"type": "mask_set", "path": str(tmp_path / "set")}}, "val"
    )
    bins = [int(hole_ratio_bin(mask_hole_ratio(provider.get(i, 0, 64, 64)[0]))) for i in range(6)]
    assert bins == [0, 1, 2, 3, 4, 5]
