"""2-D convolution (and 1-D, as 2-D with H = 1) by im2col, GEMM and col2im.

x, dx: (B, C, H, W)        w, dw: (O, C/G, KH, KW)      bias, dbias: (O,)
out, dout: (B, O, OH, OW)  cols: (G, C/G * KH * KW, B * OH * OW)

im2col copies, for every output position of every image, the input patch it sees into one
column; the convolution of group g is then a single matrix product
W_g (O/G, C/G*KH*KW) @ cols_g (C/G*KH*KW, B*OH*OW) done by BLAS. One large product per group
runs near BLAS peak, where one small product per image did not (measured: 2-3x slower).
Backward, with dY_g = dout for group g laid out as (O/G, B*OH*OW):
    dW_g   = dY_g @ cols_g^T
    dcols  = W_g^T @ dY_g, scattered back (col2im, the transpose of im2col) into dx
    dbias  = dout summed over B, OH, OW
The columns are KH*KW times the input: the forward keeps them for the backward only up to
16 MB (conv2d_forward_keeping_columns), and the backward recomputes them otherwise.

Two other algorithms take over where they measure faster, each module with its rule and its
measurements: stride-1 convolutions with 8 or more input channels, 9 taps or more and a batch
that fills slivers of 16 images (8 in float64) run on the batch-sliver layout
(kernels/conv_slivers.py: 3x3 filters by Winograd, the others directly, no im2col); smaller
batches of 3x3 convolutions with enough channels and width run Winograd F(2x2, 3x3) on
(B, C, H, W) (kernels/conv_winograd.py).
im2col and col2im run one prange iteration per (b, c) input plane: col2im adds only into
plane (b, c) of dx, so iterations never write the same memory.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels import checks, conv_slivers, conv_winograd
from kernels._config import kernel
from kernels._math import cast_like


@kernel
def _valid_range(size, out, stride, pad, offset):
    """Output positions j in [lo, hi) whose input index j * stride - pad + offset lies in
    [0, size); computed once per kernel offset so the inner loop has no bounds checks."""
    lo = 0
    if offset < pad:
        lo = (pad - offset + stride - 1) // stride
    hi = (size - 1 + pad - offset) // stride + 1
    hi = min(out, hi)
    return min(lo, out), max(min(lo, out), hi)


@kernel(parallel=True)
def _im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, G, OH, OW, cols):
    B, C, H, W = x.shape
    Cg = C // G
    L = OH * OW
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        g, cg = c // Cg, c % Cg
        for u in range(kh):
            for v in range(kw):
                row = cols[g, (cg * kh + u) * kw + v]
                lo, hi = _valid_range(W, OW, sw, pl, v * dw)
                for i in range(OH):
                    h = i * sh - pt + u * dh
                    base = b * L + i * OW
                    if h < 0 or h >= H:
                        for j in range(OW):
                            row[base + j] = 0.0
                        continue
                    for j in range(lo):
                        row[base + j] = 0.0
                    shift = v * dw - pl
                    # j * sw + shift >= 0 for j in [lo, hi): an unsigned index tells Numba so,
                    # which drops its negative-index wraparound branch from the loop, and the
                    # stride-1 copy then vectorizes (4x faster in isolation)
                    if sw == 1:
                        for j in range(lo, hi):
                            row[np.uint64(base + j)] = x[b, c, h, np.uint64(j + shift)]
                    else:
                        for j in range(lo, hi):
                            row[np.uint64(base + j)] = x[b, c, h, np.uint64(j * sw + shift)]
                    for j in range(hi, OW):
                        row[base + j] = 0.0


@kernel(parallel=True)
def _col2im(dcols, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, dx):
    B, C, H, W = dx.shape
    G = dcols.shape[0]
    Cg = C // G
    L = OH * OW
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        g, cg = c // Cg, c % Cg
        for h in range(H):
            for w in range(W):
                dx[b, c, h, w] = 0.0
        for u in range(kh):
            for v in range(kw):
                row = dcols[g, (cg * kh + u) * kw + v]
                lo, hi = _valid_range(W, OW, sw, pl, v * dw)
                for i in range(OH):
                    h = i * sh - pt + u * dh
                    if h < 0 or h >= H:
                        continue
                    base = b * L + i * OW
                    shift = v * dw - pl  # unsigned indices: see _im2col
                    if sw == 1:
                        for j in range(lo, hi):
                            dx[b, c, h, np.uint64(j + shift)] += row[np.uint64(base + j)]
                    else:
                        for j in range(lo, hi):
                            dx[b, c, h, np.uint64(j * sw + shift)] += row[np.uint64(base + j)]


@kernel(parallel=True)
def _to_output(out_t, bias, out):
    # out_t (O, B, L), the product's layout -> out (B, O, L) + bias[o], in one pass
    O, B, L = out_t.shape
    for job in prange(B * O):
        b, o = job // O, job % O
        src, dst, add = out_t[o, b], out[b, o], bias[o]
        for i in range(L):
            dst[i] = src[i] + add


@kernel(parallel=True)
def _from_output(dout, dg, dbias):
    # dout (B, O, L) -> dg (O, B, L), the product's layout, and dbias[o] = the sum of dout[:, o]
    # in the same pass (row sums in the dtype, vectorized; their total in float64)
    B, O, L = dout.shape
    for o in prange(O):
        total = 0.0
        for b in range(B):
            src, dst = dout[b, o], dg[o, b]
            row = cast_like(0.0, src)
            for i in range(L):
                dst[i] = src[i]
                row += src[i]
            total += row
        dbias[o] = total


def im2col(x, kernel_hw, stride_hw, pad_tl, dilation_hw, groups, out_hw):
    b, c = x.shape[:2]
    kh, kw = kernel_hw
    cols = np.empty((groups, c // groups * kh * kw, b * out_hw[0] * out_hw[1]), x.dtype)
    if cols.size:
        _im2col(x, kh, kw, *stride_hw, *pad_tl, *dilation_hw, groups, *out_hw, cols)
    return cols


def col2im(dcols, x_shape, kernel_hw, stride_hw, pad_tl, dilation_hw, out_hw):
    dx = np.empty(x_shape, dcols.dtype)
    if dx.size:
        _col2im(dcols, *kernel_hw, *stride_hw, *pad_tl, *dilation_hw, *out_hw, dx)
    return dx


def conv2d_forward(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation as PyTorch's conv2d; returns out (B, O, OH, OW)."""
    return conv2d_forward_keeping_columns(x, w, bias, stride, padding, dilation, groups, 0)[0]


