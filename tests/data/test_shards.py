"""webdataset shards: pack round trip, rank/worker splits that cover the set exactly once, lengths, bad data."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import torch

from inpaint.data.datamodule import InpaintDataLoader
from inpaint.data.datasets import DecodePolicy
from inpaint.data.masks.factory import build_mask_provider
from inpaint.data.pack import main as pack_main
from inpaint.data.shards import ShardStream, expand_shard_urls, read_shard_counts, shard_key, write_shards
from inpaint.data.sources import DatasetLayoutError, folder_records
from inpaint.data.transforms import build_transform

MASKS = {"seed": 0, "train": {"type": "strokes"}, "eval": None}


def _stream(urls, split="train", **kw):
    return ShardStream(
        urls,
        build_mask_provider(MASKS, split),
        build_transform({"crop": "random_crop"} if split == "train" else {}, 16, train=split == "train"),
        DecodePolicy(16),
        split=split,
        counts=read_shard_counts(urls),
        **kw,
    )


@pytest.fixture(scope="module")
def packed(tmp_path_factory, fake_data):
    """12 Places2 images packed 3 per shard (4 shards) with the pack command."""
    root = fake_data.places2(tmp_path_factory.mktemp("places"), n_train=12, n_val=2, size=24)
    out = tmp_path_factory.mktemp("shards")
    argv = [
        "--source",
        "places2",
        "--root",
        str(root),
        "--split",
        "train",
        "--out",
        str(out),
        "--max-count",
        "3",
    ]
    assert pack_main(argv) == 0
    return out


def test_pack_writes_shards_and_index(packed):
    urls = expand_shard_urls("train-*.tar", packed)
    assert [u.rsplit("/", 1)[1] for u in urls] == [f"train-{i:06d}.tar" for i in range(4)]
    assert read_shard_counts(urls) == [3, 3, 3, 3]
    assert json.loads((packed / "index.json").read_text())["shards"]["train-000000.tar"] == 3
    with tarfile.open(urls[0]) as tf:
        names = tf.getnames()
        meta = json.loads(tf.extractfile("a/airfield/00000001.json").read())
    assert "a/airfield/00000001.jpg" in names and meta["source"].endswith("00000001.jpg")
    assert expand_shard_urls("train-{000000..000001}.tar", packed) == urls[:2]
    assert not list(packed.glob(".*tmp*"))  # temporary files were renamed


def test_round_trip_reads_every_sample_once(packed):
    ds = _stream(expand_shard_urls("train-*.tar", packed), shuffle_buffer=4)
    keys = [s["key"] for s in ds]
    assert len(keys) == len(ds) == 12 and len(set(keys)) == 12
    s = next(iter(ds))
    assert s["image"].shape == (3, 16, 16) and s["mask"].shape == (1, 16, 16)
    ds.set_epoch(1)
    assert [s["key"] for s in ds] != keys  # reshuffled per epoch
    assert sorted(s["key"] for s in ds) == sorted(keys)


def test_two_ranks_see_disjoint_samples_that_cover_the_set(packed):
    urls = expand_shard_urls("train-*.tar", packed)
    seen = []
    for rank in (0, 1):
        ds = _stream(urls, rank=rank, world_size=2)
        keys = [s["key"] for s in ds]
        assert len(keys) == len(ds) == 6
        seen.append(set(keys))
    assert seen[0].isdisjoint(seen[1]) and len(seen[0] | seen[1]) == 12


def test_two_ranks_two_workers_through_the_loader(packed):
    urls = expand_shard_urls("train-*.tar", packed)
    all_keys = []
    for rank in (0, 1):
        ds = _stream(urls, rank=rank, world_size=2, shuffle_buffer=0)
        loader = InpaintDataLoader(ds, batch_size=2, num_workers=2, split="train", drop_last=False)
        batches = list(loader)
        # one 3-sample shard per (rank, worker): each worker yields a full and a partial batch of 2
        assert len(batches) == len(loader) == 4
        all_keys += [k for b in batches for k in b["key"]]
    assert len(all_keys) == 12 and len(set(all_keys)) == 12


def test_eval_stream_masks_fixed_and_independent_of_the_split(packed):
    urls = expand_shard_urls("train-*.tar", packed)
    whole = {s["key"]: s["mask"] for s in _stream(urls, split="val")}
    half = {s["key"]: s["mask"] for s in _stream(urls, split="val", rank=1, world_size=2)}
    assert all(torch.equal(half[k], whole[k]) for k in half)


def test_ddp_equalize_cuts_uneven_ranks(tmp_path, fake_data):
    root = fake_data.places2(tmp_path / "p", n_train=10, n_val=1, size=24)
    pack_main(["--source", "places2", "--root", str(root), "--out", str(tmp_path / "s"), "--max-count", "3"])
    urls = expand_shard_urls("train-*.tar", tmp_path / "s")  # shards of 3, 3, 3, 1
    lengths = [len(_stream(urls, rank=r, world_size=2)) for r in (0, 1)]
    assert lengths == [4, 4]  # rank 0 would have 6, rank 1 has 4: both run 4
    assert [len(list(_stream(urls, rank=r, world_size=2))) for r in (0, 1)] == [4, 4]
    exact = [len(_stream(urls, rank=r, world_size=2, equalize=False)) for r in (0, 1)]
    assert exact == [6, 4]


def test_fixed_epoch_length_cycles(packed):
    urls = expand_shard_urls("train-*.tar", packed)
    ds = _stream(urls, samples_per_epoch=30)
    assert len(ds) == 30 and len(list(ds)) == 30


def test_unreadable_samples_skipped_and_counted(tmp_path, fake_data):
    fake_data.messy_folder(tmp_path / "img")
    summary = write_shards(folder_records(tmp_path / "img"), tmp_path / "s", prefix="val", verify=False)
    assert summary.written == 12 and summary.skipped == 0
    ds = _stream(expand_shard_urls("val-*.tar", tmp_path / "s"), split="val")
    keys = [s["key"] for s in ds]
    assert len(keys) == 9 and ds.skipped.total == 3
    verified = write_shards(folder_records(tmp_path / "img"), tmp_path / "v", prefix="val", verify=True)
    assert verified.written == 9 and verified.skipped == 3


def test_shard_keys_are_webdataset_safe():
    assert shard_key("/a/b.c/img.v2.jpg") == "a/b.c/img_v2"
    assert shard_key("000001.jpg") == "000001"


def test_existing_shards_need_overwrite(packed, tmp_path, capsys, fake_data):
    root = fake_data.places2(tmp_path / "p", n_train=2, n_val=1, size=24)
    out = tmp_path / "s"
    pack_main(["--source", "places2", "--root", str(root), "--out", str(out)])
    assert pack_main(["--source", "places2", "--root", str(root), "--out", str(out)]) == 1
    assert "overwrite" in capsys.readouterr().err
    pack_main(
        ["--source", "places2", "--root", str(root), "--out", str(out), "--overwrite", "--max-count", "1"]
    )
    assert read_shard_counts(expand_shard_urls("train-*.tar", out)) == [1, 1]


def test_missing_shards_are_a_clear_error(tmp_path):
    with pytest.raises(DatasetLayoutError, match="matches no file"):
        expand_shard_urls("train-*.tar", tmp_path)
    with pytest.raises(DatasetLayoutError, match="not found"):
        expand_shard_urls("train-000000.tar", tmp_path)
    assert expand_shard_urls("pipe:cat /x/a.tar") == ["pipe:cat /x/a.tar"]


def test_pipe_urls_stream(packed):
    urls = [f"pipe:cat {u}" for u in expand_shard_urls("train-*.tar", packed)]
    ds = _stream(urls, samples_per_epoch=12, shuffle_buffer=0)
    assert len({s["key"] for s in ds}) == 12


def test_tar_without_image_entry_is_skipped(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b'{"a": 1}'
        info = tarfile.TarInfo("x.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (tmp_path / "t-0.tar").write_bytes(buf.getvalue())
    ds = _stream(expand_shard_urls("t-*.tar", tmp_path), split="val")
    assert list(ds) == [] and ds.skipped.total == 1


def _shard_keys(out, prefix):
    keys = set()
    for url in expand_shard_urls(f"{prefix}-*.tar", out):
        with tarfile.open(url) as tar:
            keys |= {m.name.rsplit(".", 1)[0] for m in tar.getmembers()}
    return keys


def test_pack_folder_splits_like_the_folder_source_without_overlap(tmp_path, fake_data):
    from inpaint.data.sources import build_records

    root = tmp_path / "imgs"
    for i in range(40):
        fake_data.jpeg(root / f"img{i:02d}.jpg", 16, 16, seed=i)
    out = tmp_path / "s"
    for split in ("train", "val"):
        assert (
            pack_main(["--source", "folder", "--root", str(root), "--split", split, "--out", str(out)]) == 0
        )
    train, val = _shard_keys(out, "train"), _shard_keys(out, "val")
    assert train and val and not train & val and len(train | val) == 40
    # The same images as data=folder's train/val split (default val_fraction), by key.
    cfg = {"source": "folder", "root": str(root)}
    assert val == {shard_key(r.key) for r in build_records(cfg, "val")}


def test_pack_impossible_val_split_is_one_line(tmp_path, capsys, fake_data):
    from inpaint.data._rng import stable_hash

    root = tmp_path / "imgs"
    names = [n for n in (f"img{i}.jpg" for i in range(20)) if stable_hash(n) % 10_000 >= 500][:3]  # all train
    for i, name in enumerate(names):
        fake_data.jpeg(root / name, 16, 16, seed=i)
    argv = ["--source", "folder", "--root", str(root), "--split", "val", "--out", str(tmp_path / "s")]
    assert pack_main(argv) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: folder: the val share (val_fraction) of the 3 images")
        and len(err.strip().splitlines()) == 1
    )
    assert "smallest that holds out one is" in err and "Traceback" not in err


def test_pack_refuses_a_val_fraction_that_would_overlap_train(tmp_path, capsys, fake_data):
    root = tmp_path / "imgs"
    for i in range(12):
        fake_data.jpeg(root / f"img{i:02d}.jpg", 16, 16, seed=i)
    out = tmp_path / "s"
    base = ["--source", "folder", "--root", str(root), "--out", str(out)]
    assert pack_main([*base, "--split", "train"]) == 0  # default 0.05: all 12 images happen to be train
    assert pack_main([*base, "--split", "val", "--val-fraction", "0.5"]) == 1
    assert "would put some images in both splits" in capsys.readouterr().err
    assert not list(out.glob("val-*.tar"))
    # Following the advice: both splits with the same fraction.
    assert pack_main([*base, "--split", "train", "--val-fraction", "0.5", "--overwrite"]) == 0
    assert pack_main([*base, "--split", "val", "--val-fraction", "0.5"]) == 0
    assert not _shard_keys(out, "train") & _shard_keys(out, "val")
