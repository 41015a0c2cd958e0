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
