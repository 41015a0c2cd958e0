"""Training-step benchmark: forward + loss + backward + Adam step, project vs the naive reference.

A step is timed without Lightning: :class:`inpaint.models.PConvUNet` + :class:`inpaint.losses.InpaintingLoss` (the
project) against :class:`benchmarks.reference.NaivePConvUNet` + :class:`benchmarks.reference.NaiveInpaintingLoss`
(the reference), both starting from the same weights. The first step of each float32 variant doubles as the
equivalence check: loss terms, U-Net output and every parameter gradient must agree before anything is timed.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import (
    Table,
    gpu_peak_flops,
    interleaved_times,
    measured_matmul_flops,
    median,
    peak_memory,
    spread,
)
from benchmarks.reference import NaiveInpaintingLoss, NaivePConvUNet
from inpaint.losses import InpaintingLoss
from inpaint.models import PConvUNet

log = logging.getLogger(__name__)

__all__ = [
    "EquivalenceError",
    "StepRunner",
    "Variant",
    "bench_step",
    "build_runner",
    "check_equivalence",
    "make_batch",
    "make_shared_weights",
    "strict_fp32",
]


_MATMUL = "__matmul__"
_MATMUL_BF16 = "__matmul_bf16__"
_MATMUL_N = 2048


class EquivalenceError(AssertionError):
    """The project and the reference computed different numbers: timings would compare different work."""


@dataclass(frozen=True)
class Variant:
    """One way of running the step.

    Attributes:
        name: row label.
        impl: ``"reference"`` (naive) or ``"project"`` (library).
        bf16: bf16 autocast (mask and Gram math stay float32 inside the library).
        channels_last: NHWC memory format for model, VGG and inputs.
        compile: ``torch.compile`` of forward + loss.
        cudnn_benchmark: ``torch.backends.cudnn.benchmark`` while this variant runs (CUDA only).
    """

    name: str
    impl: str
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False

    @property
    def float32(self) -> bool:
        return not self.bf16


def make_batch(batch: int, size: int, device: torch.device | str, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A deterministic batch: images (B, 3, S, S) in [0, 1] and masks (B, 1, S, S), 1 = valid, 0 = hole.

    The holes are a few random rectangles per image plus sparse random pixels (about 20-35 % hole), so that all
    code paths (windows fully valid, partly valid, all hole) occur at every level.
    """
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=g)
    mask = torch.ones(batch, 1, size, size)
    for b in range(batch):
        for _ in range(4):
            h, w = (int(v) for v in torch.randint(size // 8, size // 3 + 1, (2,), generator=g))
            y, x = (int(v) for v in torch.randint(0, size - min(h, w) + 1, (2,), generator=g))
            mask[b, :, y : y + h, x : x + w] = 0.0
    mask = mask * (torch.rand(batch, 1, size, size, generator=g) > 0.05).float()
    return image.to(device), mask.to(device)


def make_shared_weights(levels: int, seed: int = 0) -> tuple[dict[str, Tensor], nn.Sequential]:
    """One U-Net state dict and one VGG16 ``features[:17]`` that every variant starts from.

    The VGG is the library's ``vgg_weights="random"`` network (seeded), so no download is needed; weights do not
    change the cost of a step.
    """
    torch.manual_seed(seed)
    state = PConvUNet(levels=levels).state_dict()
    vgg = InpaintingLoss(vgg_weights="random").vgg
    assert vgg is not None
    return state, vgg.features


class StepRunner:
    """Owns a model, a loss, an Adam optimiser and one input batch; :meth:`step` runs one training step."""

    def __init__(
        self,
        variant: Variant,
        model: nn.Module,
        loss: nn.Module,
        image: Tensor,
        mask: Tensor,
        device: torch.device,
    ) -> None:
        self.variant = variant
        self.model = model
        self.loss = loss
        self.device = device
        self.optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4)
        fmt = torch.channels_last if variant.channels_last else torch.contiguous_format
        self.image = image.contiguous(memory_format=fmt)
        self.mask = mask.contiguous(memory_format=fmt)
        self.forward: Callable[[Tensor, Tensor], dict[str, Tensor]] = self._forward
        if variant.compile:
            self.forward = torch.compile(self._forward)

    def _forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        out = self.model(image, mask)
        terms = self.loss(out, image, mask)
        terms["output"] = out
        return terms

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.variant.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward_backward(self) -> dict[str, Tensor]:
        """Zero the gradients, run forward + loss, backpropagate; returns the loss terms and the U-Net output."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.variant.cudnn_benchmark
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            terms = self.forward(self.image, self.mask)
        terms["total"].backward()
        return terms

    def step(self) -> Tensor:
        """One full training step; returns the (detached) total loss."""
        terms = self.forward_backward()
        self.optimizer.step()
        return terms["total"].detach()


def build_runner(
    variant: Variant,
    levels: int,
    batch: int,
    size: int,
    device: torch.device | str,
    unet_state: dict[str, Tensor],
    vgg_features: nn.Sequential,
    seed: int = 0,
) -> StepRunner:
    """A :class:`StepRunner` for ``variant`` starting from the shared weights."""
    dev = torch.device(device)
    if variant.impl == "reference":
        model: nn.Module = NaivePConvUNet(levels=levels)
        ref_loss = NaiveInpaintingLoss()
        ref_loss.load_vgg_from(vgg_features)
        loss: nn.Module = ref_loss
    elif variant.impl == "project":
        model = PConvUNet(levels=levels)
        lib_loss = InpaintingLoss(vgg_weights="random")
        assert lib_loss.vgg is not None
        lib_loss.vgg.features.load_state_dict(vgg_features.state_dict())
        loss = lib_loss
    else:
        raise ValueError(f"unknown implementation {variant.impl!r}; expected 'reference' or 'project'")
    model.load_state_dict(unet_state)
    model.train()
    model.to(dev)
    loss.to(dev)
    if variant.channels_last:
        model.to(memory_format=torch.channels_last)
        loss.to(memory_format=torch.channels_last)
    image, mask = make_batch(batch, size, dev, seed)
    return StepRunner(variant, model, loss, image, mask, dev)


def _rel(a: Tensor, b: Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64 (‖a − b‖ where b is zero)."""
    a64, b64 = a.detach().double(), b.detach().double()
    den = b64.norm().item()
    diff = (a64 - b64).norm().item()
    return diff / den if den > 0 else diff


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """No TF32 while comparing on CUDA (TF32 convolutions would differ by ~1e-3)."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def check_equivalence(
    project: StepRunner,
    reference: StepRunner,
    rtol: float = 1e-4,
    grad_rtol: float = 1e-3,
    grad_tensor_rtol: float = 1e-2,
) -> dict[str, float]:
    """Run forward + loss + backward once on both (float32, TF32 off) and compare; raises on a mismatch.

    Compared: the U-Net output (relative L2, ``rtol``), every loss term and the total (relative, ``rtol``), all
    parameter gradients together (relative L2 of the concatenation, ``grad_rtol``) and each parameter's gradient by
    name (``grad_tensor_rtol``; the reference has the same parameter names). Both runners must hold the same
    weights and inputs. Leaves gradients in place; the caller may take the optimiser step afterwards.

    Tolerances: at 256², 7 levels, float32 rounding alone makes single small gradients (BatchNorm biases of the
    first layers, sums of many cancelling terms) differ by up to ~3e-4 between two float32 runs and a float64 one,
    and the whole gradient by ~1e-4; a real formula difference (missing ``sum1``, bias left in holes, a wrong mask
    count) moves them by 1e-2 or more.

    Returns:
        the worst relative differences: ``output``, ``terms``, ``grads`` (all together), ``grad_tensor`` (worst one).
    """
    if not (project.variant.float32 and reference.variant.float32):
        raise ValueError("the equivalence check is defined for float32 variants only")
    with strict_fp32():
        tp = project.forward_backward()
        tr = reference.forward_backward()
    worst = {"output": _rel(tp["output"], tr["output"])}
    term_diffs = {k: _rel(tp[k], tr[k]) for k in tr if k != "output"}
    missing = sorted(set(tr) - set(tp))
    if missing:
        raise EquivalenceError(f"the project loss lacks terms {missing} that the reference computes")
    worst["terms"] = max(term_diffs.values())
    ref_params = dict(reference.model.named_parameters())
    grad_diffs: dict[str, float] = {}
    for name, p in project.model.named_parameters():
        q = ref_params[name]
        if p.grad is None or q.grad is None:
            raise EquivalenceError(
                f"gradient of {name} missing (project {p.grad is None}, reference {q.grad is None})"
            )
        grad_diffs[name] = _rel(p.grad, q.grad)
    names = list(grad_diffs)
    flat_p = torch.cat([dict(project.model.named_parameters())[n].grad.flatten() for n in names])
    flat_r = torch.cat([ref_params[n].grad.flatten() for n in names])
    worst["grads"] = _rel(flat_p, flat_r)
    worst["grad_tensor"] = max(grad_diffs.values())
    problems = []
    if worst["output"] > rtol:
        problems.append(f"U-Net output differs by {worst['output']:.2e} (relative L2)")
    bad_terms = {k: f"{v:.2e}" for k, v in term_diffs.items() if v > rtol}
    if bad_terms:
        problems.append(f"loss terms differ: {bad_terms}")
    if worst["grads"] > grad_rtol:
        problems.append(f"the gradient differs by {worst['grads']:.2e} (relative L2 over all parameters)")
    bad_grads = {k: f"{v:.2e}" for k, v in grad_diffs.items() if v > grad_tensor_rtol}
    if bad_grads:
        problems.append(f"gradients differ: {bad_grads}")
    if problems:
        raise EquivalenceError("project and reference disagree: " + "; ".join(problems))
    return worst


def count_step_flops(runner: StepRunner, levels: int, batch: int, size: int) -> int:
    """FLOPs of one float32 forward + loss + backward (convolutions and matmuls), counted by FlopCounterMode.

    Every counted operation's cost is proportional to B*H*W (stride-2 convolutions halve even sizes exactly, the
    Gram matrices' inner dimension is H*W), so the count is taken on CPU copies of the runner's modules at the
    smallest valid shape (batch 2 for BatchNorm, side ``2**levels``) and scaled: exact, and seconds instead of a full
    CPU step.
    """
    small = 2**levels
    if size % small:
        raise ValueError(f"size {size} is not divisible by 2**levels = {small}")
    model = copy.deepcopy(runner.model).cpu().float().to(memory_format=torch.contiguous_format)
    loss = copy.deepcopy(runner.loss).cpu().float()
    image, mask = make_batch(2, small, "cpu")
    with FlopCounterMode(display=False) as counter:
        out = model(image, mask)
        loss(out, image, mask)["total"].backward()
    return int(counter.get_total_flops() * (batch / 2) * (size / small) ** 2)


def _graph_breaks(runner: StepRunner) -> int:
    """Graph breaks dynamo finds in the variant's forward + loss (0 = one graph)."""
    import torch._dynamo

    with runner._autocast():
        explanation = torch._dynamo.explain(runner._forward)(runner.image, runner.mask)
    torch._dynamo.reset()
    return int(explanation.graph_break_count)


def cpu_variants(compile_step: bool = False) -> list[Variant]:
    """The CPU table: the reference, the project's float32 paths and (informative) bf16 autocast.

    ``compile_step`` adds channels_last + torch.compile (inductor): its first step compiles for 1.5-3 minutes on a
    2-core machine, too long for the default ``make bench`` budget.
    """
    variants = [
        Variant("reference (naive, fp32, NCHW)", "reference"),
        Variant("project fp32, NCHW", "project"),
        Variant("project fp32, channels_last", "project", channels_last=True),
        # Informative: Zen 4 / Sapphire Rapids CPUs have bf16 dot products; not the float32 target's numerics.
        Variant("project bf16 autocast + channels_last", "project", bf16=True, channels_last=True),
    ]
    if compile_step:
        variants.append(
            Variant("project fp32, channels_last + compile", "project", channels_last=True, compile=True)
        )
    return variants


def cuda_variants(compile_step: bool = True) -> list[Variant]:
    """The GPU table: reference float32 eager (PyTorch defaults), project float32, bf16 + channels_last, + compile."""
    variants = [
        Variant("reference (naive, fp32 eager)", "reference"),
        Variant("project fp32 eager", "project", cudnn_benchmark=True),
        Variant(
            "project bf16 + channels_last", "project", bf16=True, channels_last=True, cudnn_benchmark=True
        ),
    ]
    if compile_step:
        variants.append(
            Variant(
                "project bf16 + channels_last + compile",
                "project",
                bf16=True,
                channels_last=True,
                compile=True,
                cudnn_benchmark=True,
            )
        )
    return variants


def bench_step(
    device: str = "cpu",
    size: int = 256,
    levels: int = 7,
    batch: int = 2,
    repeats: int = 5,
    inner: int = 1,
    variants: list[Variant] | None = None,
    seed: int = 0,
    matmul_n: int = _MATMUL_N,
) -> Table:
    """Interleaved training-step throughput of the variants; the first variant is the baseline of the ratios.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        size, levels, batch: the step's shape (size divisible by ``2**levels``).
        repeats: rounds of interleaved timing (median reported).
        inner: steps per timed block.
        variants: rows; :func:`cpu_variants` / :func:`cuda_variants` by default. The first must be the float32
            reference; every float32 project variant is checked against it before timing.
        matmul_n: side of the square matmuls that measure the CPU's attainable rates (a smoke run makes it small:
            a 2048³ bf16 matmul takes about a minute where the CPU has no bf16 dot products).

    Returns:
        the table (images/s, ratio, peak memory, loss check, FLOP-based utilisation).
    """
    dev = torch.device(device)
    if variants is None:
        variants = cuda_variants() if dev.type == "cuda" else cpu_variants()
    if variants[0].impl != "reference" or not variants[0].float32:
        raise ValueError("the first variant must be the float32 reference (the ratios' baseline)")
    unet_state, vgg_features = make_shared_weights(levels, seed)
    runners = {
        v.name: build_runner(v, levels, batch, size, dev, unet_state, vgg_features, seed) for v in variants
    }
    ref = runners[variants[0].name]

    # FLOPs of the project's float32 step are the "model FLOPs" (useful work); the reference's count shows how much
    # extra its full ones-kernel mask convolutions cost.
    first_project = next(r for r in runners.values() if r.variant.impl == "project")
    model_flops = count_step_flops(first_project, levels, batch, size)
    ref_flops = count_step_flops(ref, levels, batch, size)

    # Warm-up / check step of each variant (not timed): float32 projects are compared with the reference first.
    ref_total = None
    checks: dict[str, str] = {}
    graph_breaks: dict[str, int] = {}
    for v in variants:
        r = runners[v.name]
        if v.impl == "project" and v.float32:
            worst = check_equivalence(r, ref)
            checks[v.name] = (
                f"equal (rel. diff: out {worst['output']:.0e}, loss {worst['terms']:.0e}, grad {worst['grads']:.0e})"
            )
            r.optimizer.step()
        if v.compile:
            graph_breaks[v.name] = _graph_breaks(r)
    ref_total = ref.forward_backward()["total"].detach().double().item()
    ref.optimizer.step()
    for v in variants:
        r = runners[v.name]
        if v.impl == "project" and not v.float32:
            total = r.forward_backward()["total"].detach().double().item()
            # Still at the initial weights, like ref_total: the bf16 loss should be close to the float32 one.
            checks[v.name] = f"bf16 loss {100 * abs(total - ref_total) / abs(ref_total):.2f}% from fp32"
            r.optimizer.step()
        r.step()  # second warm-up: compiled graphs, cuDNN autotuning, oneDNN primitive caches
    checks[variants[0].name] = "baseline"

    memory: dict[str, float] = {}
    method = ""
    for v in variants:
        with peak_memory(dev) as mem:
            runners[v.name].step()
        memory[v.name] = mem["peak_mib"]
        method = str(mem["method"])

    fns: dict[str, Callable[[], object]] = {k: r.step for k, r in runners.items()}
    if dev.type == "cpu":
        # The CPU's attainable rates are measured inside the same rounds, so MFU compares like with like even when
        # other processes load the machine; one matmul per precision, as bf16 variants run on bf16 units.
        a, b = torch.randn(matmul_n, matmul_n), torch.randn(matmul_n, matmul_n)
        a16, b16 = a.bfloat16(), b.bfloat16()
        fns[_MATMUL] = lambda: a @ b
        fns[_MATMUL_BF16] = lambda: a16 @ b16
    cpu_times: dict[str, list[float]] = {}
    times = interleaved_times(fns, repeats, dev, inner, cpu_times)

    if dev.type == "cuda":
        sheet = gpu_peak_flops(torch.cuda.get_device_name(0))
        peaks = {
            "bf16": sheet[0] if sheet else measured_matmul_flops(dev, torch.bfloat16, 8192),
            "fp32": sheet[1] if sheet else measured_matmul_flops(dev, torch.float32, 8192),
        }
        peak_label = "data-sheet dense peak of the variant's precision" if sheet else "measured 8192³ matmul"
    else:
        peaks = {
            "fp32": 2.0 * matmul_n**3 / min(times.pop(_MATMUL)),
            "bf16": 2.0 * matmul_n**3 / min(times.pop(_MATMUL_BF16)),
        }
        cpu_times.pop(_MATMUL)
        cpu_times.pop(_MATMUL_BF16)
        peak_label = (
            f"fastest {matmul_n}³ matmul of the variant's precision in the same rounds; oneDNN convolutions can beat "
            "it, so >100% is possible"
        )

    base = median(times[variants[0].name])
    base_cpu = median(cpu_times[variants[0].name])
    table = Table(
        f"Training step, {size}x{size}, {levels} levels, batch {batch}, {device}",
        [
            "variant",
            "step (median)",
            "spread",
            "images/s",
            "vs reference",
            "CPU-time ratio",
            "peak mem (MiB)",
            "GFLOP/s",
            "MFU",
            "numerics",
        ],
    )
    for v in variants:
        t = median(times[v.name])
        table.add(
            v.name,
            f"{t * 1000:.0f} ms" if t >= 0.01 else f"{t * 1000:.2f} ms",
            f"±{spread(times[v.name])}",
            f"{batch / t:.2f}",
            f"{base / t:.2f}x",
            f"{base_cpu / median(cpu_times[v.name]):.2f}x" if dev.type == "cpu" else "n/a",
            f"{memory[v.name]:.0f}",
            f"{model_flops / t / 1e9:.0f}",
            f"{100 * model_flops / t / peaks['bf16' if v.bf16 else 'fp32']:.1f}%",
            checks.get(v.name, ""),
        )
    table.notes += [
        f"median of {repeats} interleaved rounds ({inner} step(s) each) after 2 warm-up steps; spread = half the "
        "min-max range relative to the median",
        f"model FLOPs per step (forward + loss + backward, FlopCounterMode, project): {model_flops / 1e9:.1f} GFLOP; "
        f"the reference executes {ref_flops / 1e9:.1f} GFLOP (its ones-kernel mask convolutions included)",
        f"GFLOP/s = model FLOPs / step time; MFU = that / the peak of the variant's precision: fp32 "
        f"{peaks['fp32'] / 1e9:.0f}, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s ({peak_label})",
        "vs reference = ratio of median wall times (the target's measure); CPU-time ratio = ratio of median process "
        "CPU times (user + system), a cross-check less distorted by other processes on a shared machine",
        f"peak memory: {method} during one step (CPU: resident set size, includes allocator caching)",
    ]
    if dev.type == "cuda":
        table.notes.append(
            "float32 rows run with PyTorch's defaults (cuDNN convolutions may use TF32); the equivalence check turns "
            "TF32 off"
        )
    for name, n in graph_breaks.items():
        table.notes.append(f"{name}: {n} graph break(s) in forward + loss (torch._dynamo.explain)")
    return table
