"""Bootstrap confidence intervals over images: per-bin means and paired model − baseline differences.

An evaluation's numbers are means over a finite set of images; a second set of images would give other means. The
bootstrap estimates how much: resample the images with replacement (as many as there are), recompute the mean, repeat
``resamples`` times, and take the central ``level`` fraction of those means (the *percentile* interval).

For a comparison of two methods the resample is **paired**: the same images are drawn for both, and the statistic is
the mean of the per-image differences. Image difficulty varies far more than the gap between two methods on the same
image, and pairing cancels that shared part, so the interval of the difference is much narrower than what two
separate intervals suggest.

Only per-image values are resampled (``EvaluationReport.per_image`` rows): nothing is recomputed from pixels, and a
set-level score such as FID gets no interval. Every group (hole-ratio bin or ``"all"``) draws from its own generator
seeded with ``(seed, group number)``, so a bin's interval does not depend on which other bins have images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MIN_IMAGES",
    "BootstrapSettings",
    "bootstrap_ci",
    "bootstrap_means",
    "bootstrap_report",
    "percentile_interval",
]

# A single image has no spread to resample: every resample is that image, and a zero-width interval would claim
# certainty that one image cannot give. Below this count the interval is reported as undefined.
MIN_IMAGES = 2
# Bootstrap counts are built in blocks of at most this many (resample, image) cells, so that a 36,500-image test
# set needs tens of MB, not the gigabytes of a full (resamples, images) index matrix.
_BLOCK_CELLS = 1 << 22


@dataclass(frozen=True)
class BootstrapSettings:
    """How the intervals are computed; stored in the report (``metrics.json`` ``"bootstrap"``).

    2,000 resamples put the 2.5 % and 97.5 % percentiles on the 50th value from either end; from one seed to another
    the end points then move by about 1.5 % of the interval's width (standard deviation), small beside the width.
    """

    level: float = 0.95
    resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.resamples < 1:
            raise ValueError(f"resamples must be at least 1, got {self.resamples}")

    def describe(self) -> dict[str, Any]:
        """The settings and the method, for the report's JSON."""
        return {
            **asdict(self),
            "interval": "percentile",
            "unit": "image (resampled with replacement, the same images for every method: differences are paired)",
            "min_images": MIN_IMAGES,
        }


def bootstrap_means(values: ArrayLike, *, resamples: int = 2000, seed: int | Sequence[int] = 0) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples of the rows (images) of ``values``.

    Each resample ``b`` draws ``n`` row indices uniformly with replacement; with ``c_bi`` the number of times row
    ``i`` was drawn, ``mean_bj = (1/n) Σ_i c_bi · x_ij``. Every column uses the same draw, so columns (methods,
    metrics) stay paired.

    Args:
        values: (n,) or (n, k) per-image values, n ≥ 1. A NaN in a column makes that column's means NaN.
        resamples: number of resamples.
        seed: seed (or seed sequence) of the NumPy generator: the same seed gives the same means.

    Returns:
        (resamples,) or (resamples, k) float64.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError(f"values must be (n,) or (n, k) with n >= 1, got shape {x.shape}")
    n = x.shape[0]
    flat = x.reshape(n, -1)
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, flat.shape[1]))
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, resamples, block):
        m = min(block, resamples - start)
        draws = rng.integers(0, n, size=(m, n))
        # Counts per (resample, row) in one bincount: row r of the block is offset by r * n.
        counts = np.bincount((draws + n * np.arange(m)[:, None]).ravel(), minlength=m * n).reshape(m, n)
        out[start : start + m] = counts @ flat / n
    return out.reshape(resamples, *x.shape[1:])


