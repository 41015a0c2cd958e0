"""Image sources: which images each split holds, one module per on-disk layout, and a user's own.

An image source is any class constructed from its config keys (``root`` and its own) whose ``records(split)``
returns :class:`ImageRecord` s (``key``, ``path``) in a deterministic order for ``train``, ``val`` and ``test``, and
raises :class:`DatasetLayoutError`, one message naming the files it expected, when the root or layout is wrong. A
data config selects one by ``_target_`` (:mod:`inpaint.data.sources.select`); the built-in ones are
:class:`Places2`, :class:`CelebA`, :class:`CelebAHQ`, :class:`Folder`, :class:`Samples` and :class:`Shards`.
"""

from inpaint.data.sources.celeba import CelebA, celeba_records
from inpaint.data.sources.celeba_hq import CelebAHQ, celeba_hq_records
from inpaint.data.sources.common import (
    SPLITS,
    DatasetLayoutError,
    ImageRecord,
    holdout_split,
    min_val_fraction,
)
from inpaint.data.sources.folder import DEFAULT_VAL_FRACTION, Folder, folder_records
from inpaint.data.sources.places2 import Places2, places2_records
from inpaint.data.sources.registry import BUILT_IN, SOURCES, source_class
from inpaint.data.sources.samples import (
    BUNDLED_PHOTOS,
    SAMPLE_TEST_PHOTOS,
    SAMPLE_VAL_PHOTOS,
    Samples,
    bundled_photos,
    sample_records,
)
from inpaint.data.sources.select import build_records, build_source, split_records
from inpaint.data.sources.shards import Shards

__all__ = [
    "BUILT_IN",
    "BUNDLED_PHOTOS",
    "DEFAULT_VAL_FRACTION",
    "SAMPLE_TEST_PHOTOS",
    "SAMPLE_VAL_PHOTOS",
    "SOURCES",
    "SPLITS",
    "CelebA",
    "CelebAHQ",
    "DatasetLayoutError",
    "Folder",
    "ImageRecord",
    "Places2",
    "Samples",
    "Shards",
    "build_records",
    "build_source",
    "bundled_photos",
    "celeba_hq_records",
    "celeba_records",
    "folder_records",
    "holdout_split",
    "min_val_fraction",
    "places2_records",
    "sample_records",
    "source_class",
    "split_records",
]
