"""Choose a checkpoint's inference options on its validation split, and store them in it.

Each candidate :class:`~inpaint.inference.InferenceOptions` of a grid fills the same validation crops (fixed masks,
every hole-ratio bin, at one or more crop sizes) and is timed doing so. Of the candidates whose mean PSNR of the
composite over all crops is within ``tolerance`` dB of the best, the fastest wins (:func:`choose`): an option that
buys less than that is paid for at every use and seen by nobody. The winner is written into the checkpoint
(``ckpt["inference"]``, or the ``inference`` metadata of an export), so that ``predict``, the page and ``evaluate``
use it unless told otherwise. Only validation images are used: the test split stays untouched by the choice.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inpaint.checkpoint import load_checkpoint, load_model, save_weights
from inpaint.evaluation.metrics import COLOUR_BIAS, hole_colour_bias, psnr_per_image
from inpaint.inference import InferenceOptions, Inpainter
from inpaint.io import atomic_output

__all__ = [
    "Candidate",
    "checked_tolerance",
    "choose",
    "option_grid",
    "ranking_table",
    "score_options",
    "store_inference_options",
]

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]  # image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = valid


def option_grid(values: Mapping[str, Sequence[Any]]) -> list[InferenceOptions]:
    """Every combination of ``values`` (option name -> values to try), without duplicates: combinations that
    differ only in an option that has no effect (``far_fill`` without ``coarse_beyond``) are tried once.

    >>> [o.describe() for o in option_grid({"self_ensemble": [1, 8], "coarse_beyond": [0, 8], "far_fill": ["network", "smooth"]})]
    ['one pass of the network', 'coarse_beyond=8', 'coarse_beyond=8, far_fill=smooth', 'self_ensemble=8', 'self_ensemble=8, coarse_beyond=8', 'self_ensemble=8, coarse_beyond=8, far_fill=smooth']
    """
    names = list(values)
    out: dict[InferenceOptions, None] = {}
    for combo in itertools.product(*(values[n] for n in names)):
        options = InferenceOptions.from_mapping(dict(zip(names, combo, strict=True)), "tuning grid")
        if not options.coarse_beyond:
            options = options.replace(far_fill=InferenceOptions().far_fill)
        out.setdefault(options)
    if not out:
        raise ValueError("grid: no combination to try (an option with an empty list of values)")
    return list(out)


@dataclass(frozen=True)
class Candidate:
    """One candidate's scores: mean PSNR (dB) of the composite per crop set and over all crops, and per crop set
    the mean signed error of each channel (R, G, B) inside the holes in 0-255 levels (a colour cast; not ranked),
    and the seconds it took to fill them all once (after a warm-up batch)."""

    options: InferenceOptions
    psnr: dict[str, float]
    overall: float
    count: int
    colour: dict[str, tuple[float, float, float]]
    seconds: float


def score_options(
    model: torch.nn.Module,
    crops: Mapping[str, Iterable[Batch]],
    candidates: Sequence[InferenceOptions],
    device: str | torch.device = "cpu",
) -> list[Candidate]:
    """Fill (and time) every crop set with every candidate; returns their scores, best (PSNR over all) first.

    Args:
        model: the network (as :func:`inpaint.checkpoint.load_model` returns it).
        crops: crop-set name (e.g. ``"128 px"``) -> batches of validation images and masks.
        candidates: the options to try.
    """
    sets = {name: list(batches) for name, batches in crops.items()}
    first = next((b for batches in sets.values() for b in batches), None)
    scored = []
    for options in candidates:
        inpainter = Inpainter(model, device=device, options=options)
        if first is not None:  # the first call allocates: keep it out of the timing
            inpainter.inpaint_tensor(*first)
        per_set, colour, values = {}, {}, []
        start = time.perf_counter()
        for name, batches in sets.items():
            psnr, bias = _score_set(inpainter, batches)
            per_set[name], colour[name] = float(psnr.mean()), bias
            values.append(psnr)
        seconds = time.perf_counter() - start
        everything = torch.cat(values)
        scored.append(Candidate(options, per_set, float(everything.mean()), len(everything), colour, seconds))
        scores = "  ".join(f"{k}: {v:.2f}" for k, v in per_set.items())
        log.info("%-60s %s  (%.1f s)", options.describe(), scores, seconds)
    return sorted(scored, key=lambda c: c.overall, reverse=True)


SAME_COST = 1.2
"""Timings within this factor of each other count as equal: the spread between runs on a shared machine."""


def checked_tolerance(value: Any) -> float:
    """``value`` as a tolerance in dB: a number >= 0, else a ValueError saying so.

    >>> checked_tolerance("0.05")
    0.05
    """
    try:
        tolerance = float(value)
    except (TypeError, ValueError):
        tolerance = float("nan")
    if not tolerance >= 0:  # also refuses NaN
        raise ValueError(f"tolerance must be a number of dB >= 0, got {value!r}")
    return tolerance


def choose(ranked: Sequence[Candidate], tolerance: float) -> Candidate:
    """The fastest of the candidates whose PSNR over all crops is at most ``tolerance`` dB below the best one's;
    of those about as fast (within :data:`SAME_COST`), the one with the highest PSNR.

    >>> def c(options, psnr, seconds):
    ...     return Candidate(InferenceOptions(**options), {}, psnr, 1, {}, seconds)
    >>> ranked = [c({"self_ensemble": 8}, 28.79, 130.0), c({"poisson_blend": 0.5}, 28.78, 22.0), c({}, 28.77, 20.0)]
    >>> choose(ranked, tolerance=0.05).options.describe()
    'poisson_blend=0.5'
    >>> choose(ranked, tolerance=0.0).options.describe()
    'self_ensemble=8'
    """
    if not ranked:
        raise ValueError("no candidates to choose from: the tuning grid is empty")
    margin = checked_tolerance(tolerance)
    best = max(c.overall for c in ranked)
    good = [c for c in ranked if c.overall >= best - margin]
    fastest = min(c.seconds for c in good)
    return max((c for c in good if c.seconds <= SAME_COST * fastest), key=lambda c: c.overall)


def _score_set(
    inpainter: Inpainter, batches: Sequence[Batch]
) -> tuple[torch.Tensor, tuple[float, float, float]]:
    """Per-image PSNR of the composite, and the mean over images of each channel's signed hole error (levels)."""
    psnr, bias = [], []
    for x, m in batches:
        out = inpainter.inpaint_tensor(x, m).cpu()
        psnr.append(psnr_per_image(out, x.float()))
        per_channel = hole_colour_bias(out, x, m)
        bias.append(torch.stack([per_channel[k] for k in COLOUR_BIAS], dim=1))
    r, g, b = (255.0 * torch.cat(bias).mean(dim=0)).tolist()
    return torch.cat(psnr), (r, g, b)


