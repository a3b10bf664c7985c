"""The one module that imports ``kernels``, and where the kernel choice is made.

``MINIGRAD_KERNELS=numba`` (the default) runs the Numba kernels; ``MINIGRAD_KERNELS=numpy``
runs their plain NumPy twins, which have the same functions and signatures. Ops call
``backend.softmax.softmax_forward(...)`` and so on, never ``kernels`` directly. The families
(``backend.attention``, ``backend.conv``, ...) are the ones ``kernels.FAMILIES`` names, and
``backend.checks`` holds the argument checks and geometry that kernels and twins share.

``set_num_threads(n)`` sets both Numba's thread pool and BLAS's (through threadpoolctl),
so that the two never oversubscribe the cores.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numba

# Kernels call BLAS through SciPy's bundled library (np.dot inside Numba), NumPy through its
# own: load SciPy's now, so that set_num_threads limits both.
import scipy.linalg.cython_blas  # noqa: F401
from threadpoolctl import threadpool_info, threadpool_limits

from kernels import FAMILIES, checks

KERNELS = os.environ.get("MINIGRAD_KERNELS", "numba").strip().lower()
_PACKAGES = {"numba": "kernels", "numpy": "kernels.twins"}


def implementation(family: str, kind: str = KERNELS) -> ModuleType:
    """The module of one kernel family: ``kind`` "numba" (the kernels) or "numpy" (the twins).
    Benchmarks and tests use it to put the two side by side."""
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; the families are {FAMILIES}")
    if kind not in _PACKAGES:
        raise ValueError(f"MINIGRAD_KERNELS must be 'numba' or 'numpy', got {kind!r}")
    return importlib.import_module(f"{_PACKAGES[kind]}.{family}")


if KERNELS not in _PACKAGES:
    raise ImportError(f"MINIGRAD_KERNELS must be 'numba' or 'numpy', got {KERNELS!r}")

# backend.attention, backend.conv, ...: one module attribute per family, as chosen above.
globals().update({family: implementation(family) for family in FAMILIES})

__all__ = [
    "KERNELS",
    "FAMILIES",
    "checks",
    "implementation",
    *FAMILIES,
    "get_num_threads",
    "set_num_threads",
]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba's parallel kernels and in BLAS."""
    limit = numba.config.NUMBA_NUM_THREADS
    if not isinstance(n, int) or not 1 <= n <= limit:
        raise ValueError(
            f"set_num_threads: n must be an int from 1 to {limit} (the cores Numba "
            f"started with; set NUMBA_NUM_THREADS to allow more), got {n!r}"
        )
    numba.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    """Numba's current thread count (BLAS is kept equal by set_num_threads)."""
    return numba.get_num_threads()


def blas_info() -> list[dict]:
    """The BLAS libraries loaded and their thread counts (for benchmarks' reports)."""
    return [
        {
            k: v
            for k, v in info.items()
            if k in ("internal_api", "version", "num_threads", "architecture")
        }
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]


def cpu_info() -> dict:
    """What this machine computes with, for benchmark reports: the CPU's model name, its
    architecture, LLVM's name for it, the widest vector ISA among its features, the features
    that matter for the kernels, the core count and the kernels' target (``kernel_target``)."""
    import os
    import platform

    import llvmlite.binding as llvm

    from kernels.isa import cpu_model

    features = {k for k, on in llvm.get_host_cpu_features().items() if on}
    arch = platform.machine()
    if "avx512f" in features:
        isa = "AVX-512"
    elif "avx2" in features:
        isa = "AVX2"
    elif "avx" in features:
        isa = "AVX"
    elif "sve" in features:
        isa = "SVE"
    elif "neon" in features or arch in ("arm64", "aarch64"):
        isa = "NEON"
    else:
        isa = "SSE" if any(f.startswith("sse") for f in features) else "scalar"
    shown = (
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512bf16",
        "amx-tile",
        "avx2",
        "fma",
        "neon",
        "sve",
        "sve2",
    )
    return {
        "model": cpu_model() or llvm.get_host_cpu_name(),
        "architecture": arch,
        "llvm_cpu": llvm.get_host_cpu_name(),
        "vector_isa": isa,
        "features": sorted(f for f in features if f in shown),
        "cores": os.cpu_count(),
        "kernel_target": kernel_target(),
    }


def kernel_target() -> dict:
    """The vector ISA the kernels were built for (kernels/isa.py: the widest this CPU runs, or
    ``MINIGRAD_ISA``), the width of its vectors in bits and the CPU Numba compiles for."""
    from kernels import isa

    return isa.describe()


def tuning_file():
    """The tuning file the kernels read (``minigrad tune`` writes it; kernels/tuned.py), or
    None when they use the shipped defaults."""
    from kernels import tuned

    return tuned.source()


def tune(thread_counts=None, out=None, progress=None):
    """Measure the kernels' dispatch thresholds at each thread count (kernels/tune.py; by
    default 1 and every core Numba started with), write them to ``out`` (default: this
    machine's tuning file in the user's cache directory), load them, and return (path,
    results). Nothing is written if it is interrupted."""
    from pathlib import Path

    from kernels import tune as measuring
    from kernels import tuned

    limit = numba.config.NUMBA_NUM_THREADS
    if thread_counts is None:
        thread_counts = sorted({1, limit})
    bad = [t for t in thread_counts if not isinstance(t, int) or not 1 <= t <= limit]
    if bad or not thread_counts:
        raise ValueError(
            f"tune: thread counts must be from 1 to {limit} (the cores Numba started with), "
            f"got {bad or 'none'}"
        )
    results = measuring.measure(thread_counts, progress)
    where = measuring.write(results, Path(out) if out else tuned.default_path())
    if tuned.path() == where:
        tuned.load()
    return where, results


def fused_kernels(chain, shapes: tuple, out_shape: tuple, dtype):
    """The generated kernels of a fused elementwise chain (kernels/fused.py), for
    minigrad.compile. They are Numba kernels whichever ``MINIGRAD_KERNELS`` says: the
    compiler fuses nothing when the twins are chosen."""
    from kernels.fused import FusedKernels

    return FusedKernels(chain, shapes, out_shape, dtype)


def fused_chain(kinds: tuple, forward: tuple, result: str, backward: tuple, grads: tuple):
    """A chain description for ``fused_kernels`` (kernels.fused.Chain)."""
    from kernels.fused import Chain

    return Chain(kinds, forward, result, backward, grads)
