"""NumPy twin of kernels/attention.py: the plain T x S computation."""

from __future__ import annotations

import numpy as np

from kernels import checks


def _probabilities(q, k, mask4, has_mask, causal, scale):
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if has_mask:
        s = s + mask4
    if causal:
        t, n = s.shape[-2:]
        s = np.where(np.tril(np.ones((t, n), bool)), s, -np.inf)
    # the maximum of each row's scores, NaN left out: a row whose every score is -inf or NaN
    # is dead (0, as PyTorch's CPU kernel gives); a NaN among other scores makes the row NaN
    m = np.where(np.isnan(s), -np.inf, s).max(axis=-1, keepdims=True)
    dead = m == -np.inf
    e = np.exp(s - np.where(dead, 0.0, m))
    total = e.sum(axis=-1, keepdims=True)
    total = np.where(dead, 1.0, total)  # a NaN total stays NaN
    p = np.where(dead, 0.0, e / total)
    lse = np.where(dead, -np.inf, np.log(total) + np.where(dead, 0.0, m))
    return p, lse[..., 0]


def attention_forward(q, k, v, mask=None, is_causal=False, scale=None):
    mask4, has_mask = checks.attention_inputs("scaled_dot_product_attention", q, k, v, mask)
    scale = 1.0 / np.sqrt(q.shape[3]) if scale is None else float(scale)
    p, lse = _probabilities(q, k, mask4, has_mask, is_causal, scale)
    return np.matmul(p, v).astype(q.dtype), lse.astype(q.dtype)


def attention_backward(q, k, v, out, lse, dout, mask=None, is_causal=False, scale=None):
    mask4, has_mask = checks.attention_inputs(
        "scaled_dot_product_attention_backward", q, k, v, mask
    )
    checks.floats("scaled_dot_product_attention_backward", out=out, lse=lse, grad=dout)
    scale = 1.0 / np.sqrt(q.shape[3]) if scale is None else float(scale)
    p, _ = _probabilities(q, k, mask4, has_mask, is_causal, scale)
    dv = np.matmul(np.swapaxes(p, -1, -2), dout)
    dp = np.matmul(dout, np.swapaxes(v, -1, -2))
    ds = p * (dp - (dout * out).sum(axis=-1, keepdims=True)) * scale
    dq = np.matmul(ds, k)
    dk = np.matmul(np.swapaxes(ds, -1, -2), q)
    return dq.astype(q.dtype), dk.astype(q.dtype), dv.astype(q.dtype)
