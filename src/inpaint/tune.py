"""Choose a checkpoint's inference options on validation and store them in it: ``python -m inpaint.tune
ckpt_path=... [data=... masks=...] [grid.poisson_blend=[0,0.5,1]]`` (a Hydra app over ``conf/tune.yaml``; the work is
:mod:`inpaint.evaluation.tune`)."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import hydra
import torch
from omegaconf import DictConfig

from inpaint.config import CONF_DIR, ConfigError, to_plain

if TYPE_CHECKING:
    from inpaint.inference import InferenceOptions

log = logging.getLogger("inpaint.tune")


def _validation_crops(cfg: DictConfig, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The validation split's (image, mask) batches at crop size ``size``."""
    from inpaint.data import build_datamodule

    data = to_plain(cfg.data, "data config")
    data.update(eval_image_size=int(size), batch_size=int(cfg.batch_size), num_workers=0)
    loader = build_datamodule(data, cfg.masks).val_dataloader()
    return [(b["image"].float(), b["mask"].float()) for b in loader]


def _options_to_try(cfg: DictConfig) -> tuple[list[InferenceOptions], float]:
    """The grid's candidates and the tolerance, checked before any work (a tuning run takes minutes)."""
    from inpaint.evaluation.tune import checked_tolerance, option_grid

    try:
        return option_grid(to_plain(cfg.grid, "grid")), checked_tolerance(cfg.tolerance)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None


def run(cfg: DictConfig) -> str:
    """Score the grid, store the winner; returns the Markdown table that is printed."""
    from inpaint.checkpoint import load_model
    from inpaint.evaluation.tune import choose, ranking_table, score_options, store_inference_options

    candidates, tolerance = _options_to_try(cfg)
    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else cfg.device
    device = "cpu" if device == "auto" else device
    model, _ = load_model(cfg.ckpt_path)
    crops = {f"{s} px": _validation_crops(cfg, s) for s in cfg.eval_image_sizes}
    ranked = score_options(model, crops, candidates, device=device)
    chosen = choose(ranked, tolerance)
    written = store_inference_options(cfg.ckpt_path, chosen.options, cfg.output)
    return f"{ranking_table(ranked, chosen, tolerance)}\n\nStored in {written}: {chosen.options.describe()}"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="tune")
def main(cfg: DictConfig) -> None:
    from inpaint.training.run import user_errors

    try:
        print(run(cfg))
    except user_errors() as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
