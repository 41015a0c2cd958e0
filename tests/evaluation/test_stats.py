"""Bootstrap intervals over images: coverage, pairing, reproducibility, the one-image case, the resampling itself."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from inpaint.evaluation import stats
from inpaint.evaluation.stats import (
    BootstrapSettings,
    bootstrap_ci,
    bootstrap_means,
    bootstrap_report,
    percentile_interval,
)

BINS = ("01-10", "10-20")


def _rows(values: dict[str, list[float]], bins: list[str], metric: str = "psnr") -> list[dict[str, object]]:
    """Per-image rows as the evaluation loop writes them: one per (image, method)."""
    return [
        {"index": i, "method": method, "bin": bins[i], metric: v}
        for method, vs in values.items()
        for i, v in enumerate(vs)
    ]


def _coverage(level: float, trials: int = 400, n: int = 40) -> float:
    hits = 0
    for t in range(trials):
        sample = np.random.default_rng(1000 + t).normal(30.0, 3.0, n)  # true mean 30
        low, high = bootstrap_ci(sample, level=level, resamples=1000, seed=t)
        hits += low <= 30.0 <= high
    return hits / trials


def test_interval_covers_the_true_mean_at_about_the_nominal_rate() -> None:
    # 400 samples of 40 draws from N(30, 3): the binomial standard error of a coverage of 0.95 is 0.011, of 0.8 is
    # 0.02. Quantiles at 5 / 95 % for a 95 % interval would cover ~0.90; a 1.96-sigma interval ignoring `level`
    # would cover ~0.95 at level 0.8.
    assert 0.92 <= _coverage(0.95) <= 0.98
    assert 0.74 <= _coverage(0.80) <= 0.86


def test_bootstrap_standard_error_matches_its_formula() -> None:
    # The bootstrap distribution of the mean has standard deviation s * sqrt((n - 1) / n) / sqrt(n) (s: sample
    # standard deviation), and is centred on the sample mean.
    x = np.random.default_rng(0).gamma(2.0, 1.5, 60)
    means = bootstrap_means(x, resamples=4000, seed=3)
    expected = x.std(ddof=0) / np.sqrt(x.size)
    assert means.shape == (4000,)
    assert abs(means.std() / expected - 1) < 0.05
    assert abs(means.mean() - x.mean()) < 0.1 * expected


def test_every_resample_draws_n_images_whatever_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # With the identity as values, n * mean_b are the draw counts of resample b: n in all, each image once on
    # average. Blocks of 7 cells force a resample split over several bincount offsets.
    n = 5
    monkeypatch.setattr(stats, "_BLOCK_CELLS", 7)
    counts = bootstrap_means(np.eye(n), resamples=3000, seed=0) * n
    assert np.allclose(counts, np.round(counts)) and (counts >= 0).all()
    assert np.allclose(counts.sum(axis=1), n)
    assert np.allclose(counts.mean(axis=0), 1.0, atol=0.06)
    # The columns of one call share the draw: two copies of a column give identical means.
    x = np.random.default_rng(1).random(9)
    both = bootstrap_means(np.stack([x, x], axis=1), resamples=50, seed=2)
    assert np.array_equal(both[:, 0], both[:, 1])


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    x = np.random.default_rng(4).normal(size=30)
    assert bootstrap_ci(x, seed=7) == bootstrap_ci(x, seed=7)
    assert bootstrap_ci(x, seed=7) != bootstrap_ci(x, seed=8)
    rows = _rows({"pconv": list(x), "telea": list(x[::-1])}, ["01-10"] * 30)
    first = bootstrap_report(rows, ["pconv", "telea"], ["psnr"], bins=BINS, overall="all", compare=["psnr"])
    again = bootstrap_report(rows, ["pconv", "telea"], ["psnr"], bins=BINS, overall="all", compare=["psnr"])
    assert first == again


def test_exactly_constant_paired_differences_give_a_zero_width_interval() -> None:
    # Model = baseline + 0.5 on every image (multiples of 1/64: the subtraction is exact).
    baseline = np.random.default_rng(5).integers(1000, 2000, 20) / 64
    assert bootstrap_ci(np.full(20, 0.5)) == (0.5, 0.5)
    rows = _rows({"pconv": list(baseline + 0.5), "telea": list(baseline)}, ["01-10"] * 10 + ["10-20"] * 10)
    intervals, differences = bootstrap_report(
        rows, ["pconv", "telea"], ["psnr"], bins=BINS, overall="all", compare=["psnr"]
    )
    for group in (*BINS, "all"):
        d = differences["telea"][group]["psnr"]
        assert d["mean"] == 0.5 and d["low"] == 0.5 and d["high"] == 0.5 and d["excludes_zero"]
        # ... while each method's own mean is uncertain: the pairing, not the data, removes the spread.
        ci = intervals["pconv"][group]["psnr"]
        assert ci["high"] - ci["low"] > 1.0


def _widths(correlated: bool, n: int = 50) -> tuple[float, float]:
    rng = np.random.default_rng(6)
    difficulty = rng.normal(28.0, 4.0, n)  # images differ far more than the methods do on one image
    model = difficulty + 0.3 + rng.normal(0, 0.2, n)
    baseline = (difficulty if correlated else rng.normal(28.0, 4.0, n)) + rng.normal(0, 0.2, n)
    rows = _rows({"pconv": list(model), "telea": list(baseline)}, ["01-10"] * n)
    _, differences = bootstrap_report(
        rows, ["pconv", "telea"], ["psnr"], bins=BINS, overall="all", compare=["psnr"]
    )
    paired = differences["telea"]["all"]["psnr"]
    # Unpaired: each method resampled on its own images.
    unpaired = bootstrap_means(model, seed=1) - bootstrap_means(baseline, seed=2)
    low, high = percentile_interval(unpaired)
    return paired["high"] - paired["low"], float(high - low)


def test_paired_interval_is_narrower_than_unpaired_when_methods_are_correlated() -> None:
    paired, unpaired = _widths(correlated=True)
    assert paired < 0.1 * unpaired
    # Without a shared image effect pairing gains nothing: the comparison above is not won by construction.
    paired, unpaired = _widths(correlated=False)
    assert 0.7 < paired / unpaired < 1.3


def test_one_image_has_no_interval_and_says_so() -> None:
    assert bootstrap_ci([31.9]) is None
    rows = _rows({"pconv": [30.0, 31.0, 32.0], "telea": [29.0, 29.5, 30.0]}, ["01-10", "10-20", "10-20"])
    intervals, differences = bootstrap_report(
        rows, ["pconv", "telea"], ["psnr"], bins=BINS, overall="all", compare=["psnr"]
    )
    assert intervals["pconv"]["01-10"] == {"n": 1, "psnr": None}
    d = differences["telea"]["01-10"]
    assert d["n"] == 1 and d["psnr"] == {"mean": 1.0, "low": None, "high": None, "excludes_zero": False}
    assert intervals["pconv"]["10-20"]["n"] == 2 and intervals["pconv"]["10-20"]["psnr"] is not None
    assert intervals["pconv"]["all"]["n"] == 3


def test_groups_and_metrics_are_kept_apart() -> None:
    # Bin 10-20 is 20 dB higher: its interval must not reach bin 01-10, and "all" spans both.
    psnr = [20.0, 21.0, 22.0, 40.0, 41.0, 42.0]
    rows = _rows({"pconv": psnr}, ["01-10"] * 3 + ["10-20"] * 3)
    for row, value in zip(rows, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], strict=True):
        row["ssim"] = value
    intervals, differences = bootstrap_report(rows, ["pconv"], ["psnr", "ssim"], bins=BINS, overall="all")
    assert differences == {}
    assert (
        intervals["pconv"]["01-10"]["psnr"]["high"] <= 22.0
        and intervals["pconv"]["10-20"]["psnr"]["low"] >= 40
    )
    assert intervals["pconv"]["all"]["psnr"]["low"] < 31.0 < intervals["pconv"]["all"]["psnr"]["high"]
    assert (
        0.1
        <= intervals["pconv"]["01-10"]["ssim"]["low"]
        <= intervals["pconv"]["01-10"]["ssim"]["high"]
        <= 0.3
    )


def test_a_nan_value_decides_nothing() -> None:
    rows = _rows({"pconv": [30.0, float("nan"), 32.0], "telea": [20.0, 21.0, 22.0]}, ["01-10"] * 3)
    intervals, differences = bootstrap_report(
        rows, ["pconv", "telea"], ["psnr"], bins=BINS, overall="all", compare=["psnr"]
    )
    assert np.isnan(intervals["pconv"]["all"]["psnr"]["low"])
    assert not differences["telea"]["all"]["psnr"]["excludes_zero"]
    assert intervals["telea"]["all"]["psnr"]["low"] >= 20.0  # the other method is unaffected


def test_unpaired_rows_are_refused() -> None:
    rows = _rows({"pconv": [30.0, 31.0], "telea": [29.0, 29.5]}, ["01-10"] * 2)
    rows[-1]["index"] = 7  # telea measured on another image than the model
    with pytest.raises(ValueError, match="other images"):
        bootstrap_report(rows, ["pconv", "telea"], ["psnr"], bins=BINS, overall="all", compare=["psnr"])


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="level"):
        BootstrapSettings(level=95)
    with pytest.raises(ValueError, match="resamples"):
        BootstrapSettings(resamples=0)
    described = BootstrapSettings().describe()
    assert (
        described["interval"] == "percentile"
        and described["resamples"] == 2000
        and described["level"] == 0.95
    )


def test_docstring_examples_run() -> None:
    result = doctest.testmod(stats, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0
