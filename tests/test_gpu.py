"""Checks that need a CUDA GPU (skipped elsewhere): the fine-tuning phase under Lightning's DDP strategy with
SyncBatchNorm, bf16 autocast, and a non-finite batch on the GPU path.

Run where a GPU exists: ``python -m pytest tests/test_gpu.py``.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class _Random(Dataset):
    def __init__(self, n: int = 32, size: int = 64, poison_index: int | None = None) -> None:
        self.n, self.size, self.poison_index = n, size, poison_index

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, object]:
        g = torch.Generator().manual_seed(i)
        image = torch.rand(3, self.size, self.size, generator=g)
        if i == self.poison_index:
            image[0, 0, 0] = float("nan")
        mask = (torch.rand(1, self.size, self.size, generator=g) > 0.3).float()
        return {
            "image": image,
            "mask": mask,
            "hole_ratio": 1 - mask.mean(),
            "key": str(i),
            "mask_key": str(i),
        }


def _fit(module, dataset: Dataset, steps: int, callbacks: list | None = None) -> None:
    trainer = pl.Trainer(
        callbacks=callbacks,
        # keep the loader's order (DDP would inject a shuffling DistributedSampler), so the poisoned sample lands
        # in a known batch
        use_distributed_sampler=False,
        accelerator="gpu",
        devices=1,
        strategy="ddp",
        sync_batchnorm=True,
        precision="bf16-mixed",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, DataLoader(dataset, batch_size=4, shuffle=False))


def _bn_buffers(net: torch.nn.Module, part: str) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in getattr(net, part).state_dict().items() if ".bn." in k}


class _BatchNormTypes(pl.Callback):
    """Records the BN classes seen during training (Lightning converts SyncBatchNorm back at teardown)."""

    def __init__(self) -> None:
        self.seen: dict[str, set[type]] = {"encoder": set(), "decoder": set()}

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        for part, seen in self.seen.items():
            seen |= {type(b.bn) for b in getattr(pl_module.net, part) if b.bn is not None}


def test_ddp_finetune_on_gpu_keeps_the_encoder_batchnorm_frozen():
    from inpaint.models import FrozenBatchNorm2d
    from inpaint.training.module import InpaintingModule

    torch.manual_seed(0)
    loss = {"vgg_weights": "random", "weights": {"perceptual": 0, "style_out": 0, "style_comp": 0, "tv": 0}}
    phase1 = InpaintingModule(net={"levels": 4}, loss=loss, lr=1e-3)
    _fit(phase1, _Random(), steps=3)  # non-trivial statistics
    module = InpaintingModule(net={"levels": 4}, loss=loss, lr=5e-5, finetune=False)
    module.net.load_state_dict(phase1.net.state_dict())
    module.net.freeze_encoder_bn()
    enc, dec = _bn_buffers(module.net, "encoder"), _bn_buffers(module.net, "decoder")
    types = _BatchNormTypes()
    _fit(module, _Random(), steps=4, callbacks=[types])
    assert types.seen["encoder"] == {FrozenBatchNorm2d}
    assert types.seen["decoder"] == {
        torch.nn.SyncBatchNorm
    }  # sync_batchnorm converted the rest while training
    for k, v in _bn_buffers(module.net, "encoder").items():
        assert torch.equal(v, enc[k]), f"encoder BN {k} changed under DDP + SyncBatchNorm"
    after = _bn_buffers(module.net, "decoder")
    assert any(not torch.equal(after[k], dec[k]) for k in dec if "running_mean" in k)


def test_nonfinite_batch_is_skipped_on_the_gpu_path():
    from inpaint.training.module import InpaintingModule

    torch.manual_seed(1)
    loss = {"vgg_weights": "random", "weights": {"perceptual": 0, "style_out": 0, "style_comp": 0, "tv": 0}}
    module = InpaintingModule(net={"levels": 4}, loss=loss, lr=1e-3)
    _fit(module, _Random(poison_index=5), steps=4)  # sample 5 is in the second batch
    assert module.nonfinite_skipped == 1
    assert all(torch.isfinite(t).all() for t in module.net.state_dict().values() if t.is_floating_point())
