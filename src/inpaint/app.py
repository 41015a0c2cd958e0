"""Interactive inpainting page: ``python -m inpaint.app`` (``make demo``).

Upload a photo (or pick a bundled sample), paint the hole with the brush, and compare the partial-convolution U-Net's
fill with OpenCV's Telea and Navier-Stokes inpainting, each with the time it took; download the U-Net's result as a
full-resolution PNG. Built on Gradio (the optional ``app`` extra); nothing else in the package imports it.

    python -m inpaint.app                          # newest outputs/train/runs/*/checkpoints/last.ckpt, port 7860
    python -m inpaint.app --ckpt pconv.safetensors --port 8000 --max-upload-side 2048

The page works on the photo exactly as uploaded: the editor only supplies the painted strokes (their alpha is the
hole), and the fill comes from :class:`~inpaint.inference.Inpainter`, so known pixels come back bit-identical and the
result has the photo's size. What travels to the browser is screen-sized: the editor and the three results show
previews of at most :data:`PREVIEW_SIDE` pixels (the strokes are scaled back to the photo), and only the download is
the full-resolution PNG (sending and re-encoding full-size images took most of the time from click to result for large
photos: benchmarks/RESULTS.md). The files are the library's: photos and their size limit (:mod:`inpaint.photos`), the
painted hole (:mod:`inpaint.hole_masks`), the default model (:mod:`inpaint.runs`). Here are the page's own steps (the
three methods with timings, the result file and previews), plain functions tested without a browser, and
:func:`build_app`, which wires them to widgets.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inpaint.checkpoint import CheckpointError
from inpaint.cli import console_logging, path_argument
from inpaint.evaluation.methods import METHOD_LABELS, MODEL_METHOD
from inpaint.hole_masks import hole_mask_from_editor
from inpaint.inference import InferenceOptions, SuspiciousMaskWarning, suspicious_mask
from inpaint.io import InputError
from inpaint.photos import load_photo, preview, write_png

try:
    # A module global (not a local import): Gradio reads the handlers' type hints (`request: gr.Request`) to decide
    # what to pass them, and those hints are resolved in this module's namespace.
    import gradio as gr
except ImportError:  # the optional `app` extra: main() says how to install it; the pure steps work without it
    gr = None

if TYPE_CHECKING:
    from inpaint.inference import Inpainter

__all__ = [
    "MAX_UPLOAD_SIDE",
    "PREVIEW_SIDE",
    "MethodResult",
    "build_app",
    "main",
    "resolve_checkpoint",
    "run_methods",
    "sample_photos",
    "timings_markdown",
    "write_preview",
    "write_result_png",
]

log = logging.getLogger(__name__)

# The largest photo the page accepts, in px on the longer side (--max-upload-side): a 16-megapixel photo; bigger
# ones are refused with a message. Not the working resolution of the network (inference.DEFAULT_MAX_SIDE).
MAX_UPLOAD_SIDE = 4096
# Longest side of what the page sends to the browser (the editor's photo, the three results): about the editor's width
# on the screen. Encoding a 4096x2731 photo as PNG takes seconds (then sending and decoding it); a preview of this
# size about a tenth of a second (benchmarks/RESULTS.md). The download is always the full-resolution PNG.
PREVIEW_SIDE = 1024
DEFAULT_PORT = 7860
# Uploads above this are refused by Gradio: a 4096 px PNG is at most ~50 MB, so bigger files are not photos we accept.
MAX_UPLOAD = "200mb"
# Uploads and results live in a temporary directory that is removed on exit; while running, Gradio deletes files
# older than CACHE_AGE_S every CACHE_SWEEP_S seconds, so nothing outlives a session by much.
CACHE_SWEEP_S, CACHE_AGE_S = 300, 3600
# The brush: a colour photos rarely have, half transparent so that the user sees what is under the paint.
PAINT_COLOR = "#ff00ff"
PCONV, TELEA, NAVIER_STOKES = (METHOD_LABELS[m] for m in (MODEL_METHOD, "telea", "navier_stokes"))
METHODS = (PCONV, TELEA, NAVIER_STOKES)
NO_MODEL_HELP = (
    "No trained model of the default experiment found under `outputs/train/runs/`. Train the demo model with "
    "`make train` (a few minutes on a CPU), then restart `make demo`; or start the page with "
    "`python -m inpaint.app --ckpt path/to/last.ckpt` (an exported `.safetensors` works too)."
)


@dataclass(frozen=True)
class MethodResult:
    """One method's filled photo (H, W, 3) uint8 and the wall-clock seconds it took."""

    name: str
    image: np.ndarray
    seconds: float


