"""The one module that imports ``kernels``, and where the kernel choice is made.

``MINIGRAD_KERNELS=numba`` (the default) runs the Numba kernels; ``MINIGRAD_KERNELS=numpy``
runs their plain NumPy twins, which have the same functions and signatures. Ops call
``backend.softmax.softmax_forward(...)`` and so on, never ``kernels`` directly.

``set_num_threads(n)`` sets both Numba's thread pool and BLAS's (through threadpoolctl),
so that the two never oversubscribe the cores.
"""

from __future__ import annotations

import ctypes
import os
import sys

import numba

# Kernels call BLAS through SciPy's bundled library (np.dot inside Numba), NumPy through its
# own: load SciPy's now, so that set_num_threads limits both.
import scipy.linalg.cython_blas  # noqa: F401
from threadpoolctl import threadpool_info, threadpool_limits

KERNELS = os.environ.get("MINIGRAD_KERNELS", "numba").strip().lower()


def _keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    A training step allocates and frees the same few-megabyte arrays again and again
    (activations, gradients, workspaces). By default glibc serves each of them with a fresh
    ``mmap`` (or trims the heap after freeing), so every step touches new pages, and each first
    touch is a page fault: on this project's 2-core VM six live 4 MB arrays cost 6.5 ms to
    allocate and fill against 0.57 ms with memory kept (about 1 us per 4 KB page), which was a
    quarter of an LSTM training step. Raising the mmap threshold to its maximum (32 MB) and the
    trim threshold to 1 GB makes the heap keep and reuse those pages; arrays over 32 MB are
    still mapped and unmapped. The cost: freed memory (up to 1 GB) stays with the process.
    ``MINIGRAD_MALLOC=default`` keeps glibc's defaults. Does nothing where libc is not glibc.
    """
    if os.environ.get("MINIGRAD_MALLOC", "").strip().lower() == "default":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1
        return ok and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):
        return False


MALLOC_TUNED = _keep_freed_memory()

if KERNELS == "numba":
    from kernels import (
        attention,
        conv,
        elementwise,
        layer_norm,
        matmul,
        optim,
        pool,
        rnn,
        softmax,
    )
elif KERNELS == "numpy":
    from kernels.twins import (
        attention,
        conv,
        elementwise,
        layer_norm,
        matmul,
        optim,
        pool,
        rnn,
        softmax,
    )
else:
    raise ImportError(f"MINIGRAD_KERNELS must be 'numba' or 'numpy', got {KERNELS!r}")

__all__ = [
    "KERNELS",
    "attention",
    "conv",
    "elementwise",
    "layer_norm",
    "matmul",
    "optim",
    "pool",
    "rnn",
    "softmax",
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
