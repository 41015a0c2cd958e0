"""The DataModule and every conf/data + conf/masks file: batches honour the contract with train.py."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

from inpaint.config import CONF_DIR, compose
from inpaint.data import build_datamodule
from inpaint.data.pack import main as pack_main
from inpaint.data.sources import DatasetLayoutError

SMALL = {"image_size": 32, "eval_image_size": None, "batch_size": 4, "num_workers": 0, "drop_last": False}


def _data_cfg(name: str, **over):
    cfg = compose("train", [f"data={name}"]).data  # as Hydra composes it: the file on top of data/base.yaml
    return OmegaConf.merge(cfg, SMALL, over)


def _masks_cfg(name: str = "mixed", **over):
    return OmegaConf.merge(compose("train", [f"masks={name}"]).masks, over)


def _check_batch(batch, size=32):
    b = batch["image"].shape[0]
    assert batch["image"].shape == (b, 3, size, size) and batch["image"].dtype == torch.float32
    assert float(batch["image"].min()) >= 0.0 and float(batch["image"].max()) <= 1.0
    assert batch["mask"].shape == (b, 1, size, size) and batch["mask"].dtype == torch.float32
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    assert batch["hole_ratio"].shape == (b,) and batch["hole_ratio"].dtype == torch.float32
    expected = 1.0 - batch["mask"].flatten(1).mean(1)
    assert torch.allclose(batch["hole_ratio"], expected, atol=1e-6)
    assert (
        isinstance(batch["key"], list)
        and len(batch["key"]) == b
        and all(isinstance(k, str) for k in batch["key"])
    )


@pytest.fixture(scope="module")
def roots(tmp_path_factory, fake_data):
    base = tmp_path_factory.mktemp("roots")
    shards = base / "shards"
    pack_main(["--source", "samples", "--split", "train", "--out", str(shards), "--max-count", "3"])
    pack_main(["--source", "samples", "--split", "val", "--out", str(shards)])
    fake_data.messy_folder(base / "folder")
    return {
        "places2": fake_data.places2(base / "places2", n_train=6, n_val=3),
        "celeba": fake_data.celeba(base / "celeba"),
        "celeba_hq": fake_data.celeba_hq(base / "celeba_hq"),
        "folder": base / "folder",
        "samples": None,
        "shards": shards,
    }


@pytest.mark.parametrize("name", ["places2", "celeba", "celeba_hq", "folder", "samples", "shards"])
def test_every_data_config_yields_contract_batches(roots, name):
    over = {"root": str(roots[name])} if roots[name] is not None else {}
    if name == "folder":
        over.update(val_fraction=0.4, test_fraction=0.4)
    if name in ("places2", "celeba_hq"):
        over["holdout_fraction"] = 0.5  # validation = half of the few fake training images
    dm = build_datamodule(_data_cfg(name, **over), _masks_cfg())
    dm.setup("fit")
    _check_batch(next(iter(dm.train_dataloader())))
    _check_batch(next(iter(dm.val_dataloader())))
    dm.setup("test")
    _check_batch(next(iter(dm.test_dataloader())))


def test_data_configs_document_the_contract_keys():
    """Every source composes to the contract keys; every key is documented where it is first set (base.yaml for the
    shared ones), and a source file may restate a base key without repeating its comment."""
    base = (CONF_DIR / "data" / "base.yaml").read_text()
    documented = {line.split(":")[0] for line in base.splitlines() if line and line[0] != " " and "#" in line}
    for path in sorted((CONF_DIR / "data").glob("*.yaml")):
        if path.stem == "base":
            continue
        cfg = compose("train", [f"data={path.stem}"]).data
        for key in ("_target_", "batch_size", "num_workers", "image_size", "root"):
            assert key in OmegaConf.to_container(cfg), (
                f"{path.name} lacks {key}"
            )  # ("in cfg" is False for ???)
        for line in path.read_text().splitlines():
            if line and not line.startswith((" ", "#", "-")) and ":" in line:
                key = line.split(":")[0]
                assert "#" in line or key in documented | {"defaults"}, f"{path.name}: undocumented {line!r}"


@pytest.mark.parametrize(
    "name", ["strokes", "lama_thin", "lama_medium", "lama_thick", "mixed", "nvidia_train", "nvidia_test"]
)
def test_every_masks_config_builds(tmp_path, name, fake_data):
    fake_data.nvidia(tmp_path / "irregular_mask" / "disocclusion_img_mask", (0.1, 0.3, 0.5))
    fake_data.nvidia(
        tmp_path / "mask" / "testing_mask_dataset", (0.05, 0.15, 0.25, 0.35, 0.45, 0.55), white_hole=False
    )
    masks = _masks_cfg(name, root=str(tmp_path)) if name.startswith("nvidia") else _masks_cfg(name)
    dm = build_datamodule(_data_cfg("samples", samples_per_epoch=8), masks)
    dm.setup("fit")
    _check_batch(next(iter(dm.train_dataloader())))
    _check_batch(next(iter(dm.val_dataloader())))


def test_missing_root_is_one_clear_error(tmp_path):
    dm = build_datamodule(_data_cfg("places2"), _masks_cfg())  # root: ???
    with pytest.raises(DatasetLayoutError, match=r"no root given.*places365_train_standard\.txt"):
        dm.setup("fit")
    dm = build_datamodule(_data_cfg("celeba", root=str(tmp_path / "nope")), _masks_cfg())
    with pytest.raises(DatasetLayoutError, match=r"does not exist.*list_eval_partition\.txt"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="masks.*root"):
        build_datamodule(_data_cfg("samples"), _masks_cfg("nvidia_train"))


def test_plain_dicts_are_accepted_and_eval_dataset_is_fixed():
    data = OmegaConf.to_container(_data_cfg("samples"), resolve=True)
    masks = OmegaConf.to_container(_masks_cfg("lama_thick"), resolve=True)
    ds = build_datamodule(data, masks).build_dataset("val")
    again = build_datamodule(data, masks).build_dataset("val")
    assert len(ds) == 144  # 4 held-out photos x val_repeats 36
    for i in (0, 5, 11):
        assert torch.equal(ds[i]["mask"], again[i]["mask"]) and torch.equal(ds[i]["image"], again[i]["image"])
    bins = sorted(
        int(torch.bucketize(ds[i]["hole_ratio"], torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]), right=False))
        for i in range(6)
    )
    assert bins == [0, 1, 2, 3, 4, 5]  # the first photo's six masks cover the six NVIDIA bins


def test_samples_defaults_give_dozens_of_steps():
    dm = build_datamodule(compose("train", ["data=samples"]).data, _masks_cfg())
    dm.setup("fit")
    assert len(dm.train_dataloader()) >= 24
    keys = {r.key for r in dm.datasets["train"].records} & {r.key for r in dm.datasets["val"].records}
    assert not keys  # validation photos are held out


class _Recorder:
    """Collects what a LightningModule saw, per epoch."""

    def __init__(self):
        self.train_mask_keys: dict[int, list[str]] = {}
        self.val_masks: dict[int, torch.Tensor] = {}


def test_lightning_fit_two_epochs(tmp_path, caplog):
    import pytorch_lightning as pl

    rec = _Recorder()

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, _):
            _check_batch(batch)
            rec.train_mask_keys.setdefault(self.current_epoch, []).extend(batch["mask_key"])
            return (self.w - batch["image"].mean()).abs()

        def validation_step(self, batch, _):
            rec.val_masks.setdefault(self.current_epoch, batch["mask"].clone())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = _data_cfg("samples", samples_per_epoch=16, num_workers=1, persistent_workers=True)
    dm = build_datamodule(data, _masks_cfg())
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with caplog.at_level(logging.DEBUG, logger="inpaint.data"):  # a count of 0 is only a debug line
        trainer.fit(Tiny(), datamodule=dm)
    assert sorted(rec.train_mask_keys) == [0, 1] and all(len(v) == 16 for v in rec.train_mask_keys.values())
    assert all("/e0/" in k for k in rec.train_mask_keys[0]) and all(
        "/e1/" in k for k in rec.train_mask_keys[1]
    )
    assert torch.equal(rec.val_masks[0], rec.val_masks[1])  # fixed validation masks
    assert "train epoch 0: skipped 0 unreadable images" in caplog.text
    assert "train epoch 1: skipped 0 unreadable images" in caplog.text
    assert dm.datasets["train"].skipped.total == 0


def test_lightning_distributed_sampler_injection_keeps_our_loader():
    # What Lightning does under DDP for map-style datasets: rebuild the loader around a DistributedSampler.
    from pytorch_lightning.utilities.data import _update_dataloader
    from torch.utils.data import DistributedSampler

    from inpaint.data.datamodule import InpaintDataLoader

    dm = build_datamodule(_data_cfg("samples", samples_per_epoch=16), _masks_cfg())
    dm.setup("fit")
    seen = []
    for rank in (0, 1):
        loader = dm.train_dataloader()
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        rebuilt = _update_dataloader(loader, sampler)
        assert (
            isinstance(rebuilt, InpaintDataLoader)
            and rebuilt.split == "train"
            and rebuilt.epoch_fn is not None
        )
        assert len(rebuilt) == 2  # 8 samples per rank, batch 4
        seen.append({k for b in rebuilt for k in b["mask_key"]})
    assert seen[0].isdisjoint(seen[1]) and len(seen[0] | seen[1]) == 16


def test_a_misspelt_key_is_an_error_naming_the_right_one():
    with pytest.raises(ValueError, match=r"unknown key\(s\) 'batchsize' \(did you mean 'batch_size'\?\)"):
        build_datamodule({**_plain(_data_cfg("samples")), "batchsize": 8}, _masks_cfg())
    data = _plain(_data_cfg("samples"))
    data["train_transform"]["hflp"] = 0.5
    with pytest.raises(
        ValueError, match=r"train_transform: unknown key\(s\) 'hflp' \(did you mean 'hflip'\?\)"
    ):
        build_datamodule(data, _masks_cfg())
    with pytest.raises(ValueError, match=r"masks config: unknown key\(s\) 'sead'"):
        build_datamodule(_data_cfg("samples"), {**_plain(_masks_cfg()), "sead": 1})


def _plain(cfg):
    return OmegaConf.to_container(cfg, resolve=True)
