"""What ``python -m inpaint.train`` runs: build every object from the composed config, fit, optionally test.

Without an experiment it runs the offline demo (bundled sample photos, small size, CPU). Every object is built from
the config groups in ``conf/``: ``data``, ``masks``, ``model``, ``loss``, ``trainer``, ``logger``, ``callbacks``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from inpaint.checkpoint import load_checkpoint
from inpaint.config import ConfigError, check_arg_types, instantiate_list, print_config_tree, to_plain
from inpaint.io import write_text_atomic
from inpaint.runs import LAST_CHECKPOINT, last_checkpoints
from inpaint.training.callbacks import LoggingStep
from inpaint.training.loggers import CSVLogger
from inpaint.training.preemption import PreemptionCheckpoint, cluster_plugins

log = logging.getLogger("inpaint.train")


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from: a path, ``last``, or none given.

    None given: ``<output_dir>/checkpoints/last.ckpt`` if this run's directory already holds one (a preempted or
    requeued job started again in its own directory continues without a flag; a new directory starts afresh).
    ``last`` means that file too, else the newest ``last.ckpt`` of the other runs of the same task (the sibling
    directories of ``output_dir``), announced in the log. Never a fresh start that looks like a resume.

    Raises:
        ConfigError: the file does not exist, or ``last`` found nothing; the message names where it looked.
    """
    own = output_dir / LAST_CHECKPOINT
    if not ckpt_path:
        if own.is_file():
            log.warning(
                "%s holds a checkpoint: resuming from %s (use a new directory to start afresh)",
                output_dir,
                own,
            )
            return str(own)
        return None
    if str(ckpt_path) != "last":
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path={ckpt_path}: no such checkpoint file")
        return str(ckpt_path)
    if own.is_file():
        return str(own)
    runs = output_dir.parent
    found = last_checkpoints(runs, exclude=output_dir)
    if not found:
        raise ConfigError(
            f"ckpt_path=last: no {own} and no */checkpoints/last.ckpt in {runs}; pass ckpt_path=<file> or "
            "hydra.run.dir=<the run to resume>"
        )
    newest = found[0]
    log.warning("ckpt_path=last: resuming the newest run of this task, %s", newest)
    return str(newest)


# Lightning messages that describe this project's deliberate choices, not problems: the VGG of the loss is always in
# eval mode, the LightningModule (not the DataModule) moves and augments batches, the model summary cannot size bf16,
# a deprecation inside Lightning's own code, a run resumed in its own directory finds its checkpoints there,
# SLURM's `srun` being installed says nothing about this run (under SLURM the cluster environment is used), and the
# evaluation metrics are logged as torchmetrics has already synchronised them across ranks (no sync_dist needed).
QUIET_WARNINGS = (
    r"Found \d+ module\(s\) in eval mode",
    r"You have overridden `on_after_batch_transfer` in `LightningModule`",
    r"Precision .* is not supported by the model summary",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"Checkpoint directory .* exists and is not empty",
    r"The `srun` command is available on your system but is not used",
    r"It is recommended to use `self\.log\('(val|test)/",
)


def _drop_lightning_tips(record: logging.LogRecord) -> bool:
    """Lightning advertises its cloud logger at every fit ("💡 Tip: ... litlogger"); a run's console is for the run."""
    return not str(record.msg).startswith("💡 Tip")


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v.numel() == 1}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg``, fit (and optionally test). Returns the final callback metrics as floats."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    rank_zero_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if _drop_lightning_tips not in rank_zero_log.filters:
        rank_zero_log.addFilter(_drop_lightning_tips)
    output_dir = Path(cfg.paths.output_dir)
    if cfg.model.get("finetune") and not cfg.model.get("init_from") and not cfg.get("ckpt_path"):
        raise ValueError(
            "Fine-tuning (model.finetune=true) starts from phase-1 weights: pass model.init_from=<phase-1 checkpoint> "
            "(or ckpt_path=<a fine-tuning checkpoint> to resume one)."
        )
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    check_arg_types(pl.Trainer.__init__, cfg.trainer, "trainer")
    check_arg_types(_model_class(cfg.model), cfg.model, "model")
    if cfg.print_config:
        print_config_tree(cfg, save_to=output_dir / "config_tree.yaml")
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule, module, trainer = _build(cfg)
    check_validation_size(trainer)
    _record_run_info(cfg, module, trainer, output_dir, ckpt_path)
    try:
        metrics = _run_stages(cfg, datamodule, module, trainer, ckpt_path)
    finally:
        # Close W&B runs so that the next job of a multirun (same process) starts its own run.
        if any(type(lg).__name__ == "WandbLogger" for lg in trainer.loggers):
            import wandb

            wandb.finish()
    if trainer.is_global_zero:
        _print_summary(trainer, output_dir, metrics)
    preemption = _preemption(trainer)
    if preemption is not None:
        preemption.hand_over(trainer)  # the last act: a requeue ends the job
    return metrics


def user_errors() -> tuple[type[BaseException], ...]:
    """What a user's input or machine can cause, each with a message naming the key or file and what was expected:
    ``python -m inpaint.train`` prints these as one line (``HYDRA_FULL_ERROR=1`` shows the trace)."""
    from inpaint.checkpoint import CheckpointError
    from inpaint.data.masks.nvidia import MaskLayoutError
    from inpaint.data.sources import DatasetLayoutError
    from inpaint.losses.vgg import VGGWeightsUnavailableError
    from inpaint.training.checkpoint_io import CheckpointWriteError
    from inpaint.training.module import NonFiniteLossError

    return (
        ConfigError,
        CheckpointError,
        CheckpointWriteError,
        DatasetLayoutError,
        MaskLayoutError,
        NonFiniteLossError,
        VGGWeightsUnavailableError,
    )


