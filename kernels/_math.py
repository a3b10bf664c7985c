"""A vectorizable exp for Numba kernels.

Numba compiles ``np.exp`` inside a loop to one libm call per element (its fast vector path
needs Intel's SVML, which the PyPI llvmlite does not include), and that made every
exp-heavy kernel slower than NumPy. ``exp_shifted(x, shift, out)`` computes
``out = exp(x - shift)`` with arithmetic LLVM can vectorize:

    exp(v) = 2^n * exp(r),   n = round(v / ln 2),   r = v - n ln 2 in [-ln2/2, ln2/2]

``exp(r)`` is a polynomial (degree 7 for float32, 12 for float64), ``n ln 2`` is subtracted
in two parts (Cody-Waite) so ``r`` stays exact, and the factor 2^n is applied by adding n to
the exponent bits of the result through an integer view. Inputs below the underflow limit
(including -inf, the value of masked positions) give exactly 0, so results smaller than
about 4x the smallest normal float are flushed to 0 rather than made subnormal; above the
overflow limit, inf. Measured accuracy (tests/kernels/test_math.py): within 5 ulp in
float32 over the whole range, 1.5 ulp on [-20, 0] where softmax's arguments mostly fall; about
1e-13 relative in float64, where fastmath's reassociation partly undoes the
two-part subtraction (far below what any gradcheck resolves). It returns the sum of the
outputs, which softmax needs anyway.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numba import types
from numba.core.errors import NumbaIRAssumptionWarning

from kernels._config import inlined_overload


def exp_shifted(x, shift, out):
    """out[i] = exp(x[i] - shift) for 1-D contiguous arrays; returns sum(out).
    (Plain NumPy when called outside a kernel, e.g. under NUMBA_DISABLE_JIT=1.)"""
    np.exp(x - shift, out=out)
    return out.sum()


def _make(float_t, int_t, lo, hi, max_n, mant_bits, ln2_hi, ln2_lo, coeffs):
    f = float_t
    c = tuple(f(v) for v in coeffs)  # highest degree first
    log2e, half = f(1.4426950408889634), f(0.5)
    flo, fhi, fln2_hi, fln2_lo = f(lo), f(hi), f(ln2_hi), f(ln2_lo)
    fmax_n = f(max_n)
    shift_bits = int_t(mant_bits)

    def impl(x, shift, out):
        bits = out.view(int_t)
        s = f(shift)
        total = f(0.0)
        for i in range(x.shape[0]):
            v = f(x[i]) - s
            clamped = min(max(v, flo), fhi)
            n = np.floor(clamped * log2e + half)
            r = clamped - n * fln2_hi - n * fln2_lo
            p = c[0]
            for k in range(1, len(c)):
                p = p * r + c[k]
            capped = min(n, fmax_n)  # 2^n = 2^capped * (1 or 2): keeps the exponent field valid
            out[i] = p
            bits[i] += int_t(capped) << shift_bits
            out[i] *= f(1.0) + (n - capped)
            if v < flo:
                out[i] = f(0.0)
            elif v > fhi:
                out[i] = np.inf
            total += out[i]
        return total

    return impl


def _taylor(degree):
    """Coefficients 1/k! of exp's Taylor series, highest degree first (Horner's order)."""
    return [1.0 / math.factorial(k) for k in range(degree, -1, -1)]


# Below ``lo`` the result would be within a few times the smallest normal number; it is
# flushed to 0 (the exponent-bit trick does not produce subnormals). Above ``hi``: inf.
_exp32 = _make(
    np.float32, np.int32, -86.0, 88.7228, 127, 23, 0.693359375, -2.12194440e-4, _taylor(7)
)
_exp64 = _make(
    np.float64,
    np.int64,
    -707.0,
    709.78,
    1023,
    52,
    6.93147180369123816490e-01,
    1.90821492927058770002e-10,
    _taylor(12),
)


# Inlined into the kernels: called once per row, a function call costs the attention backward
# about 25 % (measured). Numba's internal SSA check then warns that the inlined loop's
# variables are "not in scope" (a pedantic check, not an error); the results are verified
# against the NumPy twins in tests/kernels, so that one warning is silenced, for this
# function's own variables only.
warnings.filterwarnings(
    "ignore", message=r"variable '_make__locals__impl", category=NumbaIRAssumptionWarning
)


@inlined_overload(exp_shifted)
def _exp_shifted_overload(x, shift, out):
    if not isinstance(out, types.Array) or out.layout != "C":
        return None
    if out.dtype == types.float32:
        return _exp32
    if out.dtype == types.float64:
        return _exp64
    return None


def cast_like(x, arr):
    """``x`` as a scalar of ``arr``'s dtype, so that the arithmetic with it stays in that dtype
    (a Python float would make every float32 element go through float64 and back, which keeps
    loops from vectorizing). Inside a kernel the cast is free; the caller passes plain floats,
    which cross into Numba faster than NumPy scalars it would have to build (about 0.15 us
    each, per parameter, per step, in the optimizers)."""
    return arr.dtype.type(x)


@inlined_overload(cast_like)
def _cast_like_overload(x, arr):
    to = arr.dtype
    return lambda x, arr: to(x)


# -- tanh and sigmoid without exp ----------------------------------------------------------------
#
# In float32, tanh is a rational function of x on [-7.905, 7.905] (beyond, it is +-1 to float32
# precision): an odd degree-13 numerator over an even degree-6 denominator, the approximation
# Eigen uses for float. Measured against the exact tanh on 2M points of [-12, 12] in float32
# arithmetic: at most 3.4e-7 absolute error (tests/kernels/test_math.py). It is straight-line
# arithmetic, so a loop over it vectorizes and it fuses with the loop's other work, where an
# exp goes through a buffer (exp_shifted). sigmoid(v) = (1 + tanh(v / 2)) / 2. float64 keeps
# NumPy's exact functions.

_TANH_CLAMP = np.float32(7.90531110763549805)
_TANH_P = tuple(
    np.float32(c)
    for c in (
        -2.76076847742355e-16,
        2.00018790482477e-13,
        -8.60467152213735e-11,
        5.12229709037114e-08,
        1.48572235717979e-05,
        6.37261928875436e-04,
        4.89352455891786e-03,
    )
)
_TANH_Q = tuple(
    np.float32(c)
    for c in (
        1.19825839466702e-06,
        1.18534705686654e-04,
        2.26843463243900e-03,
        4.89352518554385e-03,
    )
)


def tanh_fast(v):
    """tanh of a scalar inside a kernel: the rational approximation for float32, exact for
    float64. (NumPy's tanh when called outside a kernel.)"""
    return np.tanh(v)


def sigmoid_fast(v):
    """1 / (1 + exp(-v)) of a scalar inside a kernel, as (1 + tanh(v / 2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _tanh32(v):
    c = _TANH_CLAMP
    x = c if v > c else v  # written so that NaN passes through (min/max would drop it)
    x = -c if x < -c else x
    x2 = x * x
    p0, p1, p2, p3, p4, p5, p6 = _TANH_P
    q0, q1, q2, q3 = _TANH_Q
    p = ((((((p0 * x2 + p1) * x2 + p2) * x2 + p3) * x2 + p4) * x2 + p5) * x2 + p6) * x
    q = ((q0 * x2 + q1) * x2 + q2) * x2 + q3
    return p / q


_HALF32, _ONE32 = np.float32(0.5), np.float32(1.0)

# the same pedantic SSA warning as for exp_shifted above, for this inlined function's variables
warnings.filterwarnings("ignore", message=r"variable '_tanh32_", category=NumbaIRAssumptionWarning)


def _scalar_overload(stub, float32_impl, float64_impl) -> None:
    """Inside kernels, ``stub(v)`` of a float32 scalar runs ``float32_impl``, of a float64
    one ``float64_impl``."""

    @inlined_overload(stub)
    def _overload(v):
        if v == types.float32:
            return float32_impl
        if v == types.float64:
            return float64_impl
        return None


_scalar_overload(tanh_fast, _tanh32, lambda v: np.tanh(v))
_scalar_overload(
    sigmoid_fast,
    lambda v: _HALF32 * (_ONE32 + tanh_fast(_HALF32 * v)),
    lambda v: 0.5 * (1.0 + np.tanh(0.5 * v)),
)


# -- erf without exp ------------------------------------------------------------------------------
#
# In float32, the rational approximation of erf that Eigen uses for float: an odd degree-13
# numerator over an even degree-10 denominator, x clamped to [-4, 4]. Measured against
# math.erf: at most 3.2e-7 absolute error, about 3 float32 ulp at 1.0
# (tests/kernels/test_elementwise_kernels.py, through GELU). Straight-line arithmetic, so a
# loop over it vectorizes (GELU's kernels, minigrad.compile's fused chains). float64 keeps the
# exact erf.

_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def erf_fast(v):
    """erf of a scalar inside a kernel: the rational approximation for float32, exact for
    float64. (math.erf when called outside a kernel.)"""
    return math.erf(v)


def _erf32(v):
    c = np.float32(4.0)
    x = c if v > c else v  # written so that NaN passes through
    x = -c if x < -c else x
    x2 = x * x
    p0, p1, p2, p3, p4, p5, p6 = _ERF_P32
    q0, q1, q2, q3, q4 = _ERF_Q32
    p = ((((((x2 * p0 + p1) * x2 + p2) * x2 + p3) * x2 + p4) * x2 + p5) * x2 + p6) * x
    q = (((x2 * q0 + q1) * x2 + q2) * x2 + q3) * x2 + q4
    return p / q


_ERF_P32 = tuple(np.float32(c) for c in _ERF_P)
_ERF_Q32 = tuple(np.float32(c) for c in _ERF_Q)
warnings.filterwarnings("ignore", message=r"variable '_erf32_", category=NumbaIRAssumptionWarning)


_scalar_overload(erf_fast, _erf32, lambda v: math.erf(v))
