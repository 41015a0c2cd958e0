"""Lever ablation: where the training step's time goes, and what each optimisation buys on its own.

The step splits into the U-Net (forward + backward) and the loss (forward + backward into the output). Each half is
timed for the naive reference and the library, in NCHW and channels_last, and (informative only, not the float32
target's numerics) under bf16 autocast, interleaved on the same inputs:

- U-Net naive vs library: sum-pooled per-pixel valid counts instead of a (C_out, C_in, k, k) ones-kernel
  convolution and C_out-channel masks (plus the library's float32 masked-division renormalisation).
- loss naive vs library: one batched VGG pass for output + composite and a ``no_grad`` target pass, instead of three
  separate passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmarks.common import Table, interleaved_times, median, spread
from benchmarks.reference import NaiveInpaintingLoss, NaivePConvUNet
from benchmarks.step import make_batch, make_shared_weights
from inpaint.losses import InpaintingLoss
from inpaint.models import PConvUNet

__all__ = ["bench_levers"]


def _unet_fn(model: nn.Module, image: Tensor, mask: Tensor, bf16: bool) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            out = model(image, mask)
        out.float().mean().backward()

    return run


def _loss_fn(loss: nn.Module, output: Tensor, target: Tensor, mask: Tensor, bf16: bool) -> Callable[[], None]:
    def run() -> None:
        out = output.detach().requires_grad_(True)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            total = loss(out, target, mask)["total"]
        total.backward()

    return run


def bench_levers(size: int = 256, levels: int = 7, batch: int = 2, repeats: int = 5, seed: int = 0) -> Table:
    """Interleaved forward + backward times of the U-Net and of the loss, naive vs library, per lever (CPU)."""
    state, vgg_features = make_shared_weights(levels, seed)
    image, mask = make_batch(batch, size, "cpu", seed)
    cl = torch.channels_last

    def unet(kind: str, channels_last: bool) -> nn.Module:
        m: nn.Module = NaivePConvUNet(levels) if kind == "naive" else PConvUNet(levels)
        m.load_state_dict(state)
        m.train()
        return m.to(memory_format=cl) if channels_last else m

    def loss(kind: str, channels_last: bool) -> nn.Module:
        if kind == "naive":
            ref = NaiveInpaintingLoss()
            ref.load_vgg_from(vgg_features)
            lo: nn.Module = ref
        else:
            lib = InpaintingLoss(vgg_weights="random")
            assert lib.vgg is not None
            lib.vgg.features.load_state_dict(vgg_features.state_dict())
            lo = lib
        return lo.to(memory_format=cl) if channels_last else lo

    x_cl, m_cl = image.contiguous(memory_format=cl), mask.contiguous(memory_format=cl)
    with torch.no_grad():
        output = PConvUNet(levels).eval()(image, mask).clamp(0, 1)  # a plausible network output for the loss
    out_cl = output.contiguous(memory_format=cl)

    fns: dict[str, Callable[[], None]] = {
        "U-Net fwd+bwd, naive, NCHW": _unet_fn(unet("naive", False), image, mask, False),
        "U-Net fwd+bwd, library, NCHW": _unet_fn(unet("lib", False), image, mask, False),
        "U-Net fwd+bwd, library, channels_last": _unet_fn(unet("lib", True), x_cl, m_cl, False),
        "U-Net fwd+bwd, library, channels_last, bf16 autocast": _unet_fn(unet("lib", True), x_cl, m_cl, True),
        "loss fwd+bwd, naive (3 VGG passes), NCHW": _loss_fn(
            loss("naive", False), output, image, mask, False
        ),
        "loss fwd+bwd, library (batched + no-grad target), NCHW": _loss_fn(
            loss("lib", False), output, image, mask, False
        ),
        "loss fwd+bwd, library, channels_last": _loss_fn(loss("lib", True), out_cl, x_cl, m_cl, False),
        "loss fwd+bwd, library, channels_last, bf16 autocast": _loss_fn(
            loss("lib", True), out_cl, x_cl, m_cl, True
        ),
    }
    for fn in fns.values():
        fn()
    times = interleaved_times(fns, repeats)
    table = Table(
        f"Levers: U-Net and loss separately, {size}x{size}, {levels} levels, batch {batch}, cpu",
        ["part", "time (median)", "spread", "vs naive of the same part"],
    )
    base = {"U-Net": median(times["U-Net fwd+bwd, naive, NCHW"])}
    base["loss"] = median(times["loss fwd+bwd, naive (3 VGG passes), NCHW"])
    for name in fns:
        t = median(times[name])
        part = "U-Net" if name.startswith("U-Net") else "loss"
        table.add(name, f"{t * 1000:.0f} ms", f"±{spread(times[name])}", f"{base[part] / t:.2f}x")
    table.notes.append(
        f"median of {repeats} interleaved rounds after one warm-up; bf16 rows are informative only (the CPU target is "
        "float32 numerics)"
    )
    return table
