"""Readers for the NVIDIA Irregular Mask Dataset (Liu et al., 2018): raw training masks and binned test masks.

Both releases are plain folders of PNGs: the training release (55,116 raw masks, e.g.
``irregular_mask/disocclusion_img_mask/*.png``) and the testing release (12,000 masks at 512², e.g.
``mask/testing_mask_dataset/*.png``). Releases and mirrors disagree on polarity, so it is detected (a file whose
white area exceeds 60 % is taken to be inverted, as no NVIDIA test mask has more than 60 % holes; the majority of a
probe of files decides for the whole folder) or set explicitly with ``polarity``.

Files use the user-facing convention only at this boundary; everything returned is 1 = valid, 0 = hole.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inpaint.data.imageio import ImageDecodeError, read_binary_image
from inpaint.data.masks.generators import MaskSampler, mask_hole_ratio, resize_mask_nearest
from inpaint.data.masks.ratio import BIN_NAMES, HOLE_RATIO_BINS

log = logging.getLogger(__name__)

POLARITIES = ("auto", "white_hole", "black_hole")
# Polarity detection: a file more than this fraction white draws its holes in black (white is the valid region).
# NVIDIA's test masks cover at most 60 % of the image (the six bins end at 0.6), so a mask that is mostly white
# cannot be white holes. See docs/data.md#masks.
INVERTED_THRESHOLD = 0.6

# Folder names of the releases as unpacked from NVIDIA's archives (and common mirrors); searched under ``root``.
TRAIN_SUBDIRS = ("irregular_mask/disocclusion_img_mask", "disocclusion_img_mask", "irregular_mask", "train")
TEST_SUBDIRS = ("mask/testing_mask_dataset", "testing_mask_dataset", "test_mask", "mask", "test")


class MaskLayoutError(FileNotFoundError):
    """A mask folder is missing or does not look like the expected release."""


def list_mask_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Sorted PNG files directly inside ``folder`` (the NVIDIA releases are flat)."""
    folder = Path(folder)
    with os.scandir(folder) as it:
        files = [Path(e.path) for e in it if e.is_file() and e.name.lower().endswith(".png")]
    return sorted(files)


def find_mask_folder(root: str | os.PathLike[str], subdirs: Sequence[str], what: str) -> Path:
    """``root`` itself if it holds PNGs, else the first of ``subdirs`` under it that does.

    Raises:
        MaskLayoutError: naming every place that was searched.
    """
    root = Path(os.path.expanduser(str(root)))
    if not root.is_dir():
        raise MaskLayoutError(f"{what}: mask root {root} does not exist (expected a folder of PNG masks)")
    for cand in (root, *(root / s for s in subdirs)):
        if cand.is_dir() and list_mask_files(cand):
            return cand
    searched = ", ".join(str(root / s) for s in ("", *subdirs))
    raise MaskLayoutError(f"{what}: no *.png masks found in any of: {searched}")


def white_fraction(path: str | os.PathLike[str]) -> float:
    """Fraction of white (nonzero) pixels of a mask file."""
    return float(read_binary_image(path).mean())


def detect_polarity(files: Sequence[Path], probe: int = 64) -> str:
    """Decide ``"white_hole"`` or ``"black_hole"`` for a folder from up to ``probe`` evenly spaced files.

    A file with more than 60 % white pixels votes "inverted" (black = hole). Logs the decision, and a warning when the
    vote is not clear-cut.
    """
    if not files:
        raise MaskLayoutError("cannot detect mask polarity of an empty file list")
    idx = np.unique(np.linspace(0, len(files) - 1, num=min(probe, len(files))).round().astype(int))
    fractions = [white_fraction(files[i]) for i in idx]
    inverted = float(np.mean([f > INVERTED_THRESHOLD for f in fractions]))
    polarity = "black_hole" if inverted > 0.5 else "white_hole"
    msg = "mask polarity of %s: %s (%.0f%% of %d probed files are > %.0f%% white)"
    args = (files[0].parent, polarity, 100 * inverted, len(idx), 100 * INVERTED_THRESHOLD)
    if 0.4 <= inverted <= 0.6:
        log.warning(msg + "; ambiguous, set polarity explicitly", *args)
    else:
        log.info(msg, *args)
    return polarity


