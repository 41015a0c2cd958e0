"""The methods an evaluation compares, by id, with the labels tables, figures and the page show.

A module of its own (no imports) because the report, the figures, the training callbacks and the page all name the
methods, and none of them should depend on another for it.
"""

from __future__ import annotations

__all__ = ["METHOD_LABELS", "MODEL_METHOD"]

MODEL_METHOD = (
    "pconv"  # the model's id in every table; the OpenCV baselines are keyed as in baselines.BASELINES
)
METHOD_LABELS: dict[str, str] = {
    MODEL_METHOD: "PConv U-Net",
    "telea": "Telea (OpenCV)",
    "navier_stokes": "Navier-Stokes (OpenCV)",
    "membrane": "Membrane (border colours only)",
}
