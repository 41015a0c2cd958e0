"""evaluate(): binning, compositing, baselines on the same inputs, report files, LPIPS/FID handling, the Hydra app."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint import Inpainter
from inpaint.data.masks.ratio import BIN_NAMES
from inpaint.evaluation import EvaluationReport, evaluate, plot_metrics_per_bin
from inpaint.evaluation.baselines import inpaint_opencv_batch
from inpaint.evaluation.metrics import MAX_PSNR, l1_per_image, psnr_per_image

RATIOS = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55]


@pytest.fixture(scope="module")
def inpainter(tmp_path_factory: pytest.TempPathFactory, tiny) -> Inpainter:
    return Inpainter.from_checkpoint(tiny.checkpoint(tmp_path_factory.mktemp("ckpt") / "t.ckpt"))


@pytest.fixture(scope="module")
def batches(tiny) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return tiny.batches(tiny.photos(6, 64), RATIOS, batch_size=4)


@pytest.fixture(scope="module")
def report(
    inpainter: Inpainter,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    tmp_path_factory: pytest.TempPathFactory,
) -> EvaluationReport:
    # An empty torch hub cache: LPIPS must then be skipped with its reason, whatever this machine has cached.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("empty_torch_home")))
        return evaluate(inpainter, batches, progress=False, num_examples=2)


def test_summary_structure_and_counts(report: EvaluationReport) -> None:
    assert report.methods == ["pconv", "telea", "navier_stokes"]
    assert report.info["num_images"] == 6
    for method in report.methods:
        groups = report.summary[method]
        assert groups["all"]["count"] == 6
        assert sum(v["count"] for g, v in groups.items() if g != "all") <= 6
        assert {"l1", "psnr", "ssim"} <= set(groups["all"])
    assert len(report.per_image) == 6 * 3
    assert "alexnet-owt-7be5be79.pth" in report.skipped["lpips"] and "not found" in report.skipped["lpips"]
    assert "lpips" not in report.summary["pconv"]["all"]


def test_overall_is_mean_of_per_image_rows(report: EvaluationReport) -> None:
    for method in report.methods:
        rows = [r for r in report.per_image if r["method"] == method]
        for metric in ("l1", "psnr", "ssim"):
            mean = np.mean([r[metric] for r in rows])
            assert abs(report.summary[method]["all"][metric] - mean) < 1e-5
        for name in BIN_NAMES:
            in_bin = [r for r in rows if r["bin"] == name]
            if in_bin:
                assert report.summary[method][name]["count"] == len(in_bin)
                assert abs(report.summary[method][name]["psnr"] - np.mean([r["psnr"] for r in in_bin])) < 1e-4


def test_baseline_numbers_match_direct_computation(
    report: EvaluationReport, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    image = torch.cat([b[0] for b in batches])
    mask = torch.cat([b[1] for b in batches])
    out = inpaint_opencv_batch(image * mask, mask, "telea")
    expected = psnr_per_image(out, image)
    got = torch.tensor([r["psnr"] for r in report.per_image if r["method"] == "telea"])
    assert torch.allclose(got, expected, atol=1e-4)


def test_model_sees_no_hole_content_and_is_composited(
    batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> None:
    seen_holes = []

    def zeros(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seen_holes.append(float((image * (1 - mask)).abs().max()))
        return torch.zeros_like(image)

    rep = evaluate(zeros, batches, baselines=(), progress=False, num_examples=0)
    assert max(seen_holes) == 0.0
    image = torch.cat([b[0] for b in batches])
    mask = torch.cat([b[1] for b in batches])
    # Composite of an all-black prediction: known pixels from the target, holes black.
    expected = l1_per_image(mask * image, image)
    got = torch.tensor([r["l1"] for r in rep.per_image])
    assert torch.allclose(got, expected, atol=1e-6)
    assert rep.methods == ["pconv"] and rep.examples == {}


def test_perfect_predictor_scores_max(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    targets = iter([b[0] for b in batches])
    rep = evaluate(lambda image, mask: next(targets), batches, baselines=(), progress=False, num_examples=0)
    overall = rep.summary["pconv"]["all"]
    assert overall["l1"] == 0.0 and abs(overall["psnr"] - MAX_PSNR) < 1e-4 and abs(overall["ssim"] - 1) < 1e-5


def test_exact_ten_percent_holes_land_in_first_bin() -> None:
    image = torch.rand(1, 3, 40, 50)
    mask = torch.ones(1, 1, 40, 50)
    mask[..., :4, :] = 0  # 200 of 2000 pixels: exactly 10 %, the upper edge of (0.01, 0.1]
    rep = evaluate(lambda x, m: x, [(image, mask)], baselines=(), progress=False, num_examples=0)
    assert rep.per_image[0]["bin"] == "01-10"
    assert rep.summary["pconv"]["01-10"]["count"] == 1


def test_examples_best_worst(report: EvaluationReport) -> None:
    best, worst = report.examples["best"], report.examples["worst"]
    assert len(best) == 2 and len(worst) == 2 and len(report.examples["first"]) == 2
    scores = [r["psnr"] for r in report.per_image if r["method"] == "pconv"]
    assert best[0].score == pytest.approx(max(scores)) and worst[0].score == pytest.approx(min(scores))
    grid = report.example_grid("worst")
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    # 5 columns (input, 2 baselines, model, target), 64 px tiles enlarged 3x.
    assert grid.shape[1] > 5 * 64 * 3


def test_save_writes_all_formats(report: EvaluationReport, tmp_path: Path) -> None:
    written = report.save(tmp_path / "eval")
    assert {
        "json",
        "csv",
        "per_image_csv",
        "markdown",
        "examples_first",
        "examples_best",
        "examples_worst",
    } == set(written)
    data = json.loads(written["json"].read_text())
    assert data["summary"]["telea"]["all"]["count"] == 6 and data["bins"] == list(BIN_NAMES)
    assert "lpips" in data["skipped"] and data["skipped"]["lpips"]
    rows = list(csv.DictReader(io.StringIO(written["csv"].read_text())))
    assert len(rows) == len(report.rows()) and rows[-1]["holes"] == "all"
    assert len(list(csv.DictReader(io.StringIO(written["per_image_csv"].read_text())))) == 18
    md = written["markdown"].read_text()
    preamble, table = md.split("| Holes | n | Method | L1 (%) ↓ | PSNR (dB) ↑ | SSIM ↑ |", 1)
    assert preamble == f"PConv U-Net inference options: {report.info['inference']} (docs/inference.md).\n\n"
    assert "Telea (OpenCV)" in md and "**all**" in md and "LPIPS: skipped" in md
    assert not [p for p in (tmp_path / "eval").iterdir() if ".tmp" in p.name]


def test_markdown_bolds_the_best(report: EvaluationReport) -> None:
    md = report.to_markdown()
    all_rows = [line for line in md.splitlines() if line.startswith("| **all**")]
    assert all_rows
    best_psnr = max(report.summary[m]["all"]["psnr"] for m in report.methods)
    assert f"**{best_psnr:.2f}**" in md


def test_dataset_input_is_batched(inpainter: Inpainter, tiny) -> None:
    class Samples(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.batches = tiny.batches(tiny.photos(3, 32), RATIOS, batch_size=1)

        def __len__(self) -> int:
            return len(self.batches)

        def __getitem__(self, i: int) -> dict[str, object]:
            image, mask = self.batches[i]
            return {"image": image[0], "mask": mask[0], "key": f"photo{i}.png"}

    rep = evaluate(inpainter, Samples(), batch_size=2, baselines=("telea",), progress=False, max_images=2)
    assert rep.info["num_images"] == 2
    assert [r["name"] for r in rep.per_image if r["method"] == "pconv"] == ["photo0.png", "photo1.png"]


def test_bad_arguments(inpainter: Inpainter, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with pytest.raises(ValueError, match="unknown baselines"):
        evaluate(inpainter, batches, baselines=("patchmatch",), progress=False)
    with pytest.raises(ValueError, match="lpips must be one of"):
        evaluate(inpainter, batches, lpips="maybe", progress=False)
    with pytest.raises(ValueError, match="no images"):
        evaluate(inpainter, [], progress=False)
    with pytest.raises(ValueError, match=r"mask \(B, 1, H, W\)"):
        evaluate(inpainter, [(torch.rand(1, 3, 16, 16), torch.ones(1, 2, 16, 16))], progress=False)


def test_lpips_and_fid_off_are_reported(
    inpainter: Inpainter, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    rep = evaluate(
        inpainter, batches[:1], lpips="off", fid="off", baselines=(), progress=False, num_examples=0
    )
    assert rep.skipped == {"lpips": "disabled (lpips=off)", "fid": "disabled (fid=off)"}


@pytest.mark.slow
def test_lpips_computed_when_weights_are_cached(
    batches: list[tuple[torch.Tensor, torch.Tensor]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an AlexNet file in the hub cache, lpips=auto computes LPIPS (random weights here: only the wiring is
    checked, identical images give 0 and different ones > 0)."""
    import torchvision

    from inpaint.evaluation.perceptual import LPIPS_WEIGHTS

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), cache / LPIPS_WEIGHTS)
    targets = iter([b[0] for b in batches[:1]])
    rep = evaluate(
        lambda image, mask: next(targets),
        batches[:1],
        baselines=("telea",),
        progress=False,
        num_examples=0,
        fid="off",
    )
    assert "lpips" not in rep.skipped
    assert rep.summary["pconv"]["all"]["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert rep.summary["telea"]["all"]["lpips"] > 0
    assert "LPIPS ↓" in rep.to_markdown()


def test_plot_metrics_per_bin(report: EvaluationReport) -> None:
    import matplotlib

    matplotlib.use("Agg")
    fig = plot_metrics_per_bin(report)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 3


def test_colour_bias_is_the_mean_signed_error_in_the_holes() -> None:
    from inpaint.evaluation.metrics import hole_colour_bias

    target = torch.full((2, 3, 4, 4), 0.5)
    mask = torch.ones(2, 1, 4, 4)
    mask[:, :, :2] = 0  # top half is hole
    output = target.clone()
    output[0, 1, :2] += 0.2  # green too high inside the hole of image 0
    output[0, 0, 2:] += 0.9  # outside the hole: does not count
    bias = hole_colour_bias(output, target, mask)
    assert torch.allclose(bias["bias_g"], torch.tensor([0.2, 0.0]))
    assert torch.allclose(bias["bias_r"], torch.zeros(2)) and torch.allclose(bias["bias_b"], torch.zeros(2))


def test_report_shows_the_colour_bias_and_the_split_caveat(report: EvaluationReport) -> None:
    assert {"bias_r", "bias_g", "bias_b"} <= set(report.summary["pconv"]["all"])
    text = report.to_markdown()
    assert "Mean signed error inside the holes" in text and "| Telea (OpenCV) |" in text
    report.info["split_caveat"] = "these are the validation images"
    assert report.to_markdown().startswith("Note on the images: these are the validation images.")


def test_hydra_app_on_sample_photos(tmp_path: Path, tiny) -> None:
    from inpaint.evaluation import load_config, run

    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    cfg = load_config(
        [
            f"ckpt_path={ckpt}",
            f"output_dir={tmp_path / 'out'}",
            "progress=false",
            "device=cpu",
            "max_images=6",
        ],
    )
    rep = run(cfg)
    assert rep.info["num_images"] == 6 and rep.info["checkpoint"] == str(ckpt)
    assert rep.info["split_caveat"] is None  # the demo's test photos are its own, apart from validation
    assert (tmp_path / "out" / "metrics.md").is_file() and (tmp_path / "out" / "examples_best.png").is_file()


def test_inference_options_are_applied_and_stated_in_the_report(tmp_path: Path, tiny) -> None:
    from inpaint.evaluation import load_config, run

    ckpt = tiny.checkpoint(tmp_path / "t.ckpt")
    reports = {}
    for passes in (1, 8):
        overrides = [
            f"ckpt_path={ckpt}",
            f"output_dir={tmp_path / str(passes)}",
            "progress=false",
            "device=cpu",
        ]
        overrides += ["max_images=4", "baselines=[]", f"inference={{self_ensemble:{passes}}}"]
        reports[passes] = run(load_config(overrides))
    assert reports[8].info["inference"] == "self_ensemble=8"
    assert "inference options: self_ensemble=8" in (tmp_path / "8" / "metrics.md").read_text()
    assert "inference options: one pass of the network" in (tmp_path / "1" / "metrics.md").read_text()
    one, eight = (reports[k].summary["pconv"]["all"]["psnr"] for k in (1, 8))
    assert one != eight  # the averaged fill differs from the single pass
    overrides[-1] = "inference={coarse_beyond:2,poisson_blend:0.5}"
    overrides[1] = f"output_dir={tmp_path / 'coarse'}"
    assert run(load_config(overrides)).info["inference"] == "coarse_beyond=2, poisson_blend=0.5"


@pytest.mark.slow
def test_cli_missing_checkpoint_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inpaint.evaluate",
            f"ckpt_path={tmp_path / 'nope.ckpt'}",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "checkpoint not found" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("mask_source", ["mask_set", "nvidia_test"])
def test_hydra_app_with_fixed_mask_files(tmp_path: Path, mask_source: str, tiny) -> None:
    """The two file-based mask sources of the data package: the generated fixed evaluation set, and NVIDIA's test
    masks (here a stand-in folder of 64x64 PNGs, white = hole, one per bin)."""
    from PIL import Image

    from inpaint.data import build_mask_sampler, write_eval_mask_set
    from inpaint.evaluation import load_config, run

    masks = tmp_path / "masks"
    if mask_source == "mask_set":
        write_eval_mask_set(masks, build_mask_sampler("mixed"), per_bin=1, size=64, seed=0)
        overrides = [f"masks.eval={{type: mask_set, path: {masks}}}"]
    else:
        masks.mkdir()
        for i, ratio in enumerate(RATIOS):
            hole = np.zeros((64, 64), np.uint8)
            hole.reshape(-1)[: round(ratio * 64 * 64)] = 255  # exact ratio, rows from the top
            Image.fromarray(hole).save(masks / f"{i:05d}.png")
        overrides = ["masks=nvidia_test", f"masks.root={masks}"]
    cfg = load_config(
        [
            f"ckpt_path={tiny.checkpoint(tmp_path / 't.ckpt')}",
            f"output_dir={tmp_path / 'out'}",
            "progress=false",
            "device=cpu",
            "num_examples=0",
            "data.val_repeats=3",
            *overrides,
        ]
    )
    rep = run(cfg)
    assert rep.info["num_images"] == 9  # 3 test photos x 3 repeats
    counts = {b: v["count"] for b, v in rep.summary["pconv"].items() if b != "all"}
    assert sum(counts.values()) == 9 and len(counts) >= 2  # the fixed masks spread over several bins


def test_fid_on_without_torch_fidelity_fails_loudly(inpainter: Inpainter) -> None:
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="torch-fidelity"):
            evaluate(inpainter, [], fid="on", progress=False)
    else:
        pytest.skip("torch-fidelity is installed")


