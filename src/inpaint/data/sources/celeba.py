"""CelebA: ``img_align_celeba/*.jpg`` and the official partition file."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from inpaint.data.sources.common import (
    DatasetLayoutError,
    ImageRecord,
    check_some_exist,
    dataset_root,
    first_existing,
    split_name,
)

_CELEBA_PARTITION = {"train": 0, "val": 1, "test": 2}


def celeba_records(root: str | os.PathLike[str] | None, split: str = "train") -> list[ImageRecord]:
    """CelebA aligned images of a split.

    Layout: ``<root>/img_align_celeba/000001.jpg`` (also the doubled ``img_align_celeba/img_align_celeba`` of some
    mirrors) and ``<root>/list_eval_partition.txt`` (lines ``000001.jpg 0``; 0 train, 1 val, 2 test), also accepted
    as ``Eval/list_eval_partition.txt`` or the CSV variant ``list_eval_partition.csv`` (``image_id,partition``).
    """
    split = split_name(split)
    expected = "img_align_celeba/ and list_eval_partition.txt under the root"
    base = dataset_root(root, "celeba", expected, env="CELEBA_ROOT")
    image_dir = first_existing([base / "img_align_celeba" / "img_align_celeba", base / "img_align_celeba"])
    partition = first_existing(
        [
            base / "list_eval_partition.txt",
            base / "Eval" / "list_eval_partition.txt",
            base / "list_eval_partition.csv",
        ]
    )
    if image_dir is None or partition is None:
        missing = (["img_align_celeba/"] if image_dir is None else []) + (
            ["list_eval_partition.txt"] if partition is None else []
        )
        raise DatasetLayoutError(f"celeba: missing {', '.join(missing)} in {base}; expected {expected}")
    want = _CELEBA_PARTITION[split]
    records = []
    with open(partition, newline="") as fh:
        if partition.suffix == ".csv":
            rows: Iterable[Sequence[str]] = ((r["image_id"], r["partition"]) for r in csv.DictReader(fh))
        else:
            rows = (line.split() for line in fh)
        for row in rows:
            if len(row) >= 2 and row[1].strip().isdigit() and int(row[1]) == want:
                records.append(ImageRecord(row[0], str(image_dir / row[0])))
    check_some_exist(records, "celeba", f"{expected} (split {split} = partition {want})")
    return records


@dataclass(frozen=True)
class CelebA:
    """The CelebA source of a data config (``conf/data/celeba.yaml``): :func:`celeba_records` of a split."""

    root: str | None = None

    def records(self, split: str) -> list[ImageRecord]:
        return celeba_records(self.root, split)
