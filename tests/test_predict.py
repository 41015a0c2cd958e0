"""The predict CLI: single image, folders, polarity, and its error paths (clear message, non-zero exit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint.predict import main

H, W = 45, 61


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory, tiny) -> Path:
    return tiny.checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def _image(path: Path, seed: int = 0, size: tuple[int, int] = (H, W)) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def _mask(tiny, path: Path, seed: int = 0, size: tuple[int, int] = (H, W), scale: int = 255) -> np.ndarray:
    hole = tiny.hole_mask(*size, 0.2, seed=seed) > 0
    Image.fromarray(hole.astype(np.uint8) * scale).save(path)
    return hole


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_single_image(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny) -> None:
    img = _image(tmp_path / "a.jpg.png")
    hole = _mask(tiny, tmp_path / "m.png", scale=1)  # a 0/1 mask file
    out = tmp_path / "out" / "a_filled.png"
    code, err = _run(capsys, "-c", ckpt, "-i", tmp_path / "a.jpg.png", "-m", tmp_path / "m.png", "-o", out)
    assert code == 0, err
    res = np.asarray(Image.open(out))
    assert res.shape == img.shape and np.array_equal(res[~hole], img[~hole])
    assert not np.array_equal(res[hole], img[hole])
    assert sorted(p.name for p in out.parent.iterdir()) == ["a_filled.png"]  # no temporary files left


def test_inference_options_match_the_api(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    from inpaint import Inpainter

    img = _image(tmp_path / "a.png")
    hole = _mask(tiny, tmp_path / "m.png")
    args = ["-c", ckpt, "-i", tmp_path / "a.png", "-m", tmp_path / "m.png"]
    code, err = _run(capsys, *args, "-o", tmp_path / "e8.png", "--self-ensemble", "8")
    assert code == 0, err
    expected = Inpainter.from_checkpoint(ckpt, self_ensemble=8)(img, hole)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "e8.png")), expected)
    assert not np.array_equal(expected, Inpainter.from_checkpoint(ckpt)(img, hole))
    with pytest.raises(SystemExit):
        main([str(a) for a in args] + ["-o", str(tmp_path / "e3.png"), "--self-ensemble", "3"])
    code, err = _run(capsys, *args, "-o", tmp_path / "c4.png", "--coarse-beyond", "4")
    assert code == 0, err
    expected = Inpainter.from_checkpoint(ckpt, coarse_beyond=4)(img, hole)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c4.png")), expected)
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args] + ["-o", str(tmp_path / "c0.png"), "--coarse-beyond", "-1"])
    assert (
        exit_info.value.code == 2
        and "--coarse-beyond: inference option coarse_beyond must be a number of pixels >= 0"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "c0.png").exists()
    code, err = _run(capsys, *args, "-o", tmp_path / "p.png", "--poisson-blend", "0.75")
    assert code == 0, err
    expected = Inpainter.from_checkpoint(ckpt, poisson_blend=0.75)(img, hole)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), expected)
    assert not np.array_equal(expected, Inpainter.from_checkpoint(ckpt)(img, hole))
    for bad in ("1.5", "-0.1", "nan", "strong"):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args] + ["-o", str(tmp_path / "p2.png"), "--poisson-blend", bad])
        assert (
            exit_info.value.code == 2
            and "--poisson-blend: inference option poisson_blend must be a number from 0 to 1"
            in capsys.readouterr().err
        )
    assert not (tmp_path / "p2.png").exists()


def test_invert_mask(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny) -> None:
    img = _image(tmp_path / "a.png")
    hole = tiny.hole_mask(H, W, 0.2, seed=3) > 0
    Image.fromarray((~hole).astype(np.uint8) * 255).save(tmp_path / "black_holes.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "white_holes.png")
    assert (
        _run(
            capsys,
            "-c",
            ckpt,
            "-i",
            tmp_path / "a.png",
            "-m",
            tmp_path / "white_holes.png",
            "-o",
            tmp_path / "w.png",
        )[0]
        == 0
    )
    code, err = _run(
        capsys,
        "-c",
        ckpt,
        "-i",
        tmp_path / "a.png",
        "-m",
        tmp_path / "black_holes.png",
        "-o",
        tmp_path / "b.png",
        "--invert-mask",
    )
    assert code == 0, err
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "w.png")), np.asarray(Image.open(tmp_path / "b.png"))
    )
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png"))[~hole], img[~hole])


def test_folders_matched_by_name(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    imgs = {name: _image(tmp_path / "img" / f"{name}.jpg", seed=i) for i, name in enumerate(["x", "y"])}
    _mask(tiny, tmp_path / "msk" / "x.png", seed=1)
    _mask(tiny, tmp_path / "msk" / "y_mask001.png", seed=2)  # LaMa-style name
    code, err = _run(
        capsys, "-c", ckpt, "-i", tmp_path / "img", "-m", tmp_path / "msk", "-o", tmp_path / "out"
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.png", "y.png"]
    assert np.asarray(Image.open(tmp_path / "out" / "x.png")).shape == imgs["x"].shape


def test_folder_with_bad_pairs_continues_and_fails(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    d = tmp_path / "data"
    d.mkdir()
    _image(d / "good.png")
    _mask(tiny, d / "good_mask.png")
    _image(d / "nomask.png")
    _image(d / "small.png")
    _mask(tiny, d / "small_mask.png", size=(H - 1, W))
    _image(d / "empty.png")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(d / "empty_mask.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    _mask(tiny, d / "broken_mask.png")
    code, err = _run(capsys, "-c", ckpt, "-i", d, "-m", d, "-o", tmp_path / "out")
    assert code == 1
    assert "1 written, 4 failed" in err
    assert "nomask.png: no mask" in err
    assert "size mismatch" in err and "small.png" in err and f"{W}x{H - 1}" in err
    assert (
        "empty_mask.png: mask has no hole pixels" in err
        and "holes are its white pixels, and it has none" in err
    )
    assert "pass --invert-mask" not in err  # inverting an all-black mask gives "every pixel is a hole"
    assert "broken.png" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_image", "image not found"),
        ("missing_ckpt", "checkpoint not found"),
        ("bad_ckpt", "cannot read checkpoint"),
        ("unreadable_mask", "cannot decode image"),
        ("size_mismatch", "size mismatch"),
        ("empty_mask", "no hole pixels"),
        ("full_mask", "every pixel is a hole"),
        ("dir_and_file", "both be files or both be folders"),
    ],
)
def test_single_image_errors(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, expected: str, tiny
) -> None:
    image, mask, checkpoint = tmp_path / "a.png", tmp_path / "m.png", ckpt
    _image(image)
    _mask(tiny, mask)
    if case == "missing_image":
        image = tmp_path / "nope.png"
    elif case == "missing_ckpt":
        checkpoint = tmp_path / "nope.ckpt"
    elif case == "bad_ckpt":
        checkpoint = tmp_path / "bad.ckpt"
        checkpoint.write_bytes(b"not a checkpoint at all")
    elif case == "unreadable_mask":
        mask.write_bytes(b"")
        mask.write_text("plain text")
    elif case == "size_mismatch":
        _mask(tiny, mask, size=(H, W + 2))
    elif case == "empty_mask":
        Image.fromarray(np.zeros((H, W), np.uint8)).save(mask)
    elif case == "full_mask":
        Image.fromarray(np.full((H, W), 255, np.uint8)).save(mask)
    elif case == "dir_and_file":
        mask = tmp_path
    out = tmp_path / "out.png"
    code, err = _run(capsys, "-c", checkpoint, "-i", image, "-m", mask, "-o", out)
    assert code != 0
    assert expected in err
    assert not out.exists()


def test_unknown_output_format(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny) -> None:
    _image(tmp_path / "a.png")
    _mask(tiny, tmp_path / "m.png")
    code, err = _run(
        capsys, "-c", ckpt, "-i", tmp_path / "a.png", "-m", tmp_path / "m.png", "-o", tmp_path / "r.xyz"
    )
    assert code == 2 and "unknown image format '.xyz'" in err


def test_failed_write_leaves_no_partial_file(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tiny
) -> None:
    _image(tmp_path / "a.png")
    _mask(tiny, tmp_path / "m.png")
    out = tmp_path / "out" / "r.png"
    out.parent.mkdir()
    out.write_bytes(b"previous result")

    def save_then_fail(self: Image.Image, fp: Path, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"half an image")  # the writer gets partway, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", save_then_fail)
    args = ("-c", ckpt, "-i", tmp_path / "a.png", "-m", tmp_path / "m.png", "-o", out, "--overwrite")
    code, err = _run(capsys, *args)
    assert code == 1 and "No space left on device" in err
    # The old file is untouched and no temporary file is left behind.
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in out.parent.iterdir()] == ["r.png"]


# ------------------------------------------------------------------------------------------ existing outputs


def test_never_writes_over_its_input(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    photo = tmp_path / "photo.png"
    _image(photo)
    original = photo.read_bytes()
    _mask(tiny, tmp_path / "m.png")
    code, err = _run(capsys, "-c", ckpt, "-i", photo, "-m", tmp_path / "m.png", "-o", photo)
    assert code == 1 and "photo.png: exists (the input image)" in err and "--overwrite" in err
    assert photo.read_bytes() == original  # was: replaced by the result, exit status 0
    code, err = _run(capsys, "-c", ckpt, "-i", photo, "-m", tmp_path / "m.png", "-o", tmp_path / "m.png")
    assert code == 1 and "(the input mask)" in err
    # Any other existing file too; --overwrite replaces it.
    other = tmp_path / "result.png"
    other.write_bytes(b"keep me")
    code, err = _run(capsys, "-c", ckpt, "-i", photo, "-m", tmp_path / "m.png", "-o", other)
    assert code == 1 and "result.png: exists;" in err and other.read_bytes() == b"keep me"
    code, err = _run(capsys, "-c", ckpt, "-i", photo, "-m", tmp_path / "m.png", "-o", other, "--overwrite")
    assert code == 0, err
    assert np.asarray(Image.open(other)).shape == (H, W, 3)


def test_output_folder_equal_to_input_folder(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    d = tmp_path / "photos"
    d.mkdir()
    png = _image(d / "a.png")
    before = (d / "a.png").read_bytes()
    _mask(tiny, d / "a_mask.png")
    _image(d / "b.jpg", seed=1)
    _mask(tiny, d / "b_mask.png", seed=1)
    code, err = _run(capsys, "-c", ckpt, "-i", d, "-m", d, "-o", d)
    assert code == 1 and "a.png: exists (the input image)" in err and "1 written, 1 failed" in err
    assert (d / "a.png").read_bytes() == before  # the original photo is untouched
    assert (d / "b.png").is_file()  # the other pair is still processed (a new file, nothing replaced)
    code, err = _run(capsys, "-c", ckpt, "-i", d, "-m", d, "-o", d, "--overwrite")
    res = np.asarray(Image.open(d / "a.png"))
    assert res.shape == png.shape and not np.array_equal(res, png)  # replaced, as asked
    assert "would all be written to" in err  # b.jpg and the b.png written above both map to b.png


def test_two_images_with_one_output_name_are_reported(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    _image(d / "a.png")
    _image(d / "a.jpg", seed=1)
    _mask(tiny, d / "a_mask.png")
    code, err = _run(capsys, "-c", ckpt, "-i", d, "-m", d, "-o", tmp_path / "out")
    assert code == 1 and "would all be written to" in err and not (tmp_path / "out" / "a.png").exists()


def test_cli_and_api_share_the_mask_check(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inpaint import Inpainter

    img = _image(tmp_path / "a.png")
    for fill in (0, 255):
        Image.fromarray(np.full((H, W), fill, np.uint8)).save(tmp_path / "m.png")
        with pytest.raises(ValueError) as api:
            Inpainter.from_checkpoint(ckpt)(img, np.full((H, W), fill, np.uint8))
        code, err = _run(
            capsys, "-c", ckpt, "-i", tmp_path / "a.png", "-m", tmp_path / "m.png", "-o", tmp_path / "o.png"
        )
        assert code == 1 and str(api.value).split(": ", 1)[1] in err


def test_grey_mask_is_thresholded_at_one_level_everywhere(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    """A mask with faint grey noise (as a JPEG-saved mask has) fills only its white strokes, and the CLI, the API and
    the training-side mask reader agree on which pixels are holes; --mask-threshold moves that level."""
    from inpaint.data.imageio import read_binary_image
    from inpaint.inference import Inpainter

    img = _image(tmp_path / "a.png")
    hole = tiny.hole_mask(H, W, 0.2, seed=5) > 0
    noise = np.random.default_rng(0).integers(0, 40, (H, W))  # grey speckles, well below half scale
    grey = np.where(hole, 255 - noise, noise).astype(np.uint8)
    grey[0, 0], grey[0, 1] = 100, 200  # one dim pixel that stays known, one bright that becomes a hole
    expected = hole.copy()
    expected[0, 0], expected[0, 1] = False, True
    Image.fromarray(grey).save(tmp_path / "m.png")

    assert np.array_equal(read_binary_image(tmp_path / "m.png"), expected)
    api = Inpainter.from_checkpoint(ckpt)(img, grey)

    def predict(out: str, *extra: str) -> np.ndarray:
        args = ("-c", ckpt, "-i", tmp_path / "a.png", "-m", tmp_path / "m.png", "-o", tmp_path / out, *extra)
        code, err = _run(capsys, *args)
        assert code == 0, err
        return np.asarray(Image.open(tmp_path / out))

    cli = predict("o.png")
    assert np.array_equal(cli, api)
    assert np.array_equal(cli[~expected], img[~expected])  # speckles were not filled
    assert (cli[expected] != img[expected]).any(axis=-1).mean() > 0.9

    # threshold 0 = nonzero: every speckle becomes a hole
    nonzero = grey > 0
    assert np.array_equal(read_binary_image(tmp_path / "m.png", threshold=0), nonzero)
    speckles = nonzero & ~expected
    assert not np.array_equal(predict("z.png", "--mask-threshold", "0")[speckles], img[speckles])
    with pytest.raises(SystemExit) as exit_info:
        predict("x.png", "--mask-threshold", "300")
    assert exit_info.value.code == 2


# ------------------------------------------------------------------------ paths, disks and formats (issue 22)


def _args(ckpt: Path, tmp_path: Path, out: object, *extra: object) -> list[object]:
    return ["-c", ckpt, "-i", tmp_path / "a.png", "-m", tmp_path / "m.png", "-o", out, *extra]


def _usage_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def pair(tmp_path: Path, tiny) -> tuple[np.ndarray, np.ndarray]:
    """a.png and m.png (20 % hole) in tmp_path: (image, hole)."""
    return _image(tmp_path / "a.png"), _mask(tiny, tmp_path / "m.png")


def test_empty_output_is_a_usage_error_not_the_working_directory(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    err = _usage_error(capsys, *_args(ckpt, tmp_path, ""))
    assert "argument -o/--output: must not be empty" in err and "Traceback" not in err
    assert sorted(tmp_path.iterdir()) == before  # was: ./a.png replaced... or a new ./<name>.png, status 0


def test_output_below_a_file_says_which_file(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"a photo")
    code, err = _run(capsys, *_args(ckpt, tmp_path, photo / "x.png"))
    assert (
        code == 2 and err.strip() == f"error: cannot write {photo / 'x.png'}: {photo} is a file, not a folder"
    )
    assert photo.read_bytes() == b"a photo"


@pytest.mark.parametrize("value", ["-1", "1.5", "big"])
def test_max_side_must_be_a_number_of_pixels(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    err = _usage_error(capsys, *_args(ckpt, tmp_path, tmp_path / "o.png", "--max-side", value))
    assert "--max-side: must be 0 (full resolution) or a positive number of pixels" in err
    assert "cannot set up the model" not in err


def test_full_disk_names_the_output_and_leaves_nothing(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.disks import full_disk

    with full_disk(tmp_path / "disk") as disk:
        out = disk / "result.png"
        code, err = _run(capsys, *_args(ckpt, tmp_path, out))
        assert code == 1 and f"error: cannot write {out}: No space left on device" in err
        assert "Traceback" not in err and "[Errno" not in err
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no temporary file, no partial result


def test_read_only_folder_names_the_output_not_a_temporary_file(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from tests.disks import read_only_dir

    with read_only_dir(tmp_path / "ro") as ro:
        code, err = _run(capsys, *_args(ckpt, tmp_path, ro / "result.png"))
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert code == 1 and f"error: cannot write {ro / 'result.png'}: {reason}" in err
    assert ".tmp" not in err and "Traceback" not in err


def test_debug_shows_the_traceback(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "m.png")
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "o.png"))
    assert code == 1 and "Traceback" not in err
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "o.png", "--debug"))
    assert code == 1 and "Traceback (most recent call last)" in err and "InputError" in err


@pytest.mark.parametrize("case", ["nan", "random_bytes"])
def test_unusable_checkpoint_is_one_line(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    import os

    import torch

    bad = tmp_path / "bad.ckpt"
    if case == "nan":
        data = torch.load(ckpt, weights_only=True)
        name = [k for k in data["state_dict"] if k.startswith("net.")][-1]
        data["state_dict"][name] = torch.full_like(data["state_dict"][name], float("nan"))
        torch.save(data, bad)
        expected = f"tensor '{name.removeprefix('net.')}' holds"
    else:
        bad.write_bytes(os.urandom(1000))
        expected = "not a zip archive, pickle or safetensors file (it starts with the bytes"
    code, err = _run(
        capsys, "-c", bad, "-i", tmp_path / "a.png", "-m", tmp_path / "m.png", "-o", tmp_path / "o.png"
    )
    assert code == 1 and err.startswith(f"error: {'' if case == 'nan' else 'cannot read checkpoint '}{bad}")
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("suffix", [".jpg", ".gif"])
def test_lossy_output_format_is_said(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    image, hole = pair
    out = tmp_path / f"o{suffix}"
    code, err = _run(capsys, *_args(ckpt, tmp_path, out))
    assert code == 0, err
    why = "a palette of 256 colours" if suffix == ".gif" else "lossy compression"
    assert f"warning: {out}: " in err and why in err and "write .png (or .tif)" in err
    back = np.asarray(Image.open(out).convert("RGB"))
    assert not np.array_equal(back[~hole], image[~hole])  # the warning is true: known pixels changed


@pytest.mark.parametrize(
    "fmt", ["PNG", "TIFF", "BMP", "DIB", "PPM", "TGA", "SGI", "QOI", "JPEG2000", "IM", "PCX", "WEBP"]
)
def test_exact_formats_keep_known_pixels_bit_identical(
    ckpt: Path, tmp_path: Path, pair, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    from inpaint.photos import EXACT_FORMATS

    assert fmt in EXACT_FORMATS
    image, hole = pair
    suffix = next(ext for ext, f in Image.registered_extensions().items() if f == fmt)
    out = tmp_path / f"o{suffix}"
    code, err = _run(capsys, *_args(ckpt, tmp_path, out))
    assert code == 0 and "warning" not in err, err
    back = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(back[~hole], image[~hole]) and not np.array_equal(back[hole], image[hole])


@pytest.mark.parametrize("channels", [3, 1])
def test_16_bit_photo_comes_back_16_bit_as_png_and_tiff(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny, channels: int
) -> None:
    import cv2

    rng = np.random.default_rng(2)
    deep = rng.integers(0, 65536, (H, W, channels), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), deep[..., ::-1] if channels == 3 else deep[..., 0])
    hole = _mask(tiny, tmp_path / "m.png")
    rgb = np.repeat(deep, 3 // channels, axis=2)
    for suffix in (".png", ".tif"):
        out = tmp_path / f"o{suffix}"
        code, err = _run(capsys, *_args(ckpt, tmp_path, out))
        assert code == 0 and "warning" not in err, err
        back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
        assert back.dtype == np.uint16 and back.shape == (H, W, 3)
        assert np.array_equal(back[~hole], rgb[~hole])  # 16-bit exact, not 8-bit * 257
        assert (back[hole] % 257 != 0).any()  # the fill has 16-bit precision too
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "o.bmp"))
    assert code == 0 and "BMP holds 8 bits per channel, the photo has 16" in err


def test_16_bit_reader_turns_photos_as_pil_does() -> None:
    from PIL import ImageOps

    from inpaint.photos import exif_orient

    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for orientation in range(1, 9):
        im = Image.fromarray(arr)
        exif = im.getexif()
        exif[0x0112] = orientation
        im.info["exif"] = exif.tobytes()
        expected = np.asarray(ImageOps.exif_transpose(im))
        assert np.array_equal(exif_orient(arr, orientation), expected), orientation


def test_mostly_hole_mask_warns_and_hints_invert(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _image(tmp_path / "a.png")
    hole = np.ones((H, W), bool)
    hole[20:23, 30:33] = False  # 9 known pixels: an inverted mask of a small spot
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "m.png")
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "o.png"))
    assert code == 0 and (tmp_path / "o.png").exists()
    assert f"warning: {tmp_path / 'm.png'}: 99.7% of the pixels are holes (only 9 known pixels)" in err
    assert "pass --invert-mask if black marks the holes" in err
    # The hint works: inverted, the same file is a 9-pixel hole, filled without a warning.
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "i.png", "--invert-mask"))
    assert code == 0 and "warning" not in err
    # A mostly-white mask under --invert-mask is mostly hole too: then the hint is to drop the flag.
    Image.fromarray((~hole).astype(np.uint8) * 255).save(tmp_path / "m.png")
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "j.png", "--invert-mask"))
    assert code == 0 and "drop --invert-mask if black marks the holes" in err


def test_mask_drawn_only_in_alpha_is_read_from_it(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    """Black strokes on a transparent layer (colour black everywhere): was "no hole pixels, pass --invert-mask",
    and then "every pixel is a hole"."""
    img = _image(tmp_path / "a.png")
    hole = tiny.hole_mask(H, W, 0.2, seed=7) > 0
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = np.where(hole, 255, 0)
    Image.fromarray(rgba).save(tmp_path / "m.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "white.png")
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "o.png"))
    assert code == 0, err
    code, err = _run(
        capsys, "-c", ckpt, "-i", tmp_path / "a.png", "-m", tmp_path / "white.png", "-o", tmp_path / "w.png"
    )
    assert code == 0, err
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert np.array_equal(
        out, np.asarray(Image.open(tmp_path / "w.png"))
    )  # the same hole as a white-hole mask
    assert np.array_equal(out[~hole], img[~hole])
    # --invert-mask then means "transparent = hole", and works too.
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "inv.png", "--invert-mask"))
    assert code == 0, err
    inv = np.asarray(Image.open(tmp_path / "inv.png"))
    assert np.array_equal(inv[hole], img[hole]) and not np.array_equal(inv[~hole], img[~hole])
    # The API reads the same RGBA array the same way.
    from inpaint import Inpainter

    assert np.array_equal(Inpainter.from_checkpoint(ckpt)(img, rgba), out)


def test_colour_mask_one_rule_for_cli_and_api(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    from inpaint import Inpainter

    img = _image(tmp_path / "a.png")
    hole = tiny.hole_mask(H, W, 0.2, seed=8) > 0
    colour = np.zeros((H, W, 3), np.uint8)
    colour[hole] = (0, 0, 255)  # pure blue strokes: white by the brightest channel, dark by luminance (29)
    Image.fromarray(colour).save(tmp_path / "m.png")
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "o.png"))
    assert code == 0, err
    cli = np.asarray(Image.open(tmp_path / "o.png"))
    inpainter = Inpainter.from_checkpoint(ckpt)
    assert np.array_equal(inpainter(img, colour), cli)  # an HxWx3 array, as the file
    assert np.array_equal(inpainter(img, Image.fromarray(colour)), cli)  # a PIL image, as the file
    assert np.array_equal(inpainter(img, hole), cli)


def test_size_mismatch_of_an_exif_turned_photo_mentions_orientation(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # shown turned by a quarter: W x H stored, H x W shown
    im.save(tmp_path / "a.png", exif=exif.tobytes())
    _mask(tiny, tmp_path / "m.png")  # drawn on the stored W x H pixels
    code, err = _run(capsys, *_args(ckpt, tmp_path, tmp_path / "o.png"))
    assert code == 1 and f"is {H}x{W} but mask" in err
    assert "EXIF orientation (6)" in err and f"stored, unturned {W}x{H} pixels" in err
