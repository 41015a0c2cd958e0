"""Tests of benchmarks/: the naive reference computes what the library computes (so the benchmark ratios compare
equal work), the equivalence check can fail, the GPU code path runs as far as a CPU allows, and ``--quick`` works.

No timing is asserted anywhere: performance figures live in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if (
    str(ROOT) not in sys.path
):  # benchmarks/ is a top-level package of the repository, not of the installed library
    sys.path.insert(0, str(ROOT))

from benchmarks.common import Table, peak_memory  # noqa: E402
from benchmarks.reference import NaiveInpaintingLoss, NaivePartialConv2d, NaivePConvUNet  # noqa: E402
from benchmarks.step import (  # noqa: E402
    EquivalenceError,
    Variant,
    _graph_breaks,
    bench_step,
    build_runner,
    check_equivalence,
    count_step_flops,
    make_batch,
    make_shared_weights,
)

from inpaint.losses import InpaintingLoss  # noqa: E402
from inpaint.models import PConvUNet  # noqa: E402
from inpaint.nn import PartialConv2d  # noqa: E402

LEVELS, SIZE, BATCH = 3, 32, 2


@pytest.fixture(autouse=True)
def _quiet_single_thread() -> Iterator[None]:
    # The library warns loudly about random VGG weights; here they are the point.
    logger = logging.getLogger("inpaint.losses.vgg")
    level = logger.level
    logger.setLevel(logging.ERROR)
    # Tiny shapes: one thread is faster, and immune to OpenMP stalls on a machine shared with other processes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    logger.setLevel(level)


@pytest.fixture(scope="module")
def shared() -> tuple[dict[str, torch.Tensor], torch.nn.Sequential]:
    return make_shared_weights(LEVELS, seed=0)


def test_naive_partial_conv_matches_library_layer() -> None:
    torch.manual_seed(0)
    lib = PartialConv2d(4, 6, 3, stride=2, padding=1, multi_channel=True)
    ref = NaivePartialConv2d(4, 6, 3, stride=2, padding=1, bias=True)
    ref.load_state_dict(lib.state_dict())
    x = torch.randn(2, 4, 16, 16)
    mask = (torch.rand(2, 4, 16, 16) > 0.5).float()
    mask[:, :, :8, :8] = 0.0  # some all-hole windows
    y_lib, m_lib = lib(x, mask)
    y_ref, m_ref = ref(x, mask)
    # The naive layer keeps C_out identical mask channels; the library keeps one.
    assert m_ref.shape == (2, 6, 8, 8) and torch.equal(m_ref, m_lib.expand_as(m_ref))
    assert (m_lib == 0).any() and (m_lib == 1).any()
    torch.testing.assert_close(y_ref, y_lib, rtol=1e-5, atol=1e-6)
    assert torch.all(y_ref[m_ref == 0] == 0)  # holes are 0, not the bias


@pytest.mark.parametrize("train", [True, False])
def test_naive_unet_matches_library(train: bool) -> None:
    torch.manual_seed(1)
    lib = PConvUNet(levels=LEVELS)
    ref = NaivePConvUNet(levels=LEVELS)
    missing = ref.load_state_dict(lib.state_dict())  # same parameter and buffer names
    assert not missing.missing_keys and not missing.unexpected_keys
    lib.train(train)
    ref.train(train)
    image, mask = make_batch(BATCH, SIZE, "cpu", seed=3)
    out_lib, out_ref = lib(image, mask), ref(image, mask)
    torch.testing.assert_close(out_ref, out_lib, rtol=1e-5, atol=1e-5)
    # Not trivially equal: the output depends on the mask.
    assert not torch.allclose(lib(image, torch.ones_like(mask)), out_lib, atol=1e-3)


def test_naive_loss_matches_library_terms() -> None:
    torch.manual_seed(2)
    lib = InpaintingLoss(vgg_weights="random")
    ref = NaiveInpaintingLoss()
    assert lib.vgg is not None
    ref.load_vgg_from(lib.vgg.features)
    output = torch.rand(BATCH, 3, SIZE, SIZE, requires_grad=True)
    target = torch.rand(BATCH, 3, SIZE, SIZE)
    _, mask = make_batch(BATCH, SIZE, "cpu", seed=4)
    t_lib = lib(output, target, mask)
    g_lib = torch.autograd.grad(t_lib["total"], output)[0]
    t_ref = ref(output, target, mask)
    g_ref = torch.autograd.grad(t_ref["total"], output)[0]
    assert set(t_ref) == set(t_lib)
    for key in t_ref:
        torch.testing.assert_close(t_ref[key], t_lib[key], rtol=1e-5, atol=1e-7, msg=key)
        assert t_ref[key].item() > 0, key
    torch.testing.assert_close(g_ref, g_lib, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_path_step_is_equivalent_to_reference(shared, channels_last: bool) -> None:
    state, vgg = shared
    project = build_runner(
        Variant("p", "project", channels_last=channels_last), LEVELS, BATCH, SIZE, "cpu", state, vgg
    )
    reference = build_runner(Variant("r", "reference"), LEVELS, BATCH, SIZE, "cpu", state, vgg)
    worst = check_equivalence(project, reference)
    assert worst["output"] < 1e-5 and worst["terms"] < 1e-5 and worst["grads"] < 1e-4
    # Tighter than the benchmark's own per-tensor tolerance (1e-2): at these shapes every gradient agrees closely.
    ref_params = dict(reference.model.named_parameters())
    for name, p in project.model.named_parameters():
        g, h = p.grad.double(), ref_params[name].grad.double()
        assert (g - h).norm() <= 1e-3 * h.norm(), name


def test_equivalence_check_detects_a_formula_difference(shared) -> None:
    state, vgg = shared
    project = build_runner(Variant("p", "project"), LEVELS, BATCH, SIZE, "cpu", state, vgg)
    reference = build_runner(Variant("r", "reference"), LEVELS, BATCH, SIZE, "cpu", state, vgg)
    # A classic bug: renormalising by k^2 instead of C_in*k^2 in one decoder layer, whose mask has one channel per
    # input channel (docs/method.md, "One partial convolution").
    conv = reference.model.decoder[0].conv
    conv.sum1 = float(conv.kernel_size[0] * conv.kernel_size[1])
    with pytest.raises(EquivalenceError, match="disagree"):
        check_equivalence(project, reference)


def test_flop_count_scales_exactly(shared) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    state, vgg = shared
    runner = build_runner(Variant("p", "project"), LEVELS, BATCH, 2 * SIZE, "cpu", state, vgg)
    with FlopCounterMode(display=False) as counter:
        runner.forward_backward()
    assert count_step_flops(runner, LEVELS, BATCH, 2 * SIZE) == counter.get_total_flops()


def test_cuda_variants_code_path_runs_on_cpu() -> None:
    """bf16 autocast + channels_last through the same table code the GPU run uses (no compile: minutes on CPU)."""
    variants = [
        Variant("reference", "reference"),
        Variant("project fp32", "project"),
        Variant("project bf16 + channels_last", "project", bf16=True, channels_last=True),
    ]
    table = bench_step("cpu", SIZE, LEVELS, BATCH, repeats=1, variants=variants, matmul_n=128)
    assert [r[0] for r in table.rows] == [v.name for v in variants]
    numerics = {r[0]: r[-1] for r in table.rows}
    assert numerics["project fp32"].startswith("equal")
    pct = float(numerics["project bf16 + channels_last"].split("bf16 loss ")[1].split("%")[0])
    assert pct < 5.0  # bf16 with float32 mask and Gram math stays close to the float32 loss
    notes = " ".join(table.notes)
    assert "GFLOP" in notes
    # utilisation of a bf16 step is measured against a bf16 peak, not the fp32 one
    assert "MFU = that / the peak of the variant's precision: fp32" in notes and "bf16" in notes


@pytest.mark.slow
def test_compiled_step_has_no_graph_breaks(shared) -> None:
    state, vgg = shared
    runner = build_runner(
        Variant("c", "project", bf16=True, channels_last=True, compile=True),
        LEVELS,
        BATCH,
        SIZE,
        "cpu",
        state,
        vgg,
    )
    assert _graph_breaks(runner) == 0


def test_peak_memory_sees_an_allocation() -> None:
    with peak_memory("cpu") as mem:
        x = torch.ones(32 * 1024 * 1024 // 4)  # 32 MiB, touched
        del x
    assert mem["peak_mib"] >= 24.0


def test_table_rejects_wrong_row_width() -> None:
    t = Table("t", ["a", "b"])
    t.add(1, 2)
    assert "| 1 | 2 |" in t.markdown()
    with pytest.raises(ValueError, match="columns"):
        t.add(1)


@pytest.mark.slow
def test_quick_mode_runs(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--markdown", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    for title in ("## Machine", "### Training step", "### Inference", "### Data pipeline"):
        assert title in text
    assert "equal (rel. diff" in text
    assert "inpaint.Inpainter" in text
    assert "### Inference options" in text and "| all three |" in text


def test_cli_rejects_unknown_benchmark() -> None:
    from benchmarks.run import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--only", "step,nope"])
