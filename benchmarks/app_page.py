"""Drive the inpainting page (``python -m inpaint.app``) in headless Chromium with Selenium.

Shared by ``tests/test_app_browser.py`` and by the click-to-fill measurement (run from the repository root)::

    .venv/bin/python -m benchmarks.app_page --ckpt outputs/train/runs/<run>/checkpoints/last.ckpt --size 512 --runs 5

which starts the page on a free port, uploads a ``size`` x ``size`` photo, paints a stroke and prints the seconds from
the click on "Fill the hole" to the PConv result being shown, for each run and their median.
"""

from __future__ import annotations

import contextlib
import os
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
def serve_app(ckpt: Path | None, workdir: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``python -m inpaint.app`` on a free port with TMPDIR inside ``workdir``; yield (url, process).

    Stops it with SIGTERM (what ``kill`` and service managers send) on exit; its output is in ``workdir/app.log``.
    """
    port = free_port()
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "inpaint.app", "--port", str(port), *extra]
    if ckpt is not None:
        cmd += ["--ckpt", str(Path(ckpt).resolve())]  # the app runs in workdir
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
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


def fill(wd: Any) -> float:
    """Click "Fill the hole" and wait until a new PConv result is shown; returns the seconds from click to fill."""
    from selenium.webdriver.common.by import By

    before = result_src(wd)
    start = time.perf_counter()
    wd.find_element(By.ID, "run").click()
    wait_for(lambda: (src := result_src(wd)) and src != before, FILL_TIMEOUT_S, "the PConv result", 0.02)
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


def measure(ckpt: Path, size: int, runs: int) -> list[float]:
    """Seconds from click to fill for a ``size`` x ``size`` photo, ``runs`` times (a new stroke each time)."""
    import skimage.data
    from PIL import Image

    browser, driver = find_browser()
    if browser is None or driver is None:
        raise SystemExit("needs chromium and chromedriver: apt-get install -y chromium chromium-driver")
    work = Path(tempfile.mkdtemp(prefix="inpaint-app-timing-"))
    photo = work / "photo.png"
    Image.fromarray(skimage.data.astronaut()).resize((size, size), Image.Resampling.BICUBIC).save(photo)
    times = []
    try:
        with serve_app(ckpt, work) as (url, _), chromium(browser, driver, work / "downloads") as wd:
            wd.get(url)
            upload(wd, photo)
            wait_for_photo(wd)
            for i in range(runs):
                paint_stroke(wd, dy=-60 + 20 * i)
                times.append(fill(wd))
                print(f"run {i + 1}: {times[-1]:.2f} s", flush=True)
        server = [line for line in (work / "app.log").read_text().splitlines() if line.startswith("Filled")]
        print("server-side, per run:", *server, sep="\n  ")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return times


if __name__ == "__main__":
    import argparse
    import statistics

    parser = argparse.ArgumentParser(description="Seconds from click to fill in the inpainting page")
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    measured = measure(args.ckpt, args.size, args.runs)
    print(f"median click-to-fill for {args.size}x{args.size}: {statistics.median(measured):.2f} s")
