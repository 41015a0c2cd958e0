"""Evaluation: a model against OpenCV's classical methods on the same images and masks, per hole-ratio bin.

- :func:`evaluate` — the loop (``loop.py``); :class:`EvaluationReport` — tables, CSV/JSON/Markdown, example grids,
  the metrics-per-bin figure (``report.py``); the methods' ids and labels (``methods.py``); image grids and the
  learning curve (``figures.py``); per-image and binned metrics (``metrics.py``); LPIPS / FID
  (``perceptual.py``); the OpenCV baselines (``baselines.py``); the command line ``python -m inpaint.evaluate``
  (``cli.py``).
"""

from inpaint.evaluation.cli import (
    OutputDirError,
    build_eval_loader,
    load_config,
    run,
)
from inpaint.evaluation.figures import image_grid, plot_learning_curve
from inpaint.evaluation.loop import evaluate
from inpaint.evaluation.methods import METHOD_LABELS, MODEL_METHOD
from inpaint.evaluation.report import EvaluationReport, Example, plot_metrics_per_bin

__all__ = [
    "METHOD_LABELS",
    "MODEL_METHOD",
    "EvaluationReport",
    "Example",
    "OutputDirError",
    "build_eval_loader",
    "evaluate",
    "image_grid",
    "load_config",
    "plot_learning_curve",
    "plot_metrics_per_bin",
    "run",
]