# ----------------------------------------------------------------------------------------------------- pure steps


def run_methods(
    inpainter: Callable[[np.ndarray, np.ndarray], np.ndarray],
    image: np.ndarray,
    hole: np.ndarray,
    progress: Callable[[float, str], None] | None = None,
) -> list[MethodResult]:
    """Fill ``hole`` (True = hole) of ``image`` with the U-Net, Telea and Navier-Stokes, timing each.

    Args:
        inpainter: e.g. an :class:`~inpaint.inference.Inpainter`; called as ``inpainter(image, hole)`` (the user API,
            nonzero = hole), so its inference policy for large photos applies here too.
        image: (H, W, 3) uint8.
        hole: (H, W) bool.
        progress: called with (fraction done, what runs next) before each method.

    Returns:
        One :class:`MethodResult` per method, in the order of :data:`METHODS`.
    """
    from inpaint.evaluation.baselines import inpaint_navier_stokes, inpaint_telea

    steps: list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = [
        (PCONV, inpainter),
        (TELEA, inpaint_telea),
        (NAVIER_STOKES, inpaint_navier_stokes),
    ]
    results = []
    for i, (name, fn) in enumerate(steps):
        if progress is not None:
            progress(i / len(steps), f"{name}…")
        start = time.perf_counter()
        filled = fn(image, hole)
        results.append(MethodResult(name, filled, time.perf_counter() - start))
    return results


def write_result_png(image: np.ndarray, directory: str | os.PathLike[str], stem: str) -> Path:
    """Write ``image`` losslessly as ``directory/<stem>_pconv.png`` (atomically) and return the path; ``stem`` is the
    user's file name, so only its letters, digits and ``-_.`` are kept."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._") or "photo"
    return write_png(Path(directory) / f"{safe}_pconv.png", image)


def write_preview(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write the :data:`PREVIEW_SIDE` preview of ``image`` as a PNG (lossless, fast compression); returns its path.

    Written here rather than by Gradio: its PNG encoder uses the default compression, several times slower for a
    photo's noise, and the page would wait for three of them after every fill.
    """
    return write_png(path, preview(image, PREVIEW_SIDE))


def mask_warning(hole: np.ndarray) -> str | None:
    """The page's warning for a hole that covers almost all of the photo (see
    :data:`~inpaint.inference.SUSPICIOUS_HOLE_RATIO`), or None."""
    if suspicious_mask(hole) is None:
        return None
    return (
        f"You painted {hole.mean():.0%} of the photo: the fill has almost nothing to work from and is mostly made "
        "up. Paint only what should disappear."
    )


def timings_markdown(results: Sequence[MethodResult], hole: np.ndarray) -> str:
    """A one-paragraph summary: hole size and each method's time."""
    h, w = hole.shape
    times = " · ".join(f"{r.name} **{_duration(r.seconds)}**" for r in results)
    return f"Filled {hole.mean():.1%} of {w}x{h} pixels. {times}"


def sample_photos() -> dict[str, Path]:
    """The bundled held-out sample photos (not seen in `make train`), by display name."""
    from inpaint.data.sources import sample_records

    return {Path(r.path).name: Path(r.path) for r in sample_records("val")}


def resolve_checkpoint(
    ckpt: str | os.PathLike[str] | None, outputs: str | os.PathLike[str] | None = None
) -> Path | None:
    """``ckpt`` if given, else the newest checkpoint of the default experiment
    (:func:`inpaint.runs.find_latest_checkpoint`: ``outputs/train/runs/*/checkpoints/last.ckpt`` of the
    project, or under ``outputs``); None when there is none (the page then says how to get one)."""
    if ckpt is not None:
        return Path(ckpt)
    from inpaint.runs import find_latest_checkpoint

    try:
        return find_latest_checkpoint(outputs)
    except FileNotFoundError as e:
        log.info("%s", e)
        return None


# --------------------------------------------------------------------------------------------------------- the page


