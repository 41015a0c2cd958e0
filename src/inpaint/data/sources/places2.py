"""Places365 (Places2): ``data_256/<letter>/<class>/*.jpg``, ``val_256/``, and the official file lists."""

from __future__ import annotations

import os
from dataclasses import dataclass

from inpaint.data.sources.common import (
    DatasetLayoutError,
    ImageRecord,
    check_some_exist,
    dataset_root,
    first_existing,
    split_name,
)

_PLACES_LISTS = {
    ("train", "standard"): "places365_train_standard.txt",
    ("train", "challenge"): "places365_train_challenge.txt",
    ("val", "standard"): "places365_val.txt",
    ("val", "challenge"): "places365_val.txt",
    ("test", "standard"): "places365_test.txt",
    ("test", "challenge"): "places365_test.txt",
}
# Image folders as the official archives unpack them, then torchvision's renamed variants.
_PLACES_DIRS = {
    ("train", "standard", "256"): ("data_256", "data_256_standard"),
    ("train", "standard", "large"): ("data_large", "data_large_standard"),
    ("train", "challenge", "256"): ("data_256", "data_256_challenge"),
    ("train", "challenge", "large"): ("data_large", "data_large_challenge"),
    ("val", "standard", "256"): ("val_256",),
    ("val", "standard", "large"): ("val_large",),
    ("test", "standard", "256"): ("test_256",),
    ("test", "standard", "large"): ("test_large",),
}
_PLACES_LIST_DIRS = ("", "filelist_places365-standard", "filelist_places365-challenge")


def places2_records(
    root: str | os.PathLike[str] | None,
    split: str = "train",
    *,
    variant: str = "standard",
    resolution: str = "256",
) -> list[ImageRecord]:
    """Places365 (Places2) images of a split.

    Layout (docs/data.md, "Datasets on disk"): ``<root>/data_256/a/airfield/00000001.jpg`` (train; ``data_large``
    for the high-resolution variant, ``data_256_standard``/``_challenge`` as torchvision names them),
    ``<root>/val_256/Places365_val_*.jpg``, ``<root>/test_256/...``, with file lists
    ``places365_train_standard.txt`` (or ``_challenge``), ``places365_val.txt``, ``places365_test.txt`` in ``<root>``
    or ``<root>/filelist_places365-standard``.

    Args:
        variant: ``"standard"`` or ``"challenge"`` (training list and folder).
        resolution: ``"256"`` or ``"large"``.
    """
    split = split_name(split)
    if variant not in ("standard", "challenge"):
        raise ValueError(f"places2 variant must be 'standard' or 'challenge', got {variant!r}")
    resolution = str(resolution)
    if resolution not in ("256", "large"):
        raise ValueError(f"places2 resolution must be '256' or 'large', got {resolution!r}")
    list_name = _PLACES_LISTS[(split, variant)]
    dirs = _PLACES_DIRS[(split, variant if split == "train" else "standard", resolution)]
    expected = f"file list {list_name} and image folder {' or '.join(dirs)}/ under the root"
    base = dataset_root(root, "places2", expected, env="PLACES2_ROOT")
    list_file = first_existing(base / d / list_name for d in _PLACES_LIST_DIRS)
    image_dir = first_existing(base / d for d in dirs)
    if list_file is None or image_dir is None:
        missing = [list_name] if list_file is None else []
        missing += [f"{' or '.join(dirs)}/"] if image_dir is None else []
        raise DatasetLayoutError(f"places2: missing {', '.join(missing)} in {base}; expected {expected}")
    records = []
    with open(list_file) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            rel = parts[0].lstrip("/")
            records.append(ImageRecord(rel, str(image_dir / rel)))
    check_some_exist(records, "places2", expected)
    return records


@dataclass(frozen=True)
class Places2:
    """The Places2 source of a data config (``conf/data/places2.yaml``): :func:`places2_records` of a split."""

    root: str | None = None
    variant: str = "standard"
    resolution: str = "256"

    def records(self, split: str) -> list[ImageRecord]:
        return places2_records(self.root, split, variant=self.variant, resolution=str(self.resolution))
