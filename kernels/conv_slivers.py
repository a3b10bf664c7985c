"""Convolution on batch slivers: stride 1, no dilation, no groups, a batch that fills them.

x: (B, C, H, W)   w: (O, C, KH, KW)   out: (B, O, OH, OW)   NR images per sliver, S slivers

The batch is cut into S = ceil(B / NR) slivers of NR images (one vector register: on avx512,
16 in float32 and 8 in float64; kernels/isa.py), and the tensors are laid out by sliver,
position and channel:

    xs   (S, Hp, Wp, Cp, NR)  xs[s, h, w, c, l] = x[s*NR + l, c, h - top, w - left]: images
                              innermost, zero padded (Cp, Op: C, O rounded up to MR rows)
    xh   (S, Hp, Wp, NR, Cp)  the same with the channels innermost
    dys  (S, Hq, Wq, Op, NR)  dout, images innermost

so that each position holds one contiguous vector of all channels of all NR images, and a
product at one position is a product of the GEMM's microkernel on operands read in place
(kernels/gen_microkernels.py): no im2col, no packing.

Direct convolution (filters other than 3x3). At output position (s, i, j):

    out[s, i, j] (Op, NR) = W (Op, KH*KW*Cp) @ [xs[s, i+u, j+v] for u, v] (KH*KW*Cp, NR)

For each kernel row u the rows xs[s, i+u, j:j+KW] are KW*Cp contiguous rows of NR, and the
next u is a fixed jump on: ``micro_strided`` reads them where they lie. The input gradient is
the same convolution of dys, padded by KH-1-top (etc.), with the filters flipped and their
channels swapped; the weight gradient, for each tap (u, v), sums dys[s, i, j] (Op, NR) times
xh[s, i+u, j+v] (NR, Cp) over the positions: both read in place, the images the inner index.

Winograd F(2x2, 3x3) (3x3 filters): the algorithm of kernels/conv_winograd.py (its docstring
has the formulas) on these layouts. A tile's 4x4 input block is 16 whole vectors, so each
transform is a few additions of vectors of Cp*NR elements, and the 16 products per tile are
microkernel calls; a prange iteration takes one row of tiles of one sliver, TB tiles at a
time, so the transformed tiles stay in cache from their transform to their product. The
weight gradient sums dM[e] (the grad-output transform of dys) times Vh[e] (the input
transform of xh, channels innermost) over the tiles.

The layouts cost a pass over x (writing xs, and xh, which the forward keeps for the weight
gradient) and over out, dout and dx, each element moved in blocks of JB x NR (below).
Measured at 1 thread, float32, fwd+bwd against PyTorch 2.13 (benchmarks/kernels.py):
(64, 32, 14, 14) -> 64 0.84-0.95, (32, 64, 32, 32) -> 64 0.74-0.79, where im2col and BLAS
took 1.5 and 1.7. The direct products run at 105-115 GFLOP/s; Winograd does 2.25 times fewer
flops.

``applies`` says where this path is taken, with its measurements: mainly, a batch that fills
its slivers, since a batch of 1 would compute 16 images for one.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from kernels import tuned
from kernels._config import kernel
from kernels.conv_winograd import G
from kernels.microkernels import (
    sliver_tile,
    sliver_tile_of,
    sliver_tile_product,
    strided_tile_product,
)


def possible(kernel_hw, stride_hw, dilation_hw, groups, pads) -> bool:
    """What this path can compute: stride 1, dilation 1, no groups, and padding at most the
    kernel's size - 1 on each side (the input gradient's own padding is then not negative)."""
    kh, kw = kernel_hw
    top, bottom, left, right = pads
    return (
        tuple(stride_hw) == (1, 1)
        and tuple(dilation_hw) == (1, 1)
        and groups == 1
        and max(top, bottom) <= kh - 1
        and max(left, right) <= kw - 1
    )


def applies(kernel_hw, stride_hw, dilation_hw, groups, pads, batch, channels, out_channels, dtype):
    """Where this path is taken instead of im2col (or Winograd on (B, C, H, W)): where it is
    ``possible``, for a kernel of 9 taps or more, 8 input channels or more, 4 output channels or
    more, and a batch that fills 75 % of its slivers (``minigrad tune`` measures that
    fraction on the user's machine: kernels/tuned.py, conv_sliver_fill).

    Measured fwd+bwd, float32, 1 and 2 threads (``python -m benchmarks.kernels --only
    conv_dispatch``; the README has the table): this path's time over the other's is
    0.27-0.87 for 3x3 and 5x5 layers of 8-64 channels at batches of 12 to 32 at 1 thread
    (up to 0.99 at 2); 0.52-1.26 at a batch of 8 (half a sliver); 1.24-2.2 on 1x1 layers, a
    plain product that im2col hands to BLAS without a copy; 1.56-6.3 with 1 or 3 input
    channels, which the tiles pad to 16; 0.57-0.98 with 4 output channels."""
    _, nr = sliver_tile(dtype)
    slivers = -(-batch // nr)
    return (
        possible(kernel_hw, stride_hw, dilation_hw, groups, pads)
        and kernel_hw[0] * kernel_hw[1] >= 9
        and channels >= 8
        and out_channels >= 4
        and batch >= tuned.value("conv_sliver_fill") * slivers * nr
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
def _to_slivers(x, top, left, xs, xh):
    # x (B, C, H, W) -> xs (S, Hp, Wp, Cp, NR), the images innermost, and xh (S, Hp, Wp, NR,
    # Cp), the channels innermost (either may be empty: not wanted), zero where padded
    # (rows, columns, channels from C on, images from B on). One prange iteration per
    # (sliver, padded row).
    MR, NR = sliver_tile_of(x)
    B, C, H, W = x.shape
    S, Hp = (xs.shape[0], xs.shape[1]) if xs.size else (xh.shape[0], xh.shape[1])
    for job in prange(S * Hp):
        s, hp = job // Hp, job % Hp
        h = hp - top
        lanes = min(NR, B - s * NR)
        if xs.size:
            _row_images_inner(x, s, h, left, lanes, xs[s, hp])
        if xh.size:
            _row_channels_inner(x, s, h, left, lanes, xh[s, hp])


@kernel
def _zero_padding(row, h, H, left, W):
    """Zero the padding of one padded row of a sliver layout (Wp, ...): all of it when h is
    outside the input's H rows (then False: nothing to copy), else its columns before left
    and from left + W on."""
    if h < 0 or h >= H:
        row[:] = 0.0
        return False
    for wp in range(left):
        row[wp] = 0.0
    for wp in range(left + W, row.shape[0]):
        row[wp] = 0.0
    return True


@kernel
def _row_images_inner(x, s, h, left, lanes, row):
    # row (Wp, Cp, NR) = padded row h of the images of sliver s, images innermost
    MR, NR = sliver_tile_of(x)
    B, C, H, W = x.shape
    Cp = row.shape[1]
    if not _zero_padding(row, h, H, left, W):
        return
    for wp in range(left, left + W):
        for c in range(C, Cp):
            row[wp, c] = 0.0
    if lanes < NR:  # a sliver with missing images
        for wp in range(left, left + W):
            for c in range(C):
                for lane in range(NR):
                    row[wp, c, lane] = x[s * NR + lane, c, h, wp - left] if lane < lanes else 0.0
        return
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


@kernel
def _row_channels_inner(x, s, h, left, lanes, row):
    # row (Wp, NR, Cp) = padded row h of the images of sliver s, channels innermost: for each
    # image, blocks of JB channels x JB columns pass through a buffer
    MR, NR = sliver_tile_of(x)
    B, C, H, W = x.shape
    Cp = row.shape[2]
    if not _zero_padding(row, h, H, left, W):
        return
    buf = np.empty((JB, JB), x.dtype)  # (channel, column)
    for lane in range(NR):
        if lane >= lanes:
            for wp in range(left, left + W):
                row[wp, lane] = 0.0
            continue
        image = x[s * NR + lane]
        for wp in range(left, left + W):
            for c in range(C, Cp):
                row[wp, lane, c] = 0.0
        for c0 in range(0, C, JB):
            nc = min(JB, C - c0)
            for w0 in range(0, W, JB):
                n = min(JB, W - w0)
                for kc in range(nc):
                    src = image[c0 + kc, h]
                    for k in range(n):
                        buf[kc, k] = src[np.uint64(w0 + k)]
                for k in range(n):
                    dst = row[left + w0 + k, lane]
                    for kc in range(nc):
                        dst[np.uint64(c0 + kc)] = buf[kc, k]


@kernel
def _row_out(rows, s, i, bias, out):
    # out[s*NR + l, o, i, j] = rows[j, o*NR + l] + bias[o], for one output row i of sliver s:
    # rows (>= OW, >= O*NR), a row of the sliver layout.
    MR, NR = sliver_tile_of(out)
    B, O, OH, OW = out.shape
    lanes = min(NR, B - s * NR)
    buf = np.empty((JB, NR), out.dtype)
    for o in range(O):
        add = bias[o]
        if lanes < NR:  # a sliver with missing images
            for lane in range(lanes):
                for j in range(OW):
                    out[s * NR + lane, o, i, j] = rows[j, o * NR + lane] + add
            continue
        j0 = 0
        while j0 + JB <= OW:
            for k in range(JB):
                src = rows[j0 + k]
                for lane in range(NR):
                    buf[k, lane] = src[o * NR + lane]
            for lane in range(NR):
                dst = out[s * NR + lane, o, i]
                for k in range(JB):
                    dst[np.uint64(j0 + k)] = buf[k, lane] + add
            j0 += JB
        for j in range(j0, OW):
            for lane in range(NR):
                out[s * NR + lane, o, i, j] = rows[j, o * NR + lane] + add


@kernel(parallel=True)
def _from_slivers(xs, top, left, bias, out):
    # xs (S, Hp, Wp, Cp, NR) -> out (B, C, H, W) + bias, cropped at (top, left): the inverse
    # of _to_slivers. One prange iteration per (sliver, row).
    S, _, Wp, Cp, NR = xs.shape
    H = out.shape[2]
    for job in prange(S * H):
        s, i = job // H, job % H
        _row_out(xs[s, top + i].reshape(Wp, Cp * NR)[left:], s, i, bias, out)


@kernel(parallel=True)
def _convolve(xs, wt, KH, KW, bias, out):
    # out[b, :, i, j] = wt (Op, KH*KW*Cin) @ the KH*KW*Cin rows of xs around (i, j), + bias,
    # for the NR images b of sliver s; see the module docstring. One prange iteration per
    # (sliver, output row). The tiles of MR channels of a row go to a buffer (OW, MR, NR),
    # from which each (image, channel) row of out is written as one run of OW.
    MR, NR = sliver_tile_of(out)
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
                strided_tile_product(
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
def _grad_to_slivers(dout, top, left, dys, partial_bias):
    # dout (B, O, OH, OW) -> dys (S, Hq, Wq, Op, NR) at offset (top, left), channels from O
    # on zero (the border: _zero_border); partial_bias[job, o]: dout summed over the row of
    # this iteration, one per (sliver, output row). Each run of JB columns of dout is read once
    # into a buffer of NR images x JB columns, summed, and written from there.
    MR, NR = sliver_tile_of(dout)
    B, O, OH, OW = dout.shape
    S, _, _, Op, _ = dys.shape
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
                for k in range(n):
                    dst = dys[s, top + i, left + j0 + k, o]
                    for lane in range(NR):
                        dst[lane] = buf[lane, k]
            total = 0.0
            for k in range(JB):
                total += sums[k]
            partial_bias[job, o] = total
        for j in range(OW):
            for o in range(O, Op):
                dys[s, top + i, left + j, o] = 0.0


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
def _weight_grad(dys, xh, top, left, KH, KW, OH, OW, groups, part):
    # part[g, u*KW + v, ob, cb] (MR, NR) = the (o, c) tile of the sum over the positions
    # (s, i, j) of group g and images l of dys[s, top+i, left+j, o, l] * xh[s, i+u, j+v, l, c].
    # One prange iteration per group of (sliver, output row) jobs, each with its own partial.
    MR, NR = sliver_tile_of(dys)
    S, Hq, Wq, Op, _ = dys.shape
    _, Hp, Wp, _, Cp = xh.shape
    ap = dys.reshape(dys.size)
    bp = xh.reshape(xh.size)
    jobs = S * OH
    for g in prange(groups):
        out = part[g]
        out[:] = 0.0
        flat = out.reshape(out.size)
        for job in range((g * jobs) // groups, ((g + 1) * jobs) // groups):
            s, i = job // OH, job % OH
            pa0 = (((s * Hq + top + i) * Wq + left) * Op) * NR
            for u in range(KH):
                for v in range(KW):
                    pb0 = (((s * Hp + i + u) * Wp + v) * NR) * Cp
                    for ob in range(Op // MR):
                        for cb in range(Cp // NR):
                            o = ((((u * KW + v) * (Op // MR) + ob) * (Cp // NR)) + cb) * MR * NR
                            strided_tile_product(
                                ap, np.uint64(pa0 + ob * MR * NR), np.uint64(NR), NR,
                                np.uint64((Op - 1) * NR),
                                bp, np.uint64(pb0 + cb * NR), np.uint64(Cp), np.uint64(0), OW,
                                flat[o : o + MR * NR],
                            )  # fmt: skip


# -- Winograd F(2x2, 3x3) on batch slivers ---------------------------------------------------
#
# The algorithm of kernels/conv_winograd.py (its docstring has the formulas), on this layout:
# every input position of a tile is a contiguous vector of Cp*NR elements (all channels of
# all NR images), so each transform is a few additions of whole vectors, and each of the 16
# products per tile is one microkernel call per MR channels on operands read in place. A
# prange iteration takes one row of tiles of one sliver, TB tiles at a time: the transformed
# tiles (16 x TB x Cp*NR) stay in L2 from their transform to their product, and only the
# sliver layouts of x and out go through memory.
TB = 4
_G_KRON = np.kron(G, G)  # (16, 9)


@kernel
def _input_tiles(xs, s, ty, tx0, nt, E, V):
    # V[e, t] (L = Cp*NR) = (B^T d B)[e] for the tiles tx0 .. tx0 + nt of row ty, d the 4x4
    # block of vectors xs[s, 2ty + i, 2tx + j]. Each loop has one output stream (vectorized).
    L = xs.shape[3] * xs.shape[4]
    for t in range(nt):
        tx = tx0 + t
        for i in range(4):
            src = xs[s, 2 * ty + i]  # views of whole vectors: plain loops over q vectorize,
            d0 = src[2 * tx].reshape(L)  # where an index p + q (signed) kept Numba's
            d1 = src[2 * tx + 1].reshape(L)  # wraparound check: 1.4x slower, measured
            d2 = src[2 * tx + 2].reshape(L)
            d3 = src[2 * tx + 3].reshape(L)
            e0, e1, e2, e3 = E[i, 0], E[i, 1], E[i, 2], E[i, 3]
            for q in range(L):
                e0[q] = d0[q] - d2[q]
            for q in range(L):
                e1[q] = d1[q] + d2[q]
            for q in range(L):
                e2[q] = d2[q] - d1[q]
            for q in range(L):
                e3[q] = d1[q] - d3[q]
        for j in range(4):
            a, b, c, d = E[0, j], E[1, j], E[2, j], E[3, j]
            v0, v1, v2, v3 = V[j, t], V[4 + j, t], V[8 + j, t], V[12 + j, t]
            for q in range(L):
                v0[q] = a[q] - c[q]
            for q in range(L):
                v1[q] = b[q] + c[q]
            for q in range(L):
                v2[q] = c[q] - b[q]
            for q in range(L):
                v3[q] = b[q] - d[q]


@kernel
def _grad_output_tiles(g, s, ty, tx0, nt, P, D):
    # D[e, t] = (A dY A^T)[e] for the tiles tx0 .. tx0 + nt of row ty, dY the 2x2 block of
    # vectors g[s, 2ty + r, 2tx + k] (dys, dout in the sliver layout). Each row [g0, g1]
    # becomes p = [g0, g0 + g1, g0 - g1, -g1]; the rows of D are [p0, p0 + p1, p0 - p1, -p1].
    L = g.shape[3] * g.shape[4]
    for t in range(nt):
        tx = tx0 + t
        for r in range(2):
            g0 = g[s, 2 * ty + r, 2 * tx].reshape(L)  # views: see _input_tiles
            g1 = g[s, 2 * ty + r, 2 * tx + 1].reshape(L)
            p0, p1, p2, p3 = P[r, 0], P[r, 1], P[r, 2], P[r, 3]
            for q in range(L):
                p0[q] = g0[q]
            for q in range(L):
                p1[q] = g0[q] + g1[q]
            for q in range(L):
                p2[q] = g0[q] - g1[q]
            for q in range(L):
                p3[q] = -g1[q]
        for k in range(4):
            top, bottom = P[0, k], P[1, k]
            m0, m1, m2, m3 = D[k, t], D[4 + k, t], D[8 + k, t], D[12 + k, t]
            for q in range(L):
                m0[q] = top[q]
            for q in range(L):
                m1[q] = top[q] + bottom[q]
            for q in range(L):
                m2[q] = top[q] - bottom[q]
            for q in range(L):
                m3[q] = -bottom[q]


@kernel
def _tile_products(u, src, K, nt, dst):
    # dst[e, t] (R, NR) = U[e] (R x K, packed: u[e] (R/MR, K, MR)) @ src[e, t] (K, NR)
    MR, NR = sliver_tile_of(dst)
    n_rb = u.shape[1]
    up = u.reshape(u.size)
    sp = src.reshape(src.size)
    dp = dst.reshape(dst.size)
    tb, ls, ld = src.shape[1], src.shape[2], dst.shape[2]
    zero = np.zeros(1, dst.dtype)[0]
    for e in range(16):
        for t in range(nt):
            pb = np.uint64((e * tb + t) * ls)
            for rb in range(n_rb):
                o = (e * tb + t) * ld + rb * MR * NR
                sliver_tile_product(
                    up, np.uint64((e * n_rb + rb) * K * MR), sp, pb, K, dp[o : o + MR * NR], zero
                )


@kernel(parallel=True)
def _winograd_forward(xs, u, TH, TW, bias, out):
    # out = the 3x3 convolution of xs (S, 2TH + 2, 2TW + 2, Cp, NR), u: the transformed
    # filters packed (16, Op/MR, Cp, MR). One prange iteration per (sliver, row of tiles).
    MR, NR = sliver_tile_of(out)
    S, _, _, Cp, _ = xs.shape
    OH = out.shape[2]
    Op = u.shape[1] * MR
    for job in prange(S * TH):
        s, ty = job // TH, job % TH
        E = np.empty((4, 4, Cp * NR), out.dtype)
        V = np.empty((16, TB, Cp * NR), out.dtype)
        M = np.empty((16, TB, Op * NR), out.dtype)
        rows = np.empty((2, 2 * TW, Op * NR), out.dtype)
        for tx0 in range(0, TW, TB):
            nt = min(TB, TW - tx0)
            _input_tiles(xs, s, ty, tx0, nt, E, V)
            _tile_products(u, V, Cp, nt, M)
            for t in range(nt):  # Y = A^T m A: 2x2 outputs per tile
                tx = tx0 + t
                y00, y01 = rows[0, 2 * tx], rows[0, 2 * tx + 1]
                y10, y11 = rows[1, 2 * tx], rows[1, 2 * tx + 1]
                for q in range(Op * NR):
                    s00 = M[0, t, q] + M[4, t, q] + M[8, t, q]
                    s01 = M[1, t, q] + M[5, t, q] + M[9, t, q]
                    s02 = M[2, t, q] + M[6, t, q] + M[10, t, q]
                    s03 = M[3, t, q] + M[7, t, q] + M[11, t, q]
                    s10 = M[4, t, q] - M[8, t, q] - M[12, t, q]
                    s11 = M[5, t, q] - M[9, t, q] - M[13, t, q]
                    s12 = M[6, t, q] - M[10, t, q] - M[14, t, q]
                    s13 = M[7, t, q] - M[11, t, q] - M[15, t, q]
                    y00[q] = s00 + s01 + s02
                    y01[q] = s01 - s02 - s03
                    y10[q] = s10 + s11 + s12
                    y11[q] = s11 - s12 - s13
        for a in range(min(2, OH - 2 * ty)):
            _row_out(rows[a], s, 2 * ty + a, bias, out)


@kernel(parallel=True)
def _winograd_grad_input(dys, ut, TH, TW, parity, dxs):
    # dxs (zeroed by the caller) += the input gradient of the tiles in rows ty = parity,
    # parity + 2, ...: rows 2ty .. 2ty + 3, which no other row of that parity touches, so the
    # two calls (parity 0, then 1) never write the same memory at once. dys: dout in the
    # sliver layout (S, 2TH, 2TW, O, NR), zero beyond the output; ut: the transformed filters
    # transposed and packed (16, Cp/MR, O, MR).
    MR, NR = sliver_tile_of(dxs)
    S, _, _, Cp, _ = dxs.shape
    O = dys.shape[3]
    L = Cp * NR
    count = (TH - parity + 1) // 2
    for job in prange(S * count):
        s, ty = job // count, parity + 2 * (job % count)
        P = np.empty((2, 4, O * NR), dxs.dtype)
        D = np.empty((16, TB, O * NR), dxs.dtype)
        dV = np.empty((16, TB, L), dxs.dtype)
        Wb = np.empty((4, 4, L), dxs.dtype)  # Wb[i, j] = (B v)[i, j]
        for tx0 in range(0, TW, TB):
            nt = min(TB, TW - tx0)
            _grad_output_tiles(dys, s, ty, tx0, nt, P, D)
            _tile_products(ut, D, O, nt, dV)
            for t in range(nt):  # dd = B dV B^T, added into the 4x4 block of the tile
                tx = tx0 + t
                for j in range(4):
                    v0, v1, v2, v3 = dV[j, t], dV[4 + j, t], dV[8 + j, t], dV[12 + j, t]
                    w0, w1, w2, w3 = Wb[0, j], Wb[1, j], Wb[2, j], Wb[3, j]
                    for q in range(L):
                        w0[q] = v0[q]
                    for q in range(L):
                        w1[q] = v1[q] - v2[q] + v3[q]
                    for q in range(L):
                        w2[q] = -v0[q] + v1[q] + v2[q]
                    for q in range(L):
                        w3[q] = -v3[q]
                for i in range(4):
                    row = dxs[s, 2 * ty + i]  # views: see _input_tiles
                    r0 = row[2 * tx].reshape(L)
                    r1 = row[2 * tx + 1].reshape(L)
                    r2 = row[2 * tx + 2].reshape(L)
                    r3 = row[2 * tx + 3].reshape(L)
                    a0, a1, a2, a3 = Wb[i, 0], Wb[i, 1], Wb[i, 2], Wb[i, 3]
                    for q in range(L):
                        r0[q] += a0[q]
                    for q in range(L):
                        r1[q] += a1[q] - a2[q] + a3[q]
                    for q in range(L):
                        r2[q] += -a0[q] + a1[q] + a2[q]
                    for q in range(L):
                        r3[q] -= a3[q]


@kernel(parallel=True)
def _winograd_grad_weight(dys, xh, TH, TW, groups, part):
    # part[g, e, ob, cb] (MR, NR) = the (o, c) tile of dU[e] summed over the tiles of group g:
    # dM[e, t] (Op, NR), the grad-output transform of dys (S, 2TH, 2TW, Op, NR), times
    # Vh[e, t] (NR, Cp), the input transform of xh, whose vectors keep the channels
    # innermost. The microkernel reads dM's rows o and Vh's rows (t, l) in place.
    MR, NR = sliver_tile_of(dys)
    Op = dys.shape[3]
    Cp = xh.shape[4]
    jobs = dys.shape[0] * TH
    for g in prange(groups):
        out = part[g]
        out[:] = 0.0
        flat = out.reshape(out.size)
        E = np.empty((4, 4, NR * Cp), dys.dtype)
        V = np.empty((16, TB, NR * Cp), dys.dtype)
        P = np.empty((2, 4, Op * NR), dys.dtype)
        D = np.empty((16, TB, Op * NR), dys.dtype)
        vp = V.reshape(V.size)
        dp = D.reshape(D.size)
        for job in range((g * jobs) // groups, ((g + 1) * jobs) // groups):
            s, ty = job // TH, job % TH
            for tx0 in range(0, TW, TB):
                nt = min(TB, TW - tx0)
                _input_tiles(xh, s, ty, tx0, nt, E, V)
                _grad_output_tiles(dys, s, ty, tx0, nt, P, D)
                for e in range(16):
                    for ob in range(Op // MR):
                        for cb in range(Cp // NR):
                            o = ((e * (Op // MR) + ob) * (Cp // NR) + cb) * MR * NR
                            strided_tile_product(
                                dp, np.uint64((e * TB * Op + ob * MR) * NR), np.uint64(NR), NR,
                                np.uint64((Op - 1) * NR),
                                vp, np.uint64(e * TB * NR * Cp + cb * NR), np.uint64(Cp),
                                np.uint64(0), nt, flat[o : o + MR * NR],
                            )  # fmt: skip


def _filters(w, rows, channels):
    """wt (rows, KH*KW*channels): wt[o, (u*KW + v)*channels + c] = w[o, c, u, v], zero padded."""
    o, c, kh, kw = w.shape
    wt = np.zeros((rows, kh, kw, channels), w.dtype)
    wt[:o, :, :, :c] = w.transpose(0, 2, 3, 1)
    return wt.reshape(rows, -1)


def _winograd_filters(w, rows, depth):
    """The 16 transformed filters U[e] = (G w G^T)[e], each (O, C) zero padded to
    (rows, depth) and packed as the microkernel reads them: (16, rows/MR, depth, MR). One
    product: U[(i, j)] = the sum over (k, l) of (G kron G)[(i, j), (k, l)] w[k, l] (measured
    5x faster than G @ w @ G^T on NumPy's batched matmul). For the input gradient pass the
    filters transposed (C, O, 3, 3)."""
    o, c = w.shape[:2]
    mr, _ = sliver_tile(w.dtype)
    u = (w.reshape(o * c, 9) @ _G_KRON.T.astype(w.dtype)).T.reshape(16, o, c)
    full = np.zeros((16, rows, depth), w.dtype)
    full[:, :o, :c] = u
    return np.ascontiguousarray(full.reshape(16, rows // mr, mr, depth).transpose(0, 1, 3, 2))


def winograd(kernel_hw) -> bool:
    """3x3 filters go through Winograd F(2x2, 3x3); the others are computed directly."""
    return tuple(kernel_hw) == (3, 3)


def sliver_shape(x, pads, kernel_hw, channels_inner=False):
    """The shape of x in the sliver layout (xs, or xh with channels_inner), padded by pads
    (top, bottom, left, right); for Winograd, to whole tiles (2TH + 2 rows, 2TW + 2)."""
    b, c, h, w = x.shape
    mr, nr = sliver_tile(x.dtype)
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    if winograd(kernel_hw):
        hp, wp = 2 * ((hp - 1) // 2) + 2, 2 * ((wp - 1) // 2) + 2
    s, cp = -(-b // nr), _round_up(c, mr)
    return (s, hp, wp, nr, cp) if channels_inner else (s, hp, wp, cp, nr)


def _slivers(x, pads, kernel_hw, images_inner, channels_inner):
    """(xs, xh): x in either sliver layout, or None where not wanted, in one pass over x."""
    shapes = [
        sliver_shape(x, pads, kernel_hw, inner) if wanted else (0,) * 5
        for inner, wanted in ((False, images_inner), (True, channels_inner))
    ]
    xs, xh = (np.empty(shape, x.dtype) for shape in shapes)
    _to_slivers(x, pads[0], pads[2], xs, xh)
    return (xs if images_inner else None), (xh if channels_inner else None)


def forward(x, w, bias, pads, keep=False):
    """(out, xh): conv2d's output, and, with ``keep``, x in the channels-inner sliver layout
    (xh), which the weight gradient reads; else None."""
    b, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    mr, _ = sliver_tile(x.dtype)
    top, bottom, left, right = pads
    oh, ow = h + top + bottom - kh + 1, wd + left + right - kw + 1
    xs, xh = _slivers(x, pads, (kh, kw), True, keep)
    out = np.empty((b, o, oh, ow), x.dtype)
    bias = np.zeros(o, x.dtype) if bias is None else bias
    if winograd((kh, kw)):
        u = _winograd_filters(w, _round_up(o, mr), xs.shape[3])
        _winograd_forward(xs, u, (oh + 1) // 2, (ow + 1) // 2, bias, out)
    else:
        _convolve(xs, _filters(w, _round_up(o, mr), xs.shape[3]), kh, kw, bias, out)
    return out, xh


def backward(x, w, dout, pads, need, xh=None):
    """(dx, dw, dbias), None where ``need`` says not wanted; xh: the forward's, if kept."""
    b, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    mr, nr = sliver_tile(x.dtype)
    top, bottom, left, right = pads
    oh, ow = dout.shape[2:]
    s = -(-b // nr)
    cp, op = _round_up(c, mr), _round_up(o, mr)
    tiles = winograd((kh, kw))
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    if tiles:  # dout at offset 0, zero to whole tiles
        qt = ql = 0
        dys = np.empty((s, 2 * th, 2 * tw, op, nr), x.dtype)
    else:  # padded by KH - 1 - top (etc.): the input of the input gradient's convolution
        qt, ql = kh - 1 - top, kw - 1 - left
        dys = np.empty((s, h + kh - 1, wd + kw - 1, op, nr), x.dtype)
    partial_bias = np.empty((s * oh, o), np.float64)
    _grad_to_slivers(dout, qt, ql, dys, partial_bias)
    _zero_border(dys, qt, ql, oh, ow)
    dx = dw = None
    if need[0]:
        dx = np.empty_like(x)
        if tiles:
            dxs = np.zeros(sliver_shape(x, pads, (kh, kw)), x.dtype)
            ut = _winograd_filters(w.transpose(1, 0, 2, 3), cp, op)
            _winograd_grad_input(dys, ut, th, tw, 0, dxs)
            _winograd_grad_input(dys, ut, th, tw, 1, dxs)
            _from_slivers(dxs, top, left, np.zeros(c, x.dtype), dx)
        else:
            w2 = np.zeros((cp, kh, kw, op), w.dtype)
            w2[:c, :, :, :o] = w[:, :, ::-1, ::-1].transpose(1, 2, 3, 0)
            _convolve(dys, w2.reshape(cp, -1), kh, kw, np.zeros(c, x.dtype), dx)
    if need[1]:
        if xh is None:
            xh = _slivers(x, pads, (kh, kw), False, True)[1]
        jobs = s * (th if tiles else oh)
        groups = min(numba.get_num_threads(), jobs)
        taps = 16 if tiles else kh * kw
        part = np.empty((groups, taps, op // mr, cp // nr, mr, nr), x.dtype)
        if tiles:
            _winograd_grad_weight(dys, xh, th, tw, groups, part)
        else:
            _weight_grad(dys, xh, qt, ql, kh, kw, oh, ow, groups, part)
        total = part.sum(axis=0) if groups > 1 else part[0]
        # (tap, o // MR, c // NR, o % MR, c % NR) -> (tap, O, C)
        full = total.transpose(0, 1, 3, 2, 4).reshape(taps, op, cp)[:, :o, :c]
        if tiles:  # dw = G^T dU G, as one product with G kron G (see _winograd_filters)
            dw = (full.reshape(16, o * c).T @ _G_KRON.astype(x.dtype)).reshape(o, c, 3, 3)
        else:
            dw = np.ascontiguousarray(full.transpose(1, 2, 0).reshape(o, c, kh, kw))
    dbias = partial_bias.sum(axis=0).astype(x.dtype) if need[2] else None
    return dx, dw, dbias
