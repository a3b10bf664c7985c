"""The one place where Numba's compilation flags are set (see ../shared/DESIGN.md, section 3).

- ``cache=True``: compiled machine code is stored in ``$NUMBA_CACHE_DIR`` (the Makefile sets
  ``~/.cache/minigrad/numba``) and reused by later processes.
- ``fastmath`` without ``nnan`` and ``ninf``: reassociation and contraction (FMA) are allowed,
  but infinities and NaNs keep their meaning, because masks use ``-inf``.
- ``error_model="numpy"``: division by zero gives inf/nan like NumPy instead of raising,
  which also removes a branch from every division.
- ``parallel=True`` only for kernels whose ``prange`` iterations write disjoint outputs.
"""

from __future__ import annotations

import os

from numba import njit
from numba.extending import overload

# Numba's parallel kernels and OpenBLAS run in turns (im2col, then GEMM). With OpenMP's
# default busy-waiting, the idle pool keeps spinning on the cores the other one needs: on
# 2 cores a conv2d forward measured 8.8 ms at 2 threads against 1.7 ms at 1. Passive waiting
# (threads sleep when idle) removes that (1.3 ms). It must be set before the OpenMP runtime
# starts, hence here, at import; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def kernel(fn=None, *, parallel: bool = False):
    """``@kernel`` or ``@kernel(parallel=True)``: njit with the project's flags."""
    decorate = njit(
        cache=True, fastmath=set(FASTMATH), error_model="numpy", parallel=parallel, nogil=True
    )
    return decorate if fn is None else decorate(fn)


def inlined_overload(fn):
    """``@inlined_overload(stub)``: a Numba overload with the project's fastmath flags, inlined
    into each kernel that calls it (see kernels/_math.py for why inlining matters)."""
    return overload(fn, fastmath=set(FASTMATH), inline="always")
