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
from kernels._math import erf_fast, exp_shifted
from kernels.twins import elementwise as twin


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


# -- ReLU: the output and the backward's mask in one pass ----------------------------------------
#
# np.maximum(x, 0) propagates NaN with a slower loop than a copy: 0.11 ms for LeNet's first
# activations (64, 6, 28, 28) against 0.026 ms for x.copy(), plus 0.018 ms for the mask x > 0.


@kernel(parallel=True)
def _relu(x, out, positive):
    for i in prange(x.shape[0]):
        xi = x[i]
        keep = not xi <= 0  # NaN stays NaN, as PyTorch's relu
        out[i] = xi if keep else 0
        positive[i] = xi > 0  # the gradient flows where x > 0 (not through NaN)


def relu_forward(x):
    """(max(x, 0) with NaN kept, x > 0): the output and the mask the backward needs."""
    if (
        isinstance(x, np.ndarray)
        and x.dtype in (np.float32, np.float64)
        and x.flags.c_contiguous
        and x.size >= _MIN_ELEMENTS
    ):
        out = np.empty_like(x)
        positive = np.empty(x.shape, np.bool_)
        _relu(x.reshape(-1), out.reshape(-1), positive.reshape(-1))
        return out, positive
    return twin.relu_forward(x)


# -- GELU on float32: a vectorizable erf ---------------------------------------------------------
#
# SciPy's erf runs one scalar call per element: 6 ms for the (768, 512) float32 activations of
# the small GPT's feed-forward layer, where this kernel takes 0.1 ms, and GELU was a third of a
# GPT training step. The float32 path uses kernels/_math.erf_fast, a rational approximation
# (at most 3.2e-7 absolute error); float64 keeps SciPy's exact erf.

_F32 = np.float32


@kernel(parallel=True)
def _gelu_forward32(x, out):
    for i in prange(x.shape[0]):
        xi = x[i]
        out[i] = _F32(0.5) * xi * (_F32(1.0) + erf_fast(xi * _F32(0.7071067811865476)))


# The normal density exp(-x^2 / 2) goes through kernels/_math.exp_shifted, a block at a time:
# np.exp inside the loop compiles to one libm call per element, and the backward took 1.2 ms
# on the GPT's (768, 512) activations against 0.13 ms for the forward.
_GELU_BLOCK = 2048


@kernel(parallel=True)
def _gelu_backward32(x, g, out):
    # d/dx x Phi(x) = Phi(x) + x phi(x), phi the normal density
    n = x.shape[0]
    for block in prange((n + _GELU_BLOCK - 1) // _GELU_BLOCK):
        # slices, so that the loops index from 0: LLVM then knows no index is negative and
        # drops Numba's wraparound branch, which kept these loops scalar (1.6 ms, not 0.25)
        xs = x[block * _GELU_BLOCK : (block + 1) * _GELU_BLOCK]
        gs = g[block * _GELU_BLOCK : (block + 1) * _GELU_BLOCK]
        outs = out[block * _GELU_BLOCK : (block + 1) * _GELU_BLOCK]
        pdf = np.empty(xs.shape[0], dtype=np.float32)
        for i in range(xs.shape[0]):
            pdf[i] = _F32(-0.5) * xs[i] * xs[i]
        exp_shifted(pdf, _F32(0.0), pdf)
        for i in range(xs.shape[0]):
            xi = xs[i]
            cdf = _F32(0.5) * (_F32(1.0) + erf_fast(xi * _F32(0.7071067811865476)))
            outs[i] = gs[i] * (cdf + xi * _F32(0.3989422804014327) * pdf[i])


def _fast_gelu(x) -> bool:
    return x.dtype == np.float32 and x.flags.c_contiguous and x.size >= _MIN_ELEMENTS


def gelu_forward(x):
    """x * Phi(x) (exact GELU)."""
    if _fast_gelu(x):
        out = np.empty_like(x)
        _gelu_forward32(x.reshape(-1), out.reshape(-1))
        return out
    return twin.gelu_forward(x)  # float64 and small arrays: SciPy's exact erf


def gelu_backward(x, g):
    """The gradient of gelu_forward for an upstream gradient g (same shape as x)."""
    if _fast_gelu(x) and g.dtype == x.dtype and g.shape == x.shape and g.flags.c_contiguous:
        out = np.empty_like(x)
        _gelu_backward32(x.reshape(-1), g.reshape(-1), out.reshape(-1))
        return out
    return twin.gelu_backward(x, g)


# -- rows added at repeated indices: an embedding's gradient -------------------------------------
#
# out (N, D) zeros with values (K, D) added at rows idx (K,), repeats accumulating.
# np.add.at does it with a generic loop per element: 12 us for makemore's (96, 10) and
# 0.45 ms for the GPT's (768, 128), where this serial loop over rows takes 1 us and 0.03 ms.


@kernel
def _scatter_add_rows(idx, values, out):
    for k in range(idx.shape[0]):
        row = out[idx[k]]
        v = values[k]
        for d in range(v.shape[0]):
            row[d] += v[d]


def scatter_add_rows(n, idx, values):
    """(n, D) zeros plus ``values`` (K, D) added at rows ``idx`` (K,) of int64 in [0, n)
    (not checked here: the caller indexed with them); float32 or float64."""
    out = np.zeros((n, values.shape[1]), values.dtype)
    if values.dtype in (np.float32, np.float64) and values.flags.c_contiguous:
        _scatter_add_rows(np.ascontiguousarray(idx, dtype=np.int64), values, out)
        return out
    np.add.at(out, idx, values)
    return out
