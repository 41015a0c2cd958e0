"""Entry point: ``python -m benchmarks.run [--quick] [--device cpu|cuda] [--only step,infer,data]``.

Prints Markdown tables (the format of ``benchmarks/RESULTS.md``) headed by the machine they were measured on.

- ``step``: training step (forward + loss + backward + Adam) in images/s and peak memory, project vs the naive
  reference, interleaved, median of repeats. CPU: 256², 7 levels, batch 2, float32. ``--device cuda``: 256² and 512²,
  float32 eager vs bf16 + channels_last (+ torch.compile), with model FLOPs utilisation.
- ``infer``: latency of one 512² image, 8 levels, on CPU (and on the GPU with ``--device cuda``); the Inpainter's
  latency and peak memory at 512², 2048² and 4000x3000 (each in a fresh process); the cost of its inference options
  (``self_ensemble``, ``coarse_beyond``, ``poisson_blend``) on the demo's network, 8 crops of 128² and one 512² image.
- ``data``: training-pipeline images/s per worker at 256² vs a torchvision ImageFolder + PIL baseline.
- ``levers`` (only on request): U-Net and loss timed separately, naive vs library, NCHW vs channels_last, bf16.

``--quick`` shrinks every shape and repeat count for a smoke run of a few seconds (used by the tests); its numbers
mean nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmarks.common import Table, machine_info

BENCHMARKS = ("step", "infer", "data")
EXTRAS = ("levers",)  # not in the default set: keeps `make bench` within ~10 minutes on a 2-core machine


def _parse_only(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS) - set(EXTRAS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--only takes a comma-separated subset of {','.join(BENCHMARKS + EXTRAS)}, got {value!r}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="tiny shapes, 1-2 repeats: a smoke run, not a measurement"
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the step benchmark runs")
    p.add_argument(
        "--only",
        type=_parse_only,
        default=list(BENCHMARKS),
        help="comma-separated: step,infer,data (default: all three), levers (CPU ablation, only on request)",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="interleaved rounds per table (default 5, quick 2)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's; --quick: 1)"
    )
    p.add_argument(
        "--compile-cpu",
        action="store_true",
        help="CPU step: add a channels_last + torch.compile row (compiling takes minutes on 2 cores)",
    )
    p.add_argument("--no-compile", action="store_true", help="GPU: skip the torch.compile row")
    p.add_argument(
        "--data-images", type=int, default=None, help="JPEG files generated for the data benchmark"
    )
    p.add_argument("--markdown", type=Path, default=None, help="also write the tables to this Markdown file")
    return p


def run(args: argparse.Namespace) -> list[Table]:
    """Run the selected benchmarks and return their tables (printing each as soon as it is done)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "--device cuda: no CUDA device is available on this machine (torch.cuda.is_available() is False)"
        )
    repeats = args.repeats or (2 if args.quick else 5)
    tables: list[Table] = []

    def emit(table: Table, started: float) -> None:
        table.notes.append(f"took {time.perf_counter() - started:.0f} s")
        print(table.markdown(), flush=True)
        tables.append(table)

    if "step" in args.only:
        from benchmarks.step import bench_step, cpu_variants, cuda_variants

        if args.device == "cuda":
            shapes = [(32, 3, 2)] if args.quick else [(256, 7, 16), (512, 8, 4)]
            for size, levels, batch in shapes:
                t0 = time.perf_counter()
                table = bench_step(
                    "cuda",
                    size,
                    levels,
                    batch,
                    repeats,
                    inner=2 if args.quick else 10,
                    variants=cuda_variants(compile_step=not args.no_compile),
                )
                emit(table, t0)
        else:
            size, levels, batch = (32, 3, 2) if args.quick else (256, 7, 2)
            t0 = time.perf_counter()
            variants = cpu_variants(compile_step=args.compile_cpu)
            matmul_n = 256 if args.quick else 2048
            emit(bench_step("cpu", size, levels, batch, repeats, variants=variants, matmul_n=matmul_n), t0)

    if "levers" in args.only:
        from benchmarks.levers import bench_levers

        size, levels, batch = (32, 3, 2) if args.quick else (256, 7, 2)
        t0 = time.perf_counter()
        emit(bench_levers(size, levels, batch, repeats), t0)

    if "infer" in args.only:
        from benchmarks.infer import bench_infer

        size, levels = (128, 5) if args.quick else (512, 8)
        devices = ["cpu", "cuda"] if args.device == "cuda" else ["cpu"]
        for dev in devices:
            t0 = time.perf_counter()
            emit(bench_infer(dev, size, levels, repeats), t0)
        from benchmarks.infer import SIZES, bench_infer_options, bench_infer_sizes

        t0 = time.perf_counter()
        if args.quick:
            emit(bench_infer_options(size=32, batch=2, levels=3, base_channels=8, repeats=1), t0)
        else:
            emit(bench_infer_options(repeats=repeats), t0)
            t0 = time.perf_counter()
            emit(bench_infer_options(size=512, batch=1, repeats=repeats), t0)

        t0 = time.perf_counter()
        if args.quick:
            emit(bench_infer_sizes([(96, 128), (300, 400)], levels=5, repeats=1, max_side=128), t0)
        else:
            emit(bench_infer_sizes(SIZES, levels=8, repeats=min(repeats, 3)), t0)

    if "data" in args.only:
        from benchmarks.data import bench_data

        n_images = args.data_images or (24 if args.quick else 200)
        t0 = time.perf_counter()
        emit(bench_data(n_images=n_images, size=256, repeats=repeats), t0)
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = args.threads or (1 if args.quick else None)
    if threads:
        # One thread keeps the smoke run fast on an oversubscribed machine (OpenMP barriers stall when a core is
        # taken by another process).
        torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The loss logs a loud warning each time random VGG weights are loaded; the benchmark does so on purpose.
    logging.getLogger("inpaint.losses.vgg").setLevel(logging.ERROR)
    header = ["## Machine", ""] + [f"- {k}: {v}" for k, v in machine_info(args.device).items()]
    mode = "quick smoke run (numbers are meaningless)" if args.quick else "full"
    header += [
        f"- mode: {mode}; command: python -m benchmarks.run {' '.join(sys.argv[1:] if argv is None else argv)}",
        "",
    ]
    print("\n".join(header), flush=True)
    t0 = time.perf_counter()
    tables = run(args)
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    if args.markdown is not None:
        text = "\n".join(header) + "\n" + "\n".join(t.markdown() for t in tables)
        tmp = args.markdown.with_suffix(args.markdown.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
