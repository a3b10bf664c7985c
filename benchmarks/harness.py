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
    import numpy

    info = {"python": platform.python_version(), "numpy": numpy.__version__, "cpus": os.cpu_count()}
    torch = torch_or_none()
    if torch is not None:
        info["torch"] = torch.__version__
    return info


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
    """Write results to benchmarks/results/<name>.json atomically (temporary file, rename)."""
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out)
    return out
