"""NumPy twin of kernels/softmax.py."""

from __future__ import annotations

import numpy as np

from kernels import checks


def softmax_forward(x, dim, log=False):
    checks.floats("softmax", x=x)
    checks.softmax_dim("softmax", x, dim)
    if x.size == 0:
        return np.empty_like(x)
    m = np.max(x, axis=dim, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    shifted = x - m
    s = np.sum(np.exp(shifted), axis=dim, keepdims=True)
    return shifted - np.log(s) if log else np.exp(shifted) / s


def softmax_backward(y, grad, dim, log=False):
    checks.floats("softmax_backward", y=y, grad=grad)
    checks.softmax_dim("softmax_backward", y, dim)
    if grad.shape != y.shape:
        raise ValueError(f"softmax_backward: grad shape {grad.shape} != output shape {y.shape}")
    if log:
        return grad - np.exp(y) * np.sum(grad, axis=dim, keepdims=True)
    return y * (grad - np.sum(grad * y, axis=dim, keepdims=True))


def cross_entropy_forward(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    target, w = checks.cross_entropy_inputs("cross_entropy", logits, target, weight, ignore_index)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    n, c = logits.shape
    if n == 0:
        return np.empty(0, logits.dtype), np.empty(0, logits.dtype)
    m = logits.max(axis=1, keepdims=True)
    lse = (np.log(np.exp(logits - m).sum(axis=1, keepdims=True)) + m)[:, 0]
    logp = logits - lse[:, None]
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    eps = label_smoothing
    loss = -(1 - eps) * w[safe] * logp[np.arange(n), safe] - eps / c * (logp * w).sum(axis=1)
    return np.where(valid, loss, 0).astype(logits.dtype), lse.astype(logits.dtype)


def cross_entropy_backward(
    logits, target, weight, lse, grad, ignore_index=-100, label_smoothing=0.0
):
    target, w = checks.cross_entropy_inputs(
        "cross_entropy_backward", logits, target, weight, ignore_index
    )
    checks.floats("cross_entropy_backward", logits=logits, lse=lse, grad=grad)
    n, c = logits.shape
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    eps = label_smoothing
    e = np.exp(logits - logits.max(axis=1, keepdims=True))  # not exp(x - lse): see the kernel
    p = e / e.sum(axis=1, keepdims=True)
    wt = (1 - eps) * w[safe]
    d = p * (wt + eps / c * w.sum())[:, None] - eps / c * w[None, :]
    d[np.arange(n), safe] -= wt
    return (np.where(valid, grad, 0)[:, None] * d).astype(logits.dtype)
