"""Figures: labelled image grids (evaluation examples, training snapshots), metrics per hole-ratio bin, and the
learning curve every training run writes. Images are (3, H, W) tensors in [0, 1]; grids come back as uint8 arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from inpaint.evaluation.report import EvaluationReport

__all__ = ["image_grid", "plot_learning_curve", "plot_metrics_per_bin"]


def image_grid(
    rows: Sequence[Sequence[torch.Tensor]],
    col_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    min_tile: int = 192,
) -> np.ndarray:
    """Tile (3, H, W) images in [0, 1] into a uint8 (H', W', 3) grid, optionally with a header and row captions.

    Tiles smaller than ``min_tile`` pixels are enlarged by an integer factor (nearest neighbour, so pixels stay
    visible as they are) to keep labels legible; ``min_tile=0`` keeps the native size. Non-finite values (a diverged
    network) are shown black.

    >>> image_grid([[torch.zeros(3, 4, 4), torch.ones(3, 4, 4)]], min_tile=0).shape
    (12, 12, 3)
    """
    from PIL import Image, ImageDraw, ImageFont

    h, w = rows[0][0].shape[-2:]
    zoom = max(1, min_tile // max(h, w)) if min_tile else 1
    th, tw = h * zoom, w * zoom
    font = ImageFont.load_default(size=12)
    pad = 4 if (col_labels or row_labels) else 2
    head = 18 if col_labels else pad
    cap = 16 if row_labels else 0
    ncols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (ncols * (tw + pad) + pad, head + len(rows) * (th + cap + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(col_labels or ()):
        draw.text((pad + j * (tw + pad), 3), label, fill="black", font=font)
    for i, row in enumerate(rows):
        y = head + i * (th + cap + pad)
        for j, img in enumerate(row):
            tile = Image.fromarray(_to_uint8(img))
            if zoom > 1:
                tile = tile.resize((tw, th), Image.Resampling.NEAREST)
            canvas.paste(tile, (pad + j * (tw + pad), y))
        if row_labels:
            draw.text((pad, y + th + 2), row_labels[i], fill="black", font=font)
    return np.asarray(canvas)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    pixels = torch.nan_to_num(image.detach().float(), nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)
    return pixels.mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def plot_metrics_per_bin(report: EvaluationReport, metrics: Sequence[str] = ("psnr", "ssim")) -> Figure:
    """Line plot of each metric per hole-ratio bin, one line per method, with its confidence interval shaded where
    the report has intervals (needs matplotlib)."""
    import matplotlib.pyplot as plt

    from inpaint.evaluation.report import DISPLAY, METHOD_LABELS, OVERALL

    bins = [g for g in report.groups if g != OVERALL]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        header, scale, _, _ = DISPLAY[metric]
        for method in report.methods:
            ys = [report.summary[method].get(b, {}).get(metric, math.nan) * scale for b in bins]
            (line,) = ax.plot(bins, ys, marker="o", label=METHOD_LABELS.get(method, method))
            band = _interval_band(report, method, metric, bins)
            if band is not None:
                ax.fill_between(
                    bins, band[0] * scale, band[1] * scale, color=line.get_color(), alpha=0.15, lw=0
                )
        ax.set_xlabel("hole ratio (%)")
        ax.set_title(header)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def _interval_band(
    report: EvaluationReport, method: str, metric: str, bins: Sequence[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Low and high ends per bin (NaN where a bin has no interval), or None when the report has none at all."""
    cells = [report.intervals.get(method, {}).get(b, {}).get(metric) for b in bins]
    if not any(cells):
        return None
    low = np.array([c["low"] if c else math.nan for c in cells], dtype=float)
    high = np.array([c["high"] if c else math.nan for c in cells], dtype=float)
    return low, high


def plot_learning_curve(
    rows: Sequence[Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
    labels: Mapping[str, str],
) -> Figure:
    """A figure of held-out PSNR per hole-ratio bin (one panel each, plus "all") against wall time.

    Args:
        rows: one dict per validation with ``seconds``, ``step`` and ``val/psnr[/<bin>]`` keys.
        reference: method -> ``{"psnr": ..., "psnr/<bin>": ...}`` drawn as horizontal lines.
        labels: display names of the reference methods.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from inpaint.data.masks.ratio import BIN_NAMES

    groups = [b for b in BIN_NAMES if any(f"val/psnr/{b}" in r for r in rows)] + ["all"]
    cols = 4 if len(groups) > 3 else len(groups)
    nrows = -(-len(groups) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.9 * nrows), squeeze=False)
    minutes = [r["seconds"] / 60 for r in rows]
    for ax, group in zip(axes.flat, groups, strict=False):
        key = "val/psnr" if group == "all" else f"val/psnr/{group}"
        ax.plot(minutes, [r.get(key, float("nan")) for r in rows], marker="o", ms=3, label="PConv U-Net")
        for i, (method, ref) in enumerate(reference.items()):
            value = ref.get(key[4:])
            if value is not None:
                ax.axhline(value, color=f"C{i + 1}", ls="--", lw=1, label=labels.get(method, method))
        title = "all holes" if group == "all" else f"holes {int(group[:2])}–{int(group[3:])} %"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("wall time (min)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        if rows:
            step_axis = ax.secondary_xaxis("top")
            step_axis.set_xticks(minutes[:: max(1, len(minutes) // 4)])
            step_axis.set_xticklabels(
                [str(int(r["step"])) for r in rows[:: max(1, len(rows) // 4)]], fontsize=7
            )
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("held-out PSNR of the composite (top axis: optimiser steps)", fontsize=10)
    fig.tight_layout()
    return fig
