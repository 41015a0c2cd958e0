"""Evaluation: L1 / PSNR / SSIM (and LPIPS / FID where their weights exist) of a model and of classical baselines,
per NVIDIA hole-ratio bin and overall, on the same images and masks.

Python API (no Hydra needed)::

    from inpaint import Inpainter
    from inpaint.evaluate import evaluate

    report = evaluate(Inpainter.from_checkpoint("last.ckpt"), batches)  # batches: (image, mask) or dicts
    report.save("eval/")          # metrics.json, metrics.csv, per_image.csv, metrics.md, examples_*.png
    print(report.to_markdown())

Command line (Hydra app, config ``conf/evaluate.yaml``)::

    python -m inpaint.evaluate ckpt_path=outputs/.../last.ckpt data=places2 data.root=/data/places365 masks=nvidia_test

All metrics are computed on the *composited* result (known pixels from the input, holes from the method), images in
[0, 1], as in REFERENCE.md §7. Batches use the library convention: image (B, 3, H, W) in [0, 1], mask (B, 1, H, W)
with 1 = valid, 0 = hole.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from inpaint.baselines import BASELINES, inpaint_opencv_batch
from inpaint.checkpoint import atomic_output, describe_os_error, ensure_writable_dir
from inpaint.hole_ratio import BIN_NAMES, hole_ratio_bin
from inpaint.metrics import BinnedImageMetrics, image_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from omegaconf import DictConfig

    from inpaint.inference import Inpainter

__all__ = [
    "METHOD_LABELS",
    "MODEL_METHOD",
    "EvaluationReport",
    "Example",
    "evaluate",
    "build_eval_loader",
    "find_latest_checkpoint",
    "project_root",
    "load_config",
    "main",
    "plot_metrics_per_bin",
    "run",
]

log = logging.getLogger(__name__)

MODEL_METHOD = "pconv"
METHOD_LABELS: dict[str, str] = {
    MODEL_METHOD: "PConv U-Net",
    "telea": "Telea (OpenCV)",
    "navier_stokes": "Navier-Stokes (OpenCV)",
}
OVERALL = "all"
# How each metric is shown in the Markdown table: header, scale, decimals, whether lower is better.
_DISPLAY: dict[str, tuple[str, float, int, bool]] = {
    "l1": ("L1 (%) ↓", 100.0, 2, True),
    "psnr": ("PSNR (dB) ↑", 1.0, 2, False),
    "ssim": ("SSIM ↑", 1.0, 4, False),
    "lpips": ("LPIPS ↓", 1.0, 4, True),
    "fid": ("FID ↓", 1.0, 2, True),
}
# Mean signed error of each colour channel inside the holes, per image (0-1 units; shown in 0-255 levels): a colour
# cast of the fills (e.g. green lawns filled brown-purple) shows here even when PSNR looks fine.
COLOUR_BIAS = ("bias_r", "bias_g", "bias_b")
# torchvision's ImageNet AlexNet (the LPIPS backbone) and torch-fidelity's FID Inception weights, as cached by torch hub.
LPIPS_WEIGHTS = "alexnet-owt-7be5be79.pth"
FID_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
WEIGHT_MODES = ("auto", "on", "off")
_CONF_DIR = Path(__file__).resolve().parent / "conf"  # the project's conf/ (a symlink in the source tree)

Batch = tuple[torch.Tensor, torch.Tensor] | Mapping[str, Any]


# --------------------------------------------------------------------------------------------------- report
@dataclass
class Example:
    """One evaluated image kept for display: ``images`` maps ``input`` (holes white), each method and ``target`` to a
    (3, H, W) float tensor in [0, 1]."""

    index: int
    name: str
    hole_ratio: float
    score: float  # the model's PSNR on this image
    images: dict[str, torch.Tensor]


@dataclass
class EvaluationReport:
    """Result of :func:`evaluate`.

    Attributes:
        methods: evaluated methods, the model first (``pconv``, ``telea``, ``navier_stokes``).
        summary: ``summary[method][group][metric]``; ``group`` is ``"all"`` or a bin name of
            :data:`inpaint.hole_ratio.BIN_NAMES` (only bins with images); metrics include ``count``.
        per_image: one row per (image, method): ``index``, ``name``, ``method``, ``hole_ratio``, ``bin``, metrics.
        skipped: metric name -> why it was not computed (e.g. LPIPS without its pretrained weights).
        examples: ``"first"``, ``"best"`` and ``"worst"`` (by the model's PSNR) lists of :class:`Example`.
        info: run details (checkpoint, data, device, image count, seconds per method ...).
    """

    methods: list[str]
    summary: dict[str, dict[str, dict[str, float]]]
    per_image: list[dict[str, Any]]
    skipped: dict[str, str]
    examples: dict[str, list[Example]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_names(self) -> list[str]:
        """Metrics present in the summary, in display order."""
        present = {k for groups in self.summary.values() for g in groups.values() for k in g}
        return [m for m in _DISPLAY if m in present]

    @property
    def groups(self) -> list[str]:
        """Bins with images, in bin order, then ``"all"``."""
        present = {g for groups in self.summary.values() for g in groups}
        return [b for b in BIN_NAMES if b in present] + [OVERALL]

    def rows(self) -> list[dict[str, Any]]:
        """Flat summary: one dict per (group, method) with ``holes``, ``method``, ``count`` and each metric."""
        out = []
        for group in self.groups:
            for method in self.methods:
                values = self.summary[method].get(group)
                if values is not None:
                    out.append({"holes": group, "method": method, **values})
        return out

    def to_json(self) -> str:
        """Machine-readable report: summary, skipped metrics with reasons, run info (no per-image rows)."""
        payload = {
            "methods": self.methods,
            "bins": list(BIN_NAMES),
            "summary": self.summary,
            "skipped": self.skipped,
            "info": self.info,
        }
        return json.dumps(_json_safe(payload), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        """The summary rows as CSV (``holes, method, count, l1, psnr, ssim[, lpips, fid], bias_r, bias_g, bias_b``)."""
        return _csv_text(self.rows(), ["holes", "method", "count", *self.metric_names, *COLOUR_BIAS])

    def per_image_csv(self) -> str:
        """Per-image rows as CSV."""
        metrics = [m for m in self.metric_names if m != "fid"]
        cols = ["index", "name", "method", "hole_ratio", "bin", *metrics, *COLOUR_BIAS]
        return _csv_text(self.per_image, cols)

    def colour_bias_markdown(self) -> str:
        """Mean signed error per channel inside the holes, overall, in 0-255 levels (0 = no colour cast)."""
        lines = ["| Method | R | G | B |", "|---|---|---|---|"]
        for method in self.methods:
            values = self.summary[method].get(OVERALL, {})
            if all(k in values for k in COLOUR_BIAS):
                cells = " | ".join(f"{255 * values[k]:+.1f}" for k in COLOUR_BIAS)
                lines.append(f"| {METHOD_LABELS.get(method, method)} | {cells} |")
        return "\n".join(lines) + "\n" if len(lines) > 2 else ""

    def to_markdown(self) -> str:
        """A Markdown table, rows grouped by hole-ratio bin, best value per bin in bold, skipped metrics noted."""
        metrics = self.metric_names
        header = ["Holes", "n", "Method", *(_DISPLAY[m][0] for m in metrics)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for group in self.groups:
            present = [m for m in self.methods if group in self.summary[m]]
            best = {}
            for metric in metrics:
                vals = {m: self.summary[m][group].get(metric) for m in present}
                vals = {m: v for m, v in vals.items() if v is not None and math.isfinite(v)}
                if len(vals) > 1:
                    pick = min if _DISPLAY[metric][3] else max
                    best[metric] = pick(vals, key=lambda k, vals=vals: vals[k])
            for i, method in enumerate(present):
                values = self.summary[method][group]
                label = "all" if group == OVERALL else f"{int(group[:2])}–{int(group[3:])} %"
                cells = [f"**{label}**" if i == 0 else "", str(int(values["count"])) if i == 0 else ""]
                cells.append(METHOD_LABELS.get(method, method))
                for metric in metrics:
                    v = values.get(metric)
                    _, scale, dec, _ = _DISPLAY[metric]
                    text = "–" if v is None else f"{v * scale:.{dec}f}"
                    cells.append(f"**{text}**" if best.get(metric) == method else text)
                lines.append("| " + " | ".join(cells) + " |")
        notes = [f"- {name.upper()}: skipped — {reason}" for name, reason in self.skipped.items()]
        n = self.info.get("num_images")
        text = "\n".join(lines)
        bias = self.colour_bias_markdown()
        if bias:
            text += (
                "\n\nMean signed error inside the holes, per channel (0–255 levels; 0 = no colour cast):\n\n"
                + bias
            )
        if self.info.get("split_caveat"):
            text = f"Note on the images: {self.info['split_caveat']}.\n\n{text}"
        if n is not None:
            text += f"\n\n{n} images; metrics on the composited output (known pixels from the input), images in [0, 1]."
        return text + ("\n\n" + "\n".join(notes) if notes else "") + "\n"

    def example_grid(self, which: str = "first", max_rows: int | None = None) -> np.ndarray:
        """A labelled image grid (uint8 H x W x 3): one row per example, columns input / baselines / model / target.

        Args:
            which: ``"first"``, ``"best"`` or ``"worst"``.
            max_rows: show at most this many examples.
        """
        examples = self.examples.get(which, [])[:max_rows]
        if not examples:
            raise ValueError(f"no {which!r} examples in this report (have: {sorted(self.examples)})")
        columns = ["input", *[m for m in self.methods if m != MODEL_METHOD], MODEL_METHOD, "target"]
        labels = {
            "input": "input (holes white)",
            "target": "ground truth",
            **METHOD_LABELS,
            MODEL_METHOD: "PConv (model)",
        }
        return _grid(
            [[ex.images[c] for c in columns] for ex in examples],
            [labels.get(c, c) for c in columns],
            [f"#{ex.index} {ex.hole_ratio:.0%} holes, {ex.score:.1f} dB" for ex in examples],
        )

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``metrics.json``, ``metrics.csv``, ``per_image.csv``, ``metrics.md`` and ``examples_<which>.png``
        (atomically). Returns the written paths by kind."""
        from PIL import Image

        out_dir = Path(out_dir)
        texts = {
            "json": ("metrics.json", self.to_json()),
            "csv": ("metrics.csv", self.to_csv()),
            "per_image_csv": ("per_image.csv", self.per_image_csv()),
            "markdown": ("metrics.md", self.to_markdown()),
        }
        written: dict[str, Path] = {}
        for kind, (name, text) in texts.items():
            with atomic_output(out_dir / name) as tmp:
                tmp.write_text(text, encoding="utf-8")
            written[kind] = out_dir / name
        for which, examples in self.examples.items():
            if examples:
                path = out_dir / f"examples_{which}.png"
                with atomic_output(path) as tmp:
                    Image.fromarray(self.example_grid(which)).save(tmp)
                written[f"examples_{which}"] = path
        return written


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _grid(rows: list[list[torch.Tensor]], col_labels: list[str], row_labels: list[str]) -> np.ndarray:
    """Tile (3, H, W) images into a uint8 grid with a text header and a caption under each row.

    Tiles smaller than 192 px are enlarged by an integer factor (nearest neighbour, so pixels stay visible as they
    are) to keep the labels legible.
    """
    from PIL import Image, ImageDraw, ImageFont

    h, w = rows[0][0].shape[-2:]
    zoom = max(1, 192 // max(h, w))
    th, tw = h * zoom, w * zoom
    font = ImageFont.load_default(size=12)
    pad, head, cap = 4, 18, 16
    width = len(col_labels) * (tw + pad) + pad
    height = head + len(rows) * (th + cap + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(col_labels):
        draw.text((pad + j * (tw + pad), 3), label, fill="black", font=font)
    for i, row in enumerate(rows):
        y = head + i * (th + cap + pad)
        for j, img in enumerate(row):
            arr = (
                img.detach()
                .float()
                .clamp(0, 1)
                .mul(255)
                .round()
                .to(torch.uint8)
                .permute(1, 2, 0)
                .cpu()
                .numpy()
            )
            tile = Image.fromarray(arr)
            if zoom > 1:
                tile = tile.resize((tw, th), Image.Resampling.NEAREST)
            canvas.paste(tile, (pad + j * (tw + pad), y))
        draw.text((pad, y + th + 2), row_labels[i], fill="black", font=font)
    return np.asarray(canvas)


def plot_metrics_per_bin(report: EvaluationReport, metrics: Sequence[str] = ("psnr", "ssim")) -> Figure:
    """Line plot of each metric per hole-ratio bin, one line per method (needs matplotlib)."""
    import matplotlib.pyplot as plt

    bins = [g for g in report.groups if g != OVERALL]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        header, scale, _, _ = _DISPLAY[metric]
        for method in report.methods:
            ys = [report.summary[method].get(b, {}).get(metric, math.nan) * scale for b in bins]
            ax.plot(bins, ys, marker="o", label=METHOD_LABELS.get(method, method))
        ax.set_xlabel("hole ratio (%)")
        ax.set_title(header)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------- LPIPS / FID
def _weights_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _build_lpips(mode: str, device: torch.device) -> tuple[nn.Module | None, str | None]:
    """LPIPS (AlexNet) network, or None and the reason it is skipped."""
    if mode == "off":
        return None, "disabled (lpips=off)"
    weights = _weights_file(LPIPS_WEIGHTS)
    if mode == "auto" and not weights.is_file():
        return None, (
            f"needs torchvision's ImageNet AlexNet weights {weights}; not found, and lpips=auto never downloads "
            f"(run with lpips=on where a network exists, or copy the file there)"
        )
    from torchmetrics.functional.image.lpips import _LPIPS

    # The linear calibration layers ship with torchmetrics; the AlexNet backbone comes from torchvision's cache.
    net = _LPIPS(pretrained=True, net="alex").to(device).eval()
    log.info("LPIPS: AlexNet weights from %s", weights)
    return net, None


def _build_fid(mode: str, methods: Sequence[str]) -> tuple[dict[str, nn.Module] | None, str | None]:
    """One FrechetInceptionDistance per method, or None and the reason FID is skipped."""
    if mode == "off":
        return None, "disabled (fid=off)"
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        reason = "needs the torch-fidelity package (pip install torch-fidelity) and its Inception weights"
        if mode == "on":
            raise RuntimeError(f"fid=on but FID {reason}") from None
        return None, reason
    weights = _weights_file(FID_WEIGHTS)
    if mode == "auto" and not weights.is_file():
        return None, (
            f"needs torch-fidelity's Inception weights {weights}; not found, and fid=auto never downloads "
            f"(run with fid=on where a network exists)"
        )
    from torchmetrics.image.fid import FrechetInceptionDistance

    return {m: FrechetInceptionDistance(feature=2048, normalize=True) for m in methods}, None


# --------------------------------------------------------------------------------------------------- evaluate
def _unpack(batch: Batch, start: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    if isinstance(batch, Mapping):
        image, mask = batch["image"], batch["mask"]
        names = batch.get("key") or batch.get("name") or batch.get("path")
    elif isinstance(batch, list | tuple) and len(batch) >= 2:
        image, mask, names = batch[0], batch[1], None
    else:
        raise TypeError(
            f"a batch must be (image, mask) or a dict with 'image' and 'mask', got {type(batch).__name__}"
        )
    image, mask = torch.as_tensor(image), torch.as_tensor(mask)
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if image.dim() != 4 or image.shape[1] != 3 or mask.shape != (image.shape[0], 1, *image.shape[-2:]):
        raise ValueError(
            f"expected image (B, 3, H, W) and mask (B, 1, H, W) (1 = valid), got {tuple(image.shape)} and "
            f"{tuple(mask.shape)}"
        )
    n = image.shape[0]
    names = [str(x) for x in names] if isinstance(names, list | tuple) else [str(start + i) for i in range(n)]
    return image.float().clamp(0, 1), (mask.float() > 0.5).float(), names


def _as_predictor(
    model: Inpainter | nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: str | torch.device | None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from inpaint.inference import Inpainter

    if isinstance(model, Inpainter):
        return model.inpaint_tensor
    if isinstance(model, nn.Module):
        return Inpainter(model, device=device or "cpu").inpaint_tensor
    if callable(model):
        return model
    raise TypeError(f"model must be an Inpainter, an nn.Module or a callable, got {type(model).__name__}")


def _batches(data: Iterable[Batch], batch_size: int, num_workers: int) -> Iterable[Batch]:
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return data


def hole_colour_bias(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per image, the mean signed error of each channel over its hole pixels (0 where there is no hole).

    Args:
        output, target: (B, 3, H, W) in [0, 1]. mask: (B, 1, H, W), 1 = valid.

    Returns:
        ``{"bias_r", "bias_g", "bias_b"}``, each (B,) float32 (0-1 units).
    """
    hole = 1.0 - mask.float()
    area = hole.sum(dim=(2, 3)).clamp_min(1.0)
    bias = ((output.float() - target.float()) * hole).sum(dim=(2, 3)) / area
    return {name: bias[:, c] for c, name in enumerate(COLOUR_BIAS)}


def _keep(pool: list[Example], new: list[Example], n: int, key: Callable[[Example], float]) -> list[Example]:
    return sorted(pool + new, key=key)[:n]


@torch.inference_mode()
def evaluate(
    model: Inpainter | nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Iterable[Batch],
    *,
    baselines: Sequence[str] = ("telea", "navier_stokes"),
    batch_size: int = 8,
    num_workers: int = 0,
    max_images: int | None = None,
    lpips: str = "auto",
    fid: str = "auto",
    num_examples: int = 4,
    progress: bool = True,
    device: str | torch.device | None = None,
    info: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Evaluate a model and classical baselines on the same images and masks.

    Args:
        model: an :class:`~inpaint.Inpainter`, a network ``(image, mask) -> output`` (wrapped in an Inpainter on
            ``device``), or any callable ``(image (B,3,H,W), mask (B,1,H,W) 1=valid) -> (B,3,H,W)``.
        data: an iterable of batches, each ``(image, mask)`` or a dict with ``image``, ``mask`` (and optionally
            ``key``/``name`` per sample), image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = valid; or a map-style
            dataset of such samples (batched here with ``batch_size`` / ``num_workers``).
        baselines: keys of :data:`inpaint.baselines.BASELINES` to run on the same inputs.
        batch_size, num_workers: DataLoader settings when ``data`` is a dataset.
        max_images: stop after this many images.
        lpips, fid: ``"auto"`` (computed if the pretrained weights are already on disk, else skipped with the
            reason), ``"on"`` (required; may download), ``"off"``.
        num_examples: how many first / best / worst examples to keep for the grids.
        progress: show a progress bar.
        device: device for ``model`` when it is a plain network (an Inpainter keeps its own); LPIPS runs there too.
        info: extra entries for ``report.info`` (checkpoint path, data description ...).

    Returns:
        An :class:`EvaluationReport`.
    """
    for name, mode in (("lpips", lpips), ("fid", fid)):
        if mode not in WEIGHT_MODES:
            raise ValueError(f"{name} must be one of {WEIGHT_MODES}, got {mode!r}")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; available: {sorted(BASELINES)}")
    from tqdm import tqdm  # the plain text bar: tqdm.auto needs ipywidgets in notebooks

    predict = _as_predictor(model, device)
    methods = [MODEL_METHOD, *baselines]
    run_on = torch.device(getattr(model, "device", None) or device or "cpu")
    lpips_net, lpips_reason = _build_lpips(lpips, run_on)
    fid_metrics, fid_reason = _build_fid(fid, methods)
    skipped = {k: v for k, v in (("lpips", lpips_reason), ("fid", fid_reason)) if v is not None}
    extra = (*COLOUR_BIAS, "lpips") if lpips_net is not None else COLOUR_BIAS
    binned = {m: BinnedImageMetrics(extra_metrics=extra) for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    per_image: list[dict[str, Any]] = []
    first: list[Example] = []
    best: list[Example] = []
    worst: list[Example] = []
    seen = 0

    batches = _batches(data, batch_size, num_workers)
    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    bar = tqdm(batches, total=total, desc="evaluate", unit="batch", disable=not progress)
    for batch in bar:
        image, mask, names = _unpack(batch, seen)
        if max_images is not None:
            keep = max_images - seen
            image, mask, names = image[:keep], mask[:keep], names[:keep]
        n = image.shape[0]
        # float64 ratio: a float32 0.1 (= 0.1 + 1.5e-9) would fall past hole_ratio_bin's tolerance into the next bin.
        ratio = 1.0 - mask.double().flatten(1).mean(dim=1)
        bins = hole_ratio_bin(ratio)
        # Methods only ever see the known pixels: hole content is zeroed, so nothing can leak from the target.
        masked = image * mask
        outputs: dict[str, torch.Tensor] = {}
        model_psnr = torch.empty(0)
        for method in methods:
            t0 = time.perf_counter()
            if method == MODEL_METHOD:
                out = predict(masked, mask).float().cpu()
                if out.shape != image.shape:
                    raise ValueError(f"the model returned {tuple(out.shape)} for images {tuple(image.shape)}")
                out = out.clamp(0, 1)
            else:
                out = inpaint_opencv_batch(masked, mask, method)
            seconds[method] += time.perf_counter() - t0
            # Known pixels exactly as in the target (float, not quantised by OpenCV's uint8).
            out = mask * image + (1 - mask) * out
            outputs[method] = out
            values = image_metrics(out, image) | hole_colour_bias(out, image, mask)
            if method == MODEL_METHOD:
                model_psnr = values["psnr"]
            if lpips_net is not None:
                values["lpips"] = (
                    lpips_net(out.to(run_on), image.to(run_on), normalize=True).flatten().float().cpu()
                )
            binned[method].update(out, image, ratio, precomputed=values)
            if fid_metrics is not None:
                fid_metrics[method].update(image, real=True)
                fid_metrics[method].update(out, real=False)
            for i in range(n):
                row = {"index": seen + i, "name": names[i], "method": method, "hole_ratio": float(ratio[i])}
                row["bin"] = BIN_NAMES[int(bins[i])] if bins[i] >= 0 else ""
                per_image.append(row | {k: float(v[i]) for k, v in values.items()})

        if num_examples > 0:
            shown = mask * image + (1 - mask)  # holes white
            batch_examples = [
                Example(
                    index=seen + i,
                    name=names[i],
                    hole_ratio=float(ratio[i]),
                    score=float(model_psnr[i]),
                    images={"input": shown[i], "target": image[i], **{m: outputs[m][i] for m in methods}},
                )
                for i in range(n)
            ]
            first = (first + batch_examples)[:num_examples]
            best = _keep(best, batch_examples, num_examples, key=lambda e: -e.score)
            worst = _keep(worst, batch_examples, num_examples, key=lambda e: e.score)
        seen += n
        bar.set_postfix(images=seen)
        if max_images is not None and seen >= max_images:
            break
    bar.close()
    if seen == 0:
        raise ValueError("no images to evaluate: the data yielded no batches")

    summary: dict[str, dict[str, dict[str, float]]] = {}
    for method in methods:
        values = {k: float(v) for k, v in binned[method].compute().items()}
        groups: dict[str, dict[str, float]] = {OVERALL: {"count": values["count"]}}
        for key, v in values.items():
            if "/" in key:
                metric, group = key.split("/", 1)
                groups.setdefault(group, {})[metric] = v
            elif key != "count":
                groups[OVERALL][key] = v
        if fid_metrics is not None:
            fid_value = fid_metrics[method].compute() if seen >= 2 else torch.tensor(float("nan"))
            groups[OVERALL]["fid"] = float(fid_value)
        summary[method] = {g: groups[g] for g in [*BIN_NAMES, OVERALL] if g in groups}

    run_info = {
        "num_images": seen,
        "methods": {m: METHOD_LABELS.get(m, m) for m in methods},
        "seconds": seconds,
        "images_per_second": {m: (seen / s if s > 0 else None) for m, s in seconds.items()},
        "metrics_on": "composited output, images in [0, 1]; L1 = mean absolute error over all pixels",
        **(info or {}),
    }
    return EvaluationReport(
        methods=methods,
        summary=summary,
        per_image=per_image,
        skipped=skipped,
        examples={"first": first, "best": best, "worst": worst} if num_examples > 0 else {},
        info=run_info,
    )


# --------------------------------------------------------------------------------------------------- CLI
def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_eval_loader(cfg: DictConfig) -> tuple[Iterable[Batch], str | None]:
    """The ``cfg.split`` loader of the data module built from ``cfg.data`` / ``cfg.masks``, with the evaluation's
    ``batch_size`` and ``num_workers``, and a caveat for the report when its images also serve validation (where
    checkpoints are selected), or None."""
    from omegaconf import OmegaConf

    from inpaint.data import build_datamodule

    if cfg.split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {cfg.split!r}")
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    assert isinstance(data_cfg, dict)
    data_cfg.update(batch_size=int(cfg.batch_size), num_workers=int(cfg.num_workers))
    datamodule = build_datamodule(data_cfg, cfg.masks)
    if cfg.split == "val":
        caveat = "these are the validation images, on which checkpoints are selected: not a held-out test"
    elif datamodule.test_is_validation:
        caveat = (
            "this dataset's test split is its validation split (other crops and masks where generated): numbers of "
            "a checkpoint selected on validation (best) are optimistic; last.ckpt was selected by nothing"
        )
    else:
        caveat = None
    loader = datamodule.test_dataloader() if cfg.split == "test" else datamodule.val_dataloader()
    return loader, caveat


def load_config(overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/evaluate.yaml`` composed with Hydra overrides, outside a Hydra app (notebooks, scripts).

    Without a Hydra run there is no run directory, so pass ``output_dir=...`` among the overrides.
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(_CONF_DIR), version_base="1.3"):
        return compose(config_name="evaluate", overrides=list(overrides))


PROJECT_DIR_ENV = "INPAINT_PROJECT_DIR"


def project_root(start: str | Path | None = None) -> Path:
    """The project directory whose ``outputs/`` holds the runs, wherever the caller runs (a notebook's kernel runs
    in ``notebooks/``): ``$INPAINT_PROJECT_DIR`` if set, else the nearest directory at or above ``start`` (default:
    the working directory) that holds ``pyproject.toml`` and ``conf/``, else ``start`` itself."""
    if os.environ.get(PROJECT_DIR_ENV):
        return Path(os.environ[PROJECT_DIR_ENV]).expanduser().resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "conf").is_dir():
            return folder
    return here


def find_latest_checkpoint(root: str | Path | None = None) -> Path:
    """The most recently written ``last.ckpt`` under ``root`` (default: the :func:`project_root`'s ``outputs/``, e.g.
    after ``make train``)."""
    root = Path(root) if root is not None else project_root() / "outputs"
    found = sorted(root.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"no */checkpoints/last.ckpt under {root.resolve()}; train one with `make train` (or set "
            f"${PROJECT_DIR_ENV} to the project directory)"
        )
    return found[-1]


class OutputDirError(OSError):
    """The report's output directory cannot be created or written."""


def run(cfg: DictConfig) -> EvaluationReport:
    """Evaluate as configured by ``conf/evaluate.yaml`` and write the report into ``cfg.output_dir``."""
    from omegaconf import OmegaConf

    from inpaint.inference import Inpainter

    try:
        ensure_writable_dir(cfg.output_dir)  # before the work, not after it
    except OSError as e:
        raise _output_error(cfg.output_dir, e) from e
    device = _resolve_device(str(cfg.device))
    inpainter = Inpainter.from_checkpoint(cfg.ckpt_path, device=device)
    loader, caveat = build_eval_loader(cfg)
    info = {
        "checkpoint": str(cfg.ckpt_path),
        "split_caveat": caveat,
        "model": inpainter.config,
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "masks": OmegaConf.to_container(cfg.masks, resolve=True),
        "split": cfg.split,
        "device": str(device),
    }
    report = evaluate(
        inpainter,
        loader,
        baselines=list(cfg.baselines),
        max_images=cfg.get("max_images"),
        lpips=str(cfg.lpips),
        fid=str(cfg.fid),
        num_examples=int(cfg.num_examples),
        progress=bool(cfg.progress),
        info=info,
    )
    try:
        written = report.save(cfg.output_dir)
    except OSError as e:  # e.g. the disk filled up during the evaluation
        raise _output_error(cfg.output_dir, e) from e
    for kind, path in written.items():
        log.info("wrote %s: %s", kind, path)
    return report


def _output_error(output_dir: str, err: OSError) -> OutputDirError:
    return OutputDirError(f"cannot write the report to output_dir={output_dir}: {describe_os_error(err)}")


def main() -> None:
    """Console entry point (``inpaint-evaluate``): a Hydra app over ``conf/evaluate.yaml``."""
    import hydra

    from inpaint.checkpoint import CheckpointError

    def app(cfg: DictConfig) -> None:
        try:
            print(run(cfg).to_markdown())
        except (CheckpointError, FileNotFoundError, OutputDirError) as e:
            # A user error, not a bug: one clear line instead of Hydra's traceback dump.
            log.error("%s", e)
            raise SystemExit(1) from None

    # An absolute path: a relative one is resolved as the module `inpaint.conf` when started as a console script,
    # which is not a Python package.
    hydra.main(version_base="1.3", config_path=str(_CONF_DIR), config_name="evaluate")(app)()


if __name__ == "__main__":
    main()
