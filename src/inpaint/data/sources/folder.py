"""Any folder of images (recursive, or a file list), with a separate validation folder or a stable hold-out by hash."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inpaint.data.imageio import IMAGE_EXTENSIONS
from inpaint.data.sources.common import (
    DatasetLayoutError,
    ImageRecord,
    check_some_exist,
    dataset_root,
    holdout_split,
    min_val_fraction,
    read_list,
    resolve_listed,
    split_name,
)

# Share of a folder's images held out for val/test when it has no separate val_root (conf/data/folder.yaml).
DEFAULT_VAL_FRACTION = 0.05


def folder_records(
    root: str | os.PathLike[str] | None,
    *,
    file_list: str | os.PathLike[str] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> list[ImageRecord]:
    """All images under ``root`` (recursive, sorted, by extension), or those named in ``file_list``.

    ``file_list`` entries are paths relative to ``root`` (or absolute), one per line; a relative ``file_list`` is
    looked up in ``root``.
    """
    expected = "a folder containing images (" + ", ".join(extensions) + ")"
    base = dataset_root(root, "folder", expected)
    exts = {e.lower() for e in extensions}
    if file_list is not None:
        lf = Path(file_list)
        lf = lf if lf.is_absolute() or lf.is_file() else base / lf
        if not lf.is_file():
            raise DatasetLayoutError(f"folder: file list {lf} not found")
        records = resolve_listed(read_list(lf), base)
        check_some_exist(records, "folder", f"the images listed in {lf}")
        return records
    records = []
    for dirpath, _dirnames, filenames in os.walk(base, followlinks=True):
        for name in filenames:
            if os.path.splitext(name)[1].lower() in exts:
                path = os.path.join(dirpath, name)
                records.append(ImageRecord(os.path.relpath(path, base), path))
    if not records:
        raise DatasetLayoutError(f"folder: no images found under {base}; expected {expected}")
    records.sort(key=lambda r: r.key)  # one total order, independent of how the file system lists entries
    return records


@dataclass(frozen=True)
class Folder:
    """The folder source of a data config (``conf/data/folder.yaml``).

    Train: every image under ``root`` (or in ``file_list``). Validation and test: the images of ``val_root`` (both),
    or, without it, two disjoint slices of ``root`` chosen by a hash of each path (``val_fraction``,
    ``test_fraction``; with ``test_fraction=0`` the test split is the validation slice), never trained on.
    """

    root: str | None = None
    file_list: str | None = None
    val_root: str | None = None
    val_file_list: str | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = 0.0

    def records(self, split: str) -> list[ImageRecord]:
        split = split_name(split)
        if split != "train" and self.val_root:
            return folder_records(self.val_root, file_list=self.val_file_list)
        recs = folder_records(self.root, file_list=self.file_list)
        if self.val_root:
            return recs
        held = holdout_split(recs, split, self.val_fraction, self.test_fraction)
        if not held and split != "train":
            fraction = "test_fraction" if split == "test" and self.test_fraction else "val_fraction"
            raise DatasetLayoutError(
                f"folder: the {split} share ({fraction}) of the {len(recs)} images in {self.root} holds out none "
                f"(the smallest that holds out one is {min_val_fraction(recs)}); raise {fraction} or set val_root"
            )
        return held
