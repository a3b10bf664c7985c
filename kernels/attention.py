"""Scaled dot-product attention, flash style: nothing of size T x S per head is ever held.

q, out, dq: (B, NH, T, D)   k, v, dk, dv: (B, NH, S, D)   lse: (B, NH, T)
mask: additive, broadcastable to (B, NH, T, S) (-inf where a position may not attend)

Forward, for each block of Br query rows: walk the key blocks of Bc columns keeping, per row,
the running maximum m, the running sum l of exp(s - m) and the running output acc (an online
softmax). When a new block raises the maximum, earlier sums are rescaled by exp(m_old - m_new).
At the end out = acc / l, and only lse = m + log(l) is saved for backward.

Backward, per (b, h), for each key block j and each query block i, recompute
    P = exp(Q_i K_j^T * scale + mask - lse_i)
    dV_j += P^T dO_i,   dP = dO_i V_j^T,   dS = P * (dP - D_i),   D_i = rowsum(dO_i * O_i)
    dK_j += dS^T Q_i * scale,   dQ_i += dS K_j * scale
One prange iteration owns one (b, h), so no two iterations write the same dq, dk or dv rows.
The block products are BLAS calls (np.dot inside the kernel). Extra memory per thread:
O(Br * Bc + (Br + Bc) * D), independent of T and S.

is_causal keeps key j for query i when j <= i (top-left aligned, as PyTorch); the blocks on
the diagonal go in strips of query rows, each multiplied only by the keys it sees (STRIP).
A query row with every key masked gets output 0 (and gradient 0) rather than NaN.
"""

from __future__ import annotations

from contextlib import nullcontext

import numba
import numpy as np
from numba import prange
from threadpoolctl import ThreadpoolController

from kernels import checks, tuned
from kernels._config import kernel
from kernels._math import exp_shifted


def _blocks(t: int, s: int) -> tuple[int, int]:
    """Block sizes (query rows, key columns). Measured at 1 thread (benchmarks/kernels.py):
    64 x 64 is best for short sequences, where larger causal blocks waste work on the
    diagonal; 256 x 256 for long ones, where larger BLAS products run faster. ``minigrad
    tune`` measures both sizes on the user's machine (kernels/tuned.py)."""
    size = tuned.value("attention_block_short" if max(t, s) <= 256 else "attention_block_long")
    return int(size), int(size)


# Causal blocks on the diagonal go in strips of STRIP query rows, each multiplied only by the
# keys it can see: a 256 x 256 diagonal block computes 36/64 of its scores instead of all, a
# 64 x 64 one 5/8. Measured fwd+bwd against PyTorch, 1 thread (benchmarks/kernels.py):
# (1, 4, 2048, 64) 0.99-1.00 to 0.92-0.94, (4, 4, 512, 64) 0.82 to 0.66-0.67, (8, 4, 128, 64)
# 0.90 to 0.85 (strips of 64 and 128 did as well on the first two, not on the last).
STRIP = 32


@kernel
def _block(flat, rows, cols):
    """A (rows, cols) C-contiguous view of a flat scratch buffer (what np.dot's out needs)."""
    return flat[: rows * cols].reshape(rows, cols)


@kernel
def _scores(qs_blk, k_blk, mask, has_mask, causal, b, h, i0, j0, s):
    """s (rows, cols) = qs_blk @ k_blk^T + mask, -inf at causally hidden positions.
    qs_blk is the query block already multiplied by the scale, so blocks with neither a mask
    nor the causal diagonal in them need no pass over s at all."""
    rows, cols = s.shape
    np.dot(qs_blk, k_blk.T, s)
    if not has_mask and not (causal and j0 + cols - 1 > i0):
        return
    for r in range(rows):
        for c in range(cols):
            value = s[r, c]
            if has_mask:
                value += mask[
                    b % mask.shape[0],
                    h % mask.shape[1],
                    (i0 + r) % mask.shape[2],
                    (j0 + c) % mask.shape[3],
                ]
            if causal and j0 + c > i0 + r:
                value = -np.inf
            s[r, c] = value


