"""Tests of inpaint.losses.inpainting.InpaintingLoss against an independent float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import inpaint.losses.inpainting as inpainting_mod
from inpaint.losses import PAPER_WEIGHTS, InpaintingLoss

B, H, W = 2, 32, 40


@pytest.fixture(scope="module")
def loss() -> InpaintingLoss:
    """Paper weights, a fixed random VGG."""
    torch.manual_seed(0)
    return InpaintingLoss(vgg_weights="random")


def _mask(b: int = B, h: int = H, w: int = W, seed: int = 0) -> Tensor:
    """(b, 1, h, w) float mask, 1 = valid, with a few rectangular holes (one touching the border)."""
    g = torch.Generator().manual_seed(seed)
    m = torch.ones(b, 1, h, w)
    for i in range(b):
        for _ in range(3):
            y, x = (int(torch.randint(0, s - 6, (1,), generator=g)) for s in (h, w))
            dy, dx = (int(torch.randint(2, 8, (1,), generator=g)) for _ in range(2))
            m[i, :, y : y + dy, x : x + dx] = 0
        m[i, :, h - 3 :, :4] = 0
    return m


def _images(seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    # A smooth-ish target and an output that differs from it everywhere, as early in training.
    target = F.avg_pool2d(torch.rand(B, 3, H + 2, W + 2, generator=g), 3, stride=1)
    output = torch.rand(B, 3, H, W, generator=g)
    return output, target


# ---------------------------------------------------------------- independent float64 reference ---------------------


def _ref_vgg_pools(x: Tensor, vgg_state: dict[str, Tensor]) -> list[Tensor]:
    """VGG16 conv1_1..pool3 written out with F.conv2d in float64 (no use of the module under test)."""
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    h = (x.double() - mean) / std
    pools = []
    for block in ((0, 2), (5, 7), (10, 12, 14)):
        for i in block:
            wgt, bias = vgg_state[f"features.{i}.weight"].double(), vgg_state[f"features.{i}.bias"].double()
            h = F.relu(F.conv2d(h, wgt, bias, padding=1))
        h = F.max_pool2d(h, 2)
        pools.append(h)
    return pools


def _ref_dilated_hole(mask: np.ndarray) -> np.ndarray:
    """R: every pixel within one (8-neighbour) step of a hole pixel, by explicit loops."""
    b, c, h, w = mask.shape
    region = np.zeros_like(mask, dtype=bool)
    for i, ch, y, x in zip(*np.nonzero(mask < 0.5), strict=True):
        region[i, ch, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = True
    return region


def _reference_terms(
    output: Tensor, target: Tensor, mask: Tensor, vgg_state: dict[str, Tensor]
) -> dict[str, float]:
    o, g, m = output.double(), target.double(), mask.double().expand_as(output)
    n = o.numel()
    comp = m * g + (1 - m) * o
    ref = {
        "valid": (m * (o - g)).abs().sum().item() / n,
        "hole": ((1 - m) * (o - g)).abs().sum().item() / n,
    }
    po, pc, pg = (_ref_vgg_pools(x, vgg_state) for x in (o, comp, g))
    ref["perceptual"] = sum(
        (a - b).abs().sum().item() / a.numel() for a, b in zip(po, pg, strict=True)
    ) + sum((a - b).abs().sum().item() / a.numel() for a, b in zip(pc, pg, strict=True))

    def gram(f: Tensor) -> Tensor:
        _, c, h, w = f.shape
        return torch.einsum("bchw,bdhw->bcd", f, f) / (c * h * w)

    ref["style_out"] = sum((gram(a) - gram(b)).abs().mean().item() for a, b in zip(po, pg, strict=True))
    ref["style_comp"] = sum((gram(a) - gram(b)).abs().mean().item() for a, b in zip(pc, pg, strict=True))

    c_np, r = comp.numpy(), _ref_dilated_hole(m.numpy())
    tv = 0.0
    for y in range(H):
        for x in range(W):
            if x + 1 < W:
                both = r[:, :, y, x] & r[:, :, y, x + 1]
                tv += np.abs(c_np[:, :, y, x + 1] - c_np[:, :, y, x])[both].sum()
            if y + 1 < H:
                both = r[:, :, y, x] & r[:, :, y + 1, x]
                tv += np.abs(c_np[:, :, y + 1, x] - c_np[:, :, y, x])[both].sum()
    ref["tv"] = tv / n
    ref["total"] = sum(PAPER_WEIGHTS[k] * ref[k] for k in PAPER_WEIGHTS)
    return ref


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_terms_match_float64_reference(loss: InpaintingLoss, mask_channels: int) -> None:
    output, target = _images()
    mask = _mask()
    if mask_channels == 3:
        # Different holes per channel exercise the per-channel dilation.
        mask = torch.cat([mask, _mask(seed=1), _mask(seed=2)], dim=1)
    got = loss(output, target, mask)
    ref = _reference_terms(output, target, mask, loss.vgg.state_dict())
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert v > 0, k  # every term is exercised
        assert got[k].dtype == torch.float32
        assert got[k].item() == pytest.approx(v, rel=1e-5), k


def test_one_channel_mask_equals_repeated_three_channel(loss: InpaintingLoss) -> None:
    output, target = _images(1)
    mask = _mask(seed=3)
    a, b = loss(output, target, mask), loss(output, target, mask.expand(-1, 3, -1, -1))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=0)


def test_all_valid_mask_gives_exact_zero_hole_and_tv(loss: InpaintingLoss) -> None:
    output, target = _images(2)
    terms = loss(output, target, torch.ones(B, 1, H, W))
    assert terms["hole"].item() == 0.0
    assert terms["tv"].item() == 0.0
    assert terms["valid"].item() > 0


def test_tv_ignores_pixels_outside_dilated_hole(loss: InpaintingLoss) -> None:
    output, target = _images(3)
    mask = _mask(seed=4)
    region = F.max_pool2d(1 - mask, 3, stride=1, padding=1).bool().expand(-1, 3, -1, -1)
    assert 0 < region.float().mean() < 0.8  # the test would be vacuous otherwise
    base = loss(output, target, mask)["tv"]

    noise = torch.rand(B, 3, H, W)
    outside = ~region
    perturbed = loss(torch.where(outside, noise, output), torch.where(outside, 1 - target, target), mask)[
        "tv"
    ]
    assert perturbed.item() == base.item()

    # Inside R it does matter: a changed target next to the hole (the 1-pixel ring) changes the TV.
    ring = region & (mask > 0.5).expand(-1, 3, -1, -1)
    assert ring.any()
    changed = loss(output, torch.where(ring, 1 - target, target), mask)["tv"]
    assert changed.item() != base.item()


def test_gradients_reach_output_never_vgg(loss: InpaintingLoss) -> None:
    output, target = _images(4)
    output.requires_grad_(True)
    mask = _mask(seed=5)
    loss(output, target, mask)["total"].backward()
    assert output.grad is not None
    assert torch.isfinite(output.grad).all()
    assert (output.grad[mask.expand(-1, 3, -1, -1) < 0.5] != 0).any()  # hole pixels get gradient
    assert all(p.grad is None and not p.requires_grad for p in loss.vgg.parameters())


def test_vgg_stays_in_eval_after_train(loss: InpaintingLoss) -> None:
    parent = nn.ModuleDict({"loss": loss})
    parent.train()
    assert loss.training
    assert loss.vgg is not None and not any(m.training for m in loss.vgg.modules())
    parent.eval()
    parent.train(True)
    assert not loss.vgg.training


def test_target_features_without_grad_and_one_batched_pass(loss: InpaintingLoss) -> None:
    calls: list[tuple[int, bool]] = []
    hook = loss.vgg.register_forward_hook(
        lambda mod, args, out: calls.append((args[0].shape[0], out[0].requires_grad))
    )
    try:
        output, target = _images(5)
        loss(output.requires_grad_(True), target, _mask())
    finally:
        hook.remove()
    # gt alone without grad; output and composite together in one pass with grad.
    assert calls == [(B, False), (2 * B, True)]


def test_bf16_autocast_close_to_float32(loss: InpaintingLoss) -> None:
    output, target = _images(6)
    mask = _mask(seed=6)
    ref = loss(output, target, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(output.bfloat16(), target, mask)
    for k, v in ref.items():
        assert torch.isfinite(got[k]), k
        assert got[k].dtype == torch.float32, k
        assert got[k].item() == pytest.approx(v.item(), rel=0.02), k


def test_module_cast_to_bf16_still_works() -> None:
    # "bf16-true" style precision casts the whole module, VGG included; inputs may stay float32.
    torch.manual_seed(0)
    ref_loss = InpaintingLoss(vgg_weights="random")
    bf16_loss = InpaintingLoss(vgg_weights="random").to(torch.bfloat16)
    bf16_loss.load_state_dict(ref_loss.state_dict())
    output, target = _images(10)
    mask = _mask(seed=7)
    ref, got = ref_loss(output, target, mask), bf16_loss(output, target, mask)
    for k, v in ref.items():
        assert torch.isfinite(got[k]) and got[k].dtype == torch.float32, k
        assert got[k].item() == pytest.approx(v.item(), rel=0.02), k


def test_gram_matrix_is_float32_under_autocast() -> None:
    feat = torch.rand(2, 8, 4, 4, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = inpainting_mod.gram_matrix(feat)
    assert g.dtype == torch.float32
    f = feat.double().flatten(2)
    torch.testing.assert_close(g.double(), f @ f.transpose(1, 2) / (8 * 16), rtol=1e-6, atol=0)


def test_total_is_weighted_sum_with_partial_override() -> None:
    torch.manual_seed(0)
    custom = InpaintingLoss(vgg_weights="random", weights={"tv": 2.0, "style_comp": 10.0})
    assert custom.weights == {**PAPER_WEIGHTS, "tv": 2.0, "style_comp": 10.0}
    output, target = _images(7)
    terms = custom(output, target, _mask())
    expected = sum(custom.weights[k] * terms[k] for k in PAPER_WEIGHTS)
    torch.testing.assert_close(terms["total"], expected)


def test_zero_weights_are_not_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a term with weight 0 was computed")

    torch.manual_seed(0)
    only_out = InpaintingLoss(vgg_weights="random", weights={"perceptual": 0, "style_comp": 0, "tv": 0})
    monkeypatch.setattr(inpainting_mod, "perceptual_loss", forbidden)
    monkeypatch.setattr(inpainting_mod, "total_variation_in_region", forbidden)
    monkeypatch.setattr(inpainting_mod, "dilate_hole", forbidden)
    monkeypatch.setattr(inpainting_mod, "composite", forbidden)
    calls: list[int] = []
    only_out.vgg.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    output, target = _images(8)
    terms = only_out(output, target, _mask())
    assert set(terms) == {"valid", "hole", "style_out", "total"}
    assert calls == [B, B]  # gt, then the output alone: no composite pass


def test_l1_only_builds_no_vgg() -> None:
    l1 = InpaintingLoss(
        vgg_weights="imagenet", weights={"perceptual": 0, "style_out": 0, "style_comp": 0, "tv": 0}
    )
    # "imagenet" was not even looked up (this would fail offline otherwise).
    assert l1.vgg is None and l1.vgg_source == "none"
    assert list(l1.state_dict()) == []
    output, target = _images(9)
    mask = _mask()
    terms = l1(output, target, mask)
    assert set(terms) == {"valid", "hole", "total"}
    torch.testing.assert_close(terms["total"], terms["valid"] + 6 * terms["hole"])


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"style": 1.0}, "unknown loss term"),
        ({"hole": -1.0}, ">= 0"),
        ({"hole": float("nan")}, ">= 0"),
        (dict.fromkeys(PAPER_WEIGHTS, 0.0), "all loss weights are 0"),
    ],
)
def test_bad_weights_rejected(weights: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InpaintingLoss(vgg_weights="random", weights=weights)


def test_bad_shapes_rejected(loss: InpaintingLoss) -> None:
    output, target = _images()
    with pytest.raises(ValueError, match="mask must be"):
        loss(output, target, _mask()[:, :, :-1])
    with pytest.raises(ValueError, match="mask must be"):
        loss(output, target, torch.ones(B, 2, H, W))
    with pytest.raises(ValueError, match="target shape"):
        loss(output, target[:1], _mask())
    with pytest.raises(ValueError, match="output must be"):
        loss(output[:, :1], target[:, :1], _mask())


def test_float64_inputs_stay_float64() -> None:
    loss64 = InpaintingLoss(vgg_weights="random", weights={"perceptual": 0, "style_out": 0, "style_comp": 0})
    output, target = _images()
    terms = loss64(output.double(), target.double(), _mask().double())
    assert all(v.dtype == torch.float64 for v in terms.values())


class _HoleMean(nn.Module):
    """An extra term: the mean of the output over the hole; records the dtype it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: list[torch.dtype] = []

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        self.dtypes.append(output.dtype)
        return ((1 - mask) * output).mean()


