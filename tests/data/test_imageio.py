"""Robust decoding: every odd image kind becomes RGB uint8; broken files raise a clear ImageDecodeError."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inpaint.data.imageio import ImageDecodeError, is_image_file, load_rgb, read_binary_image


@pytest.fixture(scope="module")
def messy(tmp_path_factory, fake_data):
    return fake_data.messy_folder(tmp_path_factory.mktemp("messy"))


@pytest.mark.parametrize("kind", ["good1", "cmyk", "gray16", "rgb16", "palette", "rgba", "gray", "tiny"])
def test_converts_to_rgb_uint8(messy, kind):
    img = load_rgb(messy[kind])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_sixteen_bit_is_scaled_not_clipped(messy, fake_data):
    # The fixtures wrote 8-bit values v as v * 257; decoding must give v back exactly (not 255 everywhere).
    gray = load_rgb(messy["gray16"])
    assert np.array_equal(gray[:, :, 0], fake_data.photo(40, 40, 4)[:, :, 0])
    assert np.array_equal(gray[:, :, 0], gray[:, :, 2])
    rgb = load_rgb(messy["rgb16"])
    assert np.array_equal(rgb, fake_data.photo(40, 40, 5)[:, :, ::-1])  # written with OpenCV, i.e. as BGR


@pytest.mark.parametrize("kind", ["corrupt", "zero", "truncated"])
def test_broken_files_raise_naming_the_file(messy, kind):
    with pytest.raises(ImageDecodeError, match=messy[kind].name):
        load_rgb(messy[kind])


def test_bytes_input_and_empty_bytes(messy):
    data = messy["good1"].read_bytes()
    assert np.array_equal(load_rgb(data), load_rgb(messy["good1"]))
    with pytest.raises(ImageDecodeError, match="empty"):
        load_rgb(b"", name="shard:key")


def test_float_image_scaled(tmp_path):
    arr = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(arr, mode="F").save(tmp_path / "f.tif")
    img = load_rgb(tmp_path / "f.tif")
    assert img.min() == 0 and img.max() == 255


def test_binary_reader_handles_0_1_and_0_255(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:6] = 1
    Image.fromarray(m).save(tmp_path / "01.png")
    Image.fromarray(m * 255).save(tmp_path / "0255.png")
    assert read_binary_image(tmp_path / "01.png").sum() == 8
    assert np.array_equal(read_binary_image(tmp_path / "01.png"), read_binary_image(tmp_path / "0255.png"))


def test_is_image_file():
    assert is_image_file("a/b.JPG") and is_image_file("x.webp")
    assert not is_image_file("notes.txt")


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_float_image_is_unreadable_not_black(tmp_path, bad):
    arr = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    arr[3, 4] = bad
    Image.fromarray(arr, mode="F").save(tmp_path / "f.tif")
    with pytest.raises(ImageDecodeError, match=r"f\.tif: .*NaN or infinite"):
        load_rgb(tmp_path / "f.tif")


@pytest.mark.parametrize(
    "lo, hi, ok", [(0.0, 1.0, True), (0.0, 200.0, True), (-3.0, 1.0, False), (0.0, 1000.0, False)]
)
def test_float_image_range(tmp_path, lo, hi, ok):
    arr = np.linspace(lo, hi, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(arr, mode="F").save(tmp_path / "f.tif")
    if ok:
        img = load_rgb(tmp_path / "f.tif")
        assert img.max() == (255 if hi <= 1 else 200)
    else:
        with pytest.raises(ImageDecodeError, match=r"expected \[0, 1\] or 0\.\.255"):
            load_rgb(tmp_path / "f.tif")


def test_dataset_skips_and_counts_an_infinite_float_image(tmp_path):
    from inpaint.data.datasets import DecodePolicy, InpaintingDataset
    from inpaint.data.masks.factory import build_mask_provider
    from inpaint.data.sources import folder_records
    from inpaint.data.transforms import build_transform

    good = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(good).save(tmp_path / "good.png")
    arr = np.full((40, 40), 0.5, np.float32)
    arr[0, 0] = np.inf
    Image.fromarray(arr, mode="F").save(tmp_path / "inf.tif")
    masks = {"name": "t", "seed": 3, "train": {"type": "strokes", "num_strokes": [2, 6]}, "eval": None}
    ds = InpaintingDataset(
        folder_records(tmp_path),
        build_mask_provider(masks, "val"),
        build_transform({"crop": "center_crop"}, 32, train=False),
        DecodePolicy(32),
        split="val",
        seed=1,
    )
    samples = [ds[i] for i in range(len(ds))]
    assert {s["key"] for s in samples} == {str(tmp_path / "good.png")}  # the bad one is replaced, never black
    assert ds.skipped.total == 1
