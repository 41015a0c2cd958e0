"""inpaint.inference.InferenceOptions: one definition per option, carried by checkpoints and exports, chosen on
validation by ``python -m inpaint.tune``, and the default wherever a model is used."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest
import torch

from inpaint.checkpoint import stored_inference_options
from inpaint.evaluation.tune import (
    SAME_COST,
    Candidate,
    choose,
    option_grid,
    ranking_table,
    score_options,
    store_inference_options,
)
from inpaint.export import export_weights
from inpaint.inference import InferenceOptions, Inpainter

TUNED = InferenceOptions(self_ensemble=2, coarse_beyond=4, far_fill="smooth", poisson_blend=0.5)


def test_each_option_has_its_check_flag_and_report_words():
    parser = argparse.ArgumentParser()
    InferenceOptions.add_arguments(parser)
    args = parser.parse_args(["--self-ensemble", "8", "--far-fill", "smooth"])
    assert InferenceOptions.overrides(args) == {"self_ensemble": 8, "far_fill": "smooth"}
    assert (
        InferenceOptions().replace(**InferenceOptions.overrides(args)).describe()
        == "self_ensemble=8, far_fill=smooth"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--self-ensemble", "3"])
    with pytest.raises(ValueError, match=r"x.ckpt: unknown inference option\(s\) \['passes'\]"):
        InferenceOptions.from_mapping({"passes": 8}, "x.ckpt")
    with pytest.raises(ValueError, match="poisson_blend must be a number from 0 to 1"):
        InferenceOptions(poisson_blend=2)
    assert InferenceOptions().replace(self_ensemble=None) == InferenceOptions()  # None = not given


def test_a_checkpoint_carries_its_options_and_they_are_the_default(tmp_path, tiny):
    ckpt = tiny.checkpoint(tmp_path / "last.ckpt")
    assert Inpainter.from_checkpoint(ckpt).options == InferenceOptions()  # written before options were stored
    store_inference_options(ckpt, TUNED)
    assert torch.load(ckpt, weights_only=True)["global_step"] == 1  # the rest of the checkpoint is kept
    assert Inpainter.from_checkpoint(ckpt).options == TUNED
    assert Inpainter.from_checkpoint(ckpt, self_ensemble=1).options == TUNED.replace(self_ensemble=1)
    assert Inpainter.from_checkpoint(ckpt, options=InferenceOptions()).options == InferenceOptions()


def test_an_export_keeps_the_options(tmp_path, tiny):
    ckpt = store_inference_options(tiny.checkpoint(tmp_path / "last.ckpt"), TUNED)
    export = export_weights(ckpt)
    assert stored_inference_options(export) == TUNED.to_dict()
    assert Inpainter.from_checkpoint(export).options == TUNED
    store_inference_options(export, InferenceOptions(self_ensemble=8))  # an export can be tuned too
    assert Inpainter.from_checkpoint(export).options.self_ensemble == 8


def test_a_grid_tries_each_distinct_setting_once():
    grid = option_grid(
        {"coarse_beyond": [0, 8], "far_fill": ["network", "smooth"], "poisson_blend": [0, 0.5]}
    )
    assert len(grid) == 6 and len(set(grid)) == 6  # far_fill means nothing without coarse_beyond


@pytest.mark.slow
def test_tune_picks_the_best_on_validation_and_stores_it(tmp_path, tiny):
    ckpt = tiny.checkpoint(tmp_path / "last.ckpt")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inpaint.tune",
            f"ckpt_path={ckpt}",
            "eval_image_sizes=[64]",
            "data.val_repeats=3",
            "grid.self_ensemble=[1,2]",
            "grid.coarse_beyond=[0]",
            "grid.poisson_blend=[0.0,1.0]",
            "tolerance=0",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "options" not in line]
    scores = {r.split("|")[1].strip(): float(r.split("|")[3]) for r in rows}
    assert all(len(r.split("|")[4].split(",")) == 3 for r in rows)  # R, G, B error of the one crop set
    assert len(scores) == 4 and list(scores.values()) == sorted(scores.values(), reverse=True)
    best = next(iter(scores))
    assert Inpainter.from_checkpoint(ckpt).options.describe() == best
    assert rows[0].rstrip(" |").endswith("chosen") and sum("chosen" in r for r in rows) == 1
    assert f"Stored in {ckpt}: {best}" in proc.stdout


class _Brighter(torch.nn.Module):
    """Knows the image but paints it 0.1 brighter in red only."""

    levels = 1

    def __init__(self, truth: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("truth", truth)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.truth + torch.tensor([0.1, 0.0, 0.0]).view(1, 3, 1, 1)


def test_tuning_shows_each_candidates_colour_cast_without_ranking_by_it():
    truth = 0.2 + 0.5 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 0
    plain, blended = InferenceOptions(), InferenceOptions(poisson_blend=1.0)
    ranked = score_options(_Brighter(truth), {"16 px": [(truth, mask)]}, [plain, blended])
    assert [c.options for c in ranked] == [blended, plain]  # the blend removes the constant offset
    colour = {c.options: c.colour["16 px"] for c in ranked}
    assert colour[plain] == pytest.approx((25.5, 0.0, 0.0), abs=1e-3)
    assert colour[blended] == pytest.approx((0.0, 0.0, 0.0), abs=0.2)


def _timed(psnr: float, seconds: float, **options) -> Candidate:
    return Candidate(
        InferenceOptions(**options), {"16 px": psnr}, psnr, 1, {"16 px": (0.0, 0.0, 0.0)}, seconds
    )


def test_the_fastest_candidate_within_the_tolerance_wins():
    best = _timed(28.80, 100.0, self_ensemble=8)
    close = _timed(28.77, 15.0, poisson_blend=0.5)
    cheap = _timed(28.76, 13.0)  # about as fast as `close` (within SAME_COST): the higher PSNR wins
    far = _timed(28.70, 5.0, coarse_beyond=8)
    assert SAME_COST * 13.0 >= 15.0
    ranked = [best, close, cheap, far]
    assert choose(ranked, tolerance=0.0) is best  # the best, whatever it costs
    assert choose(ranked, tolerance=0.05) is close
    assert choose(ranked, tolerance=0.2) is far
    table = ranking_table(ranked, close, 0.05)
    chosen = [row for row in table.splitlines() if row.rstrip(" |").endswith("chosen")]
    assert len(chosen) == 1 and chosen[0].startswith("| poisson_blend=0.5 | 28.77 |")
    assert "| 15.0 |" in chosen[0] and "within 0.05 dB of the best" in table
    with pytest.raises(ValueError, match="tolerance must be a number of dB >= 0, got -0.1"):
        choose(ranked, tolerance=-0.1)
    with pytest.raises(ValueError, match="grid is empty"):
        choose([], tolerance=0.05)


def test_each_candidate_is_timed():
    truth = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 0
    ranked = score_options(_Brighter(truth), {"16 px": [(truth, mask)]}, [InferenceOptions(self_ensemble=8)])
    assert ranked[0].seconds > 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tolerance=-1", "tolerance must be a number of dB >= 0, got -1"),
        ("tolerance=abc", "tolerance must be a number of dB >= 0, got 'abc'"),
        ("grid.poisson_blend=[]", "grid: no combination to try"),
        ("grid.self_ensemble=[3]", "tuning grid: inference option self_ensemble must be one of"),
    ],
)
def test_tune_checks_its_settings_before_any_work(override, message):
    from hydra import compose, initialize_config_dir

    from inpaint.config import CONF_DIR, ConfigError
    from inpaint.tune import run

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("tune", overrides=["ckpt_path=/no/such.ckpt", override])
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(cfg)  # a ConfigError, not "checkpoint not found": nothing was loaded


def test_tune_says_a_bad_setting_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "inpaint.tune", "ckpt_path=/no/such.ckpt", "tolerance=-1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "tolerance must be a number of dB >= 0, got -1" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