@kernel(parallel=True)
def _attention_forward(q, k, v, mask, has_mask, causal, scale, BLOCK_Q, BLOCK_K, out, lse):
    B, NH, T, D = q.shape
    S = k.shape[2]
    n_qb = (T + BLOCK_Q - 1) // BLOCK_Q
    for job in prange(B * NH * n_qb):
        bh, qb = job // n_qb, job % n_qb
        b, h = bh // NH, bh % NH
        i0 = qb * BLOCK_Q
        i1 = min(T, i0 + BLOCK_Q)
        rows = i1 - i0
        q_blk = q[b, h, i0:i1] * scale
        m = np.full(rows, -np.inf, dtype=q.dtype)
        l = np.zeros(rows, dtype=q.dtype)
        acc = np.zeros((rows, D), dtype=q.dtype)
        s_flat = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        p_flat = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        pv = np.empty((rows, D), dtype=q.dtype)
        j_end = min(S, i1) if causal else S
        for j0 in range(0, j_end, BLOCK_K):
            j1 = min(j_end, j0 + BLOCK_K)
            cols = j1 - j0
            diagonal = causal and j0 + cols - 1 > i0
            strip = STRIP if diagonal else rows
            for r0 in range(0, rows, strip):
                r1 = min(rows, r0 + strip)
                n = min(cols, i0 + r1 - j0) if diagonal else cols  # the keys these rows see
                if n <= 0:
                    continue
                s = _block(s_flat, r1 - r0, n)
                p = _block(p_flat, r1 - r0, n)
                _scores(q_blk[r0:r1], k[b, h, j0 : j0 + n], mask, has_mask, causal, b, h,
                        i0 + r0, j0, s)  # fmt: skip
                for r in range(r1 - r0):
                    row = r0 + r
                    block_max = -np.inf
                    for c in range(n):
                        block_max = max(block_max, s[r, c])
                    m_new = max(m[row], block_max)
                    if m_new == -np.inf:  # everything so far masked: nothing to add
                        for c in range(n):
                            p[r, c] = 0.0
                        continue
                    alpha = np.exp(m[row] - m_new)  # rescales what was summed under the old max
                    l[row] = l[row] * alpha + exp_shifted(s[r], m_new, p[r])
                    m[row] = m_new
                    for d in range(D):
                        acc[row, d] *= alpha
                np.dot(p, v[b, h, j0 : j0 + n], pv[r0:r1])
                for r in range(r0, r1):
                    for d in range(D):
                        acc[r, d] += pv[r, d]
        for r in range(rows):
            # a NaN in l (a NaN or an infinite score among finite ones) stays NaN, as in
            # PyTorch's CPU kernel; a row whose every score is -inf or NaN gives 0 there too
            if l[r] > 0.0 or l[r] != l[r]:
                inv = 1.0 / l[r]
                for d in range(D):
                    out[b, h, i0 + r, d] = acc[r, d] * inv
                lse[b, h, i0 + r] = m[r] + np.log(l[r])
            else:
                for d in range(D):
                    out[b, h, i0 + r, d] = 0.0
                lse[b, h, i0 + r] = -np.inf


