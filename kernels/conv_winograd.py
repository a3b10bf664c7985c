"""Winograd F(2x2, 3x3): 3x3 convolutions with stride 1 in 2.25 times fewer multiplications.

x, dx: (B, C, H, W)   w, dw: (O, C, 3, 3)   out, dout: (B, O, OH, OW)
U, dU: (16, O, C)     V, dV: (16, C, T)     M, dM: (16, O, T)    T = B * TH * TW tiles

Each 2x2 block of the output (a tile) is computed from the 4x4 block of input around it:
    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, 16 products)
and summing over input channels turns the 16 elementwise products into 16 matrix products
M[e] = U[e] @ V[e], which BLAS runs near its peak: 16 * 2 * O * C * T flops against
9 * 4 * 2 * O * C * T for im2col. The transforms (B^T d B, A^T M A) are additions only.

Backward differentiates the same algorithm exactly:
    dM[e] = (A dY A^T)[e],  dU[e] = dM[e] @ V[e]^T,  dV[e] = U[e]^T @ dM[e],
    dw = G^T dU G,  dd = B dV B^T scattered back (tiles overlap by 2 rows and columns).
Transforms run one prange iteration per (b, c) or (b, o) plane: the scatter of dd adds
only into its own plane of dx, so iterations never write the same memory.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels._config import kernel

# G (4 x 3) maps a 3x3 filter to the 4x4 Winograd domain.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


@kernel(parallel=True)
def _input_transform(xp, TH, TW, V):
    # xp: the input zero-padded so that tile (ty, tx) reads xp[b, c, 2ty:2ty+4, 2tx:2tx+4].
    # V[4i + j, c, t] = (B^T d B)[i, j]. Two simple passes per tile row, each a loop over tx
    # with one output stream, which LLVM vectorizes: first e = d B for each of the four input
    # rows into a small buffer, then the row combinations B^T e straight into V.
    B, C = xp.shape[0], xp.shape[1]
    per_image = TH * TW
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        e = np.empty((4, 4, TW), dtype=xp.dtype)  # e[i, j, tx]
        for ty in range(TH):
            for i in range(4):
                row = xp[b, c, 2 * ty + i]
                e0, e1, e2, e3 = e[i, 0], e[i, 1], e[i, 2], e[i, 3]
                for tx in range(TW):
                    e0[tx] = row[2 * tx] - row[2 * tx + 2]
                for tx in range(TW):
                    e1[tx] = row[2 * tx + 1] + row[2 * tx + 2]
                for tx in range(TW):
                    e2[tx] = row[2 * tx + 2] - row[2 * tx + 1]
                for tx in range(TW):
                    e3[tx] = row[2 * tx + 1] - row[2 * tx + 3]
            base = b * per_image + ty * TW
            for j in range(4):  # B^T e: rows [e0 - e2, e1 + e2, e2 - e1, e1 - e3]
                v0, v1, v2, v3 = V[j, c], V[4 + j, c], V[8 + j, c], V[12 + j, c]
                a, bb, cc, d = e[0, j], e[1, j], e[2, j], e[3, j]
                for tx in range(TW):
                    v0[base + tx] = a[tx] - cc[tx]
                for tx in range(TW):
                    v1[base + tx] = bb[tx] + cc[tx]
                for tx in range(TW):
                    v2[base + tx] = cc[tx] - bb[tx]
                for tx in range(TW):
                    v3[base + tx] = bb[tx] - d[tx]


@kernel(parallel=True)
def _output_transform(M, TH, TW, out):
    # out (B, O, 2TH, 2TW): the 2x2 block of tile t is A^T m A, m = M[:, o, t] as 4x4
    B, O = out.shape[0], out.shape[1]
    per_image = TH * TW
    for plane in prange(B * O):
        b, o = plane // O, plane % O
        for ty in range(TH):
            top, bottom = out[b, o, 2 * ty], out[b, o, 2 * ty + 1]
            base = b * per_image + ty * TW
            for tx in range(TW):
                t = base + tx
                # A^T m (rows): s0 = m0 + m1 + m2, s1 = m1 - m2 - m3, per column j
                s00 = M[0, o, t] + M[4, o, t] + M[8, o, t]
                s01 = M[1, o, t] + M[5, o, t] + M[9, o, t]
                s02 = M[2, o, t] + M[6, o, t] + M[10, o, t]
                s03 = M[3, o, t] + M[7, o, t] + M[11, o, t]
                s10 = M[4, o, t] - M[8, o, t] - M[12, o, t]
                s11 = M[5, o, t] - M[9, o, t] - M[13, o, t]
                s12 = M[6, o, t] - M[10, o, t] - M[14, o, t]
                s13 = M[7, o, t] - M[11, o, t] - M[15, o, t]
                top[2 * tx] = s00 + s01 + s02
                top[2 * tx + 1] = s01 - s02 - s03
                bottom[2 * tx] = s10 + s11 + s12
                bottom[2 * tx + 1] = s11 - s12 - s13


@kernel(parallel=True)
def _grad_output_transform(dout, TH, TW, dM):
    # dout (B, O, 2TH, 2TW), zero beyond the real output. dM[:, o, t] = A dY A^T, in two
    # vectorizable passes: each dY row [g0, g1] -> p = [g0, g0 + g1, g0 - g1, -g1], then
    # the rows of dM are [p_top, p_top + p_bottom, p_top - p_bottom, -p_bottom].
    B, O = dout.shape[0], dout.shape[1]
    per_image = TH * TW
    for plane in prange(B * O):
        b, o = plane // O, plane % O
        p = np.empty((2, 4, TW), dtype=dout.dtype)
        for ty in range(TH):
            for r in range(2):
                row = dout[b, o, 2 * ty + r]
                p0, p1, p2, p3 = p[r, 0], p[r, 1], p[r, 2], p[r, 3]
                for tx in range(TW):
                    p0[tx] = row[2 * tx]
                for tx in range(TW):
                    p1[tx] = row[2 * tx] + row[2 * tx + 1]
                for tx in range(TW):
                    p2[tx] = row[2 * tx] - row[2 * tx + 1]
                for tx in range(TW):
                    p3[tx] = -row[2 * tx + 1]
            base = b * per_image + ty * TW
            for q in range(4):
                top, bottom = p[0, q], p[1, q]
                m0, m1, m2, m3 = dM[q, o], dM[4 + q, o], dM[8 + q, o], dM[12 + q, o]
                for tx in range(TW):
                    m0[base + tx] = top[tx]
                for tx in range(TW):
                    m1[base + tx] = top[tx] + bottom[tx]
                for tx in range(TW):
                    m2[base + tx] = top[tx] - bottom[tx]
                for tx in range(TW):
                    m3[base + tx] = -bottom[tx]


@kernel(parallel=True)
def _grad_input_transform(dV, TH, TW, dxp):
    # dxp: the gradient of the padded input (zeroed here). Each tile adds B dV B^T into its
    # 4x4 block. Pass 1: w = B v for each column j (rows of B: [1,0,0,0], [0,1,-1,1],
    # [-1,1,1,0], [0,0,0,-1]). Pass 2: each row spreads by B^T into columns 2tx .. 2tx + 3,
    # one column offset per loop so that no loop writes the same element twice.
    B, C = dxp.shape[0], dxp.shape[1]
    per_image = TH * TW
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for h in range(dxp.shape[2]):
            for w in range(dxp.shape[3]):
                dxp[b, c, h, w] = 0.0
        wb = np.empty((4, 4, TW), dtype=dV.dtype)  # wb[i, j, tx] = (B v)[i, j]
        for ty in range(TH):
            base = b * per_image + ty * TW
            for j in range(4):
                v0, v1, v2, v3 = dV[j, c], dV[4 + j, c], dV[8 + j, c], dV[12 + j, c]
                w0, w1, w2, w3 = wb[0, j], wb[1, j], wb[2, j], wb[3, j]
                for tx in range(TW):
                    w0[tx] = v0[base + tx]
                for tx in range(TW):
                    w1[tx] = v1[base + tx] - v2[base + tx] + v3[base + tx]
                for tx in range(TW):
                    w2[tx] = -v0[base + tx] + v1[base + tx] + v2[base + tx]
                for tx in range(TW):
                    w3[tx] = -v3[base + tx]
            for i in range(4):
                row = dxp[b, c, 2 * ty + i]
                a0, a1, a2, a3 = wb[i, 0], wb[i, 1], wb[i, 2], wb[i, 3]
                for tx in range(TW):
                    row[2 * tx] += a0[tx]
                for tx in range(TW):
                    row[2 * tx + 1] += a1[tx] - a2[tx] + a3[tx]
                for tx in range(TW):
                    row[2 * tx + 2] += -a0[tx] + a1[tx] + a2[tx]
                for tx in range(TW):
                    row[2 * tx + 3] -= a3[tx]


def applies(kernel_hw, stride_hw, dilation_hw, groups, channels, out_channels, out_width) -> bool:
    """Where Winograd F(2x2, 3x3) is used instead of im2col: 3x3 kernels, stride 1, dilation 1,
    no groups, at least 8 input and output channels, and an output at least 16 wide.
    Measured at 1 thread (benchmarks/kernels.py): on (32, 64, 32, 32) -> 64 fwd+bwd takes
    123 ms against 191 ms for im2col; on (64, 32, 14, 14) -> 64 its rows of 7 tiles are too
    short for the vectorized transforms, and im2col (33 ms against 38 ms) stays faster."""
    return (
        tuple(kernel_hw) == (3, 3)
        and tuple(stride_hw) == (1, 1)
        and tuple(dilation_hw) == (1, 1)
        and groups == 1
        and channels >= 8
        and out_channels >= 8
        and out_width >= 16
    )


def _tiles(oh, ow):
    return (oh + 1) // 2, (ow + 1) // 2


def _padded_input(x, pad_tl, th, tw):
    """x zero-padded to (2TH + 2, 2TW + 2): pad_tl before, and after whatever the last tile
    reads (the real bottom/right padding, plus rows beyond it that only feed cropped outputs)."""
    b, c, h, w = x.shape
    rows, cols = 2 * th + 2, 2 * tw + 2
    xp = np.zeros((b, c, rows, cols), x.dtype)
    hi, wi = min(h, rows - pad_tl[0]), min(w, cols - pad_tl[1])
    xp[:, :, pad_tl[0] : pad_tl[0] + hi, pad_tl[1] : pad_tl[1] + wi] = x[:, :, :hi, :wi]
    return xp


def _filters(w, dtype):
    o, c = w.shape[:2]
    return np.ascontiguousarray(
        np.einsum("ik,ockl,jl->ijoc", G, w, G).reshape(16, o, c), dtype=dtype
    )


def forward(x, w, bias, pad_tl, out_hw):
    b, c = x.shape[:2]
    o = w.shape[0]
    oh, ow = out_hw
    th, tw = _tiles(oh, ow)
    v = np.empty((16, c, b * th * tw), x.dtype)
    _input_transform(_padded_input(x, pad_tl, th, tw), th, tw, v)
    m = np.matmul(_filters(w, x.dtype), v)  # 16 products (O, C) @ (C, T)
    full = np.empty((b, o, 2 * th, 2 * tw), x.dtype)
    _output_transform(m, th, tw, full)
    out = full if (2 * th, 2 * tw) == (oh, ow) else np.ascontiguousarray(full[:, :, :oh, :ow])
    if bias is not None:
        out += bias.reshape(1, o, 1, 1)
    return out


def backward(x, w, dout, pad_tl, out_hw, need):
    b, c, h, wd = x.shape
    o = w.shape[0]
    oh, ow = out_hw
    th, tw = _tiles(oh, ow)
    if (2 * th, 2 * tw) != (oh, ow):
        padded = np.zeros((b, o, 2 * th, 2 * tw), dout.dtype)
        padded[:, :, :oh, :ow] = dout
        dout = padded
    dm = np.empty((16, o, b * th * tw), x.dtype)
    _grad_output_transform(dout, th, tw, dm)
    dx = dw = None
    if need[1]:
        v = np.empty((16, c, b * th * tw), x.dtype)
        _input_transform(_padded_input(x, pad_tl, th, tw), th, tw, v)
        du = np.matmul(dm, v.transpose(0, 2, 1))  # (16, O, C)
        dw = np.einsum("ik,ijoc,jl->ockl", G, du.reshape(4, 4, o, c), G).astype(x.dtype)
    if need[0]:
        dv = np.matmul(_filters(w, x.dtype).transpose(0, 2, 1), dm)  # (16, C, T)
        dxp = np.empty((b, c, 2 * th + 2, 2 * tw + 2), x.dtype)
        _grad_input_transform(dv, th, tw, dxp)
        hi, wi = min(h, dxp.shape[2] - pad_tl[0]), min(wd, dxp.shape[3] - pad_tl[1])
        dx = np.zeros_like(x)
        dx[:, :, :hi, :wi] = dxp[:, :, pad_tl[0] : pad_tl[0] + hi, pad_tl[1] : pad_tl[1] + wi]
    return dx, dw
