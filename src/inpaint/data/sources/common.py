"""What every image source shares: the record of one image, the layout error, the splits, and the hold-out by hash.

Sources list files; they do not open them (Places2 lists 1.8 M entries): unreadable images are skipped later, when
they are loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from inpaint.data._rng import stable_hash
from inpaint.data.imageio import IMAGE_EXTENSIONS

SPLITS = ("train", "val", "test")


class ImageRecord(NamedTuple):
    """One image: ``key`` is a stable identifier (relative path), ``path`` the file to read."""

    key: str
    path: str


class DatasetLayoutError(FileNotFoundError):
    """The dataset root is missing or its layout is not the expected one."""


def dataset_root(
    root: str | os.PathLike[str] | None, dataset: str, expected: str, env: str | None = None
) -> Path:
    """The existing folder ``root``, or a DatasetLayoutError naming what was expected there (and ``env``, the
    environment variable the source's config reads the root from)."""
    if root is None or str(root) in ("", "???"):
        how = f"set data.root=... or the {env} environment variable" if env else "set data.root=..."
        raise DatasetLayoutError(f"{dataset}: no root given ({how}); expected {expected}")
    path = Path(os.path.expanduser(str(root)))
    if not path.is_dir():
        raise DatasetLayoutError(f"{dataset}: root {path} does not exist; expected {expected}")
    return path


def first_existing(candidates: Iterable[Path]) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def check_some_exist(records: Sequence[ImageRecord], dataset: str, expected: str, probe: int = 3) -> None:
    """The lists can be right while the images are elsewhere: check a few entries so that layout errors are clear."""
    if not records:
        raise DatasetLayoutError(f"{dataset}: the split is empty; expected {expected}")
    sample = [records[i] for i in sorted({0, len(records) // 2, len(records) - 1})][:probe]
    if not any(os.path.isfile(r.path) for r in sample):
        raise DatasetLayoutError(
            f"{dataset}: listed images are missing (e.g. {sample[0].path}); expected {expected}"
        )


def split_name(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def list_images_flat(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        return sorted(
            Path(e.path) for e in it if e.is_file() and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
        )


def read_list(list_file: Path) -> list[str]:
    with open(list_file) as fh:
        return [line.split()[0] for line in fh if line.strip() and not line.lstrip().startswith("#")]


def resolve_listed(names: Sequence[str], image_dir: Path) -> list[ImageRecord]:
    """List entries may be absolute paths, paths relative to the image folder, or names without an extension."""
    by_stem: dict[str, Path] | None = None
    records = []
    for name in names:
        p = Path(name)
        if p.is_absolute():
            records.append(ImageRecord(p.name, str(p)))
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            records.append(ImageRecord(name, str(image_dir / p)))
            continue
        if by_stem is None:  # only scan the folder when the list uses bare names
            by_stem = {f.stem: f for f in list_images_flat(image_dir)}
        found = by_stem.get(name)
        records.append(ImageRecord(name, str(found) if found else str(image_dir / name)))
    return records


def holdout_split(
    records: Sequence[ImageRecord], split: str, val_fraction: float, test_fraction: float = 0.0
) -> list[ImageRecord]:
    """Deterministic train/val/test split by a hash of each key, stable when files are added or removed.

    A key's hash picks its slice: ``val`` = the first ``val_fraction`` of the hash range, ``test`` = the next
    ``test_fraction`` (with ``test_fraction=0``, ``test`` is the ``val`` slice), ``train`` = the rest. The held-out
    slices come in hash order, so any prefix of them (``limit_val_batches``) is a random sample rather than the first
    classes of a sorted list; ``train`` keeps the input order.
    """
    if not 0.0 < val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0 - val_fraction:
        raise ValueError(
            f"need 0 < val_fraction < 1 and 0 <= test_fraction < 1 - val_fraction, got {val_fraction}, {test_fraction}"
        )
    split_name(split)
    v_end = int(val_fraction * 10_000)
    t_end = v_end + int(test_fraction * 10_000)
    lo, hi = {
        "train": (t_end if test_fraction else v_end, 10_000),
        "val": (0, v_end),
        "test": (v_end, t_end),
    }[split]
    if split == "test" and not test_fraction:
        lo, hi = 0, v_end
    hashed = [(stable_hash(r.key) % 10_000, r) for r in records]
    chosen = [(h, r) for h, r in hashed if lo <= h < hi]
    if split != "train":
        chosen.sort(key=lambda hr: (hr[0], hr[1].key))
    return [r for _, r in chosen]


def min_val_fraction(records: Sequence[ImageRecord]) -> float:
    """The smallest ``val_fraction`` for which :func:`holdout_split` puts at least one of ``records`` in val."""
    return (min(stable_hash(r.key) % 10_000 for r in records) + 1) / 10_000
