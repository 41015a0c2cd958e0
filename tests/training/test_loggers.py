"""inpaint.training.loggers.wandb_logger: never needs a network or an API key."""

from __future__ import annotations

import logging

import pytest

from inpaint.training.loggers import wandb_logger


@pytest.fixture
def no_wandb_credentials(monkeypatch, tmp_path):
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))


def test_without_api_key_logs_offline_with_a_warning(no_wandb_credentials, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="inpaint.training.loggers"):
        logger = wandb_logger(project="p", group="g", save_dir=str(tmp_path), log_model=True)
    assert logger._wandb_init["mode"] == "offline"
    assert logger._wandb_init["group"] == "g"
    assert "OFFLINE" in caplog.text and "log_model" in caplog.text
    assert logger._log_model is False


def test_explicit_mode_wins(no_wandb_credentials, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_logger(save_dir=str(tmp_path))._wandb_init["mode"] == "online"
    assert wandb_logger(save_dir=str(tmp_path), mode="disabled")._wandb_init["mode"] == "disabled"


def test_a_run_directory_continues_its_wandb_run(no_wandb_credentials, tmp_path):
    """A preempted run resumed (or requeued) in its own directory logs to the same W&B run, not a second one."""
    import wandb

    first = wandb_logger(save_dir=str(tmp_path), mode="offline")
    run_id = first.experiment.id
    first.log_metrics({"x": 1.0}, step=0)
    wandb.finish()
    second = wandb_logger(save_dir=str(tmp_path), mode="offline")
    assert second.experiment.id == run_id
    wandb.finish()
    assert wandb_logger(save_dir=str(tmp_path / "other"), mode="offline")._wandb_init.get("id") is None


def test_csv_logger_continues_metrics_and_drops_the_steps_trained_again(tmp_path):
    from inpaint.training.loggers import CSVLogger

    first = CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    for step in range(6):
        first.log_metrics({"train/loss": float(step)}, step=step)
    first.save()
    second = CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    second.continue_from(4)  # the checkpoint was written after step 4; steps 4 and 5 are trained again
    for step in range(4, 7):
        second.log_metrics({"train/loss": 10.0 + step, "val/psnr": 20.0}, step=step)
    second.save()
    import csv

    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4, 5, 6]
    assert [float(r["train/loss"]) for r in rows] == [0, 1, 2, 3, 14, 15, 16]
    assert rows[0]["val/psnr"] == "" and rows[-1]["val/psnr"] == "20.0"  # a new column joins the old rows
