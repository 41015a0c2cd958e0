"""Drive the inpainting page (``python -m inpaint.app``) in headless Chromium with Selenium, and time it.

Shared by ``tests/test_app_browser.py`` and by the click-to-result measurement (run from the repository root)::

    .venv/bin/python -m benchmarks.app_page --size 4096x2731 --runs 5 [--ckpt last.ckpt] [--src OLD/src]

which starts the page on a free port, uploads a ``W`` x ``H`` camera-like JPEG, paints a stroke and measures, for each
run, the seconds from the click on "Fill the hole" until all three results are on screen (loaded and decoded by the
browser), against the three methods' own time as the server logs it (the U-Net, Telea, Navier-Stokes), and prints the
medians and their ratio. Without ``--ckpt`` the model is the demo's architecture (``conf/model/demo.yaml``: 5 levels,
widths from 32) with random weights: the same computation as the trained model. ``--src`` serves the page from
another source tree (e.g. ``git archive <commit> src conf`` unpacked), to measure an earlier version on the same
machine in the same session. ``--breakdown`` also times, in this process, the image encodings and decodings the page
does for a photo of that size (where the time goes besides the methods).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps trying to reach Google's servers and stalls on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1500",
)
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT_S = 180  # the page imports torch and Gradio: slow on a busy 2-core machine
FILL_TIMEOUT_S = 300


def find_browser() -> tuple[str | None, str | None]:
    """(chromium binary, chromedriver) on PATH, each None when missing."""
    browser = next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)
    return browser, shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_app(
    ckpt: Path | None, workdir: Path, *extra: str, src: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``python -m inpaint.app`` on a free port with TMPDIR inside ``workdir``; yield (url, process).

    ``src``: a source tree (the folder holding ``inpaint/``) to serve instead of the installed package.
    Stops it with SIGTERM (what ``kill`` and service managers send) on exit; its output is in ``workdir/app.log``.
    """
    port = free_port()
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "inpaint.app", "--port", str(port), *extra]
    if ckpt is not None:
        cmd += ["--ckpt", str(Path(ckpt).resolve())]  # the app runs in workdir
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(src).resolve()), env.get("PYTHONPATH")]))
    log = (workdir / "app.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, proc, workdir / "app.log")
        yield url, proc
    finally:
        stop(proc)
        log.close()


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
            if r.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(
        f"the app did not answer on {url} within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
    )


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def http_get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET, also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextlib.contextmanager
def chromium(browser: str, driver: str, downloads: Path) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile that saves downloads into ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    wd = webdriver.Chrome(options=opts, service=Service(driver))
    try:
        downloads.mkdir(parents=True, exist_ok=True)
        wd.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield wd
    finally:
        wd.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate()`` until it returns something truthy; return it, or raise naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # elements come and go while Svelte re-renders
            value = predicate()
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def toast_texts(wd: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in wd.find_elements(By.CSS_SELECTOR, "[data-testid=toast-text]")]


def wait_for_toast(wd: Any, fragment: str, timeout: float = 60) -> str:
    return wait_for(
        lambda: next((t for t in toast_texts(wd) if fragment in t), None),
        timeout,
        f"a message with {fragment!r}",
    )


def close_toasts(wd: Any) -> None:
    from selenium.webdriver.common.by import By

    for button in wd.find_elements(By.CSS_SELECTOR, "[data-testid=toast-close]"):
        with contextlib.suppress(Exception):
            button.click()


def upload(wd: Any, path: Path) -> None:
    """Choose ``path`` in the upload widget (clearing an earlier file first)."""
    from selenium.webdriver.common.by import By

    for clear in wd.find_elements(By.CSS_SELECTOR, "#upload button[aria-label=Clear]"):
        clear.click()
    field = wait_for(
        lambda: wd.find_element(By.CSS_SELECTOR, "#upload input[type=file]"), 30, "the upload field"
    )
    field.send_keys(str(path))


def pick_sample(wd: Any, name: str) -> None:
    """Choose ``name`` in the sample dropdown, as a user would (open the list, click the entry)."""
    from selenium.webdriver.common.by import By

    wd.find_element(By.CSS_SELECTOR, "#sample input").click()
    entry = wait_for(
        lambda: next(li for li in wd.find_elements(By.CSS_SELECTOR, "#sample li") if li.text == name),
        30,
        f"{name!r} in the sample list",
    )
    entry.click()


def upload_text(wd: Any) -> str:
    """What the upload box shows (the file's name and size once a file is in it)."""
    from selenium.webdriver.common.by import By

    return str(wd.find_element(By.ID, "upload").text)


def wait_for_photo(wd: Any, timeout: float = 60) -> None:
    """Wait until the editor shows a photo: its brush-size control only exists then."""
    from selenium.webdriver.common.by import By

    wait_for(
        lambda: wd.find_elements(By.CSS_SELECTOR, "#editor button[aria-label='Brush Size']"),
        timeout,
        "the photo in the editor",
    )
    time.sleep(1.0)  # let the canvas finish drawing the background before strokes arrive


def set_brush_size(wd: Any, size: int) -> None:
    """Open the brush-size menu and move its slider, as a user would."""
    from selenium.webdriver.common.by import By

    wd.find_element(By.CSS_SELECTOR, "#editor button[aria-label='Brush Size']").click()
    slider = wait_for(
        lambda: wd.find_element(By.CSS_SELECTOR, "#editor input[type=range]"), 10, "the size slider"
    )
    wd.execute_script(
        "const s = arguments[0];"
        "Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(s, arguments[1]);"
        "s.dispatchEvent(new Event('input', {bubbles: true}));"
        "s.dispatchEvent(new Event('change', {bubbles: true}));",
        slider,
        size,
    )
    wd.find_element(By.CSS_SELECTOR, "#editor button[aria-label='Brush']").click()  # closes the menu


def paint_stroke(wd: Any, dy: int, length: int = 200, steps: int = 20) -> None:
    """Drag the mouse horizontally across the editor's canvas, ``dy`` CSS pixels below its centre."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = wd.find_elements(By.CSS_SELECTOR, "#editor canvas")[-1]
    chain = ActionChains(wd, duration=20)
    chain.move_to_element_with_offset(canvas, -length // 2, dy).click_and_hold()
    for _ in range(steps):
        chain.move_by_offset(length // steps, 0)
    chain.release().perform()
    time.sleep(1.0)  # the editor sends its layers to the server shortly after the stroke ends


def click_editor_button(wd: Any, label: str) -> None:
    from selenium.webdriver.common.by import By

    wd.find_element(By.CSS_SELECTOR, f"#editor button[aria-label='{label}']").click()
    time.sleep(1.0)


def result_src(wd: Any, index: int = 0) -> str | None:
    from selenium.webdriver.common.by import By

    imgs = wd.find_elements(By.CSS_SELECTOR, f"#out-{index} img")
    return imgs[0].get_attribute("src") if imgs else None


# True when each result image has a new source, fully loaded and decoded: what the user sees.
_SHOWN_JS = """
const before = arguments[0];
return [0, 1, 2].every(i => {
  const img = document.querySelector(`#out-${i} img`);
  return img && img.src && img.src !== before[i] && img.complete && img.naturalWidth > 0;
});
"""


def fill(wd: Any) -> float:
    """Click "Fill the hole" and wait until the three new results are on screen (loaded and decoded); returns the
    seconds from the click."""
    from selenium.webdriver.common.by import By

    before = [result_src(wd, i) for i in range(3)]
    start = time.perf_counter()
    wd.find_element(By.ID, "run").click()
    wait_for(lambda: wd.execute_script(_SHOWN_JS, before), FILL_TIMEOUT_S, "the three results", 0.02)
    return time.perf_counter() - start


def read_png(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def download_result(wd: Any, downloads: Path, timeout: float = 60) -> Path:
    """Click the download button and wait for the PNG in ``downloads``."""
    from selenium.webdriver.common.by import By

    wait_for(lambda: wd.find_element(By.ID, "download").is_displayed(), 30, "the download button")
    wd.find_element(By.ID, "download").click()
    return wait_for(
        lambda: next((p for p in downloads.glob("*.png") if p.stat().st_size > 0), None),
        timeout,
        f"the downloaded PNG in {downloads}",
    )


def camera_photo(path: Path, width: int, height: int) -> Path:
    """A camera-like JPEG of ``width`` x ``height`` (a photo upscaled, with sensor-like noise, quality 92)."""
    import skimage.data
    from PIL import Image

    big = Image.fromarray(skimage.data.astronaut()).resize((width, height), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 3, (height, width, 3))
    noisy = np.clip(np.asarray(big, np.float32) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(path, quality=92)
    return path


def demo_checkpoint(path: Path) -> Path:
    """A checkpoint of the demo's network (conf/model/demo.yaml's levels and widths) with random weights."""
    import torch
    import yaml

    from inpaint.checkpoint import save_weights
    from inpaint.config import CONF_DIR
    from inpaint.models import PConvUNet

    net = yaml.safe_load((CONF_DIR / "model" / "demo.yaml").read_text())["net"]
    torch.manual_seed(0)
    config = {"_target_": "inpaint.models.PConvUNet", **net}
    return save_weights(path, PConvUNet(**net), config)


# "PConv U-Net 3.21 s · Telea (OpenCV) 250 ms · ..." in the page's log line for each fill.
_METHOD_TIME = re.compile(r"(PConv U-Net|Telea \(OpenCV\)|Navier-Stokes \(OpenCV\)) ([\d.]+) (s|ms)")


def methods_seconds(log_line: str) -> float:
    """The three methods' own time, summed, from one "Filled ..." line of the page's log."""
    found = _METHOD_TIME.findall(log_line)
    if len(found) != 3:
        raise ValueError(f"expected the three methods' times in {log_line!r}")
    return sum(float(v) / (1000.0 if unit == "ms" else 1.0) for _, v, unit in found)


def measure(
    ckpt: Path | None, width: int, height: int, runs: int, src: Path | None = None
) -> tuple[list[float], list[float]]:
    """Click-to-result seconds and the methods' own seconds (server log) for ``runs`` fills of a ``width`` x
    ``height`` photo, each with a new stroke."""
    browser, driver = find_browser()
    if browser is None or driver is None:
        raise SystemExit("needs chromium and chromedriver: apt-get install -y chromium chromium-driver")
    work = Path(tempfile.mkdtemp(prefix="inpaint-app-timing-"))
    photo = camera_photo(work / "photo.jpg", width, height)
    ckpt = ckpt if ckpt is not None else demo_checkpoint(work / "demo_random.safetensors")
    clicks: list[float] = []
    try:
        with (
            serve_app(ckpt, work, "--max-upload-side", str(max(width, height)), src=src) as (url, _),
            chromium(browser, driver, work / "downloads") as wd,
        ):
            wd.get(url)
            upload(wd, photo)
            wait_for_photo(wd, timeout=FILL_TIMEOUT_S)
            for i in range(runs):
                paint_stroke(wd, dy=-60 + 20 * i)
                clicks.append(fill(wd))
                print(f"run {i + 1}: click to result {clicks[-1]:.2f} s", flush=True)
            time.sleep(1.0)  # the log line of the last fill
        lines = [line for line in (work / "app.log").read_text().splitlines() if "Filled" in line]
        methods = [methods_seconds(line) for line in lines]
        print("server-side, per run:", *lines, sep="\n  ")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(methods) != len(clicks):
        raise RuntimeError(f"{len(clicks)} fills but {len(methods)} log lines")
    return clicks, methods


def breakdown(width: int, height: int, repeats: int = 3) -> list[tuple[str, float]]:
    """Median seconds of the image work the page does around the methods for one photo of that size, in this
    process: what sending full-resolution images costs, and what the previews cost instead."""
    import io
    import statistics

    from gradio import processing_utils
    from PIL import Image

    from inpaint.app import PREVIEW_SIDE, write_preview
    from inpaint.photos import preview

    work = Path(tempfile.mkdtemp(prefix="inpaint-app-breakdown-"))
    photo = np.asarray(Image.open(camera_photo(work / "photo.jpg", width, height)).convert("RGB"))
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])

    def png_bytes(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return buf.getvalue()

    full_png = png_bytes(rgba)
    steps: list[tuple[str, Any]] = [
        ("decode the uploaded JPEG", lambda: np.asarray(Image.open(work / "photo.jpg").convert("RGB"))),
        (
            "full-size PNG of the photo for the editor (RGBA)",
            lambda: processing_utils.save_img_array_to_cache(rgba, str(work), "png"),
        ),
        (
            "decode one full-size RGBA PNG from the editor (x3: background, layer, composite)",
            lambda: np.asarray(Image.open(io.BytesIO(full_png))),
        ),
        (
            "full-size PNG of one result (x3)",
            lambda: processing_utils.save_img_array_to_cache(photo, str(work), "png"),
        ),
        (f"the editor's photo: downscaled to {PREVIEW_SIDE} px", lambda: preview(photo, PREVIEW_SIDE)),
        (
            f"one result's {PREVIEW_SIDE} px preview PNG, as the page writes it (x3)",
            lambda: write_preview(photo, work / "p.png"),
        ),
        ("the download: full-size PNG (fast compression)", lambda: _write_download(photo, work)),
    ]
    out = []
    for name, step in steps:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        out.append((name, statistics.median(times)))
    shutil.rmtree(work, ignore_errors=True)
    return out


def _write_download(image: np.ndarray, work: Path) -> None:
    from inpaint.app import write_result_png

    write_result_png(image, work, "photo")


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h or w)


if __name__ == "__main__":
    import argparse
    import statistics

    parser = argparse.ArgumentParser(
        description="Seconds from the click to the results in the inpainting page"
    )
    parser.add_argument(
        "--ckpt", type=Path, default=None, help="default: the demo architecture, random weights"
    )
    parser.add_argument("--size", type=_size, default=(4096, 2731), help="WxH (default 4096x2731)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", type=Path, default=None, help="serve the page from this source tree")
    parser.add_argument("--breakdown", action="store_true", help="also time the page's image work in-process")
    args = parser.parse_args()
    (w, h) = args.size
    clicks, methods = measure(args.ckpt, w, h, args.runs, args.src)
    click, own = statistics.median(clicks), statistics.median(methods)
    ratio = statistics.median(c / m for c, m in zip(clicks, methods, strict=True))
    print(
        f"{w}x{h}, {args.runs} runs: median click-to-result {click:.2f} s, median of the three methods' own time "
        f"{own:.2f} s ({click / own:.2f}x); median of the per-run ratios {ratio:.2f}x"
    )
    if args.breakdown:
        for name, seconds in breakdown(w, h):
            print(f"  {seconds:7.3f} s  {name}")
