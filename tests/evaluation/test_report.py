"""The report's confidence intervals and paired differences: built from the per-image rows of a real evaluate(),
written to metrics.json / metrics.csv / metrics.md next to the keys that were there before, shown in the plot."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint.evaluation import EvaluationReport, evaluate, plot_metrics_per_bin
from inpaint.evaluation.baselines import inpaint_opencv_batch

RATIOS = [0.05, 0.15]


@pytest.fixture(scope="module")
def batches(tiny) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return tiny.batches(tiny.photos(12, 32), RATIOS, batch_size=4)  # 6 images in each of two bins


def _black_holes(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(image)  # composited: the holes stay black, far worse than OpenCV


@pytest.fixture(scope="module")
def report(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> EvaluationReport:
    return evaluate(_black_holes, batches, progress=False, num_examples=0, lpips="off", fid="off")


def test_every_mean_has_an_interval_from_the_same_images(report: EvaluationReport) -> None:
    for method in report.methods:
        rows = [r for r in report.per_image if r["method"] == method]
        for group, values in report.summary[method].items():
            cis = report.intervals[method][group]
            assert cis["n"] == values["count"] == len([r for r in rows if group in ("all", r["bin"])])
            for metric in ("l1", "psnr", "ssim", "bias_r", "bias_g", "bias_b"):
                ci = cis[metric]
                assert ci["low"] <= values[metric] + 1e-9 and values[metric] - 1e-9 <= ci["high"]
                # Inside the range of the per-image values: a mean of resampled images cannot leave it.
                per_image = [r[metric] for r in rows if group in ("all", r["bin"])]
                assert min(per_image) - 1e-9 <= ci["low"] < ci["high"] <= max(per_image) + 1e-9
    assert set(report.summary["pconv"]) == {"01-10", "10-20", "all"}


def test_paired_differences_are_model_minus_baseline(report: EvaluationReport) -> None:
    assert set(report.differences) == {"telea", "navier_stokes"}
    for baseline, groups in report.differences.items():
        for group, diff in groups.items():
            for metric in ("l1", "psnr", "ssim"):
                gap = report.summary["pconv"][group][metric] - report.summary[baseline][group][metric]
                d = diff[metric]
                assert d["mean"] == pytest.approx(gap, rel=1e-6, abs=1e-6)
                assert d["low"] <= d["mean"] <= d["high"]
            # Black holes against OpenCV: clearly worse on every image, so every interval excludes 0.
            assert diff["psnr"]["high"] < 0 and diff["l1"]["low"] > 0 and diff["psnr"]["excludes_zero"]


def test_a_model_identical_to_a_baseline_differs_by_exactly_zero(
    batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> None:
    # The "model" is Telea on the same input: per image the difference is 0, so a paired resample gives [0, 0]. An
    # implementation that resampled the two methods separately would give a wide interval around 0.
    def telea(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return inpaint_opencv_batch(image, mask, "telea")

    rep = evaluate(
        telea, batches, baselines=("telea",), progress=False, num_examples=0, lpips="off", fid="off"
    )
    for group, diff in rep.differences["telea"].items():
        for metric in ("l1", "psnr", "ssim"):
            assert diff[metric] == {"mean": 0.0, "low": 0.0, "high": 0.0, "excludes_zero": False}
        ci = rep.intervals["pconv"][group]["psnr"]
        assert ci["high"] - ci["low"] > 0.1
    assert "+0.00 [+0.00, +0.00] unclear" in rep.to_markdown()


def test_same_seed_same_report_other_seed_other_intervals(
    batches: list[tuple[torch.Tensor, torch.Tensor]], report: EvaluationReport
) -> None:
    kwargs = {"progress": False, "num_examples": 0, "lpips": "off", "fid": "off"}
    again = evaluate(_black_holes, batches, **kwargs)
    assert again.to_markdown() == report.to_markdown()
    untimed = [{k: v for k, v in json.loads(r.to_json()).items() if k != "info"} for r in (again, report)]
    assert untimed[0] == untimed[1]  # all but the run's timings
    other = evaluate(_black_holes, batches, ci_seed=1, ci_resamples=500, ci_level=0.9, **kwargs)
    assert other.summary == report.summary  # the metrics themselves do not depend on the bootstrap
    assert other.intervals != report.intervals
    assert (
        other.bootstrap["seed"] == 1
        and other.bootstrap["resamples"] == 500
        and other.bootstrap["level"] == 0.9
    )
    assert "90 % confidence interval" in other.to_markdown() and "500 resamples" in other.to_markdown()


def test_files_keep_their_keys_and_add_the_intervals(report: EvaluationReport, tmp_path: Path) -> None:
    written = report.save(tmp_path)
    data = json.loads(written["json"].read_text())
    assert {"methods", "bins", "summary", "skipped", "info"} <= set(data)  # the keys readers already use
    assert data["summary"]["pconv"]["all"]["psnr"] == pytest.approx(report.summary["pconv"]["all"]["psnr"])
    assert data["intervals"]["telea"]["10-20"]["n"] == 6
    assert (
        data["intervals"]["telea"]["10-20"]["psnr"]["low"]
        == report.intervals["telea"]["10-20"]["psnr"]["low"]
    )
    assert data["paired_differences"]["navier_stokes"]["all"]["ssim"]["excludes_zero"] is True
    assert data["bootstrap"]["interval"] == "percentile" and data["bootstrap"]["resamples"] == 2000

    rows = list(csv.DictReader(io.StringIO(written["csv"].read_text())))
    header = written["csv"].read_text().splitlines()[0]
    assert header.startswith("holes,method,count,l1,psnr,ssim,bias_r,bias_g,bias_b,")  # old columns first
    by = {(r["holes"], r["method"]): r for r in rows}
    assert (
        float(by["all", "pconv"]["psnr_low"])
        < float(by["all", "pconv"]["psnr"])
        < float(by["all", "pconv"]["psnr_high"])
    )
    assert by["all", "pconv"]["diff_psnr"] == ""  # the model's own row: no difference with itself
    assert float(by["all", "telea"]["diff_psnr_high"]) < 0

    md = written["markdown"].read_text()
    psnr = report.summary["navier_stokes"]["all"]["psnr"]
    ci = report.intervals["navier_stokes"]["all"]["psnr"]
    assert (
        f"**{psnr:.2f}** [{ci['low']:.2f}, {ci['high']:.2f}]" in md
    )  # the best value in bold, then its interval
    assert (
        "### Model − baseline (paired)" in md and "95 % confidence interval" in md and "2000 resamples" in md
    )
    diff_rows = md.split("### Model − baseline (paired)")[1].split("Mean signed error")[0]
    assert diff_rows.count(" worse |") == 3 * 3 * 2  # 3 groups x 3 metrics x 2 baselines, all clearly worse
    assert "| **10–20 %** | 6 | Telea (OpenCV) |" in diff_rows  # n: the images behind the row


def test_one_image_report_states_that_there_is_no_interval(tmp_path: Path) -> None:
    image, mask = torch.rand(1, 3, 24, 24), torch.ones(1, 1, 24, 24)
    mask[..., 4:10, 4:10] = 0
    rep = evaluate(_black_holes, [(image, mask)], progress=False, num_examples=0, lpips="off", fid="off")
    assert rep.intervals["pconv"]["all"] == {
        "n": 1,
        **dict.fromkeys(("l1", "psnr", "ssim", "bias_r", "bias_g", "bias_b")),
    }
    md = rep.to_markdown()
    assert "[1 image: no CI]" in md and "(no CI)" in md
    data = json.loads(rep.save(tmp_path)["json"].read_text())
    assert data["intervals"]["pconv"]["all"]["psnr"] is None
    assert data["paired_differences"]["telea"]["all"]["psnr"]["low"] is None


def test_a_report_without_intervals_renders_as_before(report: EvaluationReport) -> None:
    bare = EvaluationReport(
        methods=report.methods, summary=report.summary, per_image=report.per_image, skipped={}, info={}
    )
    md = bare.to_markdown()
    assert "[" not in md and "Model − baseline" not in md
    assert json.loads(bare.to_json())["intervals"] == {}
    bare.add_intervals()
    assert bare.intervals == report.intervals and bare.differences == report.differences


def test_plot_shades_the_intervals(report: EvaluationReport) -> None:
    import matplotlib

    matplotlib.use("Agg")
    fig = plot_metrics_per_bin(report)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 3  # a band per method
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    lows = [report.intervals["pconv"][b]["psnr"]["low"] for b in ("01-10", "10-20")]
    assert np.isclose(band.min(), min(lows))


def test_bad_interval_settings_fail_before_the_work(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    calls = []

    def model(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return image

    with pytest.raises(ValueError, match="level"):
        evaluate(model, batches, progress=False, ci_level=95)
    assert not calls


def test_a_model_ahead_on_every_image_is_called_better(
    batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> None:
    # The "model" returns the truth: ahead of Telea on every image, in the good direction of each metric (higher
    # PSNR / SSIM, lower L1), so every verdict reads "better".
    targets = iter([b[0] for b in batches])
    rep = evaluate(
        lambda image, mask: next(targets),
        batches,
        baselines=("telea",),
        progress=False,
        num_examples=0,
        lpips="off",
    )
    diff = rep.differences["telea"]["all"]
    assert diff["psnr"]["low"] > 0 and diff["ssim"]["low"] > 0 and diff["l1"]["high"] < 0
    section = rep.differences_markdown()
    assert section.count(" better |") == 3 * 3 and " worse" not in section and "unclear" not in section
