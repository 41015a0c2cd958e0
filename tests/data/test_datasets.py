"""The map-style dataset: sample format, determinism across worker counts, fixed eval masks, skipping bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from inpaint.data.datamodule import InpaintDataLoader
from inpaint.data.datasets import DecodePolicy, InpaintingDataset
from inpaint.data.masks.factory import build_mask_provider
from inpaint.data.sources import folder_records, places2_records
from inpaint.data.transforms import build_transform

MASKS = {"name": "t", "seed": 3, "train": {"type": "strokes", "num_strokes": [2, 6]}, "eval": None}


def _dataset(records, split="train", size=32, small="resize", **kw):
    return InpaintingDataset(
        records,
        build_mask_provider(MASKS, split),
        build_transform(
            {"crop": "random_resized_crop"} if split == "train" else {"crop": "center_crop"},
            size,
            train=split == "train",
        ),
        DecodePolicy(size, small_images=small),
        split=split,
        seed=1,
        **kw,
    )


@pytest.fixture(scope="module")
def places(tmp_path_factory, fake_data):
    return fake_data.places2(tmp_path_factory.mktemp("places"), n_train=6, n_val=3)


def test_sample_contract(places):
    ds = _dataset(places2_records(places, "train"))
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
    assert float(s["image"].min()) >= 0.0 and float(s["image"].max()) <= 1.0
    assert s["mask"].shape == (1, 32, 32) and set(s["mask"].unique().tolist()) <= {0.0, 1.0}
    assert s["hole_ratio"].dtype == torch.float32
    assert abs(float(s["hole_ratio"]) - (1 - float(s["mask"].mean()))) < 1e-6
    assert s["key"].endswith("00000001.jpg") and s["mask_key"].startswith("t/")


def test_virtual_epoch_length_cycles_records(places):
    ds = _dataset(places2_records(places, "train"), length=20)
    assert len(ds) == 20
    assert ds[0]["key"] == ds[6]["key"] and not torch.equal(ds[0]["image"], ds[6]["image"])


def test_train_changes_with_epoch_eval_does_not(places):
    train = _dataset(places2_records(places, "train"))
    a = train[2]
    train.set_epoch(1)
    b = train[2]
    assert not torch.equal(a["mask"], b["mask"])
    val = _dataset(places2_records(places, "val"), split="val", repeats=2)
    assert len(val) == 6 and val[0]["key"] == val[1]["key"]
    v = val[1]
    val.set_epoch(5)
    assert torch.equal(val[1]["mask"], v["mask"]) and torch.equal(val[1]["image"], v["image"])


def _batches(ds, workers):
    loader = InpaintDataLoader(ds, batch_size=4, num_workers=workers, shuffle=False, split="train")
    return list(loader)


def test_same_samples_whatever_the_number_of_workers(places):
    ds = _dataset(places2_records(places, "train"), length=12)
    ref = _batches(ds, 0)
    for workers in (1, 2):
        other = _batches(ds, workers)
        assert len(other) == len(ref)
        for x, y in zip(ref, other, strict=True):
            assert (
                torch.equal(x["image"], y["image"])
                and torch.equal(x["mask"], y["mask"])
                and x["key"] == y["key"]
            )


def test_loader_passes_the_epoch_to_workers(places):
    ds = _dataset(places2_records(places, "train"), length=4)
    loader = InpaintDataLoader(ds, batch_size=4, num_workers=0, split="train")
    first, second = next(iter(loader)), next(iter(loader))  # two passes: epochs 0 and 1
    assert first["mask_key"][0].split("/")[2] == "e0" and second["mask_key"][0].split("/")[2] == "e1"


@pytest.mark.parametrize("workers", [0, 2])
def test_messy_folder_yields_only_valid_samples_and_counts_skips(tmp_path, caplog, workers, fake_data):
    files = fake_data.messy_folder(tmp_path)
    bad = {str(files[k]) for k in ("corrupt", "zero", "truncated")}
    ds = _dataset(folder_records(tmp_path), split="val")
    loader = InpaintDataLoader(ds, batch_size=5, num_workers=workers, split="val")
    with caplog.at_level(logging.INFO, logger="inpaint.data"):
        keys = [k for b in loader for k in b["key"]]
    assert len(keys) == len(ds) == 12
    assert not bad & set(keys)
    assert ds.skipped.total == 3  # counted across worker processes
    assert "skipped 3 unreadable images" in caplog.text  # reported when the pass ends


def test_skip_mode_also_skips_tiny_images(tmp_path, fake_data):
    files = fake_data.messy_folder(tmp_path)
    ds = _dataset(folder_records(tmp_path), split="val", small="skip")
    keys = {ds[i]["key"] for i in range(len(ds))}
    assert str(files["tiny"]) not in keys and ds.skipped.total == 4


def test_all_unreadable_raises_clearly(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"junk")
    ds = _dataset(folder_records(tmp_path))
    with pytest.raises(RuntimeError, match="could not be used"):
        ds[0]


def test_config_driven_masks_are_binary_after_everything(places):
    masks = OmegaConf.create(MASKS)
    provider = build_mask_provider(masks, "train")
    m, _ = provider.get(0, 0, 40, 24)
    assert m.shape == (40, 24) and np.isin(m, (0.0, 1.0)).all()