def load_mask_file(path: str | os.PathLike[str], polarity: str) -> np.ndarray:
    """Read a mask PNG in the given file polarity and return (H, W) float32, 1 = valid, 0 = hole.

    Args:
        path: mask file.
        polarity: ``"white_hole"`` (nonzero = hole, the user-facing convention) or ``"black_hole"``.
    """
    if polarity not in ("white_hole", "black_hole"):
        raise ValueError(f"polarity must be 'white_hole' or 'black_hole' here, got {polarity!r}")
    white = read_binary_image(path)
    valid = ~white if polarity == "white_hole" else white
    return valid.astype(np.float32)


def _resolve_polarity(polarity: str, files: Sequence[Path]) -> str:
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    return detect_polarity(files) if polarity == "auto" else polarity


class NvidiaTrainMasks(MaskSampler):
    """Raw NVIDIA training masks with the paper's on-the-fly augmentation, as a :class:`MaskSampler`.

    Per sample: a random file; holes dilated with a random elliptical kernel (size from ``dilation``, odd, 1 = none);
    rotated by a random angle in ``[-rotation, rotation]`` degrees; a random square crop whose side is a fraction
    ``scale`` of the shorter side, resized (nearest) to the output size; random horizontal/vertical flips. All
    geometric steps use nearest-neighbour interpolation, so the result is binary. With a hole-ratio range, up to
    ``max_tries`` draws are made and the first one in range is used (otherwise the last, with a warning).

    Args:
        root: folder with the masks, or a folder containing one of :data:`TRAIN_SUBDIRS`.
        polarity: ``"auto"``, ``"white_hole"`` or ``"black_hole"`` for the files.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        polarity: str = "auto",
        dilation: tuple[int, int] = (1, 9),
        rotation: float = 180.0,
        scale: tuple[float, float] = (0.5, 1.0),
        flip: bool = True,
        min_hole_ratio: float = 0.0,
        max_hole_ratio: float = 1.0,
        max_tries: int = 20,
    ) -> None:
        self.folder = find_mask_folder(root, TRAIN_SUBDIRS, "NVIDIA training masks")
        self.files = list_mask_files(self.folder)
        self.polarity = _resolve_polarity(polarity, self.files)
        if not (1 <= dilation[0] <= dilation[1]):
            raise ValueError(f"dilation must be a range 1 <= low <= high, got {dilation}")
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        self.dilation = (int(dilation[0]), int(dilation[1]))
        self.rotation = float(rotation)
        self.scale = (float(scale[0]), float(scale[1]))
        self.flip = bool(flip)
        self.min_hole_ratio = float(min_hole_ratio)
        self.max_hole_ratio = float(max_hole_ratio)
        self.max_tries = int(max_tries)

    def __len__(self) -> int:
        return len(self.files)

    def _holes(self, rng: np.random.Generator) -> np.ndarray:
        """A file's hole map (uint8, 255 = hole); an unreadable file is replaced by the next one, with a warning."""
        start = int(rng.integers(len(self.files)))
        for k in range(min(len(self.files), 50)):
            path = self.files[(start + k) % len(self.files)]
            try:
                valid = load_mask_file(path, self.polarity)
            except ImageDecodeError as err:
                log.warning("skipping unreadable mask: %s", err)
                continue
            return np.where(valid > 0.5, 0, 255).astype(np.uint8)
        raise ImageDecodeError(f"no readable mask among 50 consecutive files from {self.files[start]}")

    def _augment(self, holes: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        lo, hi = self.dilation
        k = int(rng.integers(lo, hi + 1)) | 1  # odd kernel; 1 leaves the mask unchanged
        if k > 1:
            holes = cv2.dilate(holes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        h, w = holes.shape
        if self.rotation > 0:
            angle = float(rng.uniform(-self.rotation, self.rotation))
            mat = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
            holes = cv2.warpAffine(holes, mat, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        side = max(1, round(min(h, w) * float(rng.uniform(*self.scale))))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        holes = holes[y0 : y0 + side, x0 : x0 + side]
        holes = cv2.resize(holes, (width, height), interpolation=cv2.INTER_NEAREST)
        if self.flip and rng.random() < 0.5:
            holes = holes[:, ::-1]
        if self.flip and rng.random() < 0.5:
            holes = holes[::-1, :]
        return np.ascontiguousarray(holes)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """One augmented training mask: (height, width) float32, 1 = valid, 0 = hole."""
        mask = None
        for _ in range(max(1, self.max_tries)):
            mask = (self._augment(self._holes(rng), rng, height, width) == 0).astype(np.float32)
            if self._in_range(mask_hole_ratio(mask)):
                return mask
        assert mask is not None
        log.warning(
            "NVIDIA training mask outside hole ratio range (%.3f, %.3f] after %d tries; using ratio %.4f",
            self.min_hole_ratio,
            self.max_hole_ratio,
            self.max_tries,
            mask_hole_ratio(mask),
        )
        return mask


@dataclass(frozen=True)
class MaskEntry:
    """One fixed mask file: where it is, its hole ratio and NVIDIA bin (-1 = none)."""

    path: Path
    hole_ratio: float
    bin: int


def interleave_bins(entries: Sequence[MaskEntry]) -> list[MaskEntry]:
    """Entries in round-robin order over their bins: the first of each bin, then the second of each, ...

    Releases are stored bin by bin (NVIDIA's 12,000 test masks, ``make_eval_masks`` output), so in file order the
    first few hundred masks all come from the easiest bin. Interleaved, any prefix (``limit_val_batches``,
    ``max_images``) covers every bin. Order within a bin is kept; masks without a bin come last.

    >>> e = [MaskEntry(Path(f"{b}{i}"), 0.0, b) for b in (0, 0, 1, 2) for i in (0,)]
    >>> [(x.bin) for x in interleave_bins(e)]
    [0, 1, 2, 0]
    """
    by_bin: dict[int, list[MaskEntry]] = {}
    for e in entries:
        by_bin.setdefault(e.bin, []).append(e)
    queues = [by_bin[b] for b in sorted(k for k in by_bin if k >= 0)]
    out = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
    return out + by_bin.get(-1, [])


class FixedMaskSet:
    """An ordered, finite set of mask files (NVIDIA test masks or a set written by ``make_eval_masks``).

    Indexing returns masks in the library convention. The order is fixed: round-robin over the hole-ratio bins
    (:func:`interleave_bins`), by file name within a bin, so mask ``i`` is the same on every worker, rank and epoch,
    and the first ``6 k`` masks hold ``k`` of each bin.
    """

    def __init__(self, entries: Sequence[MaskEntry], polarity: str, name: str) -> None:
        if not entries:
            raise MaskLayoutError(f"{name}: no masks selected")
        if polarity not in ("white_hole", "black_hole"):
            raise ValueError(f"polarity must be 'white_hole' or 'black_hole', got {polarity!r}")
        self.entries = interleave_bins(entries)
        self.polarity = polarity
        self.name = name

    def __len__(self) -> int:
        return len(self.entries)

    def array(self, index: int, height: int | None = None, width: int | None = None) -> np.ndarray:
        """Mask ``index % len(self)`` as (H, W) float32, 1 = valid; resized with nearest neighbour if a size is given."""
        entry = self.entries[index % len(self.entries)]
        mask = load_mask_file(entry.path, self.polarity)
        if height is not None and width is not None:
            mask = resize_mask_nearest(mask, height, width)
        return mask

    def __getitem__(self, index: int) -> dict[str, object]:
        """``{"mask": (1, H, W) float tensor 1 = valid, "hole_ratio": float, "bin": int, "key": str}`` at file size."""
        import torch

        if not -len(self) <= index < len(self):
            raise IndexError(f"mask index {index} out of range for {len(self)} masks")
        entry = self.entries[index]
        mask = torch.from_numpy(self.array(index)).unsqueeze(0)
        return {"mask": mask, "hole_ratio": entry.hole_ratio, "bin": entry.bin, "key": str(entry.path)}

    def bins(self) -> dict[str, int]:
        """Number of masks per bin name."""
        counts = {name: 0 for name in BIN_NAMES}
        for e in self.entries:
            if e.bin >= 0:
                counts[BIN_NAMES[e.bin]] += 1
        return counts


def parse_bins(bins: Sequence[int | str] | None) -> list[int]:
    """Bin selection from indices (0..5) or names (``"10-20"``); ``None`` = all six bins."""
    if bins is None:
        return list(range(len(HOLE_RATIO_BINS)))
    out = []
    for b in bins:
        if isinstance(b, str) and not b.lstrip("-").isdigit():
            if b not in BIN_NAMES:
                raise ValueError(f"unknown hole-ratio bin {b!r}; expected one of {BIN_NAMES} or 0..5")
            out.append(BIN_NAMES.index(b))
        else:
            i = int(b)
            if not 0 <= i < len(HOLE_RATIO_BINS):
                raise ValueError(f"hole-ratio bin index must be in 0..{len(HOLE_RATIO_BINS) - 1}, got {i}")
            out.append(i)
    return sorted(set(out))


def _bin_of(ratio: float) -> int:
    from inpaint.data.masks.ratio import hole_ratio_bin

    return int(hole_ratio_bin(ratio))


def load_nvidia_test_masks(
    root: str | os.PathLike[str],
    *,
    bins: Sequence[int | str] | None = None,
    polarity: str = "auto",
    cache: str | os.PathLike[str] | None = None,
    num_threads: int | None = None,
) -> FixedMaskSet:
    """The NVIDIA test masks of the selected hole-ratio bins, in internal polarity.

    Each file's bin comes from its measured hole ratio (not from the file order, whose split per bin is not
    documented). Measuring 12,000 files takes a while, so ``cache`` may name a CSV (``file,hole_ratio``) that is
    read if present and written (atomically) otherwise.

    Args:
        root: the test mask folder, or a folder containing one of :data:`TEST_SUBDIRS`.
        bins: bin indices 0..5 or names like ``"10-20"``; ``None`` = all.
        polarity: ``"auto"`` (detect), ``"white_hole"`` or ``"black_hole"``.
        cache: optional CSV path for the measured hole ratios.
        num_threads: decoding threads (default: CPU count).

    Returns:
        A :class:`FixedMaskSet`; ``set[i]["mask"]`` is (1, 512, 512) float, 1 = valid.
    """
    folder = find_mask_folder(root, TEST_SUBDIRS, "NVIDIA test masks")
    files = list_mask_files(folder)
    pol = _resolve_polarity(polarity, files)
    ratios = _measure_ratios(files, pol, cache, num_threads)
    selected = set(parse_bins(bins))
    entries = []
    for f, r in zip(files, ratios, strict=True):
        b = _bin_of(r)
        if b in selected:
            entries.append(MaskEntry(f, r, b))
    return FixedMaskSet(entries, pol, name=f"NVIDIA test masks in {folder}")


def _measure_ratios(
    files: Sequence[Path], polarity: str, cache: str | os.PathLike[str] | None, num_threads: int | None
) -> list[float]:
    if cache is not None and Path(cache).is_file():
        with open(cache, newline="") as fh:
            table = {row["file"]: float(row["hole_ratio"]) for row in csv.DictReader(fh)}
        if all(f.name in table for f in files):
            return [table[f.name] for f in files]
        log.warning("hole-ratio cache %s does not cover %s; measuring again", cache, files[0].parent)

    def one(path: Path) -> float:
        return mask_hole_ratio(load_mask_file(path, polarity))

    log.info("measuring hole ratios of %d masks in %s", len(files), files[0].parent)
    with ThreadPoolExecutor(max_workers=num_threads or os.cpu_count() or 1) as pool:
        ratios = list(pool.map(one, files))
    if cache is not None:
        cache = Path(cache)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "hole_ratio"])
            w.writerows((f.name, f"{r:.6f}") for f, r in zip(files, ratios, strict=True))
        os.replace(tmp, cache)
    return ratios
