"""The inpainting page in a real browser: headless Chromium driven by Selenium against ``python -m inpaint.app``.

Uploads a photo, paints with the mouse (and undoes a stroke), fills, downloads the PNG and checks that known pixels
are exact and the hole is filled; also bad input (an unreadable file, no hole) and what the server lets a browser
read. Saves a screenshot of the page in use as ``app.png`` in the test's tmp directory; with
``INPAINT_APP_SCREENSHOT=docs/images/app.png`` it is copied there too (the README's picture), and
``INPAINT_APP_CKPT=<checkpoint>`` uses that model instead of the tiny random one built here.

Needs Debian's ``chromium`` and ``chromium-driver``: skipped where they are missing, except in CI (``.ci/run`` installs
them and sets ``INPAINT_REQUIRE_BROWSER=1``; ``CI`` counts too), where their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from benchmarks import app_page as ab
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

H, W = 301, 421  # odd, landscape: exercises the model's padding and the editor's scaling
PAINT = np.array([255, 0, 255])


@pytest.fixture(scope="module")
def browser() -> tuple[str, str]:
    found, driver = ab.find_browser()
    if found is None or driver is None:
        reason = "needs chromium and chromedriver on PATH (apt-get install -y chromium chromium-driver)"
        if os.environ.get("INPAINT_REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run installs them in CI")
        pytest.skip(reason)
    return found, driver


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    import skimage.data

    arr = np.ascontiguousarray(skimage.data.astronaut()[60 : 60 + H, 90 : 90 + W])
    path = tmp_path_factory.mktemp("photo") / "astronaut crop.png"
    Image.fromarray(arr).save(path)
    return path, arr


def _checkpoint(tiny, tmp: Path) -> Path:
    given = os.environ.get("INPAINT_APP_CKPT")
    return Path(given).resolve() if given else tiny.checkpoint(tmp / "tiny.ckpt", levels=3)


def _file_url(base: str, path: str) -> str:
    return urllib.parse.urljoin(base, "gradio_api/file=" + urllib.parse.quote(path))


def _assert_filled(result: np.ndarray, original: np.ndarray, band: slice) -> None:
    """Known pixels exact; the painted band (and only it) filled, not with the brush colour."""
    assert result.shape == original.shape and result.dtype == np.uint8
    changed = (result != original).any(axis=2)
    rows = np.flatnonzero(changed.any(axis=1))
    assert changed.sum() > 200, "the painted hole was not filled"
    assert band.start <= rows.min() and rows.max() < band.stop, (
        f"pixels changed outside the stroke: rows {rows}"
    )
    assert np.array_equal(
        result[: band.start], original[: band.start]
    )  # includes where the undone stroke was
    assert np.array_equal(result[band.stop :], original[band.stop :])
    paint_like = (np.abs(result[changed].astype(int) - PAINT).max(axis=1) < 40).mean()
    assert paint_like < 0.05, f"{paint_like:.0%} of the filled pixels have the brush colour"


def test_paint_fill_download_in_chromium(
    browser: tuple[str, str], photo: tuple[Path, np.ndarray], tmp_path: Path, tiny
):
    path, original = photo
    garbage = tmp_path / "not a photo.png"
    garbage.write_bytes(os.urandom(3000))
    with (
        ab.serve_app(_checkpoint(tiny, tmp_path), tmp_path) as (url, proc),
        ab.chromium(*browser, tmp_path / "downloads") as wd,
    ):
        wd.get(url)
        ab.wait_for(lambda: "Model:" in wd.page_source, 60, "the page")

        ab.upload(wd, garbage)
        assert "Could not read not a photo.png as an image" in ab.wait_for_toast(wd, "Could not read")
        ab.close_toasts(wd)

        ab.upload(wd, path)
        ab.wait_for_photo(wd)
        wd.find_element("id", "run").click()
        assert "Nothing is painted" in ab.wait_for_toast(wd, "Nothing is painted")
        ab.close_toasts(wd)

        # The canvas shows the photo about 1.8x enlarged: a stroke 150 CSS px above the centre (undone), one across it.
        ab.set_brush_size(wd, 12)
        ab.paint_stroke(wd, dy=-150)
        ab.click_editor_button(wd, "Undo")
        ab.paint_stroke(wd, dy=0)
        seconds = ab.fill(wd)
        (tmp_path / "click_to_fill_s.txt").write_text(f"{seconds:.3f}\n")

        ab.wait_for(lambda: "Filled" in wd.find_element("id", "summary").text, 30, "the timings")
        summary = wd.find_element("id", "summary").text
        for name in ("PConv U-Net", "Telea (OpenCV)", "Navier-Stokes (OpenCV)"):
            assert name in summary
        wd.save_screenshot(str(tmp_path / "app.png"))

        downloaded = ab.download_result(wd, tmp_path / "downloads")
        assert downloaded.name == "astronaut_crop_pconv.png"
        result = np.asarray(Image.open(downloaded).convert("RGB"))
        band = slice(H // 2 - 28, H // 2 + 28)  # the centre stroke, with a margin for the brush radius
        _assert_filled(result, original, band)
        # The page shows the same image as the download; the baselines fill the same hole.
        status, shown = ab.http_get(ab.result_src(wd, 0))
        assert status == 200 and np.array_equal(ab.read_png(shown), result)
        for i in (1, 2):
            status, data = ab.http_get(ab.result_src(wd, i))
            assert status == 200
            _assert_filled(ab.read_png(data), original, band)

        # Only what this page created is served: not the repository, not the checkpoint, not system files.
        for secret in (Path(__file__).resolve(), Path("/etc/passwd"), tmp_path / "tiny.ckpt", path):
            status, _ = ab.http_get(_file_url(url, str(secret)))
            assert status in (403, 404), f"{secret} is readable through the page (HTTP {status})"
        served = Path(urllib.parse.unquote(ab.result_src(wd, 0).split("file=", 1)[1]))

        # Picking a sample replaces the uploaded photo: the upload box must not still show that file.
        assert "astronaut crop" in ab.upload_text(wd)
        ab.pick_sample(wd, "coffee.png")
        ab.wait_for(lambda: "astronaut crop" not in ab.upload_text(wd), 30, "the upload box to be cleared")
        ab.wait_for(lambda: ab.result_src(wd, 0) is None, 30, "the previous results to be cleared")
        ab.upload(wd, path)  # and an upload replaces the sample: the dropdown no longer names it
        ab.wait_for(
            lambda: wd.find_element("css selector", "#sample input").get_attribute("value") == "",
            30,
            "the sample choice to be cleared",
        )

    assert proc.returncode is not None
    assert not served.exists(), "the result file outlived the server"
    assert not list((tmp_path / "tmp").glob("inpaint-app-*")), (
        "uploads were left behind after the server stopped"
    )
    _publish_screenshot(tmp_path / "app.png")


def _publish_screenshot(shot: Path) -> None:
    target = os.environ.get("INPAINT_APP_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