def conv2d_forward_keeping_columns(
    x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, max_bytes=16 << 20
):
    """conv2d_forward that also returns the im2col columns (on the batch-sliver path: x in the
    channels-inner sliver layout) when they take at most ``max_bytes`` (else None), so that
    the backward can reuse them instead of recomputing:
    (out, cols). Winograd layers return no columns."""
    checks.floats("conv2d", input=x, weight=w, bias=bias)
    k, s, p, d, (oh, ow) = checks.conv_geometry("conv2d", x, w, stride, padding, dilation, groups)
    o = w.shape[0]
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"conv2d: bias of shape {bias.shape} does not match {o} output channels")
    b = x.shape[0]
    route, pads = _route(x, w, k, s, p, d, groups, (oh, ow))
    if route == "batch slivers":
        # kept for the weight gradient: x in the channels-inner sliver layout, not im2col's
        kept = conv_slivers.sliver_shape(x, pads, k, channels_inner=True)
        return conv_slivers.forward(x, w, bias, pads, np.prod(kept) * x.itemsize <= max_bytes)
    if route == "Winograd":
        return conv_winograd.forward(x, w, bias, p, (oh, ow)), None
    cols = im2col(x, k, s, p, d, groups, (oh, ow))
    wg = w.reshape(groups, o // groups, -1)
    out_t = np.matmul(wg, cols)  # (G, O/G, B*OH*OW)
    out = np.empty((b, o, oh, ow), x.dtype)
    if out.size:  # transposed into (B, O, OH, OW), the bias added on the way
        zero = np.zeros(o, x.dtype)
        _to_output(
            out_t.reshape(o, b, oh * ow), zero if bias is None else bias, out.reshape(b, o, -1)
        )
    return out, (cols if cols.nbytes <= max_bytes else None)


def conv2d_algorithm(x, w, stride=1, padding=0, dilation=1, groups=1):
    """Which algorithm conv2d_forward and conv2d_backward take for these arrays: "batch
    slivers" (kernels/conv_slivers.py, Winograd inside for 3x3), "Winograd"
    (kernels/conv_winograd.py) or "im2col" (im2col and one GEMM per group)."""
    k, s, p, d, out_hw = checks.conv_geometry("conv2d", x, w, stride, padding, dilation, groups)
    return _route(x, w, k, s, p, d, groups, out_hw)[0]


def _route(x, w, kernel_hw, stride_hw, pad_tl, dilation_hw, groups, out_hw):
    """(algorithm, the sliver path's padding or None): the one decision forward, backward
    and conv2d_algorithm share."""
    pads = _sliver_pads(x, w, kernel_hw, stride_hw, pad_tl, dilation_hw, groups, out_hw)
    if pads is not None:
        return "batch slivers", pads
    c, o, ow = x.shape[1], w.shape[0], out_hw[1]
    if x.size and conv_winograd.applies(kernel_hw, stride_hw, dilation_hw, groups, c, o, ow):
        return "Winograd", None
    return "im2col", None


def _sliver_pads(x, w, kernel_hw, stride_hw, pad_tl, dilation_hw, groups, out_hw):
    """(top, bottom, left, right) padding when kernels/conv_slivers.py takes this convolution,
    else None. With stride 1 and no dilation, the bottom (right) padding is what the output
    size leaves: OH + KH - 1 = top + H + bottom."""
    if not x.size:
        return None
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    top, left = pad_tl
    pads = (top, oh + kh - 1 - x.shape[2] - top, left, ow + kw - 1 - x.shape[3] - left)
    b, c = x.shape[:2]
    ok = conv_slivers.applies(
        kernel_hw, stride_hw, dilation_hw, groups, pads, b, c, w.shape[0], x.dtype
    )
    return pads if ok else None


_DW_CHUNK = 4096


def weight_gradient(dg, cols):
    """dW_g = dY_g @ cols_g^T for every group: (G, O/G, N) and (G, CK, N) -> (G, O/G, CK).

    Computed as (cols_g @ dY_g^T)^T, summed over chunks of 4096 of the N = B*OH*OW columns.
    OpenBLAS runs the direct product with N as the inner dimension slowly (tens of thousands
    deep, a few outputs); measured for LeNet's conv1 (O 6, CK 25, N 50176): 1.0 ms direct,
    0.54 ms transposed, 0.23 ms transposed in chunks; no slower on the larger layers tried.
    """
    g, o, n = dg.shape
    out = np.empty((g, o, cols.shape[1]), dg.dtype)
    for gi in range(g):
        acc = None
        for start in range(0, n, _DW_CHUNK):
            part = cols[gi, :, start : start + _DW_CHUNK] @ dg[gi, :, start : start + _DW_CHUNK].T
            acc = part if acc is None else acc + part
        out[gi] = 0.0 if acc is None else acc.T
    return out


def conv2d_backward(
    x, w, dout, stride=1, padding=0, dilation=1, groups=1, need=(True, True, True), cols=None
):
    """Gradients (dx, dw, dbias) of conv2d; ``need`` skips the ones not wanted (None);
    ``cols`` are the forward's im2col columns, if it kept them."""
    k, s, p, d, (oh, ow) = checks.conv_backward_inputs(
        x, w, dout, stride, padding, dilation, groups
    )
    b, o = x.shape[0], w.shape[0]
    route, pads = _route(x, w, k, s, p, d, groups, (oh, ow))
    if route == "batch slivers":
        kept = conv_slivers.sliver_shape(x, pads, k, channels_inner=True)
        if cols is None or cols.shape != kept:  # not that layout: computed again
            cols = None
        return conv_slivers.backward(x, w, dout, pads, need, cols)
    if route == "Winograd":
        dx, dw = conv_winograd.backward(x, w, dout, p, (oh, ow), need)
        return dx, dw, dout.sum(axis=(0, 2, 3)) if need[2] else None
    # dY_g: (G, O/G, B*OH*OW), the layout of the forward product's output; dbias on the way
    dg = np.empty((o, b, oh * ow), dout.dtype)
    bias_sums = np.zeros(o, dout.dtype)
    if dout.size:
        _from_output(np.ascontiguousarray(dout).reshape(b, o, -1), dg, bias_sums)
    dg = dg.reshape(groups, o // groups, b * oh * ow)
    wg = w.reshape(groups, o // groups, -1)
    dx = dw = dbias = None
    if need[0]:
        dcols = np.matmul(wg.transpose(0, 2, 1), dg)  # (G, C/G*K, B*OH*OW)
        dx = col2im(dcols, x.shape, k, s, p, d, (oh, ow))
    if need[1]:
        if cols is None:
            cols = im2col(x, k, s, p, d, groups, (oh, ow))
        dw = weight_gradient(dg, cols).reshape(w.shape)
    if need[2]:
        dbias = bias_sums
    return dx, dw, dbias
