"""CelebA-HQ: a folder of the 30,000 faces and a file list per split."""

from __future__ import annotations

import os
from dataclasses import dataclass

from inpaint.data.sources.common import (
    DatasetLayoutError,
    ImageRecord,
    check_some_exist,
    dataset_root,
    first_existing,
    list_images_flat,
    read_list,
    resolve_listed,
    split_name,
)

_CELEBA_HQ_DIRS = (
    "data256x256",
    "data1024x1024",
    "CelebA-HQ-img",
    "CelebAMask-HQ/CelebA-HQ-img",
    "images",
    "",
)
_CELEBA_HQ_LISTS = {
    "train": ("train.txt", "train_shuffled.flist", "train.flist"),
    "val": ("val.txt", "val_shuffled.flist", "val.flist"),
    "test": ("test.txt", "test_shuffled.flist", "test.flist"),
}


def celeba_hq_records(
    root: str | os.PathLike[str] | None,
    split: str = "train",
    *,
    image_dir: str | None = None,
    list_file: str | None = None,
) -> list[ImageRecord]:
    """CelebA-HQ images of a split, chosen by a file list.

    Layout: an image folder (``image_dir``, relative to the root; default: the first of ``data256x256``,
    ``data1024x1024``, ``CelebA-HQ-img``, ``images`` or the root itself that holds images) and a list per split
    (``list_file``; default ``train.txt``/``val.txt``/``test.txt`` or LaMa's ``*_shuffled.flist`` in the root), one
    entry per line: file name, path relative to the image folder, absolute path, or name without extension.
    """
    split = split_name(split)
    lists = (list_file,) if list_file else _CELEBA_HQ_LISTS[split]
    dirs = (image_dir,) if image_dir else _CELEBA_HQ_DIRS
    expected = f"an image folder ({' or '.join(d or '<root>' for d in dirs)}) and a list {' or '.join(lists)}"
    base = dataset_root(root, "celeba_hq", expected, env="CELEBA_HQ_ROOT")
    folder = None
    for d in dirs:
        cand = base / d if d else base
        if cand.is_dir() and list_images_flat(cand):
            folder = cand
            break
    found_list = first_existing(base / name for name in lists)
    if folder is None or found_list is None:
        missing = (["image folder"] if folder is None else []) + (
            [" or ".join(lists)] if found_list is None else []
        )
        raise DatasetLayoutError(f"celeba_hq: missing {', '.join(missing)} in {base}; expected {expected}")
    records = resolve_listed(read_list(found_list), folder)
    check_some_exist(records, "celeba_hq", expected)
    return records


@dataclass(frozen=True)
class CelebAHQ:
    """The CelebA-HQ source of a data config (``conf/data/celeba_hq.yaml``): :func:`celeba_hq_records` of a split,
    with its own list file per split where given."""

    root: str | None = None
    image_dir: str | None = None
    train_list: str | None = None
    val_list: str | None = None
    test_list: str | None = None

    def records(self, split: str) -> list[ImageRecord]:
        lists = {"train": self.train_list, "val": self.val_list, "test": self.test_list}
        return celeba_hq_records(
            self.root, split, image_dir=self.image_dir, list_file=lists[split_name(split)]
        )
