"""Branch-free elementwise selection: ``where(cond, a, b)`` for large arrays.

NumPy's ``np.where`` branches per element, so on a mask that is true about half the time at
random (a ReLU mask, a dropout mask) nearly every other element is a mispredicted branch:
15 ms for 4M float32 elements here, against 1.9 ms for ``a * cond``, which is not the same
thing (it turns an inf or NaN in a blocked position into NaN). This kernel compiles the
choice to a vector blend: the semantics of ``np.where``, at the speed of the multiply.

cond (N,) bool; a (N,); b (N,) or a scalar; out (N,), all C-contiguous, flattened by the
wrapper.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels._config import kernel


@kernel(parallel=True)
def _select_array(cond, a, b, out):
    for i in prange(cond.shape[0]):
        out[i] = a[i] if cond[i] else b[i]


@kernel(parallel=True)
def _select_scalar(cond, a, b, out):
    for i in prange(cond.shape[0]):
        out[i] = a[i] if cond[i] else b


# below this many elements np.where is as fast (the call overhead dominates)
_MIN_ELEMENTS = 1 << 14


def where(cond, a, b):
    """np.where(cond, a, b); the kernel runs when cond and a are contiguous arrays of one
    shape, a is float32 or float64, and b is a scalar or an array like a; otherwise (and for
    small arrays) np.where itself."""
    if (
        isinstance(cond, np.ndarray)
        and isinstance(a, np.ndarray)
        and cond.dtype == np.bool_
        and a.dtype in (np.float32, np.float64)
        and cond.shape == a.shape
        and a.size >= _MIN_ELEMENTS
        and cond.flags.c_contiguous
        and a.flags.c_contiguous
    ):
        out = np.empty_like(a)
        if isinstance(b, np.ndarray):
            if b.shape == a.shape and b.dtype == a.dtype and b.flags.c_contiguous:
                _select_array(cond.reshape(-1), a.reshape(-1), b.reshape(-1), out.reshape(-1))
                return out
        elif isinstance(b, (int, float)) and not isinstance(b, bool):
            _select_scalar(cond.reshape(-1), a.reshape(-1), a.dtype.type(b), out.reshape(-1))
            return out
    return np.where(cond, a, b)
