"""Evaluation: a model against OpenCV's classical methods on the same images and masks, per hole-ratio bin.

- :func:`evaluate` — the loop (``loop.py``); :class:`EvaluationReport` — tables, CSV/JSON/Markdown, example grids
  (``report.py``); figures (``figures.py``); per-image and binned metrics (``metrics.py``); LPIPS / FID
  (``perceptual.py``); the OpenCV baselines (``baselines.py``); the command line ``python -m inpaint.evaluate``
  (``cli.py``).
"""

from inpaint.evaluation.cli import (
    OutputDirError,
    build_eval_loader,
    find_latest_checkpoint,
    load_config,
    project_root,
    run,
)
from inpaint.evaluation.figures import image_grid, plot_learning_curve, plot_metrics_per_bin
from inpaint.evaluation.loop import evaluate
from inpaint.evaluation.report import METHOD_LABELS, MODEL_METHOD, EvaluationReport, Example

__all__ = [
    "METHOD_LABELS",
    "MODEL_METHOD",
    "EvaluationReport",
    "Example",
    "OutputDirError",
    "build_eval_loader",
    "evaluate",
    "find_latest_checkpoint",
    "image_grid",
    "load_config",
    "plot_learning_curve",
    "plot_metrics_per_bin",
    "project_root",
    "run",
]
