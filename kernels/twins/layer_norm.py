"""NumPy twin of kernels/layer_norm.py."""

from __future__ import annotations

import numpy as np

from kernels import checks


def layer_norm_forward(x, weight=None, bias=None, eps=1e-5):
    dtype = checks.floats("layer_norm", x=x, weight=weight, bias=bias)
    checks.rank("layer_norm", "x", x, 2, "(R, D)")
    w, b = checks.layer_norm_affine("layer_norm", x.shape[1], dtype, weight, bias)
    mean = x.mean(axis=1)
    rstd = 1.0 / np.sqrt(x.var(axis=1) + eps)
    y = (x - mean[:, None]) * rstd[:, None] * w + b
    return y.astype(dtype), mean.astype(dtype), rstd.astype(dtype)


def layer_norm_backward(x, weight, mean, rstd, dy):
    dtype = checks.floats("layer_norm_backward", x=x, weight=weight, mean=mean, rstd=rstd, dy=dy)
    checks.rank("layer_norm_backward", "x", x, 2, "(R, D)")
    if dy.shape != x.shape:
        raise ValueError(f"layer_norm_backward: dy shape {dy.shape} != x shape {x.shape}")
    w, _ = checks.layer_norm_affine("layer_norm_backward", x.shape[1], dtype, weight, None)
    xhat = (x - mean[:, None]) * rstd[:, None]
    dxhat = dy * w
    dx = rstd[:, None] * (
        dxhat
        - dxhat.mean(axis=1, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)
    )
    return dx.astype(dtype), (dy * xhat).sum(axis=0).astype(dtype), dy.sum(axis=0).astype(dtype)
