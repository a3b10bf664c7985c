"""Shared timing rules for every benchmark.

- Warm up first (JIT compilation and caches are not what we measure).
- Each repeat times a loop of ``number`` calls; the figure is the median over repeats.
- Compare within one process run, as ratios, because these machines are shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def time_call(fn: Callable[[], Any], number: int, repeats: int = 15, warmup: int = 3) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` loops of ``number`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def torch_or_none(threads: int = 1):
    """PyTorch set to ``threads`` threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def machine() -> dict[str, Any]:
    """Where a figure was measured: the CPU (model, vector ISA, cores), the thread counts of
    minigrad (Numba and BLAS) and PyTorch, and the library versions."""
    import numba
    import numpy

    import minigrad

    cpu = minigrad.backend.cpu_info()
    info: dict[str, Any] = {
        "cpu": cpu["model"],
        "vector_isa": cpu["vector_isa"],
        "llvm_cpu": cpu["llvm_cpu"],
        "cores": cpu["cores"],
        "kernel_target": cpu["kernel_target"]["target"],
        "numba_cpu": cpu["kernel_target"]["numba_cpu"],
        "threads": minigrad.get_num_threads(),
        "minigrad": minigrad.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "blas": [
            f"{b.get('internal_api')} {b.get('version')}" for b in minigrad.backend.blas_info()
        ],
    }
    try:  # as it is: a report must not change the thread count it reports
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def describe(info: dict[str, Any]) -> str:
    """``machine()`` as the line every benchmark prints first."""
    torch = ""
    if "torch" in info:
        torch = f", PyTorch {info['torch']} ({info['torch_threads']} thread(s))"
    return (
        f"{info['cpu']} ({info['vector_isa']}, LLVM {info['llvm_cpu']}), "
        f"{info['cores']} cores; "
        f"minigrad {info['minigrad']} with {info['threads']} thread(s), kernels for "
        f"{info['kernel_target']} (Numba compiling for {info['numba_cpu']}), "
        f"NumPy {info['numpy']}, Numba {info['numba']}, Python {info['python']}{torch}"
    )


def results_dir() -> Path:
    """Where the JSON results go: ``$MINIGRAD_BENCH_OUT`` (``minigrad bench --out DIR`` sets
    it), else the user's cache directory, never the source tree."""
    chosen = os.environ.get("MINIGRAD_BENCH_OUT")
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "minigrad" / "benchmarks"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain-text table of ``rows`` (dicts) in the given column order."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write results to ``results_dir()/<name>.json`` atomically (temporary file, rename),
    with the machine they were measured on, which is also printed."""
    payload = {**payload, "machine": {**machine(), **payload.get("machine", {})}}
    print(describe(payload["machine"]))
    out = results_dir() / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out)
    return out