def _header(ckpt: Path | None, max_upload_side: int, inpainter: Inpainter | None) -> str:
    model = f"Model: `{ckpt}`{_options_text(inpainter)}." if ckpt is not None else f"**{NO_MODEL_HELP}**"
    return (
        "# Inpainting with partial convolutions\n"
        "1. Upload a photo or pick a sample.\n"
        "2. Paint over what should disappear. The toolbar has the brush (its size is in the brush menu), the "
        "eraser and undo.\n"
        "3. Press **Fill the hole** to compare the partial-convolution U-Net with OpenCV's Telea and "
        "Navier-Stokes.\n\n"
        f"{model} Photos up to **{max_upload_side} px** on the longer side are accepted. The page shows previews of at "
        f"most {PREVIEW_SIDE} px; the downloaded result keeps the photo's resolution and its unpainted pixels exactly."
    )


def _options_text(inpainter: Inpainter | None) -> str:
    """The inference options in use, e.g. " (self_ensemble=8, poisson_blend=0.75)"."""
    return f" ({inpainter.options.describe()})" if inpainter is not None else ""


def _session_dir(results_dir: Path, request: gr.Request | None) -> Path:
    session = getattr(request, "session_hash", None) or "anonymous"
    return results_dir / "".join(c for c in session if c.isalnum())


def _error(message: str) -> gr.Error:
    # gr.Error renders HTML, and the message may contain the user's file name.
    return gr.Error(html.escape(message), print_exception=False)


# Gradio finds its progress tracker by this default value of a handler's argument; None without Gradio, so that the
# module (and its docstring examples) imports without the optional extra.
_PROGRESS = gr.Progress() if gr is not None else None


class _Page:
    """The page's event handlers; :func:`build_app` wires them to the widgets. Errors reach the page as messages."""

    def __init__(self, inpainter: Inpainter | None, max_upload_side: int, results_dir: Path) -> None:
        self.inpainter = inpainter
        self.max_upload_side = max_upload_side
        self.results_dir = results_dir
        self.samples = sample_photos()

    @staticmethod
    def cleared() -> tuple[Any, ...]:
        """Empty result widgets, with the methods' plain names as labels."""
        images = [gr.update(value=None, label=name) for name in METHODS]
        return (*images, "", gr.update(value=None, visible=False))

    def show_photo(self, path: str | None, name: str | None = None, sample: bool = False) -> tuple[Any, ...]:
        """Outputs: upload widget, sample choice, photo state, editor, the three results, summary, download.

        The editor gets a preview (:func:`preview`); the full-resolution photo stays on the server, in the state.
        The other source is cleared: after a sample the upload box no longer shows the earlier file, after an upload
        the dropdown no longer names a sample.
        """
        if path is None:
            return (gr.skip(),) * 9
        try:
            # Named as the user knows it (the upload's own name), never by the server's path.
            image = load_photo(path, self.max_upload_side, name=name or Path(path).name)
        except InputError as e:
            # A warning (not an exception) so that the upload widget can be cleared for the next try.
            gr.Warning(html.escape(str(e)), title="Cannot use this photo")
            return (gr.skip() if sample else None, *(gr.skip(),) * 8)
        shown = preview(image, PREVIEW_SIDE)
        editor = {"background": shown, "layers": [], "composite": shown}
        state = {"image": image, "stem": Path(name or path).stem}
        sources = (None, gr.skip()) if sample else (gr.skip(), None)
        return (*sources, state, editor, *self.cleared())

    def on_sample(self, choice: str | None) -> tuple[Any, ...]:
        # Only names from our own list map to files: the browser never names a server path.
        if choice not in self.samples:
            return (gr.skip(),) * 9
        return self.show_photo(str(self.samples[choice]), choice, sample=True)

    def on_run(
        self,
        photo: dict[str, Any] | None,
        editor: dict[str, Any] | None,
        request: gr.Request,
        progress: gr.Progress = _PROGRESS,
    ) -> tuple[Any, ...]:
        """Outputs: the three results (previews), summary, download (the full-resolution PNG)."""
        if self.inpainter is None:
            raise _error(NO_MODEL_HELP)
        if photo is None:
            raise _error("Upload a photo or pick a sample first, then paint the hole.")
        try:
            hole = hole_mask_from_editor(editor, photo["image"].shape[:2])
        except InputError as e:
            raise _error(str(e)) from None
        warning = mask_warning(hole)
        if warning is not None:
            gr.Warning(warning, title="Almost everything is painted")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SuspiciousMaskWarning)  # said above, in the page's words
            done = run_methods(self.inpainter, photo["image"], hole, lambda f, d: progress(f, desc=d))
        progress(0.99, desc="Writing the PNG…")
        run_dir = self.fresh_run_dir(request)
        png = write_result_png(done[0].image, run_dir, photo["stem"])
        previews = [write_preview(r.image, run_dir / f"preview_{i}.png") for i, r in enumerate(done)]
        log.info("%s", timings_markdown(done, hole).replace("**", ""))
        images = [gr.update(value=str(p), label=_label(r)) for r, p in zip(done, previews, strict=True)]
        return (*images, timings_markdown(done, hole), gr.update(value=str(png), visible=True))

    def fresh_run_dir(self, request: gr.Request) -> Path:
        """A new folder for this run's result; the session's earlier results are deleted.

        A new folder per run gives each result a new URL, so the browser cannot show a cached earlier result, while
        the file keeps the photo's name for the download.
        """
        session = _session_dir(self.results_dir, request)
        shutil.rmtree(session, ignore_errors=True)
        return session / secrets.token_hex(8)

    def on_unload(self, request: gr.Request) -> None:
        shutil.rmtree(_session_dir(self.results_dir, request), ignore_errors=True)


