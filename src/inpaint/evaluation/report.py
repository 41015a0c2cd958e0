"""The evaluation report: per-bin summary, per-image rows and example grids, written as JSON, CSV and Markdown.

``summary[method][group][metric]`` holds the means; ``group`` is a hole-ratio bin name of
:data:`inpaint.data.masks.ratio.BIN_NAMES` or ``"all"``. Methods are the model (``pconv``) and the OpenCV baselines.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaint.data.masks.ratio import BIN_NAMES
from inpaint.evaluation.figures import image_grid
from inpaint.evaluation.metrics import COLOUR_BIAS
from inpaint.io import write_png_atomic, write_text_atomic

__all__ = ["COLOUR_BIAS", "METHOD_LABELS", "MODEL_METHOD", "OVERALL", "EvaluationReport", "Example"]

MODEL_METHOD = "pconv"
METHOD_LABELS: dict[str, str] = {
    MODEL_METHOD: "PConv U-Net",
    "telea": "Telea (OpenCV)",
    "navier_stokes": "Navier-Stokes (OpenCV)",
}
OVERALL = "all"
# How each metric is shown in the Markdown table: header, scale, decimals, whether lower is better.
DISPLAY: dict[str, tuple[str, float, int, bool]] = {
    "l1": ("L1 (%) ↓", 100.0, 2, True),
    "psnr": ("PSNR (dB) ↑", 1.0, 2, False),
    "ssim": ("SSIM ↑", 1.0, 4, False),
    "lpips": ("LPIPS ↓", 1.0, 4, True),
    "fid": ("FID ↓", 1.0, 2, True),
}


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
            :data:`inpaint.data.masks.ratio.BIN_NAMES` (only bins with images); metrics include ``count``.
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
        return [m for m in DISPLAY if m in present]

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
        header = ["Holes", "n", "Method", *(DISPLAY[m][0] for m in metrics)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for group in self.groups:
            present = [m for m in self.methods if group in self.summary[m]]
            best = {}
            for metric in metrics:
                vals = {m: self.summary[m][group].get(metric) for m in present}
                vals = {m: v for m, v in vals.items() if v is not None and math.isfinite(v)}
                if len(vals) > 1:
                    pick = min if DISPLAY[metric][3] else max
                    best[metric] = pick(vals, key=lambda k, vals=vals: vals[k])
            for i, method in enumerate(present):
                values = self.summary[method][group]
                label = "all" if group == OVERALL else f"{int(group[:2])}–{int(group[3:])} %"
                cells = [f"**{label}**" if i == 0 else "", str(int(values["count"])) if i == 0 else ""]
                cells.append(METHOD_LABELS.get(method, method))
                for metric in metrics:
                    v = values.get(metric)
                    _, scale, dec, _ = DISPLAY[metric]
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
        passes, beyond = self.info.get("self_ensemble", 1), self.info.get("coarse_beyond")
        blend = self.info.get("poisson_blend", 0.0)
        if blend:
            text = (
                f"PConv U-Net: each fill shifted by {blend:g} times the harmonic correction that makes it meet the "
                f"known pixels along the hole's border (poisson_blend).\n\n{text}"
            )
        if beyond is not None:
            text = (
                f"PConv U-Net: hole pixels farther than {beyond} px from the known ones filled from half-resolution "
                f"passes (coarse_beyond).\n\n{text}"
            )
        if passes > 1:
            text = f"PConv U-Net: the mean of {passes} passes over flipped and rotated copies (self_ensemble).\n\n{text}"
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
        labels = {  # short: a 128-pixel column has room for about 20 characters
            "input": "input (holes white)",
            "target": "ground truth",
            **{m: label.removesuffix(" (OpenCV)") for m, label in METHOD_LABELS.items()},
            MODEL_METHOD: "PConv U-Net",
        }
        return image_grid(
            [[ex.images[c] for c in columns] for ex in examples],
            [labels.get(c, c) for c in columns],
            [f"#{ex.index} {ex.hole_ratio:.0%} holes, {ex.score:.1f} dB" for ex in examples],
        )

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``metrics.json``, ``metrics.csv``, ``per_image.csv``, ``metrics.md`` and ``examples_<which>.png``
        (atomically). Returns the written paths by kind."""
        out_dir = Path(out_dir)
        texts = {
            "json": ("metrics.json", self.to_json()),
            "csv": ("metrics.csv", self.to_csv()),
            "per_image_csv": ("per_image.csv", self.per_image_csv()),
            "markdown": ("metrics.md", self.to_markdown()),
        }
        written: dict[str, Path] = {}
        for kind, (name, text) in texts.items():
            write_text_atomic(out_dir / name, text)
            written[kind] = out_dir / name
        for which, examples in self.examples.items():
            if examples:
                path = out_dir / f"examples_{which}.png"
                write_png_atomic(path, self.example_grid(which))
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