@kernel(parallel=True)
def _attention_backward(
    q, k, v, mask, has_mask, causal, scale, BLOCK_Q, BLOCK_K, out, lse, dout, dq, dk, dv
):
    B, NH, T, D = q.shape
    S = k.shape[2]
    for bh in prange(B * NH):
        b, h = bh // NH, bh % NH
        delta = np.empty(T, dtype=q.dtype)  # D_i = rowsum(dO * O)
        for i in range(T):
            acc = 0.0
            for d in range(D):
                acc += dout[b, h, i, d] * out[b, h, i, d]
            delta[i] = acc
        for i in range(T):
            for d in range(D):
                dq[b, h, i, d] = 0.0
        qs = q[b, h] * scale  # (T, D), scaled once for the score products
        s_flat = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        dp_flat = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        tmpk_flat = np.empty(BLOCK_K * D, dtype=q.dtype)
        tmpq_flat = np.empty(BLOCK_Q * D, dtype=q.dtype)
        for j0 in range(0, S, BLOCK_K):
            j1 = min(S, j0 + BLOCK_K)
            cols = j1 - j0
            k_blk, v_blk = k[b, h, j0:j1], v[b, h, j0:j1]
            dk_blk, dv_blk = dk[b, h, j0:j1], dv[b, h, j0:j1]
            dk_blk[:] = 0.0
            dv_blk[:] = 0.0
            # causal: query rows before j0 can't see this key block
            i_start = (j0 // BLOCK_Q) * BLOCK_Q if causal else 0
            for i0 in range(i_start, T, BLOCK_Q):
                i1 = min(T, i0 + BLOCK_Q)
                rows = i1 - i0
                diagonal = causal and j0 + cols - 1 > i0
                strip = STRIP if diagonal else rows
                for r0 in range(0, rows, strip):
                    r1 = min(rows, r0 + strip)
                    n = min(cols, i0 + r1 - j0) if diagonal else cols  # the keys these rows see
                    if n <= 0:
                        continue
                    q_blk, do_blk = q[b, h, i0 + r0 : i0 + r1], dout[b, h, i0 + r0 : i0 + r1]
                    p = _block(s_flat, r1 - r0, n)
                    _scores(qs[i0 + r0 : i0 + r1], k_blk[:n], mask, has_mask, causal, b, h,
                            i0 + r0, j0, p)  # fmt: skip
                    for r in range(r1 - r0):  # P = exp(S - lse), 0 for fully masked rows
                        row_lse = lse[b, h, i0 + r0 + r]
                        if row_lse == -np.inf:
                            for c in range(n):
                                p[r, c] = 0.0
                        else:
                            exp_shifted(p[r], row_lse, p[r])
                    tmp_k = _block(tmpk_flat, n, D)
                    np.dot(p.T, do_blk, tmp_k)
                    dv_blk[:n] += tmp_k
                    ds = _block(dp_flat, r1 - r0, n)
                    np.dot(do_blk, v_blk[:n].T, ds)
                    for r in range(r1 - r0):
                        for c in range(n):
                            ds[r, c] = p[r, c] * (ds[r, c] - delta[i0 + r0 + r]) * scale
                    np.dot(ds.T, q_blk, tmp_k)
                    dk_blk[:n] += tmp_k
                    tmp_q = _block(tmpq_flat, r1 - r0, D)
                    np.dot(ds, k_blk[:n], tmp_q)
                    dq[b, h, i0 + r0 : i0 + r1] += tmp_q


# np.dot inside a Numba kernel calls SciPy's bundled BLAS, which is a different library from
# NumPy's; load it now so that threadpoolctl sees (and limits) it too.
import scipy.linalg.cython_blas  # noqa: E402, F401

_BLAS = ThreadpoolController()


def _single_threaded_blas():
    """The kernels call BLAS from inside their own parallel loop: with more than one Numba
    thread, each of those BLAS calls must run on one thread, or the two pools oversubscribe
    the cores (and OpenBLAS, built for pthreads, warns that it may hang inside OpenMP)."""
    return _BLAS.limit(limits=1, user_api="blas") if numba.get_num_threads() > 1 else nullcontext()


def attention_forward(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v; returns (out, lse)."""
    mask4, has_mask = checks.attention_inputs("scaled_dot_product_attention", q, k, v, mask)
    # in the inputs' dtype: a float32 block times a Python float would become float64 in Numba
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[3]) if scale is None else scale)
    out = np.empty(q.shape, q.dtype)
    lse = np.empty(q.shape[:3], q.dtype)
    if q.size:
        bq, bk = _blocks(q.shape[2], k.shape[2])
        with _single_threaded_blas():
            _attention_forward(q, k, v, mask4, has_mask, bool(is_causal), scale, bq, bk, out, lse)
    return out, lse


def attention_backward(q, k, v, out, lse, dout, mask=None, is_causal=False, scale=None):
    """Gradients (dq, dk, dv) from the forward's out and lse, recomputing P block by block."""
    mask4, has_mask = checks.attention_inputs(
        "scaled_dot_product_attention_backward", q, k, v, mask
    )
    checks.floats("scaled_dot_product_attention_backward", out=out, lse=lse, grad=dout)
    # in the inputs' dtype: a float32 block times a Python float would become float64 in Numba
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[3]) if scale is None else scale)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    if q.size and k.size:
        bq, bk = _blocks(q.shape[2], k.shape[2])
        with _single_threaded_blas():
            _attention_backward(
                q, k, v, mask4, has_mask, bool(is_causal), scale, bq, bk, out, lse, dout, dq, dk, dv
            )
    else:
        dq[...] = 0.0
        dk[...] = 0.0
        dv[...] = 0.0
    return dq, dk, dv
