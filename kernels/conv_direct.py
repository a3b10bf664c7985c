"""Direct convolution on batch slivers: stride 1, no dilation, no groups, a filled batch.

x: (B, C, H, W)   w: (O, C, KH, KW)   out: (B, O, OH, OW)   NR images per sliver, S slivers

The batch is cut into S = ceil(B / NR) slivers of NR images (16 in float32, 8 in float64: one
vector register), and each tensor is laid out with the sliver's images innermost:

    xs  (S, Hp, Wp, Cp, NR)   xs[s, h, w, c, l] = x[s*NR + l, c, h - top, w - left], zero padded
    ys  (S, OH, OW, Op, NR)   the output in the same layout; Cp, Op: C, O rounded up to MR

In that layout the convolution at one output position (s, i, j) is a single matrix product

    ys[s, i, j] (Op, NR) = W (Op, KH*KW*Cp) @ [xs[s, i+u, j+v] for u, v] (KH*KW*Cp, NR)

whose right operand is already in memory as the microkernel reads it: for each kernel row u,
the rows xs[s, i+u, j:j+KW] are KW*Cp contiguous rows of NR, and the next u is a fixed jump
further on. So there is no im2col and no packing: the GEMM's in-place microkernel
(``micro_strided``, kernels/gen_microkernels.py) reads x where it lies and adds the tile.

Backward uses the same two shapes of product:

    dx  = the same convolution of dout, padded by KH-1-top (etc.), with the filters flipped
          and their channels swapped: w2 (C, KH*KW*O), w2[c, (u, v, o)] = w[o, c, -1-u, -1-v]
    dw  = the sum over positions (s, i, j) and images l of xs[s, i+u, j+v, c, l] dy[o, l]:
          for each (u, v), A = xs read in place (rows c, k = (j, l)) times B = dout laid out
          with the channels innermost, dyh (S, OH, OW, NR, Op), rows (j, l)

The layouts cost one pass over x and out in the forward and over dout in the backward, with
the images of a sliver one vector apart. Measured on (64, 32, 14, 14) -> 64 and
(32, 64, 32, 32) -> 64 (benchmarks/kernels.py): the products run at 100-110 GFLOP/s, against
50-80 for BLAS on im2col columns or Winograd's 16 products of those shapes.

The dispatch (``applies``) takes this path only where the batch fills its slivers: a batch of
1 would compute 16 images for one.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from kernels._config import kernel
from kernels.matmul import _micro_strided, _sliver_tile, _sliver_tile_of

# A batch must fill at least this share of its slivers' images (measured: see applies).
FILL = 0.75


def applies(kernel_hw, stride_hw, dilation_hw, groups, pads, batch, channels, out_channels, dtype):
    """Where this path is taken: stride 1, dilation 1, no groups, padding at most the kernel's
    size - 1 on each side (the input gradient's own padding is then not negative), at least 16
    input and output channels, and a batch that fills FILL of its slivers."""
    kh, kw = kernel_hw
    top, bottom, left, right = pads
    _, nr = _sliver_tile(dtype)
    slivers = -(-batch // nr)
    return (
        tuple(stride_hw) == (1, 1)
        and tuple(dilation_hw) == (1, 1)
        and groups == 1
        and max(top, bottom) <= kh - 1
        and max(left, right) <= kw - 1
        and channels >= 16
        and out_channels >= 16
        and batch >= FILL * slivers * nr
    )


def _round_up(n, m):
    return -(-n // m) * m


# The layout changes move blocks of JB x NR through a small buffer: read NR rows of JB from
# one layout, write JB rows of NR to the other, with loops of constant length that LLVM
# unrolls and vectorizes (blocks cut short at an edge, and slivers with missing images, go
# element by element). Element by element throughout, one side reads or writes with a stride
# of C*H*W or Cp*NR elements, a power of two at the usual sizes, whose NR streams all fall in
# the same cache set: measured 5x slower at (32, 64, 32, 32).
JB = 16


@kernel(parallel=True)
def _to_slivers(x, top, left, xs):
    # x (B, C, H, W) -> xs (S, Hp, Wp, Cp, NR), zero where padded (rows, columns, channels
    # from C on, images from B on). One prange iteration per (sliver, padded row).
    MR, NR = _sliver_tile_of(xs)
    B, C, H, W = x.shape
    S, Hp, Wp, Cp, _ = xs.shape
    for job in prange(S * Hp):
        s, hp = job // Hp, job % Hp
        h = hp - top
        row = xs[s, hp]
        if h < 0 or h >= H:
            row[:] = 0.0
            continue
        for wp in range(left):
            row[wp] = 0.0
        for wp in range(left + W, Wp):
            row[wp] = 0.0
        for wp in range(left, left + W):
            for c in range(C, Cp):
                row[wp, c] = 0.0
        if B - s * NR < NR:  # a sliver with missing images
            for wp in range(left, left + W):
                for c in range(C):
                    for lane in range(NR):
                        b = s * NR + lane
                        row[wp, c, lane] = x[b, c, h, wp - left] if b < B else 0.0
            continue
        buf = np.empty((NR, JB), x.dtype)
        for c in range(C):
            w0 = 0
            while w0 + JB <= W:
                for lane in range(NR):
                    src = x[s * NR + lane, c, h]
                    for k in range(JB):
                        buf[lane, k] = src[np.uint64(w0 + k)]
                for k in range(JB):
                    dst = row[left + w0 + k, c]
                    for lane in range(NR):
                        dst[lane] = buf[lane, k]
                w0 += JB
            for w in range(w0, W):
                dst = row[left + w, c]
                for lane in range(NR):
                    dst[lane] = x[s * NR + lane, c, h, w]


@kernel(parallel=True)
def _convolve(xs, wt, KH, KW, bias, out):
    # out[b, :, i, j] = wt (Op, KH*KW*Cin) @ the KH*KW*Cin rows of xs around (i, j), + bias,
    # for the NR images b of sliver s; see the module docstring. One prange iteration per
    # (sliver, output row). The tiles of MR channels of a row go to a buffer (OW, MR, NR),
    # from which each (image, channel) row of out is written as one run of OW.
    MR, NR = _sliver_tile_of(out)
    S, Hp, Wp, Cin, _ = xs.shape
    B, O, OH, OW = out.shape
    Op = wt.shape[0]
    K = KH * KW * Cin
    xp = xs.reshape(xs.size)
    wp = wt.reshape(wt.size)
    run = KW * Cin  # rows of NR read in a row before the jump to the next kernel row
    jump = np.uint64((Wp - KW) * Cin * NR)
    for job in prange(S * OH):
        s, i = job // OH, job % OH
        lanes = min(NR, B - s * NR)
        buf = np.empty(OW * MR * NR, out.dtype)
        for ob in range(Op // MR):
            buf[:] = 0.0
            for j in range(OW):
                _micro_strided(
                    wp, np.uint64(ob * MR * K), np.uint64(K), run, np.uint64(0),
                    xp, np.uint64(((s * Hp + i) * Wp + j) * Cin * NR), np.uint64(NR), jump, KH,
                    buf[j * MR * NR : (j + 1) * MR * NR],
                )  # fmt: skip
            for r in range(min(MR, O - ob * MR)):
                o = ob * MR + r
                add = bias[o]
                for lane in range(lanes):
                    dst = out[s * NR + lane, o, i]
                    for j in range(OW):
                        dst[j] = buf[(j * MR + r) * NR + lane] + add


@kernel(parallel=True)
def _grad_to_slivers(dout, top, left, dys, dyh, partial_bias):
    # dout (B, O, OH, OW) -> dys (S, Hq, Wq, O, NR), at offset (top, left), the input of the
    # input gradient's convolution; dyh (S, OH, OW, NR, Op), channels innermost, for the weight
    # gradient (either may be empty: not wanted); partial_bias[job, o]: dout summed over the
    # row of this iteration, one per (sliver, output row). Each run of JB columns of dout is
    # read once, into a buffer of NR images x JB columns, and written from there to both.
    MR, NR = _sliver_tile_of(dout)
    B, O, OH, OW = dout.shape
    S = partial_bias.shape[0] // OH
    with_dys, with_dyh = dys.size > 0, dyh.size > 0
    Op = dyh.shape[4]
    for job in prange(S * OH):
        s, i = job // OH, job % OH
        lanes = min(NR, B - s * NR)
        buf = np.zeros((NR, JB), dout.dtype)  # (image, column); images from B on stay 0
        sums = np.zeros(JB, dout.dtype)
        for o in range(O):
            sums[:] = 0.0
            for j0 in range(0, OW, JB):
                n = min(JB, OW - j0)
                if lanes == NR:
                    for lane in range(NR):
                        src = dout[s * NR + lane, o, i]
                        for k in range(n):
                            buf[lane, k] = src[np.uint64(j0 + k)]
                else:
                    for lane in range(lanes):
                        for k in range(n):
                            buf[lane, k] = dout[s * NR + lane, o, i, j0 + k]
                for lane in range(NR):  # rows summed in the dtype, vectorized
                    for k in range(n):
                        sums[k] += buf[lane, k]
                if with_dys:
                    for k in range(n):
                        dst = dys[s, top + i, left + j0 + k, o]
                        for lane in range(NR):
                            dst[lane] = buf[lane, k]
                if with_dyh:
                    for k in range(n):
                        dst = dyh[s, i, j0 + k]
                        for lane in range(NR):
                            dst[lane, o] = buf[lane, k]
            total = 0.0
            for k in range(JB):
                total += sums[k]
            partial_bias[job, o] = total
        if with_dyh:
            for j in range(OW):
                for lane in range(NR):
                    for o in range(O, Op):
                        dyh[s, i, j, lane, o] = 0.0


@kernel
def _zero_border(dys, top, left, OH, OW):
    # dys's padding (everything outside rows top .. top+OH and columns left .. left+OW) = 0
    S, Hq, Wq, O, NR = dys.shape
    for s in range(S):
        for h in range(Hq):
            for w in range(Wq):
                if top <= h < top + OH and left <= w < left + OW:
                    continue
                dys[s, h, w] = 0.0


@kernel(parallel=True)
def _weight_grad(xs, dyh, KH, KW, groups, part):
    # part[g, u*KW + v, cb, ob] (MR, NR) += the (c, o) tile of sum over the positions of group g
    # of xs[s, i+u, j+v, c, l] * dyh[s, i, j, l, o]; one prange iteration per group of
    # (sliver, output row) jobs, each with its own partial sum.
    MR, NR = _sliver_tile_of(dyh)
    S, Hp, Wp, Cp, _ = xs.shape
    _, OH, OW, _, Op = dyh.shape
    xp = xs.reshape(xs.size)
    yp = dyh.reshape(dyh.size)
    jobs = S * OH
    for g in prange(groups):
        out = part[g]
        out[:] = 0.0
        flat = out.reshape(out.size)
        for job in range((g * jobs) // groups, ((g + 1) * jobs) // groups):
            s, i = job // OH, job % OH
            pb0 = ((s * OH + i) * OW) * NR * Op
            for u in range(KH):
                for v in range(KW):
                    pa0 = (((s * Hp + i + u) * Wp + v) * Cp) * NR
                    for cb in range(Cp // MR):
                        for ob in range(Op // NR):
                            o = ((((u * KW + v) * (Cp // MR) + cb) * (Op // NR)) + ob) * MR * NR
                            _micro_strided(
                                xp, np.uint64(pa0 + cb * MR * NR), np.uint64(NR), NR,
                                np.uint64((Cp - 1) * NR),
                                yp, np.uint64(pb0 + ob * NR), np.uint64(Op), np.uint64(0), OW,
                                flat[o : o + MR * NR],
                            )  # fmt: skip


def _filters(w, rows, channels):
    """wt (rows, KH*KW*channels): wt[o, (u*KW + v)*channels + c] = w[o, c, u, v], zero padded."""
    o, c, kh, kw = w.shape
    wt = np.zeros((rows, kh, kw, channels), w.dtype)
    wt[:o, :, :, :c] = w.transpose(0, 2, 3, 1)
    return wt.reshape(rows, -1)


def sliver_shape(x, pads):
    """The shape of x in the sliver layout, padded by pads (top, bottom, left, right)."""
    b, c, h, w = x.shape
    mr, nr = _sliver_tile(x.dtype)
    top, bottom, left, right = pads
    return (-(-b // nr), h + top + bottom, w + left + right, _round_up(c, mr), nr)


def _input_slivers(x, pads):
    """x in the sliver layout, padded on every side as the convolution needs."""
    xs = np.empty(sliver_shape(x, pads), x.dtype)
    _to_slivers(x, pads[0], pads[2], xs)
    return xs


def forward(x, w, bias, pads):
    """(out, xs): conv2d's output, and x in the sliver layout, which the backward reuses."""
    b = x.shape[0]
    o, _, kh, kw = w.shape
    mr, _ = _sliver_tile(x.dtype)
    xs = _input_slivers(x, pads)
    s, hp, wp, cp, nr = xs.shape
    oh, ow = hp - kh + 1, wp - kw + 1
    out = np.empty((b, o, oh, ow), x.dtype)
    wt = _filters(w, _round_up(o, mr), cp)
    _convolve(xs, wt, kh, kw, np.zeros(o, x.dtype) if bias is None else bias, out)
    return out, xs


def backward(x, w, dout, pads, need, xs=None):
    """(dx, dw, dbias), None where ``need`` says not wanted; xs: the forward's, if kept."""
    b, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    mr, nr = _sliver_tile(x.dtype)
    top, bottom, left, right = pads
    oh, ow = dout.shape[2:]
    s = -(-b // nr)
    cp, op = _round_up(c, mr), _round_up(o, mr)
    qt, ql = kh - 1 - top, kw - 1 - left  # the input gradient's padding of dout
    dys = np.empty((s, h + kh - 1, wd + kw - 1, o, nr) if need[0] else (0,) * 5, x.dtype)
    dyh = np.empty((s, oh, ow, nr, op) if need[1] else (0,) * 5, x.dtype)
    partial_bias = np.empty((s * oh, o), np.float64)
    _grad_to_slivers(dout, qt, ql, dys, dyh, partial_bias)
    dx = dw = None
    if need[0]:
        _zero_border(dys, qt, ql, oh, ow)
        w2 = np.zeros((cp, kh, kw, o), w.dtype)
        w2[:c] = w[:, :, ::-1, ::-1].transpose(1, 2, 3, 0)
        dx = np.empty_like(x)
        _convolve(dys, w2.reshape(cp, -1), kh, kw, np.zeros(c, x.dtype), dx)
    if need[1]:
        if xs is None:
            xs = _input_slivers(x, pads)
        groups = min(numba.get_num_threads(), s * oh)
        part = np.empty((groups, kh * kw, cp // mr, op // nr, mr, nr), x.dtype)
        _weight_grad(xs, dyh, kh, kw, groups, part)
        total = part.sum(axis=0) if groups > 1 else part[0]
        # (u*KW + v, c // MR, o // NR, c % MR, o % NR) -> (O, C, KH, KW)
        full = total.transpose(0, 1, 3, 2, 4).reshape(kh, kw, cp, op)
        dw = np.ascontiguousarray(full[:, :, :c, :o].transpose(3, 2, 0, 1))
    dbias = partial_bias.sum(axis=0).astype(x.dtype) if need[2] else None
    return dx, dw, dbias
