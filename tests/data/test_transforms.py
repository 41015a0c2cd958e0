"""Albumentations pipelines from config, seeded application, and the pre-crop steps."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint.data._rng import rng_for
from inpaint.data.transforms import (
    ImageTooSmallError,
    apply_transform,
    build_transform,
    center_square_crop,
    ensure_min_size,
)


@pytest.fixture(scope="module")
def img(fake_data):
    return fake_data.photo(50, 70, 0)


@pytest.mark.parametrize("crop", ["random_crop", "random_resized_crop", "resize_random_crop", "resize"])
def test_train_crops_give_square_outputs_and_depend_only_on_the_rng(crop, img):
    t = build_transform({"crop": crop, "hflip": 0.5}, 32, train=True)
    outs = [apply_transform(t, img, rng_for(0, i)) for i in range(6)]
    assert all(o.shape == (32, 32, 3) and o.dtype == np.uint8 for o in outs)
    again = build_transform({"crop": crop, "hflip": 0.5}, 32, train=True)
    assert np.array_equal(apply_transform(again, img, rng_for(0, 3)), outs[3])
    if crop != "resize":
        assert len({o.tobytes() for o in outs}) > 1


def test_hflip_probability_one_mirrors(img):
    t = build_transform({"crop": "resize", "hflip": 1.0}, 32, train=True)
    plain = build_transform({"crop": "resize", "hflip": 0.0}, 32, train=True)
    assert np.array_equal(
        apply_transform(t, img, rng_for(1)), apply_transform(plain, img, rng_for(1))[:, ::-1]
    )


@pytest.mark.parametrize("crop", ["center_crop", "resize_center_crop", "resize"])
def test_eval_crops_are_deterministic(crop, img):
    t = build_transform({"crop": crop}, 32, train=False)
    a, b = apply_transform(t, img, rng_for(0)), apply_transform(t, img, rng_for(99))
    assert a.shape == (32, 32, 3) and np.array_equal(a, b)


def test_unknown_crop_is_an_error():
    with pytest.raises(ValueError, match="train_transform.crop"):
        build_transform({"crop": "zoom"}, 32, train=True)
    with pytest.raises(ValueError, match="val_transform.crop"):
        build_transform({"crop": "random_crop"}, 32, train=False)


def test_ensure_min_size_modes(img, fake_data):
    tiny = fake_data.photo(10, 20, 1)
    up = ensure_min_size(tiny, 32, "resize")
    assert min(up.shape[:2]) == 32 and up.shape[1] == 64  # aspect kept
    pad = ensure_min_size(tiny, 32, "pad")
    assert pad.shape[:2] == (32, 32)
    assert ensure_min_size(img, 32, "skip") is img  # large enough: untouched
    with pytest.raises(ImageTooSmallError, match="smaller than the crop"):
        ensure_min_size(tiny, 32, "skip")


def test_center_square_crop_like_celeba(fake_data):
    face = fake_data.photo(218, 178, 2)
    out = center_square_crop(face, 178)
    assert out.shape == (178, 178, 3) and np.array_equal(out, face[20:198])
