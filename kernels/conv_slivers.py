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
from kernels.conv_winograd import G
from kernels.matmul import (
    _micro_sliver,
    _micro_strided,
    _sliver_tile,
    _sliver_tile_of,
)

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


@kernel
def _row_out(rows, s, i, bias, out):
    # out[s*NR + l, o, i, j] = rows[j, o*NR + l] + bias[o], for one output row i of sliver s:
    # rows (>= OW, >= O*NR), a row of the sliver layout.
    MR, NR = _sliver_tile_of(out)
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
    # vectors g[s, 2ty + r, 2tx + k] (either gradient layout: dys or dyh). Each row [g0, g1]
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
    MR, NR = _sliver_tile_of(dst)
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
                _micro_sliver(
                    up, np.uint64((e * n_rb + rb) * K * MR), sp, pb, K, dp[o : o + MR * NR], zero
                )


@kernel(parallel=True)
def _winograd_forward(xs, u, TH, TW, bias, out):
    # out = the 3x3 convolution of xs (S, 2TH + 2, 2TW + 2, Cp, NR), u: the transformed
    # filters packed (16, Op/MR, Cp, MR). One prange iteration per (sliver, row of tiles).
    MR, NR = _sliver_tile_of(out)
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
    MR, NR = _sliver_tile_of(dxs)
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
def _winograd_grad_weight(xs, dyh, TH, TW, groups, part):
    # part[g, e, cb, ob] (MR, NR) = the (c, o) tile of dU[e]^T summed over the tiles of
    # group g: V[e, t] (Cp, NR) times dMh[e, t] (NR, Op), dMh the grad-output transform of
    # dyh (S, 2TH, 2TW, NR, Op), whose vectors keep the channels innermost. The microkernel
    # reads V's rows c and dMh's rows (t, l) in place.
    MR, NR = _sliver_tile_of(dyh)
    S, _, _, Cp, _ = xs.shape
    Op = dyh.shape[4]
    jobs = S * TH
    for g in prange(groups):
        out = part[g]
        out[:] = 0.0
        flat = out.reshape(out.size)
        E = np.empty((4, 4, Cp * NR), dyh.dtype)
        V = np.empty((16, TB, Cp * NR), dyh.dtype)
        P = np.empty((2, 4, NR * Op), dyh.dtype)
        D = np.empty((16, TB, NR * Op), dyh.dtype)
        vp = V.reshape(V.size)
        dp = D.reshape(D.size)
        for job in range((g * jobs) // groups, ((g + 1) * jobs) // groups):
            s, ty = job // TH, job % TH
            for tx0 in range(0, TW, TB):
                nt = min(TB, TW - tx0)
                _input_tiles(xs, s, ty, tx0, nt, E, V)
                _grad_output_tiles(dyh, s, ty, tx0, nt, P, D)
                for e in range(16):
                    for cb in range(Cp // MR):
                        for ob in range(Op // NR):
                            o = ((e * (Cp // MR) + cb) * (Op // NR) + ob) * MR * NR
                            _micro_strided(
                                vp, np.uint64((e * TB * Cp + cb * MR) * NR), np.uint64(NR), NR,
                                np.uint64((Cp - 1) * NR),
                                dp, np.uint64(e * TB * NR * Op + ob * NR), np.uint64(Op),
                                np.uint64(0), nt, flat[o : o + MR * NR],
                            )  # fmt: skip


def _filters(w, rows, channels):
    """wt (rows, KH*KW*channels): wt[o, (u*KW + v)*channels + c] = w[o, c, u, v], zero padded."""
    o, c, kh, kw = w.shape
    wt = np.zeros((rows, kh, kw, channels), w.dtype)
    wt[:o, :, :, :c] = w.transpose(0, 2, 3, 1)
    return wt.reshape(rows, -1)


def _winograd_filters(w, rows, transposed=False):
    """The 16 transformed filters U[e] = (G g G^T)[e] (O, C), packed as the microkernel reads
    them: (16, rows/MR, C, MR), rows >= O zero; transposed: U[e]^T, (16, rows/MR, O, MR) with
    rows >= C zero. One product: U[(i, j)] = sum over (k, l) of (G kron G)[(i, j), (k, l)]
    g[k, l] (measured 5x faster than G @ w @ G^T on NumPy's batched matmul)."""
    o, c = w.shape[:2]
    mr, _ = _sliver_tile(w.dtype)
    u = (w.reshape(o * c, 9) @ _G_KRON.T.astype(w.dtype)).T.reshape(16, o, c)
    if transposed:
        u = u.transpose(0, 2, 1)
    full = np.zeros((16, rows, u.shape[2]), w.dtype)
    full[:, : u.shape[1]] = u
    return np.ascontiguousarray(full.reshape(16, rows // mr, mr, -1).transpose(0, 1, 3, 2))


def sliver_shape(x, pads, kernel_hw):
    """The shape of x in the sliver layout, padded by pads (top, bottom, left, right); for
    Winograd, to whole tiles (2TH + 2 rows, 2TW + 2 columns)."""
    b, c, h, w = x.shape
    mr, nr = _sliver_tile(x.dtype)
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    if winograd(kernel_hw):
        hp, wp = 2 * ((hp - 1) // 2) + 2, 2 * ((wp - 1) // 2) + 2
    return (-(-b // nr), hp, wp, _round_up(c, mr), nr)


def winograd(kernel_hw) -> bool:
    """3x3 filters go through Winograd F(2x2, 3x3); the others are computed directly."""
    return tuple(kernel_hw) == (3, 3)


def _input_slivers(x, pads, kernel_hw):
    """x in the sliver layout, padded on every side as the convolution needs."""
    xs = np.empty(sliver_shape(x, pads, kernel_hw), x.dtype)
    _to_slivers(x, pads[0], pads[2], xs)
    return xs


def forward(x, w, bias, pads):
    """(out, xs): conv2d's output, and x in the sliver layout, which the backward reuses."""
    b, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    mr, _ = _sliver_tile(x.dtype)
    top, bottom, left, right = pads
    oh, ow = h + top + bottom - kh + 1, wd + left + right - kw + 1
    xs = _input_slivers(x, pads, (kh, kw))
    out = np.empty((b, o, oh, ow), x.dtype)
    bias = np.zeros(o, x.dtype) if bias is None else bias
    if winograd((kh, kw)):
        u = _winograd_filters(w, _round_up(o, mr))
        _winograd_forward(xs, u, (oh + 1) // 2, (ow + 1) // 2, bias, out)
    else:
        _convolve(xs, _filters(w, _round_up(o, mr), xs.shape[3]), kh, kw, bias, out)
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
    tiles = winograd((kh, kw))
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    if tiles:  # dout at offset 0, zero to whole tiles
        qt = ql = 0
        grad_hw = (2 * th, 2 * tw)
    else:  # the input gradient's padding of dout, for the direct convolution
        qt, ql = kh - 1 - top, kw - 1 - left
        grad_hw = (h + kh - 1, wd + kw - 1)
    dys = np.empty((s, *grad_hw, o, nr) if need[0] else (0,) * 5, x.dtype)
    dyh = np.empty((s, *(grad_hw if tiles else (oh, ow)), nr, op) if need[1] else (0,) * 5, x.dtype)
    partial_bias = np.empty((s * oh, o), np.float64)
    _grad_to_slivers(dout, qt, ql, dys, dyh, partial_bias)
    if tiles and need[1]:
        dyh[:, oh:] = 0.0
        dyh[:, :, ow:] = 0.0
    dx = dw = None
    if need[0]:
        _zero_border(dys, qt, ql, oh, ow)
        dx = np.empty_like(x)
        if tiles:
            dxs = np.zeros(sliver_shape(x, pads, (kh, kw)), x.dtype)
            ut = _winograd_filters(w, cp, transposed=True)
            _winograd_grad_input(dys, ut, th, tw, 0, dxs)
            _winograd_grad_input(dys, ut, th, tw, 1, dxs)
            _from_slivers(dxs, top, left, np.zeros(c, x.dtype), dx)
        else:
            w2 = np.zeros((cp, kh, kw, o), w.dtype)
            w2[:c] = w[:, :, ::-1, ::-1].transpose(1, 2, 3, 0)
            _convolve(dys, w2.reshape(cp, -1), kh, kw, np.zeros(c, x.dtype), dx)
    if need[1]:
        if xs is None:
            xs = _input_slivers(x, pads, (kh, kw))
        jobs = s * (th if tiles else oh)
        groups = min(numba.get_num_threads(), jobs)
        taps = 16 if tiles else kh * kw
        part = np.empty((groups, taps, cp // mr, op // nr, mr, nr), x.dtype)
        if tiles:
            _winograd_grad_weight(xs, dyh, th, tw, groups, part)
        else:
            _weight_grad(xs, dyh, kh, kw, groups, part)
        total = part.sum(axis=0) if groups > 1 else part[0]
        # (tap, c // MR, o // NR, c % MR, o % NR) -> (tap, O, C)
        full = total.transpose(0, 1, 3, 2, 4).reshape(taps, cp, op)[:, :c, :o].transpose(0, 2, 1)
        if tiles:  # dw = G^T dU G, as one product with G kron G (see _winograd_filters)
            du = full.reshape(16, o * c).T
            dw = (du @ _G_KRON.astype(x.dtype)).reshape(o, c, 3, 3)
        else:
            dw = np.ascontiguousarray(full.reshape(kh, kw, o, c).transpose(2, 3, 0, 1))
    dbias = partial_bias.sum(axis=0).astype(x.dtype) if need[2] else None
    return dx, dw, dbias
