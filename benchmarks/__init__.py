"""Benchmarks of inpaint against a naive reference (``python -m benchmarks.run``; results in RESULTS.md).

Not part of the installed library: run from the repository root. Modules: ``reference`` (the naive baseline),
``step`` (training step), ``infer`` (inference latency), ``data`` (data pipeline), ``levers`` (ablation),
``common`` (timing, memory, tables), ``run`` (entry point).
"""