def build_app(
    inpainter: Inpainter | None,
    ckpt: Path | None,
    max_upload_side: int = MAX_UPLOAD_SIDE,
    results_dir: str | os.PathLike[str] | None = None,
) -> gr.Blocks:
    """The page as a ``gr.Blocks`` (not launched).

    Args:
        inpainter: the model, or None when no checkpoint exists (the page then says how to get one).
        ckpt: the checkpoint's path, shown in the page.
        max_upload_side: photos with a longer side above this are refused.
        results_dir: where result PNGs are written, one sub-folder per browser session (removed when the session
            ends); default: a fresh temporary directory.
    """
    if gr is None:
        raise ImportError("the inpainting page needs Gradio: pip install 'pconv-inpaint[app]'")
    results = Path(results_dir or tempfile.mkdtemp(prefix="inpaint-results-"))
    page = _Page(inpainter, max_upload_side, results)
    with gr.Blocks(
        title="inpaint: partial convolutions",
        analytics_enabled=False,
        delete_cache=(CACHE_SWEEP_S, CACHE_AGE_S),
    ) as demo:
        gr.Markdown(_header(ckpt, max_upload_side, inpainter), elem_id="header")
        photo = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                upload, sample, run, summary, download = _controls(list(page.samples))
            with gr.Column(scale=3):
                editor = _editor()
        with gr.Row(equal_height=True):
            outputs = [
                gr.Image(label=name, format="png", interactive=False, height=400, elem_id=f"out-{i}")
                for i, name in enumerate(METHODS)
            ]
        shown = [upload, sample, photo, editor, *outputs, summary, download]
        upload.upload(page.show_photo, inputs=upload, outputs=shown)
        sample.input(page.on_sample, inputs=sample, outputs=shown)
        run.click(page.on_run, inputs=[photo, editor], outputs=[*outputs, summary, download])
        demo.unload(page.on_unload)
    return demo


def _controls(samples: list[str]) -> tuple[Any, ...]:
    upload = gr.File(label="Upload a photo", file_types=["image"], type="filepath", elem_id="upload")
    sample = gr.Dropdown(choices=samples, value=None, label="…or pick a sample photo", elem_id="sample")
    run = gr.Button("Fill the hole", variant="primary", elem_id="run")
    summary = gr.Markdown(elem_id="summary")
    download = gr.DownloadButton(
        "Download the PConv result (PNG, full resolution)", visible=False, elem_id="download"
    )
    return upload, sample, run, summary, download


def _editor() -> Any:
    return gr.ImageEditor(
        label="Paint the hole",
        type="numpy",
        image_mode="RGBA",  # the strokes' alpha is the mask
        sources=[],  # photos come through the upload widget, so the original file (not a canvas copy) is used
        transforms=[],  # no crop/resize: the strokes must stay aligned with the original photo
        layers=False,
        brush=gr.Brush(colors=[(PAINT_COLOR, 0.7)], color_mode="fixed"),
        eraser=gr.Eraser(),
        format="png",
        height=560,
        elem_id="editor",
    )