NO_VGG = {"perceptual": 0.0, "style_out": 0.0, "style_comp": 0.0}


def test_an_extra_term_joins_the_total_with_its_weight_and_gets_gradients() -> None:
    term = _HoleMean()
    loss = InpaintingLoss(weights={**NO_VGG, "mine": 3.0}, extra_terms={"mine": term})
    assert loss.active_terms == ("valid", "hole", "tv", "mine")
    output = torch.rand(2, 3, 16, 16, requires_grad=True)
    target, mask = torch.rand(2, 3, 16, 16), torch.ones(2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = loss(output.bfloat16(), target, mask)
    assert term.dtypes == [torch.float32]  # float32 also under autocast, as the paper's terms
    expected = terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"] + 3 * terms["mine"]
    assert torch.allclose(terms["total"], expected)
    assert torch.allclose(terms["mine"], ((1 - mask) * output.bfloat16().float()).mean())
    terms["total"].backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert "mine" in dict(loss.named_children())["extra_terms"]._modules  # moves with .to(device)


@pytest.mark.parametrize(
    ("weights", "extra", "match"),
    [
        (NO_VGG, {"mine": _HoleMean()}, r"extra loss term\(s\) \['mine'\] have no weight"),
        ({**NO_VGG, "mien": 1.0}, {"mine": _HoleMean()}, r"unknown loss term\(s\) \['mien'\]"),
        ({**NO_VGG, "hole": 1.0}, {"hole": _HoleMean()}, r"\['hole'\] would replace a built-in term"),
    ],
)
def test_extra_terms_need_their_weight_and_a_name_of_their_own(weights, extra, match) -> None:
    with pytest.raises(ValueError, match=match):
        InpaintingLoss(weights=weights, extra_terms=extra)


def test_an_extra_term_that_is_not_a_scalar_is_refused() -> None:
    class PerPixel(nn.Module):
        def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
            return (output - target).abs()

    loss = InpaintingLoss(weights={**NO_VGG, "map": 1.0}, extra_terms={"map": PerPixel()})
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(
        ValueError, match=r"extra loss term 'map' must return a scalar tensor, got \(1, 3, 8, 8\)"
    ):
        loss(x, x, torch.ones(1, 1, 8, 8))
