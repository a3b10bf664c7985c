"""Every process-wide setting minigrad makes, in one place.

``import minigrad`` calls :func:`apply` once, before NumPy loads OpenBLAS and before Numba
starts its threads. Each setting keeps a value you have set yourself, and
``MINIGRAD_PROCESS_SETTINGS=off`` in the environment turns them all off. What was applied is
in :data:`APPLIED` (the benchmarks print it with their results).

- ``OPENBLAS_THREAD_TIMEOUT=16``. OpenBLAS's idle threads spin for 2^28 cycles (about
  70 ms) after each call before they sleep, on the very cores that Numba's parallel kernels
  need next; 2^16 cycles (about 18 us) still catches back-to-back BLAS calls. OpenBLAS reads
  it when it loads, that is when NumPy is first imported: import minigrad first, or set it
  in the environment yourself.
- ``OMP_WAIT_POLICY=PASSIVE``. Numba's OpenMP threads and OpenBLAS's run in turns (im2col,
  then GEMM); with OpenMP's default busy-waiting, the idle pool spins on the cores the other
  one needs. Read once, when the OpenMP runtime starts.
- glibc's ``malloc``: ``M_MMAP_THRESHOLD`` 32 MB and ``M_TRIM_THRESHOLD`` 1 GB. A training
  step frees and allocates the same few-megabyte arrays again and again; by default each
  comes back from a fresh ``mmap`` and every page is faulted in anew. Kept memory is reused
  instead; the cost is that freed memory (up to 1 GB) stays with the process. Arrays over
  32 MB are still mapped and unmapped. ``MINIGRAD_MALLOC=default`` keeps glibc's defaults
  (and only those); with another C library nothing is done.

The measurements behind each choice are in the README's section on the kernels.
"""

from __future__ import annotations

import ctypes
import os
import sys

OFF_SWITCH = "MINIGRAD_PROCESS_SETTINGS"

ENVIRONMENT = {"OPENBLAS_THREAD_TIMEOUT": "16", "OMP_WAIT_POLICY": "PASSIVE"}

# What apply() set: the environment variables it wrote, and "malloc" when it tuned glibc.
APPLIED: dict[str, str] = {}


def disabled() -> bool:
    """True when the user turned every process-wide setting off."""
    return os.environ.get(OFF_SWITCH, "").strip().lower() in ("off", "0", "false", "no")


def apply() -> dict[str, str]:
    """Make minigrad's process-wide settings (once; later calls change nothing)."""
    if APPLIED or disabled():
        return APPLIED
    for name, value in ENVIRONMENT.items():
        if name not in os.environ:
            os.environ[name] = value
            APPLIED[name] = value
    if _keep_freed_memory():
        APPLIED["malloc"] = "mmap threshold 32 MB, trim threshold 1 GB"
    return APPLIED


def _keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS."""
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