def _label(result: MethodResult) -> str:
    return f"{result.name} · {_duration(result.seconds)}"


def _duration(seconds: float) -> str:
    # The classical methods take milliseconds: "0.00 s" would hide them.
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


# ------------------------------------------------------------------------------------------------------------ CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m inpaint.app",
        description="Local web page: paint a hole in a photo and compare the PConv fill with OpenCV's.",
    )
    p.add_argument(
        "--ckpt",
        type=path_argument,
        default=None,
        help="Lightning .ckpt or exported .safetensors (default: the newest "
        "outputs/train/runs/*/checkpoints/last.ckpt, the default experiment's)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    p.add_argument(
        "--max-upload-side",
        type=int,
        default=MAX_UPLOAD_SIDE,
        help=f"largest accepted photo, in pixels on the longer side (default: {MAX_UPLOAD_SIDE}); not the network's "
        "working resolution",
    )
    p.add_argument(
        "--device", default="auto", help="torch device: auto (cuda if available), cpu, cuda, cuda:1"
    )
    InferenceOptions.add_arguments(p)
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def _load_inpainter(ckpt: Path | None, device: str, **options: Any) -> Inpainter | None:
    """The page's model, or None without a checkpoint; ``options`` change what the checkpoint carries."""
    import torch

    from inpaint.inference import Inpainter

    if ckpt is None:
        return None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    inpainter = Inpainter.from_checkpoint(ckpt, device=device, **options)
    log.info("inference options: %s", inpainter.options.describe())
    return inpainter


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the page until interrupted; returns the exit status (2: bad arguments or checkpoint)."""
    args = _parser().parse_args(argv)
    console_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests
    if args.max_upload_side < 16:
        print(
            f"error: --max-upload-side must be at least 16 pixels, got {args.max_upload_side}",
            file=sys.stderr,
        )
        return 2
    ckpt = resolve_checkpoint(args.ckpt)
    try:
        inpainter = _load_inpainter(ckpt, args.device, **InferenceOptions.overrides(args))
    except (CheckpointError, RuntimeError, ValueError) as e:  # RuntimeError/ValueError: an unusable device
        if args.debug:
            traceback.print_exc()
        print(f"error: cannot load the model from {ckpt}: {e}", file=sys.stderr)
        return 2
    if ckpt is None:
        log.info("model: none found under outputs/train/runs/ (run `make train`, or pass --ckpt)")
    else:
        chosen = "given with --ckpt" if args.ckpt is not None else "the newest run of the default experiment"
        log.info("model: %s (%s)", ckpt, chosen)
    # Everything Gradio stores (uploads, cached outputs) goes into a directory of our own, deleted on exit; SIGTERM
    # stops the server like Ctrl-C, so that the deletion runs then too.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt)
    cache = Path(tempfile.mkdtemp(prefix="inpaint-app-"))
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    # No telemetry or version check from a local tool (and no stall on a closed network).
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        demo = build_app(inpainter, ckpt, args.max_upload_side, results_dir=cache / "results")
        demo.queue(default_concurrency_limit=1)  # one fill at a time: the model uses every core
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=False,
            show_error=False,  # tracebacks stay in the log; the page shows gr.Error messages only
            footer_links=[],
            run_history=False,
            enable_monitoring=False,
            mcp_server=False,
            ssr_mode=False,
            pwa=False,
            max_file_size=MAX_UPLOAD,
            theme=_offline_theme(),
        )
    except OSError as e:  # e.g. the port is taken
        print(f"error: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # stopped while starting up
        log.info("stopped")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if _stopping:
            # Python restores the default action of handled signals while it shuts down, so a late second
            # SIGTERM would kill the process (status -15) after all; ignored signals stay ignored.
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_IGN)
    return 0


_stopping = False


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM and Ctrl-C stop the server once (Gradio closes it and the cache is removed); a second signal
    during that shutdown is only acknowledged, so that it cannot break the cleanup with a traceback."""
    global _stopping
    if _stopping:
        print(f"already stopping ({signal.Signals(signum).name} ignored)", file=sys.stderr, flush=True)
        return
    _stopping = True
    raise KeyboardInterrupt


def _offline_theme() -> Any:
    # The default theme pulls fonts from Google; a local tool should work (and not phone home) without a network.
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "Consolas", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)


if __name__ == "__main__":
    sys.exit(main())
