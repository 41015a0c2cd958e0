"""The evaluation report: per-bin summary, per-image rows and example grids, written as JSON, CSV and Markdown.

``summary[method][group][metric]`` holds the means; ``group`` is a hole-ratio bin name of
:data:`inpaint.data.masks.ratio.BIN_NAMES` or ``"all"``. Methods are the model (``pconv``) and the OpenCV baselines.
``intervals`` and ``differences`` hold the bootstrap confidence intervals of those means and the paired
model − baseline differences (:mod:`inpaint.evaluation.stats`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from inpaint.data.masks.ratio import BIN_NAMES
from inpaint.evaluation.figures import image_grid
from inpaint.evaluation.methods import METHOD_LABELS, MODEL_METHOD
from inpaint.evaluation.metrics import BASE_METRICS, COLOUR_BIAS
from inpaint.evaluation.stats import MIN_IMAGES, BootstrapSettings, bootstrap_report
from inpaint.io import write_png_atomic, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["COLOUR_BIAS", "OVERALL", "EvaluationReport", "Example", "plot_metrics_per_bin"]

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
        intervals: ``intervals[method][group] = {"n": images, metric: {"low", "high"} or None}``, the bootstrap
            confidence interval of each summary mean (None below two images); empty until :meth:`add_intervals`.
        differences: ``differences[baseline][group] = {"n": images, metric: {"mean", "low", "high",
            "excludes_zero"}}``: the model's value minus the baseline's, paired per image, with its interval.
        bootstrap: the settings and method of the intervals (level, resamples, seed, percentile).
    """

    methods: list[str]
    summary: dict[str, dict[str, dict[str, float]]]
    per_image: list[dict[str, Any]]
    skipped: dict[str, str]
    examples: dict[str, list[Example]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    differences: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    bootstrap: dict[str, Any] = field(default_factory=dict)

    def add_intervals(self, settings: BootstrapSettings | None = None) -> None:
        """Compute :attr:`intervals` and :attr:`differences` from the per-image rows (bootstrap over images,
        seeded: the same rows and settings give the same numbers). FID, a score of the whole set, gets none."""
        settings = settings or BootstrapSettings()
        present = set().union(*(row.keys() for row in self.per_image)) if self.per_image else set()
        metrics = [m for m in (*BASE_METRICS, "lpips", *COLOUR_BIAS) if m in present]
        model_first = sorted(
            self.methods, key=lambda m: m != MODEL_METHOD
        )  # the reference of the differences
        self.intervals, self.differences = bootstrap_report(
            self.per_image,
            model_first,
            metrics,
            bins=BIN_NAMES,
            overall=OVERALL,
            compare=[m for m in metrics if m in DISPLAY],
            settings=settings,
        )
        self.bootstrap = {
            **settings.describe(),
            "differences": f"{MODEL_METHOD} minus each baseline, image by image",
        }

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
        """Flat summary: one dict per (group, method) with ``holes``, ``method``, ``count``, each metric, and where
        intervals were computed ``<metric>_low`` / ``<metric>_high`` and, in a baseline's row, ``diff_<metric>``
        (model − this baseline, paired) with ``diff_<metric>_low`` / ``diff_<metric>_high``."""
        out = []
        for group in self.groups:
            for method in self.methods:
                values = self.summary[method].get(group)
                if values is not None:
                    out.append(
                        {"holes": group, "method": method, **values, **self._interval_columns(method, group)}
                    )
        return out

    def _interval_columns(self, method: str, group: str) -> dict[str, float | None]:
        cols: dict[str, float | None] = {}
        for metric, ci in self.intervals.get(method, {}).get(group, {}).items():
            if metric != "n":  # ci is None below two images: empty cells
                cols |= {
                    f"{metric}_low": ci["low"] if ci else None,
                    f"{metric}_high": ci["high"] if ci else None,
                }
        for metric, d in self.differences.get(method, {}).get(group, {}).items():
            if metric != "n":
                cols |= {
                    f"diff_{metric}": d["mean"],
                    f"diff_{metric}_low": d["low"],
                    f"diff_{metric}_high": d["high"],
                }
        return cols

    def to_json(self) -> str:
        """Machine-readable report: summary, skipped metrics with reasons, run info (no per-image rows), and the
        bootstrap ``intervals``, ``paired_differences`` (model − each baseline) and their ``bootstrap`` settings."""
        payload = {
            "methods": self.methods,
            "bins": list(BIN_NAMES),
            "summary": self.summary,
            "skipped": self.skipped,
            "info": self.info,
            "intervals": self.intervals,
            "paired_differences": self.differences,
            "bootstrap": self.bootstrap,
        }
        return json.dumps(_json_safe(payload), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        """The summary rows as CSV (``holes, method, count, l1, psnr, ssim[, lpips, fid], bias_r, bias_g, bias_b``,
        then the interval columns of :meth:`rows`, empty where they do not apply)."""
        fixed = ["holes", "method", "count", *self.metric_names, *COLOUR_BIAS]
        extra = list(dict.fromkeys(k for row in self.rows() for k in row if k not in fixed))
        return _csv_text(self.rows(), [*fixed, *extra])

    def per_image_csv(self) -> str:
        """Per-image rows as CSV."""
        metrics = [m for m in self.metric_names if m != "fid"]
        cols = ["index", "name", "method", "hole_ratio", "bin", *metrics, *COLOUR_BIAS]
        return _csv_text(self.per_image, cols)

    def colour_bias_markdown(self) -> str:
        """Mean signed error per channel inside the holes, overall, in 0-255 levels (0 = no colour cast), with its
        interval where computed."""
        lines = ["| Method | R | G | B |", "|---|---|---|---|"]
        for method in self.methods:
            values = self.summary[method].get(OVERALL, {})
            if all(k in values for k in COLOUR_BIAS):
                cells = " | ".join(
                    self._value_text(method, OVERALL, k, 255.0, 1, signed=True) for k in COLOUR_BIAS
                )
                lines.append(f"| {METHOD_LABELS.get(method, method)} | {cells} |")
        return "\n".join(lines) + "\n" if len(lines) > 2 else ""

    def _value_text(
        self,
        method: str,
        group: str,
        metric: str,
        scale: float,
        dec: int,
        signed: bool = False,
        bold: bool = False,
    ) -> str:
        """``31.96 [31.24, 32.71]``: the mean (in bold if asked) and, where computed, its interval."""
        v = self.summary[method][group].get(metric)
        if v is None:
            return "–"
        sign = "+" if signed else ""
        text = f"{v * scale:{sign}.{dec}f}"
        text = f"**{text}**" if bold else text
        cis = self.intervals.get(method, {}).get(group)
        if cis is None or metric not in cis:
            return text  # no intervals computed (or none for this metric, e.g. FID)
        ci = cis[metric]
        if ci is None:
            return f"{text} [{cis['n']} image: no CI]"
        return f"{text} [{ci['low'] * scale:{sign}.{dec}f}, {ci['high'] * scale:{sign}.{dec}f}]"

    def _summary_table(self) -> list[str]:
        metrics = self.metric_names
        header = ["Holes", "n", "Method", *(DISPLAY[m][0] for m in metrics)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for group in self.groups:
            present = [m for m in self.methods if group in self.summary[m]]
            best = self._best(group, present, metrics)
            for i, method in enumerate(present):
                count = self.summary[method][group]["count"]
                cells = [f"**{_group_label(group)}**" if i == 0 else "", str(int(count)) if i == 0 else ""]
                cells.append(METHOD_LABELS.get(method, method))
                for metric in metrics:
                    _, scale, dec, _ = DISPLAY[metric]
                    bold = best.get(metric) == method
                    cells.append(self._value_text(method, group, metric, scale, dec, bold=bold))
                lines.append("| " + " | ".join(cells) + " |")
        return lines

    def _best(self, group: str, present: Sequence[str], metrics: Sequence[str]) -> dict[str, str]:
        best = {}
        for metric in metrics:
            vals = {m: self.summary[m][group].get(metric) for m in present}
            vals = {m: v for m, v in vals.items() if v is not None and math.isfinite(v)}
            if len(vals) > 1:
                pick = min if DISPLAY[metric][3] else max
                best[metric] = pick(vals, key=lambda k, vals=vals: vals[k])
        return best

    def differences_markdown(self) -> str:
        """The paired differences, model − each baseline, per group: mean [interval] and whether the interval
        excludes 0 in the metric's good direction (``better``), its bad one (``worse``) or includes it
        (``unclear``). Empty without intervals."""
        metrics = [
            m for m in self.metric_names if any(m in g for d in self.differences.values() for g in d.values())
        ]
        if not metrics:
            return ""
        header = ["Holes", "n", "Model − …", *(DISPLAY[m][0] for m in metrics)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for group in self.groups:
            present = [b for b in self.methods if group in self.differences.get(b, {})]
            for i, baseline in enumerate(present):
                diff = self.differences[baseline][group]
                cells = [f"**{_group_label(group)}**" if i == 0 else "", str(diff["n"]) if i == 0 else ""]
                cells.append(METHOD_LABELS.get(baseline, baseline))
                cells += [_difference_text(diff[m], *DISPLAY[m][1:]) if m in diff else "–" for m in metrics]
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def _interval_note(self) -> str:
        b = self.bootstrap
        return (
            f"Brackets: {100 * b['level']:g} % confidence interval of the mean over the n images of the bin "
            f"(percentile bootstrap: images resampled with replacement, {b['resamples']} resamples, seed "
            f"{b['seed']}; the same resample for every method). With fewer than {MIN_IMAGES} images there is "
            "none; with few (under 10) it is too narrow."
        )

    def to_markdown(self) -> str:
        """A Markdown table, rows grouped by hole-ratio bin, best value per bin in bold, with the intervals where
        computed; then the paired model − baseline differences, the colour bias, the run notes."""
        text = "\n".join(self._summary_table())
        if self.bootstrap:
            text += "\n\n" + self._interval_note()
        differences = self.differences_markdown()
        if differences:
            text += (
                "\n\n### Model − baseline (paired)\n\nPer image, the model's value minus the baseline's on the same "
                "image and mask, averaged, with its interval (the same resample for both). better / worse: the "
                "interval excludes 0 in the metric's good (↑ higher, ↓ lower) or bad direction; unclear: it "
                "includes 0.\n\n" + differences.rstrip("\n")
            )
        bias = self.colour_bias_markdown()
        if bias:
            text += (
                "\n\nMean signed error inside the holes, per channel (0–255 levels; 0 = no colour cast):\n\n"
                + bias
            )
        text = self._preamble() + text
        n = self.info.get("num_images")
        if n is not None:
            text += f"\n\n{n} images; metrics on the composited output (known pixels from the input), images in [0, 1]."
        notes = [f"- {name.upper()}: skipped — {reason}" for name, reason in self.skipped.items()]
        return text + ("\n\n" + "\n".join(notes) if notes else "") + "\n"

    def _preamble(self) -> str:
        """The notes above the table: the split caveat and the model's inference options."""
        parts = []
        if self.info.get("split_caveat"):
            parts.append(f"Note on the images: {self.info['split_caveat']}.")
        if self.info.get("inference"):
            parts.append(f"PConv U-Net inference options: {self.info['inference']} (docs/inference.md).")
        return "".join(p + "\n\n" for p in parts)

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


def plot_metrics_per_bin(report: EvaluationReport, metrics: Sequence[str] = ("psnr", "ssim")) -> Figure:
    """Line plot of each metric per hole-ratio bin, one line per method, with its confidence interval shaded where
    the report has intervals (needs matplotlib)."""
    import matplotlib.pyplot as plt

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


def _group_label(group: str) -> str:
    return "all" if group == OVERALL else f"{int(group[:2])}–{int(group[3:])} %"


def _difference_text(diff: Mapping[str, Any], scale: float, dec: int, lower_is_better: bool) -> str:
    """``+0.42 [+0.15, +0.70] better``: model − baseline, its paired interval and the verdict."""
    text = f"{diff['mean'] * scale:+.{dec}f}"
    if diff["low"] is None or diff["high"] is None:
        return f"{text} (no CI)"
    text += f" [{diff['low'] * scale:+.{dec}f}, {diff['high'] * scale:+.{dec}f}]"
    if not diff["excludes_zero"]:
        return f"{text} unclear"
    below_zero = diff["high"] < 0  # the interval's side of 0 (it excludes 0), not the mean's
    return f"{text} {'better' if below_zero == lower_is_better else 'worse'}"


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
