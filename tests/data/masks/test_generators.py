"""Mask generators: binary float masks, seeded determinism, hole-ratio bins, config parsing and presets."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint.config import CONF_DIR, compose, to_plain
from inpaint.data._rng import rng_for
from inpaint.data.masks.factory import PRESET_NAMES, build_mask_provider, build_mask_sampler
from inpaint.data.masks.generators import (
    MixtureMaskGenerator,
    ShapesMaskGenerator,
    StrokesMaskGenerator,
    mask_hole_ratio,
    resize_mask_nearest,
)
from inpaint.data.masks.ratio import HOLE_RATIO_BINS, hole_ratio_bin
from inpaint.data.masks.sets import binned_mask

CONF = CONF_DIR / "masks"


def _binary(mask: np.ndarray) -> bool:
    return mask.dtype == np.float32 and set(np.unique(mask).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", sorted(PRESET_NAMES))
def test_presets_give_binary_float_masks(name):
    sampler = build_mask_sampler(name)
    masks = [sampler.sample(rng_for(0, i), 48, 64) for i in range(8)]
    assert all(m.shape == (48, 64) and _binary(m) for m in masks)
    ratios = [mask_hole_ratio(m) for m in masks]
    assert max(ratios) > 0.0  # holes are drawn
    assert len({round(r, 6) for r in ratios}) > 1  # and differ between draws


@pytest.mark.parametrize("name", sorted(PRESET_NAMES))
def test_same_rng_same_mask_different_rng_different_mask(name):
    sampler = build_mask_sampler(name)
    a = sampler.sample(rng_for(7, 3), 64, 64)
    b = build_mask_sampler(name).sample(rng_for(7, 3), 64, 64)  # a fresh sampler: no hidden state
    c = sampler.sample(rng_for(7, 4), 64, 64)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(PRESET_NAMES))
@pytest.mark.parametrize("size", [64, 128])
def test_binned_masks_land_in_every_nvidia_bin(name, size):
    sampler = build_mask_sampler(name)
    for b in range(len(HOLE_RATIO_BINS)):
        for i in range(2):
            m = binned_mask(sampler, b, size, size, key=(0, i))
            assert _binary(m)
            assert int(hole_ratio_bin(mask_hole_ratio(m))) == b


def test_hole_ratio_range_is_respected_by_generators():
    lo, hi = 0.2, 0.3
    for gen in (ShapesMaskGenerator(), StrokesMaskGenerator(box_prob=0.5)):
        constrained = gen.with_hole_ratio_range(lo, hi)
        for i in range(10):
            r = mask_hole_ratio(constrained.sample(rng_for(1, i), 64, 64))
            assert lo < r <= hi + 1e-9
    with pytest.raises(ValueError, match="low < high"):
        ShapesMaskGenerator().with_hole_ratio_range(0.5, 0.4)


def test_unreachable_range_warns_instead_of_failing(caplog):
    # 10 px wide strokes on a 16x16 canvas cannot make a 1-2 % hole: the generator says so and still returns a mask.
    gen = StrokesMaskGenerator(min_width=40, max_width=40, reference_size=16).with_hole_ratio_range(
        0.01, 0.02
    )
    gen.max_draws = 50
    with caplog.at_level("WARNING"):
        m = gen.sample(rng_for(0), 16, 16)
    assert _binary(m)
    assert "could not reach hole ratio range" in caplog.text


def test_mixture_uses_all_components_by_weight():
    full = ShapesMaskGenerator(num_lines=(1, 1), num_circles=(0, 0), num_ellipses=(0, 0))
    empty = StrokesMaskGenerator(num_strokes=(0, 0))
    mix = MixtureMaskGenerator(components=[full, empty], weights=[0.25, 0.75])
    with_holes = sum(mask_hole_ratio(mix.sample(rng_for(2, i), 32, 32)) > 0 for i in range(400))
    assert 60 < with_holes < 140  # ~100 expected
    with pytest.raises(ValueError, match="weights"):
        MixtureMaskGenerator(components=[full], weights=[1.0, 2.0])


def test_resize_nearest_keeps_masks_binary():
    m = build_mask_sampler("lama_medium").sample(rng_for(3), 64, 64)
    for h, w in ((37, 91), (128, 128), (16, 16)):
        r = resize_mask_nearest(m, h, w)
        assert r.shape == (h, w) and _binary(r)


def test_spec_errors_are_clear():
    with pytest.raises(ValueError, match="unknown fields.*bogus"):
        build_mask_sampler({"type": "strokes", "bogus": 1})
    with pytest.raises(ValueError, match="unknown mask type"):
        build_mask_sampler({"type": "blobs"})
    with pytest.raises(ValueError, match="unknown mask preset"):
        build_mask_sampler("nope")
    with pytest.raises(ValueError, match="need 'root'"):
        build_mask_sampler({"type": "nvidia_train", "root": "???"})


@pytest.mark.parametrize(
    "name", ["strokes", "lama_thin", "lama_medium", "lama_thick", "mixed", "objects", "demo"]
)
def test_preset_names_draw_what_the_masks_configs_draw(name):
    # make_eval_masks --generator NAME and masks=NAME must draw the same masks
    cfg = to_plain(compose("train", [f"masks={name}"]).masks)
    from_yaml = build_mask_sampler(cfg["train"])
    builtin = build_mask_sampler(name)
    for i in range(5):
        assert np.array_equal(from_yaml.sample(rng_for(9, i), 64, 64), builtin.sample(rng_for(9, i), 64, 64))


def test_objects_are_one_box_or_blob_of_the_configured_size():
    import cv2

    from inpaint.data.masks.generators import ObjectMaskGenerator

    boxes, blobs = ObjectMaskGenerator(box_prob=1.0), ObjectMaskGenerator(box_prob=0.0)
    for i in range(20):
        box = boxes.sample(rng_for(3, i), 60, 80) == 0
        rows, cols = np.flatnonzero(box.any(1)), np.flatnonzero(box.any(0))
        assert box.sum() == len(rows) * len(cols)  # a filled axis-aligned rectangle
        assert min(len(rows), len(cols)) >= 0.1 * 60 - 1 and max(len(rows), len(cols)) <= 0.77 * 60 + 1
        blob = (blobs.sample(rng_for(3, i), 60, 80) == 0).astype(np.uint8)
        assert cv2.connectedComponents(blob)[0] == 2  # background + one hole
        assert blob.sum() < np.ptp(np.flatnonzero(blob.any(1))) * np.ptp(np.flatnonzero(blob.any(0))) + 200
    ratios = [mask_hole_ratio(boxes.sample(rng_for(4, i), 64, 64)) for i in range(200)]
    assert min(ratios) < 0.03 and max(ratios) > 0.4  # from a small object to most of the picture
    with pytest.raises(ValueError, match="object size"):
        ObjectMaskGenerator(size=(0.5, 0.2))


def test_the_demo_adds_objects_to_the_mixture():
    spec = to_plain(compose("train", ["masks=demo"]).masks.train)
    assert [c["type"] for c in spec["components"].values()] == [
        "shapes",
        "strokes",
        "strokes",
        "strokes",
        "objects",
    ]
    assert compose("train").masks.name == "demo"  # what `make train` trains and validates on


def test_mixed_is_the_four_generators_in_equal_shares():
    spec = to_plain(compose("train", ["masks=mixed"]).masks.train)
    assert [c["type"] for c in spec["components"].values()] == ["shapes", "strokes", "strokes", "strokes"]
    assert [c["weight"] for c in spec["components"].values()] == [0.25] * 4
    widths = [c.get("max_width") for c in spec["components"].values()]
    assert widths == [None, 10, 50, 100]  # thin, medium, thick: each generator once


def test_providers_train_changes_per_epoch_eval_is_fixed():
    cfg = to_plain(compose("train", ["masks=mixed"]).masks)
    train = build_mask_provider(cfg, "train")
    val = build_mask_provider(cfg, "val")
    test = build_mask_provider(cfg, "test")
    m0, _ = train.get(5, 0, 64, 64)
    m1, _ = train.get(5, 1, 64, 64)
    assert not np.array_equal(m0, m1)
    assert np.array_equal(train.get(5, 1, 64, 64)[0], m1)
    v0, _ = val.get(5, 0, 64, 64)
    assert np.array_equal(val.get(5, 3, 64, 64)[0], v0)  # the epoch is ignored
    assert not np.array_equal(test.get(5, 0, 64, 64)[0], v0)  # val and test masks are different draws
    assert [int(hole_ratio_bin(mask_hole_ratio(val.get(i, 0, 64, 64)[0]))) for i in range(6)] == list(
        range(6)
    )


class _WrongShape:
    def sample(self, rng, height, width):
        return np.zeros((height + 1, width), np.float32)


def test_a_generator_of_the_users_is_checked_and_named():
    from inpaint.data.masks.generators import ExternalMaskSampler

    with pytest.raises(
        ValueError, match=r"_WrongShape.sample returned shape \(9, 8\).*expected a \(8, 8\) mask"
    ):
        ExternalMaskSampler(_WrongShape()).sample(rng_for(0), 8, 8)
    with pytest.raises(ValueError, match="has no sample"):
        ExternalMaskSampler(object())
    with pytest.raises(ValueError, match="cannot import _target_ 'no_such_module.Gen'"):
        build_mask_sampler({"_target_": "no_such_module.Gen"})
    with pytest.raises(ValueError, match="either a 'type' or a '_target_'"):
        build_mask_sampler(
            {"type": "strokes", "_target_": "inpaint.data.masks.generators.StrokesMaskGenerator"}
        )


def test_a_built_in_generator_by_target_is_the_same_as_by_type():
    by_target = build_mask_sampler(
        {"_target_": "inpaint.data.masks.generators.ObjectMaskGenerator", "box_prob": 1.0}
    )
    by_type = build_mask_sampler({"type": "objects", "box_prob": 1.0})
    np.testing.assert_array_equal(by_target.sample(rng_for(5), 32, 32), by_type.sample(rng_for(5), 32, 32))


class _Band:
    """A user's generator whose key shares a name with a built-in pair field (``size``) but is a number."""

    def __init__(self, size: int = 4) -> None:
        self.size = size

    def sample(self, rng, height, width):
        mask = np.ones((height, width), np.float32)
        mask[: self.size] = 0.0
        return mask


def test_a_users_generator_takes_its_keys_as_given():
    sampler = build_mask_sampler({"_target_": f"{__name__}._Band", "size": 3})
    assert (sampler.sample(rng_for(0), 8, 8) == 0).sum() == 3 * 8
    with pytest.raises(ValueError, match=r"unknown fields \['min_hole_ratio'\]; allowed: \['size'\]"):
        build_mask_sampler({"_target_": f"{__name__}._Band", "min_hole_ratio": 0.2})
