"""Figures: labelled image grids (evaluation examples, training snapshots) and the learning curve every training run
writes. Images are (3, H, W) tensors in [0, 1]; grids come back as uint8 arrays. The report's own figure (metrics per
hole-ratio bin) is :func:`inpaint.evaluation.report.plot_metrics_per_bin`: this module knows nothing of reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["image_grid", "plot_learning_curve"]


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

    Two 4x4 tiles side by side, native size, no labels: a 2-pixel white border around and between them.

    >>> image_grid([[torch.zeros(3, 4, 4), torch.ones(3, 4, 4)]], min_tile=0).shape
    (10, 14, 3)

    Labels add a header and a caption line per row; tiles below ``min_tile`` pixels are enlarged 48x here.

    >>> grid = image_grid([[torch.zeros(3, 4, 4)]], col_labels=["input"], row_labels=["#0"])
    >>> grid.shape, grid.dtype
    ((234, 200, 3), dtype('uint8'))
    """
    from PIL import Image, ImageDraw, ImageFont

    h, w = rows[0][0].shape[-2:]
    zoom = max(1, min_tile // max(h, w)) if min_tile else 1
    th, tw = h * zoom, w * zoom
    font = ImageFont.load_default(size=12)
    pad = 4 if (col_labels or row_labels) else 2
    # A label wider than its column is wrapped at spaces, so that it never runs into the next one.
    headers = [_wrapped(label, font, tw) for label in col_labels or ()]
    head = 4 + 14 * max(len(h) for h in headers) if headers else pad
    cap = 16 if row_labels else 0
    ncols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (ncols * (tw + pad) + pad, head + len(rows) * (th + cap + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, lines in enumerate(headers):
        for k, line in enumerate(lines):
            draw.text((pad + j * (tw + pad), 3 + 14 * k), line, fill="black", font=font)
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


def _wrapped(text: str, font: Any, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` pixels, broken at spaces (a single word longer than that stays whole)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    pixels = torch.nan_to_num(image.detach().float(), nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)
    return pixels.mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


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
