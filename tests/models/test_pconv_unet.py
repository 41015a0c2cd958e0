"""inpaint.models.PConvUNet: the paper's layer table, hole invariance, size checks, encoder-BN freezing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from inpaint.models import PConvUNet, layer_table

PAPER_TABLE = [
    # name, kernel, stride, in, out, BN, activation — Liu et al. 2018, 512x512 input
    ("enc1", 7, 2, 3, 64, False, "relu"),
    ("enc2", 5, 2, 64, 128, True, "relu"),
    ("enc3", 5, 2, 128, 256, True, "relu"),
    ("enc4", 3, 2, 256, 512, True, "relu"),
    ("enc5", 3, 2, 512, 512, True, "relu"),
    ("enc6", 3, 2, 512, 512, True, "relu"),
    ("enc7", 3, 2, 512, 512, True, "relu"),
    ("enc8", 3, 2, 512, 512, True, "relu"),
    ("dec9", 3, 1, 512 + 512, 512, True, "leaky_relu"),
    ("dec10", 3, 1, 512 + 512, 512, True, "leaky_relu"),
    ("dec11", 3, 1, 512 + 512, 512, True, "leaky_relu"),
    ("dec12", 3, 1, 512 + 512, 512, True, "leaky_relu"),
    ("dec13", 3, 1, 512 + 256, 256, True, "leaky_relu"),
    ("dec14", 3, 1, 256 + 128, 128, True, "leaky_relu"),
    ("dec15", 3, 1, 128 + 64, 64, True, "leaky_relu"),
    ("dec16", 3, 1, 64 + 3, 3, False, "none"),
]


def _inputs(b=2, size=64, seed=0, channels=1):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, size, size, generator=g)
    mask = (torch.rand(b, channels, size, size, generator=g) > 0.3).float()
    mask[:, :, size // 4 : size // 2, size // 4 : size // 2] = 0
    return image, mask


def test_layer_table_is_the_papers():
    specs = layer_table(8)
    got = [
        (s.name, s.kernel, s.stride, s.in_channels, s.out_channels, s.batch_norm, s.activation) for s in specs
    ]
    assert got == PAPER_TABLE


def test_built_modules_follow_the_table():
    net = PConvUNet(levels=8)
    blocks = list(net.encoder) + list(net.decoder)
    for block, row in zip(blocks, PAPER_TABLE, strict=True):
        conv = block.conv
        assert conv.kernel_size == (row[1], row[1])
        assert conv.stride == (row[2], row[2])
        assert (conv.in_channels, conv.out_channels) == (row[3], row[4])
        assert (block.bn is not None) == row[5]
    assert isinstance(net.decoder[0].act, torch.nn.LeakyReLU) and net.decoder[0].act.negative_slope == 0.2
    assert isinstance(net.encoder[0].act, torch.nn.ReLU)
    assert isinstance(net.decoder[-1].act, torch.nn.Identity)


def test_parameter_count_about_32_9_million():
    n = sum(p.numel() for p in PConvUNet(levels=8).parameters())
    assert 32.5e6 < n < 33.3e6, n


def test_output_shape_and_finite():
    net = PConvUNet(levels=5).eval()
    image, mask = _inputs()
    out = net(image, mask)
    assert out.shape == image.shape
    assert torch.isfinite(out).all()


def test_hole_pixels_of_the_input_do_not_change_the_output():
    torch.manual_seed(0)
    net = PConvUNet(levels=5).eval()
    image, mask = _inputs()
    noisy = image * mask + (1 - mask) * torch.rand_like(image)
    with torch.no_grad():
        torch.testing.assert_close(net(image, mask), net(noisy, mask), rtol=0, atol=1e-5)


def test_three_channel_mask_equals_one_channel_mask_when_channels_agree():
    torch.manual_seed(1)
    net = PConvUNet(levels=4).eval()
    image, mask = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(net(image, mask), net(image, mask.expand(-1, 3, -1, -1)))


def test_size_not_divisible_is_a_clear_error():
    net = PConvUNet(levels=5)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*5 = 32; got 70x64.*H 64 or 96"):
        net(torch.rand(1, 3, 70, 64), torch.ones(1, 1, 70, 64))


def test_gradients_reach_every_parameter():
    net = PConvUNet(levels=4)
    image, mask = _inputs()
    net(image, mask).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_bf16_autocast_runs_finite():
    net = PConvUNet(levels=4)
    image, mask = _inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(image, mask)
    assert torch.isfinite(out.float()).all()


def _zero_last_layer(net: PConvUNet) -> PConvUNet:
    last = net.decoder[-1].conv
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return net


def test_membrane_residual_starts_from_the_membrane_fill():
    """A correction of zero leaves exactly the membrane: the image on the known pixels, the smooth fill in the hole."""
    from inpaint.nn.membrane import membrane_fill

    net = _zero_last_layer(PConvUNet(levels=3, base_channels=8, membrane_residual=True)).eval()
    image, mask = _inputs()
    with torch.no_grad():
        out = net(image, mask)
    torch.testing.assert_close(out, membrane_fill(image, mask > 0.5))
    assert torch.equal(out[mask.expand_as(out) > 0], image[mask.expand_as(image) > 0])


def test_membrane_residual_keeps_hole_invariance_gradients_and_bf16():
    torch.manual_seed(2)
    net = PConvUNet(levels=4, base_channels=8, membrane_residual=True)
    image, mask = _inputs()
    garbage = torch.where(mask > 0, image, 7.0)  # hole content is never read, not even by the membrane
    out = net(image, mask)
    torch.testing.assert_close(net.eval()(garbage, mask), net(image, mask), rtol=0, atol=1e-6)
    out.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(net(image, mask).float()).all()


def test_membrane_residual_leaves_pixels_beyond_the_networks_reach_zero():
    """Zero is how inference learns that a pixel needs a coarser pass; the membrane must not hide it."""
    net = PConvUNet(levels=1, base_channels=4, membrane_residual=True).eval()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 4:28, 4:28] = 0
    with torch.no_grad():
        out = net(image, mask)
    assert torch.equal(out[..., 16, 16], torch.zeros(1, 3))
    assert (out[..., 4, 4] != 0).any()


def test_membrane_residual_needs_as_many_outputs_as_inputs():
    with pytest.raises(ValueError, match="out_channels must equal in_channels; got 1"):
        PConvUNet(levels=3, out_channels=1, membrane_residual=True)


def _bn_state(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "bn" in k}


def test_freeze_encoder_bn_survives_train_and_decoder_bn_keeps_learning():
    torch.manual_seed(2)
    net = PConvUNet(levels=4)
    net.freeze_encoder_bn()
    assert net.encoder_bn_frozen
    net.train()  # what Lightning does at every epoch start
    enc_before = {n: v.clone() for n, v in net.encoder.state_dict().items() if ".bn." in n}
    dec_before = {n: v.clone() for n, v in net.decoder.state_dict().items() if ".bn." in n}
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    for step in range(3):
        image, mask = _inputs(seed=step)
        opt.zero_grad()
        net(image, mask).mean().backward()
        opt.step()
        net.train()
    for n, v in net.encoder.state_dict().items():
        if ".bn." in n:
            assert torch.equal(v, enc_before[n]), f"encoder BN {n} changed"
    changed = [
        n for n, v in net.decoder.state_dict().items() if ".bn." in n and not torch.equal(v, dec_before[n])
    ]
    assert any("running_mean" in n for n in changed) and any("weight" in n for n in changed)
    for block in net.encoder:
        if block.bn is not None:
            assert not block.bn.weight.requires_grad and not block.bn.bias.requires_grad


@pytest.mark.parametrize("convert", ["torch", "lightning"])
def test_frozen_encoder_bn_survives_sync_batchnorm_conversion(convert):
    """trainer=ddp / multinode set sync_batchnorm: the conversion Lightning applies must leave the frozen encoder
    BatchNorm alone (statistics and affine unchanged by a train-mode step) while the decoder's BatchNorm syncs."""
    torch.manual_seed(4)
    net = PConvUNet(levels=4)
    net(*_inputs(seed=9))  # non-trivial running statistics before the freeze
    net.freeze_encoder_bn()
    if convert == "torch":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    else:
        from pytorch_lightning.plugins.layer_sync import TorchSyncBatchNorm

        net = TorchSyncBatchNorm().apply(net)
    encoder_bns = [b.bn for b in net.encoder if b.bn is not None]
    decoder_bns = [b.bn for b in net.decoder if b.bn is not None]
    assert not any(isinstance(bn, torch.nn.SyncBatchNorm) for bn in encoder_bns)
    assert all(isinstance(bn, torch.nn.SyncBatchNorm) for bn in decoder_bns)
    assert net.encoder_bn_frozen
    enc_before = {n: v.clone() for n, v in net.encoder.state_dict().items() if ".bn." in n}
    dec_before = {n: v.clone() for n, v in net.decoder.state_dict().items() if ".bn." in n}
    net.train()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    image, mask = _inputs(seed=1)
    opt.zero_grad()
    net(image, mask).mean().backward()
    opt.step()
    for n, v in net.encoder.state_dict().items():
        if ".bn." in n:
            assert torch.equal(v, enc_before[n]), f"encoder BN {n} changed after sync conversion"
    assert any(not torch.equal(v, dec_before[n]) for n, v in net.decoder.state_dict().items() if ".bn." in n)


