"""Layer normalization, forward and backward each fused into one pass per row.

x, y, dx: (R, D)    rows normalized over their D elements
weight, bias: (D,)  optional affine (ones / zeros when absent)
mean, rstd: (R,)    saved by the forward for the backward (rstd = 1 / sqrt(var + eps))

backward, with xhat = (x - mean) * rstd and dxhat = dy * weight:
    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dweight = sum_rows(dy * xhat),  dbias = sum_rows(dy)
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels import checks
from kernels._config import kernel

_ROWS_PER_CHUNK = 32


@kernel(parallel=True)
def _layer_norm_forward(x, weight, bias, eps, y, mean, rstd):
    R, D = x.shape
    for r in prange(R):
        s = 0.0
        for d in range(D):
            s += x[r, d]
        mu = s / D
        v = 0.0
        for d in range(D):
            diff = x[r, d] - mu
            v += diff * diff
        rs = 1.0 / np.sqrt(v / D + eps)
        mean[r] = mu
        rstd[r] = rs
        for d in range(D):
            y[r, d] = (x[r, d] - mu) * rs * weight[d] + bias[d]


@kernel(parallel=True)
def _layer_norm_backward(x, weight, mean, rstd, dy, dx, dweight_parts, dbias_parts):
    # One prange iteration per chunk of rows: dx rows are disjoint, and each chunk adds into
    # its own row of the partial sums, so no two iterations write the same memory.
    R, D = x.shape
    for chunk in prange(dweight_parts.shape[0]):
        for r in range(chunk * _ROWS_PER_CHUNK, min(R, (chunk + 1) * _ROWS_PER_CHUNK)):
            mu, rs = mean[r], rstd[r]
            a = 0.0  # mean(dxhat)
            b = 0.0  # mean(dxhat * xhat)
            for d in range(D):
                xhat = (x[r, d] - mu) * rs
                dxhat = dy[r, d] * weight[d]
                a += dxhat
                b += dxhat * xhat
                dweight_parts[chunk, d] += dy[r, d] * xhat
                dbias_parts[chunk, d] += dy[r, d]
            a /= D
            b /= D
            for d in range(D):
                xhat = (x[r, d] - mu) * rs
                dx[r, d] = rs * (dy[r, d] * weight[d] - a - xhat * b)


def layer_norm_forward(x, weight=None, bias=None, eps=1e-5):
    """Normalize each row of x (R, D); returns (y, mean, rstd)."""
    dtype = checks.floats("layer_norm", x=x, weight=weight, bias=bias)
    checks.rank("layer_norm", "x", x, 2, "(R, D)")
    r, d = x.shape
    w, b = checks.layer_norm_affine("layer_norm", d, dtype, weight, bias)
    y = np.empty_like(x)
    mean = np.empty(r, dtype)
    rstd = np.empty(r, dtype)
    if x.size:
        _layer_norm_forward(x, w, b, float(eps), y, mean, rstd)
    return y, mean, rstd


def layer_norm_backward(x, weight, mean, rstd, dy):
    """Gradients (dx, dweight, dbias) of layer_norm from the forward's mean and rstd."""
    dtype = checks.floats("layer_norm_backward", x=x, weight=weight, mean=mean, rstd=rstd, dy=dy)
    checks.rank("layer_norm_backward", "x", x, 2, "(R, D)")
    if dy.shape != x.shape:
        raise ValueError(f"layer_norm_backward: dy shape {dy.shape} != x shape {x.shape}")
    r, d = x.shape
    w, _ = checks.layer_norm_affine("layer_norm_backward", d, dtype, weight, None)
    chunks = (r + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    dweight_parts = np.zeros((chunks, d), dtype)
    dbias_parts = np.zeros((chunks, d), dtype)
    dx = np.empty_like(x)
    if x.size:
        _layer_norm_backward(x, w, mean, rstd, dy, dx, dweight_parts, dbias_parts)
    return dx, dweight_parts.sum(axis=0), dbias_parts.sum(axis=0)