@pytest.mark.slow
def test_cli_unwritable_output_dir_is_one_clear_line(tmp_path: Path, tiny) -> None:
    import subprocess
    import sys

    (tmp_path / "a_file").write_text("x")
    out = (
        tmp_path / "a_file" / "eval"
    )  # a read-only folder for anyone but root; a file in the path for everyone
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inpaint.evaluate",
            f"ckpt_path={tiny.checkpoint(tmp_path / 't.ckpt')}",
            f"output_dir={out}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert f"cannot write the report to output_dir={out}" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_run_checks_the_output_dir_before_evaluating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inpaint.evaluation as ev

    (tmp_path / "a_file").write_text("x")
    cfg = ev.load_config(
        [f"ckpt_path={tmp_path / 'not-even-loaded.ckpt'}", f"output_dir={tmp_path / 'a_file' / 'x'}"]
    )
    with pytest.raises(ev.OutputDirError, match="cannot write the report"):
        ev.run(cfg)


def test_progress_off_a_terminal_is_a_few_lines_not_one_per_batch(
    capsys: pytest.CaptureFixture[str], batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """A notebook's or a log file's stderr is no terminal: each redraw of the bar would stay there as a line of its
    own (issue: a notebook cell showed ~38), so the bar is drawn when it starts and when it ends."""
    one_by_one = [
        (image[i : i + 1], mask[i : i + 1]) for image, mask in batches for i in range(image.shape[0])
    ]
    evaluate(lambda x, m: x, one_by_one, baselines=(), num_examples=0, lpips="off", fid="off")
    err = capsys.readouterr().err
    draws = [d for d in err.split("\r") if d.strip()]
    assert len(one_by_one) == 6 and 1 <= len(draws) <= 2, draws
    assert "6/6" in draws[-1] and "images=6" in draws[-1]