def test_frozen_and_trainable_bn_checkpoints_are_interchangeable():
    torch.manual_seed(5)
    net = PConvUNet(levels=3)
    net(*_inputs(seed=2))
    frozen = PConvUNet(levels=3)
    frozen.load_state_dict(net.state_dict())
    frozen.freeze_encoder_bn()
    assert frozen.state_dict().keys() == net.state_dict().keys()
    fresh = PConvUNet(levels=3)
    fresh.load_state_dict(frozen.state_dict())  # a fine-tuning checkpoint loads into a plain network
    image, mask = _inputs(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(image, mask), frozen.eval()(image, mask), rtol=0, atol=0)


def test_frozen_encoder_bn_uses_running_stats_in_train_mode():
    torch.manual_seed(3)
    net = PConvUNet(levels=3)
    image, mask = _inputs()
    net.freeze_encoder_bn()
    for block in net.decoder:  # isolate the encoder: decoder BN in eval so only encoder behaviour differs
        if block.bn is not None:
            block.bn.eval()
    with torch.no_grad():
        net.train()
        for block in net.decoder:
            if block.bn is not None:
                block.bn.eval()
        out_train = net(image, mask)
        net.eval()
        out_eval = net(image, mask)
    torch.testing.assert_close(out_train, out_eval)


def test_core_modules_import_without_framework_packages():
    code = (
        "import sys, inpaint.nn, inpaint.models\n"
        "bad = [m for m in ('hydra', 'omegaconf', 'wandb', 'albumentations', 'pytorch_lightning', 'lightning', "
        "'kornia') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
