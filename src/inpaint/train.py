"""Train the PConv U-Net: ``python -m inpaint.train [+experiment=NAME] [key=value ...]``.

Without an experiment it runs the offline demo (bundled sample photos, small size, CPU). Every object is built from
the config groups in ``conf/``: ``data``, ``masks``, ``model``, ``loss``, ``trainer``, ``logger``, ``callbacks``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from inpaint.hydra_utils import instantiate_list, print_config_tree, run_config, write_text_atomic

log = logging.getLogger("inpaint.train")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg``, fit (and optionally test). Returns the final callback metrics as floats."""
    from inpaint.data import build_datamodule

    output_dir = Path(cfg.paths.output_dir)
    if cfg.model.get("finetune") and not cfg.model.get("init_from") and not cfg.get("ckpt_path"):
        raise ValueError(
            "Fine-tuning (model.finetune=true) starts from phase-1 weights: pass model.init_from=<phase-1 checkpoint> "
            "(or ckpt_path=<a fine-tuning checkpoint> to resume one)."
        )
    if cfg.get("print_config", True):
        print_config_tree(cfg, save_to=output_dir / "config_tree.yaml")
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg.data, cfg.masks)
    module = hydra.utils.instantiate(cfg.model, loss=OmegaConf.to_container(cfg.loss, resolve=True))
    callbacks = instantiate_list(cfg.get("callbacks"))
    loggers = instantiate_list(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    # Record what was really used next to the config (and in every logger): the VGG source can differ from the
    # request under loss.vgg_weights=imagenet_or_random.
    run_info = {"vgg_source": module.vgg_source, "output_dir": str(output_dir)}
    if trainer.is_global_zero:
        write_text_atomic(output_dir / "run_info.yaml", OmegaConf.to_yaml(run_info))
    for logger in trainer.loggers:
        logger.log_hyperparams({"config": run_config(cfg), **run_info})

    before: dict[str, float] = {}
    try:
        if cfg.get("validate_first", False) and not cfg.get("ckpt_path"):
            # A baseline for the demo: the untrained network's validation metrics (logged at step 0).
            (results,) = trainer.validate(module, datamodule=datamodule, verbose=False)
            before = {f"before/{k}": float(v) for k, v in results.items()}
        if cfg.get("train", True):
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        if cfg.get("test", False):
            ckpt = "best" if cfg.get("train", True) and trainer.checkpoint_callback else cfg.get("ckpt_path")
            trainer.test(module, datamodule=datamodule, ckpt_path=ckpt or None)
    except SIGTERMException:
        log.warning("Stopped by SIGTERM; see the checkpoint message above. Outputs: %s", output_dir)
    finally:
        # Close W&B runs so that the next job of a multirun (same process) starts its own run.
        if any(type(lg).__name__ == "WandbLogger" for lg in trainer.loggers):
            import wandb

            wandb.finish()

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    metrics.update(before)
    if trainer.is_global_zero:
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
    return metrics


# Absolute, so console scripts (inpaint-train) and any working directory find the configs.
CONF_DIR = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    from inpaint.module import NonFiniteLossError

    try:
        metrics = train(cfg)
    except NonFiniteLossError as err:
        log.error("%s", err)
        sys.exit(1)
    # The value Hydra sweepers (Optuna) optimise; a single run returns nothing.
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    name = cfg.get("optimized_metric")
    if name and HydraConfig.get().mode == RunMode.MULTIRUN:
        if name not in metrics:
            raise KeyError(f"optimized_metric {name!r} was not logged; available: {sorted(metrics)}")
        return metrics[name]
    return None


if __name__ == "__main__":
    main()
