"""inpaint.train end to end: configs compose and run, training learns, DDP, precision, resume, W&B, sweeps."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import open_dict

from inpaint.config import CONF_DIR
from inpaint.training import train

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _csv_metrics(output_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(output_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_expected_experiments_exist():
    expected = {
        "places2",
        "places2_finetune",
        "celeba",
        "celeba_finetune",
        "celeba_hq",
        "celeba_hq_finetune",
        "places2_paper",
        "places2_paper_finetune",
        "smoke",
    }
    assert expected <= set(EXPERIMENTS)


def test_experiment_is_not_in_the_primary_defaults():
    primary = yaml.safe_load((CONF_DIR / "train.yaml").read_text())
    groups = [next(iter(d)) if isinstance(d, dict) else d for d in primary["defaults"]]
    assert "experiment" not in groups


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS])
def test_every_experiment_composes(experiment, tmp_path, train_config):
    overrides = [f"+experiment={experiment}", "data.root=/nonexistent"]
    if "paper" in experiment:
        overrides.append("masks.root=/nonexistent")
    if experiment.endswith("_finetune"):
        overrides.append("model.init_from=/some/phase1.ckpt")
    cfg = train_config.compose(overrides, tmp_path)
    assert cfg.task_name == experiment
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    assert cfg.data.image_size % 2**cfg.model.net.levels == 0
    if experiment.endswith("_finetune"):
        assert cfg.model.finetune is True
        assert cfg.model.lr == pytest.approx(5e-5)
    elif experiment != "smoke":
        assert cfg.model.lr == pytest.approx(2e-4)
        assert cfg.loss.weights.hole == 6.0 and cfg.loss.weights.style_out == 120.0


# The fake dataset of each experiment (without _finetune): a fake_data builder and its arguments.
FAKE_DATASETS = {
    "places2": ("places2", {"n_train": 40}),
    "places2_paper": ("places2", {"n_train": 40, "size": 72, "large": True}),
    "celeba": ("celeba", {}),
    "celeba_hq": ("celeba_hq", {"n": 40}),
}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_fast_dev_run(experiment, tmp_path, train_config, fake_data):
    """Each experiment, as configured, on a tiny fake dataset in its real on-disk layout."""
    overrides = [f"+experiment={experiment}", *train_config.TINY, "trainer.fast_dev_run=true"]
    base = experiment.removesuffix("_finetune")
    if base in FAKE_DATASETS:
        builder, kwargs = FAKE_DATASETS[base]
        root = getattr(fake_data, builder)(tmp_path / "data", **kwargs)
        overrides.append(f"data.root={root}")
    if base in ("places2", "places2_paper", "celeba_hq"):
        overrides.append("data.holdout_fraction=0.25")  # of 40 fake images: a few validation images
    if base == "places2_paper":  # NVIDIA's two mask releases, stand-ins in their real layout
        fake_data.nvidia(tmp_path / "nv" / "irregular_mask" / "disocclusion_img_mask", (0.1, 0.3, 0.5))
        fake_data.nvidia(
            tmp_path / "nv" / "mask" / "testing_mask_dataset", (0.05, 0.15, 0.25, 0.35, 0.45, 0.55)
        )
        overrides.append(f"masks.root={tmp_path / 'nv'}")
    if experiment.endswith("_finetune"):
        phase1 = _tiny_phase1_checkpoint(train_config, tmp_path)
        overrides.append(f"model.init_from={phase1}")
    cfg = train_config.compose(overrides, tmp_path / "run")
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])


def test_finetune_requires_init_from(tmp_path, train_config):
    cfg = train_config.compose(["+experiment=places2_finetune", "data.root=/x"], tmp_path)
    with pytest.raises(ValueError, match="model.init_from="):
        train(cfg)


def test_smoke_experiment_writes_checkpoint_grids_and_metrics(tmp_path, train_config):
    cfg = train_config.compose(["+experiment=smoke"], tmp_path)
    metrics = train(cfg)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "images").glob("val_images_step*.png"))
    assert math.isfinite(metrics["val/psnr"])
    assert (tmp_path / "config_tree.yaml").is_file()
    assert "vgg_source" in (tmp_path / "run_info.yaml").read_text()
    # the checkpoint loads weights-only (only primitives in hyper-parameters)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["net"]["levels"] == 4
    assert ckpt["global_step"] == 8


def test_bf16_mixed_precision_on_cpu_runs_with_finite_loss(tmp_path, train_config):
    cfg = train_config.compose(
        ["+experiment=smoke", "trainer.precision=bf16-mixed", "trainer.max_steps=4"], tmp_path
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])
    assert math.isfinite(metrics["val/psnr"])


@pytest.mark.slow
def test_default_demo_learns(tmp_path, train_config):
    """The default command (no experiment) on the bundled photos: validation loss and PSNR improve.

    Its network starts from the membrane (``membrane_residual``), so the untrained net is already a fair fill; the
    warm-up is shortened so that 30 steps at a real learning rate can show the correction being learned."""
    cfg = train_config.compose(
        [
            "trainer.max_steps=30",
            "trainer.val_check_interval=15",
            "trainer.log_every_n_steps=5",
            "model.warmup_steps=5",
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert metrics["val/psnr"] > metrics["before/val/psnr"], (
        "validation PSNR did not improve over the untrained net"
    )
    rows = _csv_metrics(tmp_path)
    val = [(int(r["step"]), float(r["val/psnr"]), float(r["val/loss"])) for r in rows if r.get("val/psnr")]
    train_loss = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(val) >= 2, val
    first, last = val[0], val[-1]
    assert last[1] > first[1], f"val PSNR did not improve: {val}"
    assert last[2] < first[2], f"val loss did not decrease: {val}"
    k = max(1, len(train_loss) // 4)
    assert sum(train_loss[-k:]) / k < sum(train_loss[:k]) / k


def _tiny_phase1_checkpoint(train_config, tmp_path: Path) -> Path:
    cfg = train_config.compose(["+experiment=smoke", "trainer.max_steps=2"], tmp_path / "phase1")
    train(cfg)
    return tmp_path / "phase1" / "checkpoints" / "last.ckpt"


def test_finetune_freezes_encoder_bn_and_trains_decoder_bn(tmp_path, train_config):
    phase1 = _tiny_phase1_checkpoint(train_config, tmp_path)
    p1 = torch.load(phase1, map_location="cpu", weights_only=True)["state_dict"]
    out = tmp_path / "phase2"
    cfg = train_config.compose(
        [
            "+experiment=smoke",
            "model.finetune=true",
            f"model.init_from={phase1}",
            "model.lr=5e-5",
            "trainer.max_steps=3",
        ],
        out,
    )
    train(cfg)
    p2 = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    enc_bn = [k for k in p1 if k.startswith("net.encoder.") and ".bn." in k and "num_batches" not in k]
    dec_bn = [k for k in p1 if k.startswith("net.decoder.") and ".bn." in k and "num_batches" not in k]
    assert enc_bn and dec_bn
    for k in enc_bn:
        assert torch.equal(p1[k], p2[k]), f"encoder BN {k} changed during fine-tuning"
    assert any("running_mean" in k and not torch.equal(p1[k], p2[k]) for k in dec_bn)
    assert any(k.endswith("bn.weight") and not torch.equal(p1[k], p2[k]) for k in dec_bn)
    # phase 2 starts from phase-1 weights: an encoder conv weight moved only by the fine-tuning steps
    conv = "net.encoder.0.conv.weight"
    assert (p2[conv] - p1[conv]).abs().max() < 0.05


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_nonfinite_batch_follows_policy(policy, tmp_path, monkeypatch, train_config):
    from inpaint.training.module import InpaintingModule, NonFiniteLossError

    original = InpaintingModule.training_step

    def poisoned(self, batch, batch_idx):
        if self.global_step == 1:
            batch = {**batch, "image": batch["image"].clone()}
            batch["image"][0, 0, 0, 0] = float("nan")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(InpaintingModule, "training_step", poisoned)
    cfg = train_config.compose(
        ["+experiment=smoke", "trainer.max_steps=3", f"model.nonfinite_loss={policy}"], tmp_path
    )
    if policy == "skip":
        metrics = train(cfg)
        assert metrics["train/nonfinite_skipped"] == 1.0
        ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        weights = [v for k, v in ckpt["state_dict"].items() if k.startswith("net.") and v.is_floating_point()]
        assert all(torch.isfinite(w).all() for w in weights)
        assert ckpt["nonfinite_skipped"] == 1
    else:
        with pytest.raises(NonFiniteLossError, match="non-finite loss or gradients at global step 1"):
            train(cfg)
        assert (tmp_path / "checkpoints" / "nonfinite.ckpt").is_file()


def _poison_first_micro_batch(monkeypatch, step: int) -> None:
    """NaN in the first micro-batch (an even batch index) of optimiser step ``step``."""
    from inpaint.training.module import InpaintingModule

    original = InpaintingModule.training_step

    def poisoned(self, batch, batch_idx):
        if self.global_step == step and batch_idx % 2 == 0:
            batch = {**batch, "image": batch["image"].clone()}
            batch["image"][0, 0, 0, 0] = float("nan")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(InpaintingModule, "training_step", poisoned)


def test_nan_in_the_first_of_accumulated_micro_batches_leaves_batchnorm_finite(
    tmp_path, monkeypatch, train_config
):
    """Gradient accumulation: the whole optimiser step is skipped and BatchNorm goes back to its state before the
    step's first micro-batch (restoring only the last micro-batch's update would keep the NaN for good)."""
    _poison_first_micro_batch(monkeypatch, step=1)
    cfg = train_config.compose(
        ["+experiment=smoke", "trainer.max_steps=3", "trainer.accumulate_grad_batches=2"], tmp_path
    )
    metrics = train(cfg)
    assert metrics["train/nonfinite_skipped"] == 1.0
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    stats = {k: v for k, v in ckpt["state_dict"].items() if "running_" in k}
    assert stats and all(v.isfinite().all() for v in stats.values())
    assert math.isfinite(metrics["val/psnr"])


def test_fp16_loss_scale_overflows_are_not_non_finite_batches(tmp_path, train_config):
    """fp16-mixed: gradients that overflow the loss scale are the scaler's business (it skips the step and lowers
    the scale); they are not counted, and do not stop a run under nonfinite_loss=stop."""
    cfg = train_config.compose(
        [
            "+experiment=smoke",
            "trainer.max_steps=4",
            "trainer.limit_val_batches=0",
            "trainer.precision=null",
            "model.nonfinite_loss=stop",
        ],
        tmp_path,
    )
    # fp16 with a gradient scaler as on a GPU (Lightning gives the CPU none), starting at a scale of 2^40: the first
    # steps overflow for sure, and the scaler halves the scale until they fit.
    scaler = {"_target_": "torch.amp.GradScaler", "device": "cpu", "init_scale": 2.0**40}
    precision = {"_target_": "pytorch_lightning.plugins.precision.MixedPrecision", "precision": "16-mixed"}
    with open_dict(cfg):
        cfg.trainer.plugins.append({**precision, "device": "cpu", "scaler": scaler})
    metrics = train(cfg)
    assert metrics["train/nonfinite_skipped"] == 0.0
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["MixedPrecision"]["scale"] < 2.0**40  # the overflows did happen
    stats = [v for k, v in ckpt["state_dict"].items() if k.endswith("running_mean")]
    assert any(v.abs().sum() > 0 for v in stats), (
        "the BatchNorm updates of the overflowing steps were thrown away"
    )


def test_an_integer_validation_limit_under_ddp_is_refused(tmp_path, train_config):
    """limit_val_batches counts batches per device: under DDP the validation set would depend on the world size."""
    from inpaint.training.run import ConfigError

    cfg = train_config.compose(
        ["+experiment=smoke", "trainer=ddp_cpu", "trainer.limit_val_batches=2"], tmp_path
    )
    with pytest.raises(ConfigError, match="data.limit_val"):
        train(cfg)


def test_training_stores_the_configured_options_in_every_checkpoint(tmp_path, train_config):
    from inpaint.inference import InferenceOptions, Inpainter

    cfg = train_config.compose(
        ["+experiment=smoke", "trainer.max_steps=4", "model.inference={self_ensemble:2,poisson_blend:0.5}"],
        tmp_path,
    )
    train(cfg)
    for ckpt in (tmp_path / "checkpoints").glob("*.ckpt"):
        assert Inpainter.from_checkpoint(ckpt).options == InferenceOptions(self_ensemble=2, poisson_blend=0.5)


def test_wandb_sweep_command_composes_with_hydra(tmp_path, train_config):
    """Expand each sweep's command the way a W&B agent does and compose the resulting overrides."""
    for sweep_file in sorted((CONF_DIR / "sweeps").glob("*.yaml")):
        sweep = yaml.safe_load(sweep_file.read_text())
        assert sweep["metric"]["name"] == "val/psnr"
        params = {}
        for name, spec in sweep["parameters"].items():
            params[name] = spec["values"][0] if "values" in spec else spec["min"]
        args = [f"{k}={v}" for k, v in params.items()]
        cmd = []
        for part in sweep["command"]:
            if part == "${args_no_hyphens}":
                cmd.extend(args)
            elif part not in ("${env}", "${interpreter}"):
                cmd.append(part)
        assert cmd[:3] == ["python", "-m", "inpaint.train"]
        cfg = train_config.compose([*cmd[3:], "data.root=/x"], tmp_path)
        for k, v in params.items():
            node = cfg
            for part in k.split("."):
                node = node[part]
            assert node == pytest.approx(v), (sweep_file.name, k)
        assert "wandb" in cfg.logger


