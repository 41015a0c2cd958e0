"""Train the PConv U-Net: ``python -m inpaint.train [+experiment=NAME] [key=value ...]`` (console script
``inpaint-train``).

Without an experiment it runs the offline demo (bundled photos, 2 CPU cores, ~13 minutes); ``+experiment=places2``
and the others select the paper's settings. The work is done by :func:`inpaint.training.train`; this module is the
Hydra entry point.
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from omegaconf import DictConfig

from inpaint.config import CONF_DIR

log = logging.getLogger("inpaint.train")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train as configured; under ``--multirun`` return ``cfg.optimized_metric`` for the sweeper (Optuna)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from inpaint.training.run import train, user_errors

    try:
        metrics = train(cfg)
    except user_errors() as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error("%s", err)
        sys.exit(1)
    name = cfg.get("optimized_metric")
    if name and HydraConfig.get().mode == RunMode.MULTIRUN:
        if name not in metrics:
            raise KeyError(f"optimized_metric {name!r} was not logged; available: {sorted(metrics)}")
        return metrics[name]
    return None


if __name__ == "__main__":
    main()
