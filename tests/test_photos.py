"""inpaint.photos: the user's photos in (decoding, the size limit checked before decoding, messages that name the
file) and results out (atomic, lossless PNG). Predict's formats and 16-bit results are tested through its command line
(``test_predict.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint.io import InputError
from inpaint.photos import check_photo_size, load_photo, preview, write_png

H, W = 37, 53


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_check_photo_size_limit_is_inclusive() -> None:
    check_photo_size(4096, 10, 4096)
    with pytest.raises(
        InputError, match=r"4097x10 pixels.*up to 4096 pixels on the longer side.*--max-upload-side"
    ):
        check_photo_size(4097, 10, 4096)
    with pytest.raises(InputError, match="10x300"):
        check_photo_size(10, 300, 299)


def test_load_photo_roundtrip_and_grayscale(tmp_path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(tmp_path / "a.png")
    assert np.array_equal(load_photo(tmp_path / "a.png"), image)
    Image.fromarray(image[..., 0]).save(tmp_path / "g.png")
    gray = load_photo(tmp_path / "g.png")
    assert gray.shape == (H, W, 3) and np.array_equal(gray[..., 2], image[..., 0])


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_unreadable_upload_names_the_file_not_the_folder(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "secret_dir" / "holiday.png"
    bad.parent.mkdir()
    bad.write_bytes(content)
    with pytest.raises(InputError, match=r"^Could not read holiday\.png as an image\. Upload a photo") as e:
        load_photo(bad, name="holiday.png")
    assert "secret_dir" not in str(e.value)
    # A file given by its path (predict): the path and the decoder's reason, for the one who typed it.
    with pytest.raises(InputError, match=r"secret_dir/holiday\.png: (zero-byte file|cannot decode image)"):
        load_photo(bad)


def test_load_photo_too_large_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (300, 20)).save(tmp_path / "wide.png")
    calls = []
    monkeypatch.setattr("inpaint.data.imageio.load_rgb", lambda *a, **k: calls.append(a))
    with pytest.raises(InputError, match=r"300x20 pixels.*up to 256 pixels"):
        load_photo(tmp_path / "wide.png", max_side=256)
    assert calls == []


def test_load_photo_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 > 2x the limit: PIL refuses to open it
    with pytest.raises(InputError, match="far larger than this page accepts"):
        load_photo(tmp_path / "big.png", max_side=4096, name="big.png")


def test_preview_fits_the_longer_side_and_keeps_small_images(image: np.ndarray) -> None:
    assert preview(image, 64) is image
    small = preview(np.zeros((300, 1000, 3), np.uint8), 100)
    assert small.shape == (30, 100, 3) and small.dtype == np.uint8


def test_write_png_is_lossless_and_leaves_no_temporary(tmp_path: Path, image: np.ndarray) -> None:
    out = write_png(tmp_path / "sub" / "x.png", image)
    assert np.array_equal(np.asarray(Image.open(out)), image)
    assert [p.name for p in out.parent.iterdir()] == ["x.png"]