def ranking_table(ranked: Sequence[Candidate], chosen: Candidate, tolerance: float) -> str:
    """The candidates as a Markdown table: PSNR per crop set and over all, the colour errors, the time; the
    chosen one marked."""
    sets = list(ranked[0].psnr)
    head = (
        f"| options | {' | '.join(sets)} | all ({ranked[0].count} crops) | R, G, B error: {'; '.join(sets)} "
        "| seconds | |"
    )
    rows = []
    for c in ranked:
        psnr = " | ".join(f"{v:.2f}" for v in c.psnr.values())
        colour = "; ".join("{:+.1f}, {:+.1f}, {:+.1f}".format(*c.colour[name]) for name in sets)
        mark = "chosen" if c is chosen else ""
        rows.append(
            f"| {c.options.describe()} | {psnr} | {c.overall:.2f} | {colour} | {c.seconds:.1f} | {mark} |"
        )
    note = (
        "Validation PSNR (dB) of the composite, ranked over all crops; R, G, B error: the mean signed error inside "
        "the holes per channel (0-255 levels; a colour cast), shown, not ranked; seconds: the time to fill every "
        f"crop once. Chosen: the fastest within {tolerance:g} dB of the best (tolerance=...; times within "
        f"{SAME_COST:g}x count as equal, and then the higher PSNR wins)."
    )
    return "\n".join([head, "|---" * (len(sets) + 5) + "|", *rows, "", note])


def store_inference_options(
    checkpoint: str | os.PathLike[str],
    options: InferenceOptions,
    output: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``checkpoint`` (or a copy at ``output``) carrying ``options``; atomic, the rest of the file unchanged
    (a Lightning ``.ckpt`` keeps its optimiser state and can still resume training)."""
    source = Path(checkpoint)
    target = Path(output) if output is not None else source
    ckpt = load_checkpoint(source)
    if ckpt.get("format") is not None:  # an export: tensors + metadata
        model, config = load_model(source)
        return save_weights(target, model, config, options.to_dict())
    ckpt["inference"] = options.to_dict()
    with atomic_output(target) as tmp, open(tmp, "wb") as f:
        torch.save(ckpt, f)
    return target
