"""inpaint.training.module.InpaintingModule, outside a Trainer: options and guards."""

from __future__ import annotations

import pytest
import torch

from inpaint.checkpoint import UnsafeCheckpointError
from inpaint.losses import composite
from inpaint.training.module import InpaintingModule

NET = {"levels": 3}
LOSS = {"vgg_weights": "random", "weights": {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "tv": 0.1}}


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, 32, 32, generator=g)
    mask = (torch.rand(2, 1, 32, 32, generator=g) > 0.3).float()
    return {"image": image, "mask": mask, "hole_ratio": 1 - mask.mean(dim=(1, 2, 3))}


def test_channels_last_computes_the_same_loss():
    torch.manual_seed(0)
    plain = InpaintingModule(net=NET, loss=LOSS)
    fast = InpaintingModule(net=NET, loss=LOSS, channels_last=True)
    fast.load_state_dict(plain.state_dict())
    batch = _batch()
    out_plain = plain.loss(plain(batch["image"], batch["mask"]), batch["image"], batch["mask"])
    moved = fast.on_after_batch_transfer(dict(batch), 0)
    assert moved["image"].is_contiguous(memory_format=torch.channels_last)
    out_fast = fast.loss(fast(moved["image"], moved["mask"]), moved["image"], moved["mask"])
    for key, value in out_plain.items():
        torch.testing.assert_close(out_fast[key], value, rtol=1e-4, atol=1e-5)


def test_hyper_parameters_are_plain_and_rebuild_the_module():
    module = InpaintingModule(net=NET, loss=LOSS, lr=1e-3)
    hp = dict(module.hparams)
    assert hp["net"] == {"_target_": "inpaint.models.PConvUNet", "levels": 3}
    rebuilt = InpaintingModule(**hp)
    assert rebuilt.net.levels == 3 and rebuilt.hparams.lr == 1e-3


def test_network_target_outside_the_allow_list_is_refused():
    with pytest.raises(UnsafeCheckpointError):
        InpaintingModule(net={"_target_": "os.system", "command": "true"}, loss=LOSS)


def test_loss_target_outside_the_allow_list_is_refused():
    with pytest.raises(ValueError, match="is not one of"):
        InpaintingModule(net=NET, loss={"_target_": "builtins.eval"})


def test_unknown_nonfinite_policy_is_refused():
    with pytest.raises(ValueError, match="nonfinite_loss"):
        InpaintingModule(net=NET, loss=LOSS, nonfinite_loss="ignore")


def test_finetune_leaves_frozen_encoder_bn_out_of_the_optimiser():
    module = InpaintingModule(net=NET, loss=LOSS, finetune=True)
    optimised = {id(p) for group in module.configure_optimizers().param_groups for p in group["params"]}
    encoder_bns = [b.bn for b in module.net.encoder if b.bn is not None]
    # frozen: statistics and affine values are buffers, nothing the optimiser could update
    assert encoder_bns and not [p for bn in encoder_bns for p in bn.parameters()]
    assert optimised == {id(p) for p in module.net.parameters()}


def test_composite_keeps_known_pixels():
    image, output = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    comp = composite(output, image, mask)
    assert torch.equal(comp[..., :2, :], image[..., :2, :])
    assert torch.equal(comp[..., 2:, :], output[..., 2:, :])


def test_a_users_extra_loss_term_is_built_from_its_target_and_its_keys_are_checked():
    from inpaint.config import ConfigError
    from inpaint.training.module import _build_loss

    base = {
        "_target_": "inpaint.losses.InpaintingLoss",
        "weights": {"perceptual": 0, "style_out": 0, "style_comp": 0},
    }
    loss = _build_loss(
        {
            **base,
            "weights": {**base["weights"], "l1": 2.0},
            "extra_terms": {"l1": {"_target_": "torch.nn.L1Loss"}},
        }
    )
    assert loss.active_terms[-1] == "l1" and isinstance(loss.extra_terms["l1"], torch.nn.L1Loss)
    with pytest.raises(ConfigError, match=r"loss.extra_terms.l1 has unknown fields \['reductoin'\]"):
        _build_loss({**base, "extra_terms": {"l1": {"_target_": "torch.nn.L1Loss", "reductoin": "sum"}}})
    with pytest.raises(
        ConfigError, match="loss.extra_terms.l1: collections.OrderedDict is not a torch.nn.Module"
    ):
        _build_loss({**base, "extra_terms": {"l1": {"_target_": "collections.OrderedDict"}}})
    with pytest.raises(ConfigError, match="loss.extra_terms.l1 needs a _target_"):
        _build_loss({**base, "extra_terms": {"l1": {"weight": 1}}})
