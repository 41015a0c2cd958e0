"""The inpainting page's own steps (no browser): the three methods with timings, the result file, checkpoint choice,
the CLI's error paths, and that nothing outside ``inpaint.app`` imports Gradio. The browser test is
``test_app_browser.py``; the photos and the painted mask the page reads are ``test_photos.py`` and
``test_hole_masks.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint import Inpainter
from inpaint.app import (
    METHODS,
    NO_MODEL_HELP,
    build_app,
    main,
    resolve_checkpoint,
    run_methods,
    sample_photos,
    timings_markdown,
    write_result_png,
)
from inpaint.inference import InferenceOptions
from tests.test_hole_masks import editor_value, painted_layer

H, W = 37, 53


@pytest.fixture(scope="module")
def inpainter(tmp_path_factory: pytest.TempPathFactory, tiny) -> Inpainter:
    return Inpainter.from_checkpoint(tiny.checkpoint(tmp_path_factory.mktemp("ckpt") / "t.ckpt"))


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ methods and output


def test_run_methods_fills_only_the_hole_and_times_each(
    inpainter: Inpainter, image: np.ndarray, tiny
) -> None:
    hole = tiny.hole_mask(H, W, 0.2, seed=4) > 0
    seen: list[tuple[float, str]] = []
    results = run_methods(inpainter, image, hole, lambda f, d: seen.append((f, d)))
    assert [r.name for r in results] == list(METHODS)
    assert [d for _, d in seen] == [f"{m}…" for m in METHODS] and [f for f, _ in seen] == sorted(
        f for f, _ in seen
    )
    assert np.array_equal(results[0].image, inpainter(image, hole))
    for r in results:
        assert r.image.shape == image.shape and r.image.dtype == np.uint8 and r.seconds >= 0
        assert np.array_equal(r.image[~hole], image[~hole]), r.name
        assert not np.array_equal(r.image[hole], image[hole]), r.name


def test_run_methods_times_the_model_call(image: np.ndarray, tiny) -> None:
    def slow(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
        time.sleep(0.2)
        return img

    results = run_methods(slow, image, tiny.hole_mask(H, W, 0.2) > 0)
    assert 0.2 <= results[0].seconds < 5 and results[1].seconds < 0.2


def test_write_result_png_lossless_atomic_and_safe_name(tmp_path: Path, image: np.ndarray) -> None:
    out = write_result_png(image, tmp_path / "session", "../my photo (1)")
    assert out.parent == tmp_path / "session" and out.name == "my_photo__1_pconv.png"
    assert np.array_equal(np.asarray(Image.open(out)), image)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left
    assert write_result_png(image, tmp_path, "...").name == "photo_pconv.png"


def test_timings_markdown(image: np.ndarray, inpainter: Inpainter) -> None:
    hole = np.zeros((H, W), bool)
    hole[:10, :10] = True
    text = timings_markdown(run_methods(inpainter, image, hole), hole)
    assert text.startswith(f"Filled {100 / (H * W):.1%} of {W}x{H} pixels.")
    assert all(name in text for name in METHODS) and (" ms**" in text or " s**" in text)


# --------------------------------------------------------------------------------------------- page and CLI


def test_sample_photos_are_the_held_out_ones() -> None:
    samples = sample_photos()
    assert set(samples) == {"china.jpg", "flower.jpg", "coffee.png", "rocket.jpg"}
    assert all(p.is_file() for p in samples.values())


def test_resolve_checkpoint(tmp_path: Path, tiny) -> None:
    assert resolve_checkpoint(None, tmp_path / "outputs") is None
    assert resolve_checkpoint(tmp_path / "x.safetensors", tmp_path) == tmp_path / "x.safetensors"
    old = tiny.checkpoint(tmp_path / "outputs/train/runs/a/checkpoints/last.ckpt")
    new = tiny.checkpoint(tmp_path / "outputs/train/runs/b/checkpoints/last.ckpt")
    os.utime(old, (time.time() + 60, time.time() + 60))  # newest by time written, not by name
    assert resolve_checkpoint(None, tmp_path / "outputs") == old
    os.utime(new, (time.time() + 120, time.time() + 120))
    assert resolve_checkpoint(None, tmp_path / "outputs") == new


def _markdown_values(demo: object) -> str:
    config = demo.config  # type: ignore[attr-defined]
    return "\n".join(
        str(c["props"].get("value", "")) for c in config["components"] if c["type"] == "markdown"
    )


def test_page_says_which_model_and_limit(inpainter: Inpainter, tmp_path: Path) -> None:
    text = _markdown_values(
        build_app(inpainter, Path("runs/x/last.ckpt"), max_upload_side=2048, results_dir=tmp_path)
    )
    assert "Model: `runs/x/last.ckpt`" in text and "**2048 px**" in text


def test_page_without_model_says_how_to_get_one(tmp_path: Path) -> None:
    text = _markdown_values(build_app(None, None, results_dir=tmp_path))
    assert NO_MODEL_HELP in text and "make train" in text


def test_export_loads_in_the_page(inpainter: Inpainter, tmp_path: Path, image: np.ndarray, tiny) -> None:
    from inpaint.app import _load_inpainter
    from inpaint.checkpoint import save_weights

    export = save_weights(tmp_path / "w.safetensors", inpainter.model, inpainter.config)
    hole = tiny.hole_mask(H, W, 0.2, seed=5) > 0
    loaded = _load_inpainter(export, "cpu")
    assert loaded is not None and np.array_equal(loaded(image, hole), inpainter(image, hole))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ckpt", "missing.ckpt"], "cannot load the model from missing.ckpt"),
        (["--ckpt", "junk.ckpt"], "cannot load the model from junk.ckpt"),
        (["--max-upload-side", "4"], "--max-upload-side must be at least 16"),
    ],
)
def test_cli_errors_are_one_line(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_core_and_training_do_not_import_gradio() -> None:
    code = (
        "import sys, inpaint, inpaint.inference, inpaint.predict, inpaint.evaluate, inpaint.export, inpaint.train, "
        "inpaint.training.module, inpaint.data; assert 'gradio' not in sys.modules, 'gradio was imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_module_imports_without_gradio() -> None:
    """Gradio is an optional extra: without it the module still imports (``make test`` collects its docstring
    examples), and only building the page says what to install."""
    code = (
        "import sys; sys.modules['gradio'] = None\n"
        "import inpaint.app\n"
        "try:\n"
        "    inpaint.app.build_app(None, None)\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pip install 'pconv-inpaint[app]'" in proc.stdout


def test_inference_options_reach_the_model_and_the_page(
    inpainter: Inpainter, image: np.ndarray, tmp_path: Path, tiny
) -> None:
    from inpaint.app import _load_inpainter, _parser
    from inpaint.checkpoint import save_weights

    export = save_weights(tmp_path / "w.safetensors", inpainter.model, inpainter.config)
    args = _parser().parse_args(["--self-ensemble", "2", "--coarse-beyond", "1", "--poisson-blend", "1"])
    loaded = _load_inpainter(export, "cpu", **InferenceOptions.overrides(args))
    assert loaded is not None
    assert loaded.options == InferenceOptions(self_ensemble=2, coarse_beyond=1, poisson_blend=1.0)
    hole = tiny.hole_mask(H, W, 0.2, seed=5) > 0
    assert not np.array_equal(loaded(image, hole), inpainter(image, hole))
    text = _markdown_values(build_app(loaded, export, results_dir=tmp_path / "r"))
    assert "(self_ensemble=2, coarse_beyond=1, poisson_blend=1)" in text
    assert "(one pass of the network)" in _markdown_values(
        build_app(inpainter, export, results_dir=tmp_path / "s")
    )


# ------------------------------------------------------------------------------- large photos, sources, warnings


def _page(inpainter: Inpainter | None, tmp_path: Path):
    from inpaint.app import _Page

    return _Page(inpainter, max_upload_side=4096, results_dir=tmp_path / "results")


class _Request:
    session_hash = "test-session"


def test_large_photo_travels_as_previews_and_downloads_at_full_resolution(
    inpainter: Inpainter, tmp_path: Path
) -> None:
    from inpaint.app import PREVIEW_SIDE

    h, w = 700, 1900  # longer than PREVIEW_SIDE, small enough for a fast test
    assert w > PREVIEW_SIDE
    photo = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "big.png")
    page = _page(inpainter, tmp_path)
    shown = page.show_photo(str(tmp_path / "big.png"), "big.png")
    state, editor = shown[2], shown[3]
    assert np.array_equal(state["image"], photo)  # the server keeps the original
    assert max(editor["background"].shape[:2]) == PREVIEW_SIDE  # the browser gets a preview
    # A stroke painted on the preview-sized canvas, as the editor sends it back.
    ph, pw = editor["background"].shape[:2]
    stroke = np.zeros((ph, pw), bool)
    stroke[ph // 3 : ph // 3 + 20, pw // 4 : pw // 2] = True
    out = page.on_run(state, {**editor, "layers": [painted_layer(stroke)]}, _Request(), lambda *a, **k: None)
    previews = [np.asarray(Image.open(o["value"])) for o in out[:3]]
    download = Path(out[4]["value"])
    assert all(max(p.shape[:2]) == PREVIEW_SIDE for p in previews)  # what the browser loads after a fill
    result = np.asarray(Image.open(download))
    assert result.shape == photo.shape  # the download is full resolution ...
    hole = (result != photo).any(axis=2)
    assert 0.005 < hole.mean() < 0.05  # ... filled where the scaled-up stroke is, exact elsewhere
    ys, xs = np.nonzero(hole)
    scale = w / pw
    assert abs(ys.min() - (ph // 3) * scale) < 2 * scale and abs(xs.max() - (pw // 2) * scale) < 2 * scale


def test_picking_a_sample_clears_the_upload_box_and_an_upload_clears_the_sample(
    inpainter: Inpainter, tmp_path: Path, image: np.ndarray
) -> None:
    page = _page(inpainter, tmp_path)
    name = sorted(page.samples)[0]
    shown = page.on_sample(name)
    assert shown[0] is None  # the upload box no longer shows the previous file
    assert shown[2]["stem"] == Path(name).stem and shown[3]["background"] is not None
    Image.fromarray(image).save(tmp_path / "mine.png")
    shown = page.show_photo(str(tmp_path / "mine.png"), "mine.png")
    assert shown[1] is None and shown[2]["stem"] == "mine"  # the dropdown no longer names the sample


def test_an_unreadable_upload_is_a_warning_naming_the_file_not_the_server_folder(
    inpainter: Inpainter, tmp_path: Path
) -> None:
    upload = tmp_path / "gradio_cache" / "holiday.png"  # Gradio keeps an upload under its own name
    upload.parent.mkdir()
    upload.write_bytes(b"not an image at all")
    with pytest.warns(UserWarning) as caught:  # gr.Warning outside a running page is a Python warning
        shown = _page(inpainter, tmp_path).show_photo(str(upload))
    messages = [str(w.message) for w in caught]
    assert any("Could not read holiday.png as an image" in m for m in messages), messages
    assert not any("gradio_cache" in m for m in messages)
    assert shown[0] is None  # the upload box is cleared for the next try


def test_painting_almost_everything_warns_on_the_page_and_in_the_api(
    inpainter: Inpainter, image: np.ndarray, tmp_path: Path
) -> None:
    from inpaint.app import mask_warning
    from inpaint.inference import SuspiciousMaskWarning

    hole = np.ones((H, W), bool)
    hole[:3, :3] = False  # 9 known pixels of 1961: 99.5 % hole
    assert "You painted 100% of the photo" in mask_warning(hole) and "Paint only what should disappear" in (
        mask_warning(hole)
    )
    assert mask_warning(np.eye(H, W, dtype=bool)) is None
    with pytest.warns(SuspiciousMaskWarning, match=r"99\.5% of the pixels are holes \(only 9 known pixels\)"):
        inpainter(image, hole)
    page = _page(inpainter, tmp_path)
    state = {"image": image, "stem": "x"}
    with pytest.warns(UserWarning) as caught:  # gr.Warning outside a running page is a Python warning
        page.on_run(state, editor_value(image, painted_layer(hole)), _Request(), lambda *a, **k: None)
    messages = [str(w.message) for w in caught]
    assert any("You painted" in m for m in messages)
    assert not any(
        issubclass(w.category, SuspiciousMaskWarning) for w in caught
    )  # said once, in the page's words


def test_default_model_is_the_default_experiments_newest_not_the_smoke_run(tmp_path: Path, tiny) -> None:
    train = tiny.checkpoint(tmp_path / "outputs/train/runs/a/checkpoints/last.ckpt")
    smoke = tiny.checkpoint(tmp_path / "outputs/smoke/runs/b/checkpoints/last.ckpt")
    os.utime(smoke, (time.time() + 60, time.time() + 60))  # the installation check ran last
    assert resolve_checkpoint(None, tmp_path / "outputs") == train
    train.unlink()
    assert resolve_checkpoint(None, tmp_path / "outputs") is None  # the page then says `make train`


@pytest.mark.parametrize("how", ["nan", "random_bytes"])
def test_unusable_checkpoint_is_one_line_and_debug_shows_the_trace(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tiny
) -> None:
    import torch

    ckpt = tmp_path / "model.ckpt"
    if how == "nan":
        tiny.checkpoint(ckpt)
        data = torch.load(ckpt, weights_only=True)
        first = next(k for k in data["state_dict"] if k.startswith("net."))
        data["state_dict"][first].view(-1)[0] = float("inf")
        torch.save(data, ckpt)
        expected = f"tensor '{first.removeprefix('net.')}' holds 0 NaN and 1 infinite"
    else:
        ckpt.write_bytes(os.urandom(2048))
        expected = "not a zip archive, pickle or safetensors file"
    monkeypatch.chdir(tmp_path)
    assert main(["--ckpt", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load the model") and expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["--ckpt", str(ckpt), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.slow
def test_second_sigterm_prints_no_traceback(tmp_path: Path, tiny) -> None:
    import signal

    from benchmarks.app_page import free_port, wait_until_serving

    port = free_port()
    log = tmp_path / "app.log"
    cmd = [
        sys.executable,
        "-m",
        "inpaint.app",
        "--port",
        str(port),
        "--ckpt",
        str(tiny.checkpoint(tmp_path / "t.ckpt")),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(f"http://127.0.0.1:{port}/", proc, log)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)  # impatient: while the server is closing
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