def percentile_interval(means: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (linear interpolation) of bootstrap means along
    axis 0: (resamples, ...) -> two arrays of shape (...)."""
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return low, high


def bootstrap_ci(
    values: ArrayLike, *, level: float = 0.95, resamples: int = 2000, seed: int | Sequence[int] = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of the mean of ``values`` (one value per image).

    For a paired comparison pass the per-image differences ``a - b``: the interval of their mean is the paired
    interval of ``mean(a) - mean(b)``.

    Args:
        values: (n,) per-image values.
        level: coverage, e.g. 0.95.
        resamples, seed: as in :func:`bootstrap_means`.

    Returns:
        ``(low, high)``, or None when there are fewer than :data:`MIN_IMAGES` values (the interval is undefined).

    Example:
        >>> model = [30.1, 31.5, 29.8, 32.0, 30.7, 31.1]  # PSNR of six images, mean 30.87
        >>> [round(x, 2) for x in bootstrap_ci(model, seed=0)]
        [30.28, 31.47]
        >>> telea = [29.0, 30.9, 29.1, 31.2, 30.3, 30.2]  # the same images; the model is ahead on each
        >>> [round(x, 2) for x in bootstrap_ci([m - t for m, t in zip(model, telea)], seed=0)]  # paired
        [0.58, 0.93]
        >>> bootstrap_ci([0.25, 1.25, 0.75], seed=1) == bootstrap_ci([0.25, 1.25, 0.75], seed=1)  # reproducible
        True
        >>> bootstrap_ci([31.9]) is None  # one image: no interval
        True
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size < MIN_IMAGES:
        return None
    low, high = percentile_interval(bootstrap_means(x, resamples=resamples, seed=seed), level)
    return float(low), float(high)


def bootstrap_report(
    per_image: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    metrics: Sequence[str],
    *,
    bins: Sequence[str],
    overall: str,
    compare: Sequence[str] = (),
    settings: BootstrapSettings = BootstrapSettings(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Intervals of every (method, group, metric) mean and paired differences ``methods[0] − other``, from the
    evaluation's per-image rows. A group is a bin or ``overall`` (every image, whatever its bin).

    Args:
        per_image: rows with ``index``, ``method``, ``bin`` (a bin name, or "" for an image in no bin) and the
            metric values; every method has a row for the same images.
        methods: methods to report, the reference (the model) first.
        metrics: metric keys to give intervals.
        bins: bin names, in order (a bin's position seeds its generator).
        overall: the name of the group of all images.
        compare: metrics of the paired differences (a subset of ``metrics``).
        settings: level, resamples and seed.

    Returns:
        ``(intervals, differences)``: ``intervals[method][group] = {"n": n, metric: {"low", "high"} or None}`` and
        ``differences[other][group] = {"n": n, metric: {"mean", "low", "high", "excludes_zero"}}`` (``low`` and
        ``high`` None when n < :data:`MIN_IMAGES`), for groups with images only.
    """
    table, image_bins = _per_method_table(per_image, methods, metrics)
    reference, others = methods[0], list(methods[1:])
    paired = _pick(metrics, compare)
    intervals: dict[str, Any] = {m: {} for m in methods}
    differences: dict[str, Any] = {m: {} for m in others}
    for number, group in enumerate([*bins, overall]):
        rows = np.array([i for i, b in enumerate(image_bins) if group in (overall, b)], dtype=np.int64)
        if rows.size == 0:
            continue
        # One matrix, one resample for all of it: each method's metrics, then reference − other per image.
        columns = [table[m][rows] for m in methods]
        columns += [table[reference][rows][:, paired] - table[o][rows][:, paired] for o in others]
        low, high, mean = _group_interval(np.concatenate(columns, axis=1), settings, (settings.seed, number))
        k, n = len(metrics), int(rows.size)
        for j, method in enumerate(methods):
            intervals[method][group] = {"n": n, **_interval_cells(metrics, low, high, j * k)}
        for j, other in enumerate(others):
            start = len(methods) * k + j * len(compare)
            differences[other][group] = {"n": n, **_difference_cells(compare, mean, low, high, start)}
    return intervals, differences


def _per_method_table(
    per_image: Sequence[Mapping[str, Any]], methods: Sequence[str], metrics: Sequence[str]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """``{method: (n, len(metrics)) array}`` and each image's bin, images in the first method's row order."""
    by_method: dict[str, dict[int, Mapping[str, Any]]] = {m: {} for m in methods}
    for row in per_image:
        if row["method"] in by_method:
            by_method[row["method"]][int(row["index"])] = row
    order = list(by_method[methods[0]])
    for method, rows in by_method.items():
        if sorted(rows) != sorted(order):  # pairing needs every method on the same images
            raise ValueError(f"method {method!r} has per-image rows for other images than {methods[0]!r}")
    table = {
        method: np.array([[float(rows[i][m]) for m in metrics] for i in order], dtype=np.float64).reshape(
            -1, len(metrics)
        )
        for method, rows in by_method.items()
    }
    return table, [str(by_method[methods[0]][i]["bin"]) for i in order]


def _pick(metrics: Sequence[str], subset: Sequence[str]) -> list[int]:
    return [list(metrics).index(m) for m in subset]


def _group_interval(
    values: np.ndarray, settings: BootstrapSettings, seed: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    mean = values.mean(axis=0)
    if values.shape[0] < MIN_IMAGES:
        return None, None, mean
    means = bootstrap_means(values, resamples=settings.resamples, seed=seed)
    low, high = percentile_interval(means, settings.level)
    return low, high, mean


def _interval_cells(
    metrics: Sequence[str], low: np.ndarray | None, high: np.ndarray | None, start: int
) -> dict[str, dict[str, float] | None]:
    if low is None or high is None:
        return dict.fromkeys(metrics)
    return {m: {"low": float(low[start + i]), "high": float(high[start + i])} for i, m in enumerate(metrics)}


def _difference_cells(
    metrics: Sequence[str], mean: np.ndarray, low: np.ndarray | None, high: np.ndarray | None, start: int
) -> dict[str, dict[str, Any]]:
    cells = {}
    for i, m in enumerate(metrics):
        lo = None if low is None else float(low[start + i])
        hi = None if high is None else float(high[start + i])
        # A NaN end (a NaN per-image value) or a missing interval decides nothing.
        decided = lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)
        excludes = decided and (lo > 0.0 or hi < 0.0)
        cells[m] = {"mean": float(mean[start + i]), "low": lo, "high": hi, "excludes_zero": bool(excludes)}
    return cells