def _model_class(model_cfg: DictConfig) -> Any:
    """The constructor the ``model`` group names (its ``_target_``), for checking the values' types."""
    return hydra.utils.get_class(model_cfg._target_).__init__


def _preemption(trainer: pl.Trainer) -> PreemptionCheckpoint | None:
    return next((cb for cb in trainer.callbacks if isinstance(cb, PreemptionCheckpoint)), None)


def check_validation_size(trainer: pl.Trainer) -> None:
    """Refuse a validation set that depends on the number of devices.

    An integer ``trainer.limit_val_batches`` counts batches per device, so under DDP the validation set (and
    ``val/psnr``) would grow with the world size. ``data.limit_val`` (images) is the same on any number of devices.
    """
    limit = trainer.limit_val_batches
    if trainer.world_size > 1 and isinstance(limit, int) and not isinstance(limit, bool) and limit != 0:
        raise ConfigError(
            f"trainer.limit_val_batches={limit} counts batches per device: on {trainer.world_size} devices the "
            "validation set would be that many times larger. Set data.limit_val=<number of images> instead "
            "(and leave trainer.limit_val_batches unset) for a validation set that is the same on any number of "
            "devices."
        )


def _build(cfg: DictConfig) -> tuple[Any, Any, pl.Trainer]:
    """The data module, the LightningModule and the trainer (with its callbacks and loggers) of ``cfg``."""
    from inpaint.data import build_datamodule

    datamodule = build_datamodule(cfg.data, cfg.masks)
    module = hydra.utils.instantiate(cfg.model, loss=to_plain(cfg.loss, "loss config"))
    callbacks = [LoggingStep(), *instantiate_list(cfg.get("callbacks"))]
    loggers = instantiate_list(cfg.get("logger"))
    plugins = [*hydra.utils.instantiate(cfg.trainer.get("plugins") or []), *cluster_plugins()]
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins or None
    )
    return datamodule, module, trainer


def _record_run_info(
    cfg: DictConfig, module: Any, trainer: pl.Trainer, output_dir: Path, ckpt_path: str | None
) -> None:
    """``run_info.yaml`` and every logger's hyper-parameters: the config and what was really used (the VGG source
    can differ from the request under ``imagenet_or_random``; a resumed run was trained so far with its checkpoint's).
    """
    run_info = {"vgg_source": module.vgg_source, "output_dir": str(output_dir), "resumed_from": ckpt_path}
    if ckpt_path:
        checkpoint = load_checkpoint(ckpt_path)  # one clear line for junk, a pickle payload, a truncated file
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                logger.continue_from(int(checkpoint["global_step"]))
        before = checkpoint.get("vgg_source")
        run_info["vgg_source_before_resume"] = before
        if before not in (None, module.vgg_source):
            log.warning(
                "VGG weights differ from the resumed run's: %s until now, %s from here",
                before,
                module.vgg_source,
            )
    if trainer.is_global_zero:
        write_text_atomic(output_dir / "run_info.yaml", OmegaConf.to_yaml(run_info))
    for logger in trainer.loggers:
        logger.log_hyperparams({"config": to_plain(cfg), **run_info})


def _run_stages(
    cfg: DictConfig, datamodule: Any, module: Any, trainer: pl.Trainer, ckpt_path: str | None
) -> dict[str, float]:
    """Validate first (the demo's baseline), fit, validate at the end if a sweeper needs the metric, test."""
    before: dict[str, float] = {}
    after_fit: dict[str, float] = {}
    try:
        if cfg.validate_first and not ckpt_path:
            (results,) = trainer.validate(module, datamodule=datamodule, verbose=False)
            before = {f"before/{k}": float(v) for k, v in results.items()}
        if cfg.train:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            after_fit = _scalars(trainer.callback_metrics)  # a later validate/test replaces callback_metrics
            preemption = _preemption(trainer)
            if preemption is not None and preemption.saved_path is not None:
                return {**after_fit, **before}  # preempted: exit within the scheduler's grace period
            metric = cfg.get("optimized_metric")
            if metric and metric not in trainer.callback_metrics and not trainer.interrupted:
                # A short run can end before its first validation; sweepers need the metric of the final weights.
                trainer.validate(module, datamodule=datamodule, verbose=False)
        if cfg.test:
            ckpt = "best" if cfg.train and trainer.checkpoint_callback else ckpt_path
            if datamodule.test_is_validation and ckpt == "best":
                log.warning(
                    "Testing the checkpoint selected on validation on the same images (data.test_split = val split): "
                    "the test numbers are optimistic."
                )
            trainer.test(module, datamodule=datamodule, ckpt_path=ckpt or None, weights_only=True)
    except SIGTERMException:
        log.warning("Stopped by SIGTERM; see the checkpoint message above. Outputs: %s", cfg.paths.output_dir)
    return {**after_fit, **_scalars(trainer.callback_metrics), **before}


def _print_summary(trainer: pl.Trainer, output_dir: Path, metrics: Mapping[str, float]) -> None:
    ckpt_cb = trainer.checkpoint_callback
    best = getattr(ckpt_cb, "best_model_path", "") if ckpt_cb else ""
    print(f"\nOutputs: {output_dir}")
    if best:
        print(f"Best checkpoint: {best}")
    last = output_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        print(f"Last checkpoint: {last}")
    for prefix, when in (("before/", "before training"), ("", "at the end")):
        if f"{prefix}val/psnr" in metrics:
            print(
                f"Validation {when}: PSNR {metrics[f'{prefix}val/psnr']:.2f} dB, "
                f"SSIM {metrics[f'{prefix}val/ssim']:.4f}, L1 {metrics[f'{prefix}val/l1']:.4f}"
            )
