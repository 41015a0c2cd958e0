"""Shared benchmark machinery: interleaved timing, peak memory, machine description, Markdown tables."""

from __future__ import annotations

import ctypes
import datetime as _dt
import logging
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)

MIB = 1024.0 * 1024.0


@dataclass
class Table:
    """A result table: a title, column names, rows of already formatted cells and free-text notes."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(
                f"row has {len(cells)} cells, table '{self.title}' has {len(self.columns)} columns"
            )
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def cpu_model() -> str:
    """The CPU from /proc/cpuinfo: model name, family/model numbers and the vector extensions that matter for
    float32/bf16 kernels (``platform.processor()`` elsewhere)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or "unknown CPU"
    flags = set(fields.get("flags", "").split())
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    name = fields.get("model name", "unknown CPU")
    return (
        f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}; {' '.join(simd)})"
    )


def machine_info(device: str = "cpu") -> dict[str, str]:
    """What the numbers were measured on: date, CPU, cores, torch threads, torch version and the GPU if used."""
    info = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} logical cores",
        "torch": f"{torch.__version__} ({torch.get_num_threads()} intra-op threads)",
        "python": platform.python_version(),
    }
    with suppress(OSError):
        info["load average"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
    return info


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def interleaved_times(
    fns: Mapping[str, Callable[[], object]],
    repeats: int,
    device: torch.device | str = "cpu",
    inner: int = 1,
    cpu_times: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in rounds: A B C, A B C, ...

    Interleaving spreads background load (other processes on a shared machine, thermal state) evenly over the
    variants, so the medians of the rounds are comparable. Warm-up calls are the caller's business.

    Args:
        fns: name -> zero-argument callable.
        repeats: number of rounds.
        device: synchronised before and after each timed block on CUDA.
        inner: calls per timed block (the time is divided by it).
        cpu_times: if given, filled with the process CPU time (user + system, all threads) per call as well. On a
            machine shared with other processes it is less inflated by preemption than wall time, though OpenMP
            spin-waiting still counts.

    Returns:
        name -> list of ``repeats`` seconds-per-call values.
    """
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(inner):
                fn()
            synchronize(device)
            out[name].append((time.perf_counter() - t0) / inner)
            if cpu_times is not None:
                cpu_times.setdefault(name, []).append((time.process_time() - c0) / inner)
    return out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
    """``min-max`` of the rounds relative to their median, e.g. ``±12%``: how noisy the machine was."""
    m = median(values)
    if m == 0:
        return "n/a"
    return f"{100 * (max(values) - min(values)) / (2 * m):.0f}%"


_CLEAR_REFS_OK: bool | None = None


def _read_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where not possible."""
    global _CLEAR_REFS_OK
    if _CLEAR_REFS_OK is False:
        return False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _CLEAR_REFS_OK = True
    except OSError:
        _CLEAR_REFS_OK = False
        log.warning(
            "cannot reset the peak RSS (/proc/self/clear_refs not writable): CPU peak-memory figures fall back to "
            "getrusage(ru_maxrss) deltas, which only show growth beyond the process's earlier peak"
        )
    return _CLEAR_REFS_OK


def _release_free_heap() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so that RSS growth reflects this block's tensors
    rather than being hidden in memory freed by earlier steps and still resident. No-op off glibc."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextmanager
def peak_memory(device: torch.device | str) -> Iterator[dict[str, float]]:
    """Measure the peak memory growth of the enclosed block, in MiB, into the yielded dict's ``"peak_mib"``.

    CUDA: ``torch.cuda.max_memory_allocated`` above the allocation at entry (tensors only, caching excluded).
    CPU: the process's peak resident set size (VmHWM, reset through /proc/self/clear_refs at entry, after returning
    freed heap pages to the OS with ``malloc_trim``) above the RSS at entry; where that reset is not allowed, the ``getrusage`` max-RSS delta. RSS includes allocator caching and
    anything else the process touches, so CPU figures are coarser than CUDA ones. ``"method"`` names which was used.
    """
    result: dict[str, float] = {}
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        yield result
        torch.cuda.synchronize()
        result["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / MIB
        result["method"] = "cuda.max_memory_allocated"  # type: ignore[assignment]
        return
    _release_free_heap()
    if _reset_peak_rss():
        base_kib = _read_status_kib("VmRSS") or 0
        yield result
        peak_kib = _read_status_kib("VmHWM") or 0
        result["peak_mib"] = max(0, peak_kib - base_kib) / 1024.0
        result["method"] = "VmHWM-VmRSS"  # type: ignore[assignment]
        return
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield result
    result["peak_mib"] = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_kib) / 1024.0
    result["method"] = "ru_maxrss delta"  # type: ignore[assignment]


def measured_matmul_flops(
    device: torch.device | str, dtype: torch.dtype = torch.float32, n: int = 2048
) -> float:
    """Achieved FLOP/s of an n x n x n matmul: a practical peak for utilisation figures on CPUs (no spec sheet).

    Returns:
        best of a few runs, FLOP/s.
    """
    dev = torch.device(device)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(3):
        synchronize(dev)
        t0 = time.perf_counter()
        a @ b
        synchronize(dev)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


# Dense (no sparsity) peak throughput from NVIDIA's data sheets, FLOP/s: (bf16 tensor core, fp32 non-tensor).
_GPU_PEAKS: dict[str, tuple[float, float]] = {
    "H200": (989.4e12, 66.9e12),
    "H100 SXM": (989.4e12, 66.9e12),
    "H100 80GB HBM3": (989.4e12, 66.9e12),
    "H100 PCIe": (756.0e12, 51.2e12),
    "H100 NVL": (835.0e12, 60.0e12),
    "A100": (312.0e12, 19.5e12),
    "L4": (121.0e12, 30.3e12),
    "L40S": (362.0e12, 91.6e12),
    "A10": (125.0e12, 31.2e12),
    "RTX 4090": (165.2e12, 82.6e12),
}


def gpu_peak_flops(name: str) -> tuple[float, float] | None:
    """(bf16 dense tensor-core, fp32) peak FLOP/s of a known GPU by (a part of) its name, else None."""
    for key, peaks in _GPU_PEAKS.items():
        if key.lower() in name.lower():
            return peaks
    return None


def fmt_ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f} ms" if seconds >= 0.1 else f"{1000 * seconds:.1f} ms"
