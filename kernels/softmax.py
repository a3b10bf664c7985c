"""Softmax, log-softmax and fused cross-entropy: one pass per row instead of NumPy's four.

Softmax works on x viewed as (O, C, I): O rows before the softmax dim, C the softmax dim,
I the elements after it (I = 1 when the softmax is over the last dim, the common case).
Cross-entropy works on logits (N, C) with integer targets (N,).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from kernels import checks
from kernels._config import kernel
from kernels._math import exp_shifted


def _as_oci(x: np.ndarray, dim: int) -> np.ndarray:
    o = math.prod(x.shape[:dim])
    i = math.prod(x.shape[dim + 1 :])
    return x.reshape(o, x.shape[dim], i)


# -- softmax / log_softmax ------------------------------------------------------------------
# Rows path, x, y: (R, C), softmax over C (the common case: the last dim).
# General path, x, y: (O, C, I), softmax over C with I > 1 inner elements.


def _row_max(x2: np.ndarray) -> np.ndarray:
    """Row maxima by NumPy, whose max is SIMD: a max reduction in Numba stays scalar (LLVM
    will not vectorize it without fastmath's nnan, which the masks' -inf forbid); measured
    0.5 ms against about 3 ms for (4096, 1000)."""
    return np.max(x2, axis=1) if x2.shape[1] else np.zeros(x2.shape[0], x2.dtype)


@kernel(parallel=True)
def _softmax_rows(x, y, maxima, log):
    R, C = x.shape
    for r in prange(R):
        m = maxima[r]
        if m == -np.inf:
            m = 0.0  # an all -inf row: exp gives zeros, not nan
        s = exp_shifted(x[r], m, y[r])
        if log:
            shift = m + np.log(s)
            for c in range(C):
                y[r, c] = x[r, c] - shift
        else:
            inv = 1.0 / s
            for c in range(C):
                y[r, c] *= inv


@kernel(parallel=True)
def _softmax_strided(x, y, log):
    # the reduced dim C is not last: each (o, c) row of I elements is contiguous, so the
    # exponentials go through exp_shifted a row at a time (np.exp in the loop would be one
    # libm call per element), and the running max and sum are kept per i
    O, C, I = x.shape
    for o in prange(O):
        m = np.full(I, -np.inf, dtype=x.dtype)
        s = np.zeros(I, dtype=x.dtype)
        arg = np.empty(I, dtype=x.dtype)
        for c in range(C):
            row = x[o, c]
            for i in range(I):
                m[i] = max(m[i], row[i])
        for i in range(I):
            if m[i] == -np.inf:
                m[i] = 0.0
        for c in range(C):
            row, out = x[o, c], y[o, c]
            for i in range(I):
                arg[i] = row[i] - m[i]
            exp_shifted(arg, 0.0, out)
            for i in range(I):
                s[i] += out[i]
        if log:
            for i in range(I):
                s[i] = np.log(s[i]) + m[i]  # the log-sum-exp of column i
            for c in range(C):
                row, out = x[o, c], y[o, c]
                for i in range(I):
                    out[i] = row[i] - s[i]
        else:
            for i in range(I):
                s[i] = 1.0 / s[i]
            for c in range(C):
                out = y[o, c]
                for i in range(I):
                    out[i] *= s[i]


@kernel(parallel=True)
def _softmax_backward(y, g, dx, log):
    # softmax:     dx = y * (g - sum_c g * y)
    # log_softmax: dx = g - exp(y) * sum_c g
    O, C, I = y.shape
    for o in prange(O):
        acc = np.zeros(I, dtype=y.dtype)
        e = np.empty(I, dtype=y.dtype)
        for c in range(C):
            for i in range(I):
                acc[i] += g[o, c, i] if log else g[o, c, i] * y[o, c, i]
        if log:
            for c in range(C):
                gr, out = g[o, c], dx[o, c]
                exp_shifted(y[o, c], 0.0, e)  # not np.exp in the loop: see _softmax_strided
                for i in range(I):
                    out[i] = gr[i] - e[i] * acc[i]
        else:
            for c in range(C):
                for i in range(I):
                    dx[o, c, i] = y[o, c, i] * (g[o, c, i] - acc[i])


@kernel(parallel=True)
def _softmax_backward_rows(y, g, dx, log):
    R, C = y.shape
    for r in prange(R):
        acc = 0.0
        for c in range(C):
            acc += g[r, c] if log else g[r, c] * y[r, c]
        if log:
            exp_shifted(y[r], 0.0, dx[r])
            for c in range(C):
                dx[r, c] = g[r, c] - dx[r, c] * acc
        else:
            for c in range(C):
                dx[r, c] = y[r, c] * (g[r, c] - acc)


def softmax_forward(x: np.ndarray, dim: int, log: bool = False) -> np.ndarray:
    """softmax(x) (or log_softmax with ``log=True``) along ``dim``; x float, C-contiguous."""
    checks.floats("softmax", x=x)
    checks.softmax_dim("softmax", x, dim)
    y = np.empty_like(x)
    if x.size:
        x3, y3 = _as_oci(x, dim), _as_oci(y, dim)
        if x3.shape[2] == 1:
            rows = x3[:, :, 0]
            _softmax_rows(rows, y3[:, :, 0], _row_max(rows), log)
        else:
            _softmax_strided(x3, y3, log)
    return y


def softmax_backward(y: np.ndarray, grad: np.ndarray, dim: int, log: bool = False) -> np.ndarray:
    """Gradient of the input of softmax (or log_softmax) from its output y and dL/dy."""
    checks.floats("softmax_backward", y=y, grad=grad)
    checks.softmax_dim("softmax_backward", y, dim)
    if grad.shape != y.shape:
        raise ValueError(f"softmax_backward: grad shape {grad.shape} != output shape {y.shape}")
    dx = np.empty_like(y)
    if y.size:
        y3, g3, d3 = _as_oci(y, dim), _as_oci(grad, dim), _as_oci(dx, dim)
        if y3.shape[2] == 1:
            _softmax_backward_rows(y3[:, :, 0], g3[:, :, 0], d3[:, :, 0], log)
        else:
            _softmax_backward(y3, g3, d3, log)
    return dx


# -- cross-entropy on logits ------------------------------------------------------------------
# logits (N, C), target (N,) int64, weight (C,) (ones when not given)
# per-row loss_n = -(1 - eps) w[t] log p_t - (eps / C) sum_c w_c log p_c,   log p = x - lse
# d loss_n / d x_j = p_j ((1 - eps) w[t] + (eps / C) sum_c w_c)
#                   - (1 - eps) w[t] [j == t] - (eps / C) w_j


_ROWS_PER_CHUNK = 64  # rows handled by one prange iteration, sharing one scratch row


@kernel(parallel=True)
def _cross_entropy_forward(logits, target, weight, ignore_index, eps, maxima, loss, lse):
    N, C = logits.shape
    for chunk in prange((N + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK):
        scratch = np.empty(C, dtype=logits.dtype)
        for n in range(chunk * _ROWS_PER_CHUNK, min(N, (chunk + 1) * _ROWS_PER_CHUNK)):
            _cross_entropy_row(
                logits, target, weight, ignore_index, eps, maxima[n], loss, lse, scratch, n
            )


@kernel
def _cross_entropy_row(logits, target, weight, ignore_index, eps, m, loss, lse, scratch, n):
    # m: the row's maximum, computed by NumPy (see _row_max)
    t = target[n]
    C = logits.shape[1]
    s = exp_shifted(logits[n], m, scratch)
    row_lse = np.log(s) + m
    lse[n] = row_lse
    if t == ignore_index:
        loss[n] = 0.0
        return
    value = -(1.0 - eps) * weight[t] * (logits[n, t] - row_lse)
    if eps > 0.0:
        smooth = 0.0
        for c in range(C):
            smooth += weight[c] * (logits[n, c] - row_lse)
        value -= eps / C * smooth
    loss[n] = value


@kernel(parallel=True)
def _cross_entropy_backward(logits, target, weight, ignore_index, eps, lse, grad, dlogits):
    N, C = logits.shape
    w_sum = 0.0
    if eps > 0.0:
        for c in range(C):
            w_sum += weight[c]
    for n in prange(N):
        t = target[n]
        if t == ignore_index:
            for c in range(C):
                dlogits[n, c] = 0.0
            continue
        g = grad[n]
        wt = (1.0 - eps) * weight[t]
        scale = g * (wt + eps / C * w_sum)
        if scale > 0.0 and abs(lse[n]) < 16.0:
            # p * scale = exp(x - (lse - log scale)): one pass instead of two. Only for a
            # moderate lse: the shifted value is rounded at lse's magnitude, which for
            # logits near 1e4 would cost ~5e-4 relative; those take the exact two passes.
            exp_shifted(logits[n], lse[n] - np.log(scale), dlogits[n])
        else:
            # softmax again from the row's maximum: exp(x - lse) with lse rounded at its own
            # magnitude (80 for logits near 80) would cost ~|lse| ulp of relative error
            m = logits[n, 0]
            for c in range(1, C):
                m = max(m, logits[n, c])
            f = scale / exp_shifted(logits[n], m, dlogits[n])
            for c in range(C):
                dlogits[n, c] *= f
        if eps > 0.0:
            for c in range(C):
                dlogits[n, c] -= g * eps / C * weight[c]
        dlogits[n, t] -= g * wt


def cross_entropy_forward(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    """Per-row cross-entropy of ``logits`` (N, C) against class indices; returns
    (loss (N,), lse (N,)). Rows whose target is ``ignore_index`` have loss 0."""
    target, w = checks.cross_entropy_inputs("cross_entropy", logits, target, weight, ignore_index)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    n = logits.shape[0]
    loss = np.empty(n, logits.dtype)
    lse = np.empty(n, logits.dtype)
    if n:
        _cross_entropy_forward(
            logits, target, w, ignore_index, float(label_smoothing), _row_max(logits), loss, lse
        )
    return loss, lse


def cross_entropy_backward(
    logits, target, weight, lse, grad, ignore_index=-100, label_smoothing=0.0
):
    """d(sum_n grad[n] * loss_n)/d logits, from the forward's lse (nothing N x C is saved)."""
    target, w = checks.cross_entropy_inputs(
        "cross_entropy_backward", logits, target, weight, ignore_index
    )
    checks.floats("cross_entropy_backward", logits=logits, lse=lse, grad=grad)
    dlogits = np.empty_like(logits)
    if logits.shape[0]:
        _cross_entropy_backward(
            logits, target, w, ignore_index, float(label_smoothing), lse, grad, dlogits
        )
    return dlogits
