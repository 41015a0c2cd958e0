"""Evaluate a checkpoint: ``python -m inpaint.evaluate ckpt_path=... [data=... masks=...]`` (console script
``inpaint-evaluate``), a Hydra app over ``conf/evaluate.yaml``.

From Python the same is :func:`inpaint.evaluation.evaluate`, also importable from here::

    from inpaint import Inpainter
    from inpaint.evaluate import evaluate

    report = evaluate(Inpainter.from_checkpoint("last.ckpt"), batches)  # batches: (image, mask) or dicts
    report.save("eval/")          # metrics.json, metrics.csv, per_image.csv, metrics.md, examples_*.png
    print(report.to_markdown())
"""

from __future__ import annotations

import logging

from inpaint.config import CONF_DIR
from inpaint.evaluation import (  # noqa: F401 - the names this module has always offered
    METHOD_LABELS,
    MODEL_METHOD,
    EvaluationReport,
    Example,
    build_eval_loader,
    evaluate,
    find_latest_checkpoint,
    load_config,
    plot_metrics_per_bin,
    project_root,
    run,
)

log = logging.getLogger("inpaint.evaluate")


def main() -> None:
    """Console entry point: evaluate, print the Markdown table, exit 1 with one line on a user error."""
    import hydra
    from omegaconf import DictConfig

    from inpaint.checkpoint import CheckpointError
    from inpaint.evaluation import OutputDirError

    def app(cfg: DictConfig) -> None:
        try:
            print(run(cfg).to_markdown())
        except (CheckpointError, FileNotFoundError, OutputDirError) as e:
            log.error("%s", e)  # a user error, not a bug: one clear line instead of Hydra's traceback dump
            raise SystemExit(1) from None

    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")(app)()


if __name__ == "__main__":
    main()
