"""The source a data config names, built from its keys, and the records of a split with the train hold-out.

A data config names its source by ``_target_`` (any class: ``inpaint.data.sources.Places2`` or one of the user's
own, ``docs/extending.md``) or by ``source`` (a built-in's short name, as ``python -m inpaint.data.pack --source``
takes it). Either way the class is constructed from ``root`` and the config's keys that are not loader keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from inpaint.config import ConfigError, accepted_keys, construct
from inpaint.data.config import DataConfig, from_mapping, unknown_keys_message
from inpaint.data.sources.common import DatasetLayoutError, ImageRecord, holdout_split, min_val_fraction
from inpaint.data.sources.registry import source_class


def build_source(data: DataConfig | Mapping[str, Any]) -> Any:
    """The source object of a data config: ``cls(root=..., **its own keys)``."""
    cfg = from_mapping(DataConfig, data, "data config")
    cls = source_class(cfg.source, cfg.target)
    takes = accepted_keys(cls)
    unknown = sorted(set(cfg.source_keys) - takes) if takes is not None else []
    if unknown:  # a misspelt shared key lands here too: suggest from both
        shared = {f.name for f in dataclasses.fields(DataConfig)} - {"source", "target", "source_keys"}
        raise ConfigError(unknown_keys_message(unknown, sorted(shared | takes), "data config"))
    return construct(cls, {"root": cfg.root, **cfg.source_keys}, f"data source {cfg.source_name}")


def build_records(data: DataConfig | Mapping[str, Any], split: str) -> list[ImageRecord]:
    """The image records of ``split`` for a data config.

    ``split`` is a split of the source (``train``, ``val``, ``test``) or ``holdout``: a fixed hash slice of
    ``holdout_fraction`` of the source's train split, which ``train`` then excludes. The holdout serves checkpoint
    selection where the source's own ``val`` split is the benchmark's test set (Places2, CelebA-HQ), so that test
    numbers are not selection-biased.

    Args:
        data: a :class:`~inpaint.data.config.DataConfig` or a mapping that becomes one.
        split: ``train``, ``val``, ``test`` or ``holdout``.
    """
    cfg = from_mapping(DataConfig, data, "data config")
    return split_records(build_source(cfg), cfg, split)


def split_records(source: Any, cfg: DataConfig, split: str) -> list[ImageRecord]:
    """:func:`build_records` of a source already built from ``cfg`` (:func:`build_source`)."""
    if not callable(getattr(source, "records", None)):
        raise ConfigError(f"data source {cfg.source_name} has no records(split) method (shards are streamed)")
    if split != "holdout":
        records = list(source.records(split))
        if split == "train" and cfg.holdout_fraction:
            return holdout_split(records, "train", cfg.holdout_fraction)
        return records
    if not cfg.holdout_fraction:
        raise ValueError(
            "the 'holdout' split needs data.holdout_fraction > 0 (a fraction of the train split)"
        )
    train = list(source.records("train"))
    held = holdout_split(train, "val", cfg.holdout_fraction)
    if not held:
        raise DatasetLayoutError(
            f"{cfg.source_name}: data.holdout_fraction={cfg.holdout_fraction} of the {len(train)} train images in "
            f"{cfg.root} holds out none for validation (the smallest fraction that holds out one is "
            f"{min_val_fraction(train)}); raise data.holdout_fraction"
        )
    return held
