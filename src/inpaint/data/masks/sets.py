"""Fixed evaluation mask sets: write N seeded masks per NVIDIA hole-ratio bin, and read them (or NVIDIA's) back.

On disk a set is ``<out>/<bin name>/<bin name>_<i>.png`` (user-facing polarity: white = hole) plus ``index.csv``
with columns ``file`` (relative path), ``bin`` (0..5), ``bin_name``, ``hole_ratio``, ``seed``, ``index``. Mask
``(bin b, index i)`` is a pure function of ``(seed, b, i)``, so two users with the same arguments get the same files.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from inpaint.data._rng import rng_for
from inpaint.data.masks.generators import MaskSampler, mask_hole_ratio
from inpaint.data.masks.nvidia import (
    FixedMaskSet,
    MaskEntry,
    MaskLayoutError,
    parse_bins,
)
from inpaint.data.masks.ratio import BIN_NAMES, HOLE_RATIO_BINS, hole_ratio_bin
from inpaint.io import atomic_output

log = logging.getLogger(__name__)

INDEX_FILE = "index.csv"
INDEX_COLUMNS = ("file", "bin", "bin_name", "hole_ratio", "seed", "index")
_WRITE_TAG = 0x4556414C  # keeps eval-set draws apart from train/val/test streams of the same seed


def binned_mask(
    sampler: MaskSampler,
    bin_index: int,
    height: int,
    width: int,
    key: Sequence[int],
    max_tries: int = 64,
) -> np.ndarray:
    """A mask whose hole ratio lies in NVIDIA bin ``bin_index``: (height, width) float32, 1 = valid.

    Draws with ``rng_for(*key, bin_index, try)`` until the measured bin matches, so the result depends only on the
    arguments (not on worker, rank or call order).

    Raises:
        RuntimeError: no draw landed in the bin within ``max_tries`` (the generator cannot reach it at this size).
    """
    lo, hi = HOLE_RATIO_BINS[bin_index]
    constrained = sampler.with_hole_ratio_range(lo, hi)
    for attempt in range(max_tries):
        mask = constrained.sample(rng_for(*key, bin_index, attempt), height, width)
        if int(hole_ratio_bin(mask_hole_ratio(mask))) == bin_index:
            return mask
    raise RuntimeError(
        f"{type(sampler).__name__} produced no mask in hole-ratio bin {BIN_NAMES[bin_index]} at {height}x{width} "
        f"after {max_tries} tries (key {tuple(key)}); widen the generator's sizes or use a larger image size"
    )


def write_eval_mask_set(
    out_dir: str | os.PathLike[str],
    sampler: MaskSampler,
    *,
    per_bin: int,
    size: int,
    seed: int = 0,
    bins: Sequence[int | str] | None = None,
) -> Path:
    """Write ``per_bin`` masks for each selected NVIDIA bin as PNGs (white = hole) plus ``index.csv``.

    Args:
        out_dir: created if needed; existing files with the same names are replaced.
        sampler: the generator (e.g. from :func:`inpaint.data.build_mask_sampler`).
        per_bin: masks per bin.
        size: square side in pixels.
        seed: base seed.
        bins: subset of bins (indices or names); ``None`` = all six.

    Returns:
        Path of the index file.
    """
    if per_bin < 1 or size < 8:
        raise ValueError(f"need per_bin >= 1 and size >= 8, got per_bin={per_bin}, size={size}")
    out = Path(out_dir)
    rows = []
    for b in parse_bins(bins):
        (out / BIN_NAMES[b]).mkdir(parents=True, exist_ok=True)
        for i in range(per_bin):
            mask = binned_mask(sampler, b, size, size, key=(seed, _WRITE_TAG, i))
            rel = f"{BIN_NAMES[b]}/{BIN_NAMES[b]}_{i:05d}.png"
            ok, buf = cv2.imencode(".png", np.where(mask > 0.5, 0, 255).astype(np.uint8))  # white = hole
            if not ok:
                raise RuntimeError(f"PNG encoding failed for {rel}")
            with atomic_output(out / rel) as tmp:
                tmp.write_bytes(buf.tobytes())
            rows.append((rel, b, BIN_NAMES[b], f"{mask_hole_ratio(mask):.6f}", seed, i))
    index = out / INDEX_FILE
    with atomic_output(index) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(INDEX_COLUMNS)
        w.writerows(rows)
    log.info("wrote %d masks (%d per bin, %dx%d, seed %d) to %s", len(rows), per_bin, size, size, seed, out)
    return index


def load_mask_set(path: str | os.PathLike[str], *, bins: Sequence[int | str] | None = None) -> FixedMaskSet:
    """Read a set written by :func:`write_eval_mask_set` (or ``python -m inpaint.data.masks.make_eval_masks``).

    Args:
        path: the set's folder (containing ``index.csv``) or the index file itself.
        bins: keep only these bins (indices or names); ``None`` = all.

    Returns:
        :class:`FixedMaskSet` in index order; ``set[i]`` gives ``{"mask": (1,H,W) float 1 = valid, "hole_ratio",
        "bin", "key"}`` and ``set.array(i, h, w)`` a resized (H, W) array.
    """
    path = Path(path)
    index = path if path.is_file() else path / INDEX_FILE
    if not index.is_file():
        raise MaskLayoutError(
            f"mask set index not found: expected {index} (columns {', '.join(INDEX_COLUMNS)})"
        )
    selected = set(parse_bins(bins))
    entries = []
    with open(index, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "bin", "hole_ratio"} - set(reader.fieldnames or ())
        if missing:
            raise MaskLayoutError(
                f"{index}: missing columns {sorted(missing)}; expected {', '.join(INDEX_COLUMNS)}"
            )
        for row in reader:
            b = int(row["bin"])
            if b in selected:
                entries.append(MaskEntry(index.parent / row["file"], float(row["hole_ratio"]), b))
    return FixedMaskSet(entries, polarity="white_hole", name=f"mask set {index.parent}")