def test_slurm_launcher_config_composes(tmp_path):
    with __import__("hydra").initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = __import__("hydra").compose(
            "train", overrides=["hydra/launcher=slurm", "trainer=multinode"], return_hydra_config=True
        )
    assert "submitit" in cfg.hydra.launcher._target_.lower()
    assert cfg.hydra.launcher.tasks_per_node == cfg.trainer.devices


@pytest.mark.slow
def test_ddp_cpu_two_ranks_identical_weights_disjoint_data(tmp_path, train_config, train_cli, fake_data):
    root = fake_data.places2(tmp_path / "data", n_train=16, n_val=2)
    out = tmp_path / "run"
    proc = train_cli.run(
        [
            "+experiment=places2",
            *[o for o in train_config.TINY if not o.startswith("trainer=")],
            "loss=l1",
            "trainer=ddp_cpu",
            "data.holdout_fraction=0.35",
            "trainer.max_steps=3",
            "trainer.val_check_interval=3",
            f"data.root={root}",
            "+callbacks.audit._target_=tests.training.doubles.DistributedAudit",
            f"hydra.run.dir={out}",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads((out / "audit" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in records)
    assert records[0]["net_sha256"] == records[1]["net_sha256"], "ranks ended with different weights"
    keys0, keys1 = records[0]["keys"], records[1]["keys"]
    assert keys0 and keys1
    assert not set(keys0) & set(keys1), "the two ranks trained on the same samples"
    # one output directory for the run, not one per rank
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not list(tmp_path.glob("outputs/**/checkpoints"))


def _ddp_args(train_config, root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "+experiment=places2",
        *[o for o in train_config.TINY if not o.startswith("trainer=")],
        "loss=l1",
        "trainer=ddp_cpu",
        "data.holdout_fraction=0.35",
        "trainer.val_check_interval=1000",
        "callbacks.image_grids.every_n_steps=0",
        f"data.root={root}",
        "+callbacks.audit._target_=tests.training.doubles.DistributedAudit",
        f"hydra.run.dir={out}",
        *extra,
    ]


@pytest.mark.slow
def test_ddp_nonfinite_batch_on_one_rank_is_skipped_on_every_rank(
    tmp_path, train_cli, fake_data, train_config
):
    """A NaN on rank 1 only: both ranks skip that step (no crash, no hang), BN statistics stay finite, and the
    ranks end with identical, finite weights; the skip is counted."""
    root = fake_data.places2(tmp_path / "data", n_train=16, n_val=2)
    out = tmp_path / "run"
    proc = train_cli.run(
        _ddp_args(
            train_config,
            root,
            out,
            "trainer.max_steps=4",
            "trainer.val_check_interval=4",
            "+callbacks.poison._target_=tests.training.doubles.PoisonBatch",
        ),
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # validation split between the 2 ranks without repeated samples: the per-bin counts add up to the image count
    from inpaint.data.sources import build_records

    n_val = len(build_records({"source": "places2", "root": str(root), "holdout_fraction": 0.35}, "holdout"))
    assert n_val % 2 == 1, "an odd count is what the default DistributedSampler would pad"
    counts = [float(r["val/count"]) for r in _csv_metrics(out) if r.get("val/count")]
    assert counts == [float(n_val)], counts
    records = [json.loads((out / "audit" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert records[0]["net_sha256"] == records[1]["net_sha256"], "ranks diverged after the skipped batch"
    assert all(r["net_finite"] and r["nonfinite_skipped"] == 1 and r["global_step"] == 4 for r in records)
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert all(v.float().isfinite().all() for k, v in ckpt["state_dict"].items() if "running_" in k)


@pytest.mark.slow
def test_ddp_preemption_signal_on_one_rank_stops_every_rank_cleanly(
    tmp_path, train_cli, fake_data, train_config
):
    root = fake_data.places2(tmp_path / "data", n_train=16, n_val=2)
    out = tmp_path / "run"
    proc = train_cli.run(
        _ddp_args(
            train_config,
            root,
            out,
            "trainer.max_steps=200",
            "callbacks.preemption.check_every_n_steps=1",
            "+callbacks.signal._target_=tests.training.doubles.SignalRank",
        ),
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads((out / "audit" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert (
        records[0]["global_step"] == records[1]["global_step"] == 3
    )  # signalled in step 3, stopped after it
    assert records[0]["net_sha256"] == records[1]["net_sha256"]
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3


@pytest.mark.slow
def test_sigterm_saves_checkpoint_and_resume_continues(tmp_path, train_cli):
    out = tmp_path / "run"
    args = [
        "+experiment=smoke",
        "trainer.max_steps=400",
        "trainer.val_check_interval=1000",
        "callbacks.image_grids.every_n_steps=0",
        "callbacks.model_checkpoint.monitor=null",
        f"hydra.run.dir={out}",
    ]
    env = {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inpaint.train", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**__import__("os").environ, **env},
    )
    metrics_csv = out / "csv" / "metrics.csv"
    deadline = time.time() + 240
    while time.time() < deadline:
        if metrics_csv.exists() and metrics_csv.read_text().count("\n") > 4:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    assert proc.poll() is None, (
        "training ended before it could be interrupted:\n" + proc.stdout.read()[-3000:]
    )
    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log[-3000:]
    ckpt_path = out / "checkpoints" / "last.ckpt"
    assert ckpt_path.is_file(), log[-3000:]
    step = torch.load(ckpt_path, map_location="cpu", weights_only=True)["global_step"]
    assert 0 < step < 400

    resumed = train_cli.run(
        [
            *args[:-1],
            "trainer.max_steps=" + str(step + 3),
            f"ckpt_path={ckpt_path}",
            f"hydra.run.dir={tmp_path / 'resumed'}",
        ],
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    final = torch.load(
        tmp_path / "resumed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert final["global_step"] == step + 3


@pytest.mark.slow
def test_mid_epoch_resume_continues_with_the_samples_the_interrupted_run_had_not_seen(tmp_path, train_cli):
    """8 batches per epoch; preempted after 5 and resumed to 8: the two runs together see exactly the samples, in the
    order, of one uninterrupted run (no replay of the epoch's start, no lost tail)."""
    common = [
        "+experiment=smoke",
        "data.samples_per_epoch=32",
        "data.batch_size=4",
        "trainer.val_check_interval=1000",
        "callbacks.image_grids.every_n_steps=0",
        "+callbacks.audit._target_=tests.training.doubles.DistributedAudit",
    ]

    def run(name: str, steps: int, *extra: str) -> list[str]:
        out = tmp_path / name
        proc = train_cli.run(
            [*common, f"trainer.max_steps={steps}", f"hydra.run.dir={out}", *extra], cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads((out / "audit" / "rank0.json").read_text())["mask_keys"]

    whole = run("whole", 8)
    first = run(
        "first",
        8,
        "+callbacks.signal._target_=tests.training.doubles.SignalRank",
        "+callbacks.signal.rank=0",
        "+callbacks.signal.step=4",
    )  # signalled in step 5: checkpoint and stop after it
    rest = run("rest", 8, f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}")
    assert len(whole) == 32 and first == whole[:20]
    assert rest == whole[20:], "the resumed run did not continue the interrupted epoch where it stopped"


@pytest.mark.slow
def test_multirun_with_wandb_offline_writes_two_runs_in_one_group(tmp_path, train_cli):
    proc = train_cli.run(
        [
            "--multirun",
            "+experiment=smoke",
            "trainer.max_steps=4",
            "model.lr=1e-3,5e-4",
            "logger=wandb",
            "logger.wandb.group=test-group",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = sorted((tmp_path / "sweep").glob("*/wandb/offline-run-*"))
    assert len(runs) == 2, runs
    groups = {_wandb_run_group(r) for r in runs}
    assert groups == {"test-group"}


def _wandb_run_group(run_dir: Path) -> str:
    """The run's group, read from its offline .wandb log (protobuf records; wandb 0.31 ships no public reader)."""
    (path,) = run_dir.glob("*.wandb")
    data = path.read_bytes()
    return "test-group" if b"test-group" in data else "<group not found>"


def test_optuna_search_composes(tmp_path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=["+experiment=smoke", "hparams_search=optuna"], return_hydra_config=True
        )
    assert "optuna" in cfg.hydra.sweeper._target_.lower()
    assert cfg.hydra.sweeper.direction == "maximize"
    assert cfg.optimized_metric == "val/psnr"
    assert "model.lr" in cfg.hydra.sweeper.params


def test_ckpt_path_last_without_a_run_to_resume_is_a_clear_error(tmp_path, train_config):
    from inpaint.training import ConfigError

    cfg = train_config.compose(["+experiment=smoke", "ckpt_path=last"], tmp_path / "runs" / "fresh")
    with pytest.raises(ConfigError, match=r"ckpt_path=last: no .*fresh/checkpoints/last.ckpt and no"):
        train(cfg)
    cfg = train_config.compose(
        ["+experiment=smoke", "ckpt_path=/no/such/file.ckpt"], tmp_path / "runs" / "fresh"
    )
    with pytest.raises(ConfigError, match="no such checkpoint file"):
        train(cfg)


def test_ckpt_path_last_resumes_the_newest_run_of_the_task(tmp_path, train_config):
    train(train_config.compose(["+experiment=smoke", "trainer.max_steps=2"], tmp_path / "runs" / "a"))
    metrics = train(
        train_config.compose(
            ["+experiment=smoke", "trainer.max_steps=4", "ckpt_path=last"], tmp_path / "runs" / "b"
        )
    )
    ckpt = torch.load(
        tmp_path / "runs" / "b" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert ckpt["global_step"] == 4  # continued from a's step 2, not a fresh run of 4 steps
    assert math.isfinite(metrics["val/psnr"])
    info = yaml.safe_load((tmp_path / "runs" / "b" / "run_info.yaml").read_text())
    assert (
        info["resumed_from"].endswith("a/checkpoints/last.ckpt")
        and info["vgg_source_before_resume"] == "none"
    )


def test_diverged_run_stops_with_a_checkpoint_and_keeps_no_nan_best(tmp_path, train_config):
    from inpaint.training.module import NonFiniteLossError

    cfg = train_config.compose(
        ["+experiment=smoke", "model.lr=1e12", "model.max_nonfinite_in_a_row=5", "trainer.max_steps=40"],
        tmp_path,
    )
    with pytest.raises(NonFiniteLossError, match="5 non-finite batches in a row"):
        train(cfg)
    ckpt = torch.load(tmp_path / "checkpoints" / "nonfinite.ckpt", map_location="cpu", weights_only=True)
    assert all(v.float().isfinite().all() for k, v in ckpt["state_dict"].items() if k.startswith("net."))
    assert not [p.name for p in (tmp_path / "checkpoints").glob("*psnrnan*")]


def _junk_checkpoint(folder: Path) -> str:
    path = folder / "junk.ckpt"
    path.write_bytes(bytes(range(256)) * 8)
    return f"ckpt_path={path}"


def _pickle_payload(folder: Path) -> str:
    """A checkpoint that would run a command when unpickled (it must never be)."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {folder / 'pwned'}",))

    path = folder / "payload.ckpt"
    path.write_bytes(pickle.dumps(Payload()))
    return f"ckpt_path={path}"


def _places2_without_holdout(folder: Path) -> str:
    """A real Places2 layout so small that the default hash hold-out (0.2 %) selects none of its images."""
    import numpy as np
    from PIL import Image

    images = folder / "places" / "data_256" / "a" / "airfield"
    images.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(images / f"{i + 1:08d}.jpg")
    lines = "".join(f"/a/airfield/{i + 1:08d}.jpg 0\n" for i in range(3))
    (folder / "places" / "places365_train_standard.txt").write_text(lines)
    return f"data.root={folder / 'places'}"


# An ordinary mistake each, and the words the one-line answer must hold.
MISTAKES = {
    "trainer_type": (lambda d: "trainer.max_steps=abc", ["trainer.max_steps must be int, got 'abc'"]),
    "model_type": (lambda d: "model.lr=abc", ["model.lr must be float, got 'abc'"]),
    "batch_size": (lambda d: "data.batch_size=0", ["data.batch_size must be at least 1, got 0"]),
    "junk_ckpt": (_junk_checkpoint, ["cannot read checkpoint", "junk.ckpt", "expected a Lightning .ckpt"]),
    "pickle_ckpt": (_pickle_payload, ["payload.ckpt", "pickle"]),
    "no_root": (lambda d: "data=places2", ["places2: no root given", "data.root"]),
    "no_holdout": (
        _places2_without_holdout,
        ["data.holdout_fraction=0.002 of the 3 train images", "raise data"],
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_ordinary_mistakes_fail_with_one_clear_line(mistake, tmp_path, train_cli):
    make, words = MISTAKES[mistake]
    extra = ["data=places2"] if mistake == "no_holdout" else []
    proc = train_cli.run(
        [
            "+experiment=smoke",
            *extra,
            make(tmp_path),
            "print_config=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        env={"PLACES2_ROOT": ""} if mistake == "no_root" else None,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "weights_only=False" not in out, out[-3000:]
    errors = [line for line in out.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and all(w in errors[0] for w in words), errors or out[-3000:]
    assert not (tmp_path / "pwned").exists()


def test_hydra_full_error_shows_the_trace_for_developers(tmp_path, train_cli):
    proc = train_cli.run(
        ["+experiment=smoke", "data.batch_size=0", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_a_full_disk_during_training_is_one_line_and_keeps_the_last_checkpoint(tmp_path, train_cli):
    """The run directory on a small real disk (tmpfs): the first validation's two checkpoints fit, the next does
    not; the run stops with one line naming the folder, and the earlier last.ckpt is intact."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root (to mount a small tmpfs)")
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=140m", "tmpfs", str(disk)], capture_output=True
    )
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        run_dir = disk / "run"
        proc = train_cli.run(
            [
                "+experiment=smoke",
                "model.net.base_channels=64",  # the checkpoint size the 140 MB disk is sized for
                "trainer.max_steps=12",
                "print_config=false",
                f"hydra.run.dir={run_dir}",
            ],
            cwd=tmp_path,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out[-3000:]
        assert "Traceback" not in out and "enforce fail" not in out, out[-3000:]
        assert f"no space left on {run_dir / 'checkpoints'}" in out
        ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert ckpt["global_step"] == 4
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


RUN_CONSOLES = {
    "smoke": (["+experiment=smoke"], "step 8/8"),
    "ddp_cpu": (["+experiment=smoke", "trainer=ddp_cpu"], "step 8/8"),  # 2 ranks
    "demo": (
        ["trainer.max_steps=4", "trainer.val_check_interval=2", "data.val_repeats=6"],
        "step 4/4",
    ),  # make train's config, shortened
}


@pytest.mark.parametrize("run", sorted(RUN_CONSOLES))
def test_a_run_says_what_matters_without_lightning_noise(run, tmp_path, train_cli):
    """A run's console: a step-bound progress bar, no warning the user cannot act on (Lightning's tips, its DDP
    sync_dist advice for metrics that are synced, srun, W&B's retired setting, ...), no 0-skip lines."""
    from inpaint.training.run import QUIET_WARNINGS

    args, bar = RUN_CONSOLES[run]
    proc = train_cli.run([*args, "print_config=false", f"hydra.run.dir={tmp_path}"], cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert bar in out and "/-2" not in out
    assert "skipped 0 unreadable" not in out
    assert "Tip:" not in out and "litlogger" not in out  # Lightning's advertisement for its cloud logger
    assert "Total FLOPs: 0" not in out
    import re

    assert not [p for p in QUIET_WARNINGS if re.search(p, out)]
    assert not [line for line in out.splitlines() if re.search("(?i)warn", line)]


@pytest.mark.slow
def test_optuna_study_with_runs_shorter_than_one_validation_interval(tmp_path, train_cli):
    proc = train_cli.run(
        [
            "--multirun",
            "+experiment=smoke",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "trainer.max_steps=2",
            "trainer.val_check_interval=1000",
            "callbacks.image_grids.every_n_steps=0",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "was not logged" not in out
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert math.isfinite(float(results["best_value"]))


def test_places2_sweep_reads_the_dataset_root_from_the_environment(tmp_path, monkeypatch, train_config):
    monkeypatch.setenv("PLACES2_ROOT", "/data/places365")
    cfg = train_config.compose(["+experiment=places2"], tmp_path)
    assert cfg.data.root == "/data/places365"
