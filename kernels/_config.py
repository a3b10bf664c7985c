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

from numba import njit

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def kernel(fn=None, *, parallel: bool = False):
    """``@kernel`` or ``@kernel(parallel=True)``: njit with the project's flags."""
    decorate = njit(
        cache=True, fastmath=set(FASTMATH), error_model="numpy", parallel=parallel, nogil=True
    )
    return decorate if fn is None else decorate(fn)
