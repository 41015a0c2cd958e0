"""Inference-latency benchmark: one image through the U-Net, project vs naive reference, and the user-facing
:class:`inpaint.Inpainter` (uint8 image + nonzero-is-hole mask in, uint8 image out)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import Table, interleaved_times, median, peak_memory, spread
from benchmarks.reference import NaivePConvUNet
from benchmarks.step import EquivalenceError, make_batch
from inpaint.models import PConvUNet

log = logging.getLogger(__name__)

__all__ = ["bench_infer", "calibrate_batchnorm", "forward_flops"]


def forward_flops(model: nn.Module, levels: int, size: int) -> int:
    """FLOPs of one eval-mode forward of a ``size``² image, counted on a CPU copy at side ``2**levels`` and scaled
    by the area (every convolution's cost is proportional to H*W)."""
    small = 2**levels
    net = copy.deepcopy(model).cpu().float().to(memory_format=torch.contiguous_format).eval()
    image, mask = make_batch(1, small, "cpu")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(image, mask)
    return int(counter.get_total_flops() * (size / small) ** 2)


def calibrate_batchnorm(model: nn.Module, image: Tensor, mask: Tensor) -> None:
    """Set every BatchNorm's running statistics to the statistics of one batch.

    Freshly initialised running statistics (mean 0, variance 1) let eval-mode activations drift by orders of
    magnitude through 16 layers; a trained network does not, and tiny (denormal) values would distort CPU timings.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
    model.train()
    with torch.no_grad():
        model(image, mask)
    for bn, momentum in zip(bns, saved, strict=True):
        bn.momentum = momentum
    model.eval()


def bench_infer(
    device: str = "cpu",
    size: int = 512,
    levels: int = 8,
    repeats: int = 5,
    seed: int = 0,
) -> Table:
    """Latency of inpainting one ``size``² image with a ``levels``-level U-Net; batch 1, interleaved repeats.

    Rows: the naive reference (float32, NCHW, ``no_grad``), the project's model (float32, ``inference_mode``,
    NCHW and channels_last), :class:`inpaint.Inpainter` end to end (if importable), and on CUDA a bf16 row.
    """
    dev = torch.device(device)
    torch.manual_seed(seed)
    image, mask = make_batch(2, size, "cpu", seed)
    project = PConvUNet(levels=levels)
    calibrate_batchnorm(project, image, mask)
    reference = NaivePConvUNet(levels=levels)
    reference.load_state_dict(project.state_dict())
    reference.eval()
    project_cl = PConvUNet(levels=levels)
    project_cl.load_state_dict(project.state_dict())
    project_cl.eval()
    for m in (project, reference, project_cl):
        m.to(dev)
    project_cl.to(memory_format=torch.channels_last)
    x, m = image[:1].to(dev), mask[:1].to(dev)
    x_cl, m_cl = (
        x.contiguous(memory_format=torch.channels_last),
        m.contiguous(memory_format=torch.channels_last),
    )

    with torch.no_grad():
        ref_out = reference(x, m)
    with torch.inference_mode():
        for name, out in (("NCHW", project(x, m)), ("channels_last", project_cl(x_cl, m_cl))):
            rel = ((out.double() - ref_out.double()).norm() / ref_out.double().norm()).item()
            if rel > 1e-4:
                raise EquivalenceError(
                    f"inference output of the project ({name}) differs from the reference: {rel:.2e}"
                )

    def run_ref() -> object:
        with torch.no_grad():
            return reference(x, m)

    def run_project() -> object:
        with torch.inference_mode():
            return project(x, m)

    def run_project_cl() -> object:
        with torch.inference_mode():
            return project_cl(x_cl, m_cl)

    fns: dict[str, Callable[[], object]] = {
        "reference (naive, fp32, NCHW)": run_ref,
        "project model fp32, NCHW": run_project,
        "project model fp32, channels_last": run_project_cl,
    }
    if dev.type == "cuda":

        def run_bf16() -> object:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                return project_cl(x_cl, m_cl)

        fns["project model bf16, channels_last"] = run_bf16

    notes: list[str] = []
    try:
        from inpaint.inference import Inpainter
    except ImportError as err:
        notes.append(f"inpaint.Inpainter row skipped: cannot import it ({err})")
    else:
        inpainter = Inpainter(project, device=dev)
        rgb = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hole = (mask[0, 0].numpy() == 0).astype(np.uint8) * 255  # user convention: nonzero = hole

        def run_inpainter() -> object:
            return inpainter(rgb, hole)

        fns["inpaint.Inpainter (uint8 in/out, fp32)"] = run_inpainter

    for fn in fns.values():  # warm-up: oneDNN / cuDNN primitive creation, allocator
        fn()
        fn()
    memory: dict[str, float] = {}
    method = ""
    for name, fn in fns.items():
        with peak_memory(dev) as mem:
            fn()
        memory[name] = mem["peak_mib"]
        method = str(mem["method"])
    times = interleaved_times(fns, repeats, dev)

    base = median(times["reference (naive, fp32, NCHW)"])
    table = Table(
        f"Inference, one {size}x{size} image, {levels} levels, {device}",
        ["variant", "latency (median)", "spread", "vs reference", "peak mem (MiB)"],
    )
    for name in fns:
        t = median(times[name])
        table.add(
            name, f"{t * 1000:.0f} ms", f"±{spread(times[name])}", f"{base / t:.2f}x", f"{memory[name]:.0f}"
        )
    table.notes += [
        f"median of {repeats} interleaved rounds after 2 warm-up calls; outputs checked equal to the reference "
        "(relative L2 < 1e-4) before timing; BatchNorm statistics calibrated on one batch",
        f"peak memory: {method} during one call",
        f"U-Net forward: {forward_flops(project, levels, size) / 1e9:.1f} GFLOP (FlopCounterMode)",
    ]
    table.notes += notes
    return table
