"""LSTM and GRU over a whole sequence: the recurrence and its gates fused, forward and backward.

T time, B batch, H hidden size, G = 4H (LSTM) or 3H (GRU) gate rows, in PyTorch's order.

x (T, B, I) input, w_ih (G, I), w_hh (G, H), biases (G,).

LSTM (gates i, f, g, o; b = b_ih + b_hh, since both are added at every step):
    i, f, o = sigmoid(x_t @ w_ih.T + h @ w_hh.T + b)[i, f, o rows];  g = tanh(...)[g rows]
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
GRU (gates r, z, n; b_hh stays separate because r multiplies its n part):
    gi = x_t @ w_ih.T + b_ih;  gh = h @ w_hh.T + b_hh
    r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z);  n = tanh(gi_n + r * gh_n)
    h_t = (1 - z) * n + z * h_{t-1}

The GRU takes the input projection of every step, ``xw = x @ w_ih.T`` (T, B, G), as one large
matmul (BLAS), since it does not depend on the recurrence. What is left is sequential: one
small matmul with ``w_hh`` per step (BLAS), and the gate arithmetic, fused into one pass over
each step's (B, G) block instead of NumPy's dozen temporaries. Backward walks the steps in
reverse; each step's gate gradient is also the gradient of its pre-activation, so the weight
gradients are large matmuls at the end, over all steps at once (dW_ih = dgates.T @ x,
dW_hh = dgates.T @ h_{t-1}).

The LSTM does all of its products itself, with the GEMM's microkernels on weights packed once
per call; see the comment above _lstm_forward for how, and why. Where the batch would leave
much of the slivers' padding or a thread idle, it runs by steps on BLAS instead, as the GRU
(by_slivers).

sigmoid and tanh are ``sigmoid_fast`` and ``tanh_fast`` (kernels/_math.py): in float32 a
rational approximation of tanh, straight-line arithmetic that vectorizes inside each gate's loop
(they went through exp on a buffer before: the LSTM forward's gate arithmetic took 2.2 ms at
T=64, B=32, H=128, and 0.9 ms after); in float64 NumPy's exact tanh.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from kernels import checks, tuned
from kernels._config import kernel
from kernels._math import cast_like, sigmoid_fast, tanh_fast
from kernels.matmul import blocked_product, pack_slivers, packed_shape, sliver_product
from kernels.microkernels import sliver_tile, sliver_tile_of
from kernels.twins.rnn import (
    gru_param_grads,
    input_projection,
    lstm_param_grads,
    or_zeros,
)

# Kernels that need 1 take it as ``one``, in the arrays' dtype: a Python float literal would
# make every float32 expression float64 (NumPy's promotion), which measured 2.8 ms against
# 2.1 ms for the LSTM forward's gate arithmetic at T=64, B=32, H=128. Loops run over 1-D row
# views, one simple operation per loop, which LLVM vectorizes (2.1 ms -> 1.0 ms). Each loop
# indexes its views from 0 (the gates as slices i, f, g, o rather than gr[H + j]): LLVM cannot
# tell that H + j is not negative, and Numba's wraparound branch for negative indices keeps
# such a loop scalar.
#
# The LSTM lays everything out "by batch sliver". The batch is cut into S = ceil(B / NR)
# slivers of NR columns (the microkernel's tile width, 16 in float32; the last one padded with
# zeros), and an array (rows, B) of one step is stored as (S, rows, NR). Each step is then
# one product, with the weights packed once per call (BLAS would pack them again at every
# step) and the step's operand and result already in the layout the microkernel reads and
# writes (kernels/matmul.py, sliver_product):
#
#   forward:  gates (S, 4H, NR) = [W_ih | W_hh | bias] @ [x_t; h_{t-1}; 1], then activated
#   backward: [dh_{t-1}; dx_t] (S, H + I, NR) = [W_hh | W_ih].T @ dgates_t (S, 4H, NR)
#
# so the input projection and the bias ride in the step's product (no (T, B, 4H) array of
# them to write and read back), and each gate of a sliver is one contiguous run of H * NR
# elements: the gate loops run over 2048 elements instead of 128 (loop set-up and alias
# checks weighed as much as the arithmetic). The weight gradients, dW = dgates @ [x | h_{t-1}]
# over all steps, are taken every few steps inside the backward (blocked_product), reading
# the gate gradients where they are and x, h as the layer has them. Only h, c, dh, dc and dx
# cross between this layout and PyTorch's (T, B, H), transposed as they are read or written.
# The products' tiles are 16 rows high (kernels/gen_microkernels.py, SLIVER_TILES), which 4H
# and H + I divide into at the usual sizes.
#
# The slivers never meet (the batch elements of a recurrence are independent), so they are
# shared out in groups, one per thread, each running the whole sequence on its own: one fork
# and join per call, where a parallel product per step would wake the threads 64 times. Each
# group adds its own share of the weight gradients, and the shares are summed at the end. At
# one thread the single group steps all slivers together, one product per step.
#
# Measured at T=64, B=32, H=128, I=128, float32, one thread: forward 7.6 -> 5.9 ms (BLAS took
# 6.3 ms of it for the products, the sliver products take 5.1), backward 14.0 -> 11.2 ms (the
# weight gradients: BLAS 5.6 ms plus 0.8 ms to lay out, concatenate and sum their operands,
# against about 5 ms in blocked_product). At two threads the layer's forward and backward
# take 9-10.5 ms, against 13 ms with BLAS's own threads. What is left beyond the products:
# the transposes (1 ms in all) and the gate loops (0.8 ms). python -m benchmarks.layers has
# the layer figures; by_slivers says when the LSTM runs by steps instead.


@kernel
def _activate(i, f, g, o):
    """The LSTM's gates activated in place (1-D views of their pre-activations): sigmoid for
    i, f and o, tanh for g. Called by both forward kernels (see _cell_backward on calls)."""
    for q in range(i.size):
        i[q] = sigmoid_fast(i[q])
    for q in range(f.size):
        f[q] = sigmoid_fast(f[q])
    for q in range(g.size):
        g[q] = tanh_fast(g[q])
    for q in range(o.size):
        o[q] = sigmoid_fast(o[q])


@kernel
def _cell_backward(i, f, g, o, tc, c_prev, dht, dct, di, df, dg, do, dc_prev):
    """One LSTM cell's backward over n units (1-D views: a batch row by steps, or a whole
    sliver by slivers). dht and dct hold the gradients reaching h_t and c_t from outside the
    cell and from the step after; out: the gates' gradients di, df, dg, do (of their
    pre-activations) and dc_prev, the gradient of c_{t-1}. tc is tanh(c_t). Called by both
    backward kernels: inlined into them instead, it ran no faster (the by-steps kernel calls
    it per batch row and step) and added about 20 s to a cold precompile."""
    one = cast_like(1.0, dct)
    for q in range(dct.size):
        dct[q] += dht[q] * o[q] * (one - tc[q] * tc[q])
    for q in range(dct.size):
        di[q] = dct[q] * g[q] * i[q] * (one - i[q])
    for q in range(dct.size):
        df[q] = dct[q] * c_prev[q] * f[q] * (one - f[q])
    for q in range(dct.size):
        dg[q] = dct[q] * i[q] * (one - g[q] * g[q])
    for q in range(dct.size):
        do[q] = dht[q] * tc[q] * o[q] * (one - o[q])
    for q in range(dct.size):
        dc_prev[q] = dct[q] * f[q]


# The backward takes the weight gradients every few steps, as many as make CHUNK batch rows
# (8 steps of two slivers of 16): their gate gradients, 512 x 256 float32 at H = 128, stay in
# L2 until then.
CHUNK = 256


@kernel(parallel=True)
def _lstm_forward(x, h0, c0, wpack, hc, gates, cells, groups):
    # x (T, B, I), h0 c0 (B, H), wpack = [W_ih | W_hh | bias] (4H, I + H + 1) as slivers.
    # Out: hc (2, T, B, H) = h and c of each step; by batch sliver, gates (T, S, 4H', NR) after
    # their activations (4H' = 4H rounded up to MR: the product writes them there, and they
    # are activated in place) and cells (T, S, H, NR) = c, saved for the backward.
    # The slivers are shared out in ``groups`` (one per thread), each running on its own.
    MR, NR = sliver_tile_of(x)
    T, B, I = x.shape
    H = h0.shape[1]
    S = gates.shape[1]
    K = I + H + 1
    HN = H * NR
    one = cast_like(1.0, x)
    per = (S + groups - 1) // groups
    for grp in prange(groups):
        s0 = grp * per
        ns = max(0, min(per, S - s0))
        operand = np.zeros((ns, K, NR), x.dtype)  # this step's [x_t; h_{t-1}; 1]
        c_init = np.zeros((ns, H, NR), x.dtype)
        for sl in range(ns):
            s = s0 + sl
            for j in range(min(NR, B - s * NR)):
                for k in range(H):
                    operand[sl, I + k, j] = h0[s * NR + j, k]
                    c_init[sl, k, j] = c0[s * NR + j, k]
            for j in range(NR):
                operand[sl, I + H, j] = one
        for t in range(T if ns > 0 else 0):
            for sl in range(ns):  # x_t into the operand, transposed
                s = s0 + sl
                nr = min(NR, B - s * NR)
                for k in range(I):
                    dst = operand[sl, k]
                    for j in range(nr):
                        dst[j] = x[t, s * NR + j, k]
            sliver_product(wpack, operand, gates[t, s0 : s0 + ns])
            for sl in range(ns):
                s = s0 + sl
                nr = min(NR, B - s * NR)
                gr = gates[t, s].reshape(gates.shape[2] * NR)
                i, f, g, o = gr[:HN], gr[HN : 2 * HN], gr[2 * HN : 3 * HN], gr[3 * HN : 4 * HN]
                _activate(i, f, g, o)
                if t == 0:
                    cp = c_init[sl].reshape(HN)
                else:
                    cp = cells[t - 1, s].reshape(HN)
                c_out = cells[t, s].reshape(HN)
                h_out = operand[sl].reshape(K * NR)[I * NR : (I + H) * NR]  # the next h rows
                for q in range(HN):
                    c_out[q] = f[q] * cp[q] + i[q] * g[q]
                for q in range(HN):
                    h_out[q] = o[q] * tanh_fast(c_out[q])
                for j in range(nr):  # h and c out, transposed
                    hrow, crow = hc[0, t, s * NR + j], hc[1, t, s * NR + j]
                    for k in range(H):
                        hrow[k] = h_out[k * NR + j]
                    for k in range(H):
                        crow[k] = c_out[k * NR + j]


@kernel
def _into_slivers(rows, s0, ns, out):
    """rows (B, H) into out (ns, H, NR): the batch rows of slivers s0 .. s0 + ns, transposed
    (a sliver's NR batch rows become the inner dimension); rows past B stay as they are."""
    NR = out.shape[2]
    B, H = rows.shape
    for sl in range(ns):
        s = s0 + sl
        for j in range(min(NR, B - s * NR)):
            for k in range(H):
                out[sl, k, j] = rows[s * NR + j, k]


@kernel
def _gradient_into_step(dhc, t, s, dh_next, dc_next, dht, dct):
    """The gradients reaching h_t and c_t of sliver s (dht, dct; HN = H * NR each): from the
    step after (dh_next, dc_next, by sliver) plus from outside the recurrence (dhc, transposed
    in)."""
    H, B = dhc.shape[3], dhc.shape[2]
    NR = dht.size // H
    nr = min(NR, B - s * NR)
    for q in range(dht.size):
        dht[q] = dh_next[q]
    for q in range(dct.size):
        dct[q] = dc_next[q]
    for k in range(H):
        for j in range(nr):
            dht[k * NR + j] += dhc[0, t, s * NR + j, k]
    # c's gradient from outside is zero at every step but the last, in a layer whose last c is
    # all that is used: a look first saves the transposed reads
    outside = dhc[1, t, s * NR : s * NR + nr].reshape(nr * H)
    nonzero = False
    for q in range(nr * H):
        nonzero |= outside[q] != 0
    if nonzero:
        for k in range(H):
            for j in range(nr):
                dct[k * NR + j] += dhc[1, t, s * NR + j, k]


@kernel
def _chunk_weight_gradients(ring, t0, n, s0, ns, xr, h0r, hr, dw_x, dw_h):
    """dW += dgates @ [x | h_{t-1}] over the n steps from t0 whose gate gradients are in the
    ring, for slivers s0 .. s0 + ns (one group's share, dw_x and dw_h by sliver)."""
    NR = ring.shape[3]
    stride = h0r.shape[0]  # S * NR rows: one step of x's or h's rows, by sliver
    for sl in range(ns):
        at = t0 * stride + (s0 + sl) * NR
        blocked_product(ring, sl, 0, n, xr[at:], stride, dw_x)
        if t0 == 0:  # h_{t-1} is h0 for step 0, then the layer's outputs
            blocked_product(ring, sl, 0, 1, h0r[(s0 + sl) * NR :], stride, dw_h)
            blocked_product(ring, sl, 1, n, hr[(s0 + sl) * NR :], stride, dw_h)
        else:
            blocked_product(ring, sl, 0, n, hr[at - stride :], stride, dw_h)


@kernel(parallel=True)
def _lstm_backward(
    dhc, c0, gates, cells, wpack_t, xr, h0r, hr, dx, dh0, dc0, dw_x, dw_h, db, groups
):
    # dhc (2, T, B, H): gradients reaching each step's h and c from outside the recurrence.
    # wpack_t = [W_hh | W_ih].T (H + I, 4H) as slivers, or W_hh.T alone when dx has I = 0.
    # xr (T * S * NR, Ip), h0r (S * NR, Hp), hr (T * S * NR, Hp): x, h0 and h of every step,
    # by step and batch sliver, padded (the weight gradients' B operand, _by_sliver).
    # Out: dx (T, B, I); dh0, dc0 (B, H); and, zero on entry, each group's share of the
    # weight gradients: dw_x (groups, Ip / NR, 4H', NR), dw_h (groups, Hp / NR, 4H', NR) by
    # sliver (blocked_product's c), db (groups, 4H). Groups of slivers as in the forward.
    #
    # Each group walks the steps backwards: per sliver, the gradient reaching the step, the
    # cell's backward into the gate gradients (kept in a ring of a few steps); then one product
    # [dh_{t-1}; dx_t] = [W_hh | W_ih].T @ dgates for all its slivers; and every few steps the
    # weight gradients of the steps in the ring.
    MR, NR = sliver_tile_of(gates)
    T, S, gp, _ = gates.shape
    H = dhc.shape[3]
    B = dhc.shape[2]
    I = dx.shape[2]
    HN = H * NR
    per = (S + groups - 1) // groups
    for grp in prange(groups):
        s0 = grp * per
        ns = max(0, min(per, S - s0))
        steps = max(1, CHUNK // (max(ns, 1) * NR))
        ring = np.zeros((steps, ns, gp, NR), gates.dtype)  # gate gradients of those steps
        back = np.zeros((ns, wpack_t.shape[0] * MR, NR), gates.dtype)  # [dh_{t-1}; dx_t]
        dc = np.zeros((ns, HN), gates.dtype)
        c_init = np.zeros((ns, H, NR), gates.dtype)
        dbs = np.zeros(4 * HN, gates.dtype)
        dht = np.empty(HN, gates.dtype)
        dct = np.empty(HN, gates.dtype)
        tc = np.empty(HN, gates.dtype)
        _into_slivers(c0, s0, ns, c_init)
        for t in range(T - 1 if ns > 0 else -1, -1, -1):
            t0 = t // steps * steps
            for sl in range(ns):
                s = s0 + sl
                dh_next = back[sl].reshape(back.shape[1] * NR)[:HN]
                _gradient_into_step(dhc, t, s, dh_next, dc[sl], dht, dct)
                gr = gates[t, s].reshape(gp * NR)
                i, f, g, o = gr[:HN], gr[HN : 2 * HN], gr[2 * HN : 3 * HN], gr[3 * HN : 4 * HN]
                dr = ring[t - t0, sl].reshape(gp * NR)
                di, df, dgg, do = dr[:HN], dr[HN : 2 * HN], dr[2 * HN : 3 * HN], dr[3 * HN : 4 * HN]
                c = cells[t, s].reshape(HN)
                for q in range(HN):  # tanh(c) again: cheaper than storing it, reading it back
                    tc[q] = tanh_fast(c[q])
                cp = c_init[sl].reshape(HN) if t == 0 else cells[t - 1, s].reshape(HN)
                _cell_backward(i, f, g, o, tc, cp, dht, dct, di, df, dgg, do, dc[sl])
                for q in range(4 * HN):
                    dbs[q] += dr[q]
            sliver_product(wpack_t, ring[t - t0], back)
            for sl in range(ns):  # dx_t out, transposed
                s = s0 + sl
                for j in range(min(NR, B - s * NR)):
                    row = dx[t, s * NR + j]
                    for k in range(I):
                        row[k] = back[sl, H + k, j]
            if t == t0:
                n = min(steps, T - t0)
                _chunk_weight_gradients(ring, t0, n, s0, ns, xr, h0r, hr, dw_x[grp], dw_h[grp])
        for sl in range(ns):  # dh0 and dc0 out, transposed
            s = s0 + sl
            for j in range(min(NR, B - s * NR)):
                for k in range(H):
                    dh0[s * NR + j, k] = back[sl, k, j]
                    dc0[s * NR + j, k] = dc[sl, k * NR + j]
        for m in range(4 * H):  # the bias gradient: each gate's sum over the sliver's rows
            total = db[grp, m]
            for j in range(NR):
                total += dbs[m * NR + j]
            db[grp, m] = total


# -- the LSTM by steps, on BLAS: for a batch of one sliver when there are threads to use ------
#
# With a single batch sliver (B <= 16 in float32) the sliver kernels above have nothing to
# share out, and a second thread would idle. There, BLAS's own threads do better: the input
# projection, the weight gradients and the input gradient as large matmuls over all steps,
# and per step one small matmul with the gate arithmetic fused (the gate loops then run over
# the H elements of one batch row). Measured at T=64, B=12, I=64, H=256, two layers, fwd+bwd
# at two threads: 46 ms this way, 55 ms by slivers (at one thread: 65 ms against 55).


@kernel
def _lstm_forward_by_step(xw, h0, c0, w_hh_t, bias, hc, gates, tanh_c):
    # xw (T, B, 4H), h0 c0 (B, H), w_hh_t (H, 4H), bias (4H,) -> hc (2, T, B, H) = h and c
    # of each step, gates (T, B, 4H) after their activations, tanh_c (T, B, H)
    T, B, G = xw.shape
    H = G // 4
    pre = np.empty((B, G), xw.dtype)
    for t in range(T):
        hp = h0 if t == 0 else hc[0, t - 1]
        cp = c0 if t == 0 else hc[1, t - 1]
        np.dot(hp, w_hh_t, pre)
        for b in range(B):
            p, x, gr, c_prev = pre[b], xw[t, b], gates[t, b], cp[b]
            h_out, c_out, tc_out = hc[0, t, b], hc[1, t, b], tanh_c[t, b]
            for k in range(G):  # the gates' arguments
                gr[k] = p[k] + x[k] + bias[k]
            i, f, g, o = gr[:H], gr[H : 2 * H], gr[2 * H : 3 * H], gr[3 * H :]
            _activate(i, f, g, o)
            for j in range(H):
                c_out[j] = f[j] * c_prev[j] + i[j] * g[j]
            for j in range(H):
                tc = tanh_fast(c_out[j])
                tc_out[j] = tc
                h_out[j] = o[j] * tc


@kernel
def _lstm_backward_by_step(c0, w_hh, hc, gates, tanh_c, dhc, dxw, dh, dc, db):
    # dhc (2, T, B, H): gradients reaching each step's h and c from outside the recurrence.
    # dxw (T, B, 4H) out; dh, dc (B, H) and db (4H,) zero on entry, the gradients of h0, c0
    # and the bias on exit.
    T, B, G = gates.shape
    H = G // 4
    dht = np.empty(H, gates.dtype)
    dct = np.empty(H, gates.dtype)
    for t in range(T - 1, -1, -1):
        cp = c0 if t == 0 else hc[1, t - 1]
        for b in range(B):
            gr, tc, c_prev, d = gates[t, b], tanh_c[t, b], cp[b], dxw[t, b]
            i, f, g, o = gr[:H], gr[H : 2 * H], gr[2 * H : 3 * H], gr[3 * H :]
            di, df, dg, do = d[:H], d[H : 2 * H], d[2 * H : 3 * H], d[3 * H :]
            dh_out, dc_out, dh_b, dc_b = dhc[0, t, b], dhc[1, t, b], dh[b], dc[b]
            for j in range(H):
                dht[j] = dh_out[j] + dh_b[j]
            for j in range(H):
                dct[j] = dc_out[j] + dc_b[j]
            _cell_backward(i, f, g, o, tc, c_prev, dht, dct, di, df, dg, do, dc_b)
            for k in range(G):
                db[k] += d[k]
        np.dot(dxw[t], w_hh, dh)


@kernel
def _gru_forward(xw, h0, w_hh_t, b_ih, b_hh, hs, gates, hn, one):
    # xw (T, B, 3H), h0 (B, H), w_hh_t (H, 3H), b_ih b_hh (3H,) -> hs (T, B, H),
    # gates (T, B, 3H) = r, z, n after activation, hn (T, B, H) = the n rows of gh
    T, B, G = xw.shape
    H = G // 3
    pre = np.empty((B, G), xw.dtype)
    for t in range(T):
        hp = h0 if t == 0 else hs[t - 1]
        np.dot(hp, w_hh_t, pre)
        for b in range(B):
            p, x, gr, hn_out, h_prev, h_out = (
                pre[b],
                xw[t, b],
                gates[t, b],
                hn[t, b],
                hp[b],
                hs[t, b],
            )
            for k in range(2 * H):  # r and z
                gr[k] = sigmoid_fast(p[k] + b_hh[k] + x[k] + b_ih[k])
            r, z, n = gr[:H], gr[H : 2 * H], gr[2 * H :]
            p_n, x_n, bh_n, bi_n = p[2 * H :], x[2 * H :], b_hh[2 * H :], b_ih[2 * H :]
            for j in range(H):
                hn_out[j] = p_n[j] + bh_n[j]
            for j in range(H):
                n[j] = tanh_fast(x_n[j] + bi_n[j] + r[j] * hn_out[j])
            for j in range(H):
                h_out[j] = (one - z[j]) * n[j] + z[j] * h_prev[j]


@kernel
def _gru_backward(h0, w_hh, hs, gates, hn, dhs, dxw, dgh, dh, db_ih, db_hh, one):
    # dhs (T, B, H) from outside; dxw, dgh (T, B, 3H) out (gradients of xw and of gh);
    # dh (B, H), db_ih, db_hh (3H,) zero on entry, the gradients of h0 and the biases on exit
    T, B, G = gates.shape
    H = G // 3
    through_w = np.empty((B, H), gates.dtype)
    d = np.empty(H, gates.dtype)
    for t in range(T - 1, -1, -1):
        hp = h0 if t == 0 else hs[t - 1]
        for b in range(B):
            gr, hn_t, h_prev, dh_out, dh_b = gates[t, b], hn[t, b], hp[b], dhs[t, b], dh[b]
            r, z, n = gr[:H], gr[H : 2 * H], gr[2 * H :]
            dx, dg = dxw[t, b], dgh[t, b]
            dr, dz, dn = dx[:H], dx[H : 2 * H], dx[2 * H :]
            for j in range(H):
                d[j] = dh_out[j] + dh_b[j]
            for j in range(H):
                dn[j] = d[j] * (one - z[j]) * (one - n[j] * n[j])
            for j in range(H):
                dz[j] = d[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])
            for j in range(H):
                dr[j] = dn[j] * hn_t[j] * r[j] * (one - r[j])
            for j in range(2 * H):
                dg[j] = dx[j]
            dg_n = dg[2 * H :]
            for j in range(H):
                dg_n[j] = dn[j] * r[j]
            for j in range(H):
                dh_b[j] = d[j] * z[j]
            for k in range(G):
                db_ih[k] += dx[k]
            for k in range(G):
                db_hh[k] += dg[k]
        np.dot(dgh[t], w_hh, through_w)
        for b in range(B):
            for j in range(H):
                dh[b, j] += through_w[b, j]


# -- validating wrappers (shared with the NumPy twin in kernels/twins/rnn.py) ----------------


def _packed(w):
    """w (M, K) as the microkernel's MR-row slivers. A transposed view is packed as it is,
    with no copy first: the packing then reads MR contiguous elements at a time."""
    out = np.empty(packed_shape(w.shape[0], w.shape[1], w.dtype), w.dtype)
    pack_slivers(w, out)
    return out


def _groups(slivers):
    """How many groups the batch slivers are shared out in: one per thread, at most one per
    sliver (the kernels' prange; the count is passed in, since numba.get_num_threads() inside
    a kernel would keep Numba from caching it)."""
    return max(1, min(slivers, numba.get_num_threads()))


def _rounded(rows, dtype):
    """rows rounded up to a whole number of the microkernel's MR."""
    mr = sliver_tile(dtype)[0]
    return (rows + mr - 1) // mr * mr


def _slivers(dtype, b):
    """(S, NR): the number of NR-column slivers that hold a batch of b."""
    nr = sliver_tile(dtype)[1]
    return (b + nr - 1) // nr, nr


def by_slivers(batch, dtype):
    """Whether the LSTM runs by batch slivers (the kernels above) or by steps on BLAS.

    By slivers, each thread computes whole slivers of NR columns, the padding of the last one
    included; by steps, BLAS computes the B columns of the batch, with its own threads, less
    efficiently per column (and, on two threads, less well shared: the small per-step
    products gain little). Measured in float32 on this 2-core machine (T 64, H 64 to 256,
    B 8 to 64; the README has the table): the slivers' time over the steps' time was
    0.57-0.97 when every thread had full slivers, and 1.1-2.5 when they were half empty or
    a thread idled. So: by slivers when the batch fills enough of the columns the threads
    would compute, B >= f * NR * threads * ceil(S / threads), with f = 0.8 at one thread and
    0.7 at more. On the measured grid it picks the slower path by 12 % at worst (B 12,
    H 256, one thread)."""
    s, nr = _slivers(dtype, batch)
    threads = numba.get_num_threads()
    fill = tuned.value("lstm_sliver_fill", threads)  # shipped: 0.8 at one thread, 0.7 at more
    return s == 0 or batch >= fill * nr * threads * -(-s // threads)


def rnn_algorithm(x, w_hh):
    """How an LSTM layer over x (T, B, I) runs: "batch slivers" (the fused kernels above) or
    "steps on BLAS" (see by_slivers; the GRU always runs by steps)."""
    return "batch slivers" if by_slivers(x.shape[1], x.dtype) else "steps on BLAS"


def lstm_forward(x, h0, c0, w_ih, w_hh, bias=None):
    """LSTM layer over T steps. Returns hc (2, T, B, H) (every h, every c), and gates and
    cells, saved for the backward: by batch sliver, gates (T, S, 4H', NR) and cells
    (T, S, H, NR) = c; by steps (see by_slivers), gates (T, B, 4H) and tanh(c) (T, B, H), as
    the twin. ``bias`` is b_ih + b_hh."""
    dtype, t, b, h = checks.rnn_layer("lstm_forward", 4, x, h0, w_ih, w_hh, c0=c0, biases=(bias,))
    s, nr = _slivers(dtype, b)
    hc = np.empty((2, t, b, h), dtype)
    bias = or_zeros(bias, 4 * h, dtype)
    if not by_slivers(b, dtype):
        gates, tanh_c = np.empty((t, b, 4 * h), dtype), np.empty((t, b, h), dtype)
        if hc.size:
            w_hh_t = np.ascontiguousarray(w_hh.T)
            xw = input_projection(x, w_ih)
            _lstm_forward_by_step(xw, h0, c0, w_hh_t, bias, hc, gates, tanh_c)
        return hc, gates, tanh_c
    gates = np.empty((t, s, _rounded(4 * h, dtype), nr), dtype)
    cells = np.empty((t, s, h, nr), dtype)
    if hc.size:
        w = _packed(np.hstack([w_ih, w_hh, bias[:, None]]))
        _lstm_forward(x, h0, c0, w, hc, gates, cells, _groups(s))
    return hc, gates, cells


def _by_sliver(rows, s, nr):
    """rows (T, B, N) as the weight gradients' B operand: (T * S * NR, Np), each step's batch
    padded to S * NR rows and N to a whole number of NR columns, zeros in the padding (the
    array itself when nothing needs padding)."""
    t, b, n = rows.shape
    n_pad = (n + nr - 1) // nr * nr
    if b == s * nr and n == n_pad:
        return rows.reshape(t * b, n)
    out = np.zeros((t, s * nr, n_pad), rows.dtype)
    out[:, :b, :n] = rows
    return out.reshape(t * s * nr, n_pad)


def _from_slivers(c, m, n):
    """The (m, n) matrix held by sliver in c (SB, M, NR) (blocked_product's layout)."""
    sb, rows, nr = c.shape
    return np.ascontiguousarray(c.transpose(1, 0, 2).reshape(rows, sb * nr)[:m, :n])


def lstm_backward(x, h0, c0, w_ih, w_hh, hc, gates, cells, dhc, need_input=True):
    """Gradients (dx, dh0, dc0, dw_ih, dw_hh, dbias) from dhc (2, T, B, H), the gradient of
    lstm_forward's hc output, and what lstm_forward saved (``cells`` is tanh(c) by steps); dx
    is None unless ``need_input`` (a first layer on data skips it, a seventh of the work)."""
    dtype, t, b, h = checks.rnn_backward_inputs(
        "lstm_backward", 4, x, h0, w_ih, w_hh, dhc, hc, c0=c0, gates=gates, cells=cells
    )
    s, nr = _slivers(dtype, b)
    if gates.ndim == 3:
        expected = (("gates", (t, b, 4 * h)), ("cells", (t, b, h)))
    else:
        expected = (("gates", (t, s, _rounded(4 * h, dtype), nr)), ("cells", (t, s, h, nr)))
    for (name, shape), arr in zip(expected, (gates, cells)):
        if arr.shape != shape:
            raise ValueError(
                f"lstm_backward: saved {name} of shape {arr.shape} should be {shape}, "
                "as lstm_forward returns it"
            )
    if gates.ndim == 3:
        return _lstm_backward_steps(x, h0, c0, w_ih, w_hh, hc, gates, cells, dhc, need_input)
    i, g = x.shape[2], 4 * h
    gp = _rounded(g, dtype)
    dx = np.empty((t, b, i if need_input else 0), dtype)
    dh, dc = np.zeros_like(h0), np.zeros_like(c0)
    groups = _groups(s)
    dw_x = np.zeros((groups, (i + nr - 1) // nr, gp, nr), dtype)
    dw_h = np.zeros((groups, (h + nr - 1) // nr, gp, nr), dtype)
    db = np.zeros((groups, g), dtype)
    if hc.size:
        w = np.hstack([w_hh, w_ih]) if need_input else w_hh
        xr, h0r, hr = _by_sliver(x, s, nr), _by_sliver(h0[None], s, nr), _by_sliver(hc[0], s, nr)
        _lstm_backward(
            dhc, c0, gates, cells, _packed(w.T), xr, h0r, hr, dx, dh, dc, dw_x, dw_h, db, groups
        )
    if groups > 1:  # each group's share, added up
        dw_x, dw_h, db = dw_x.sum(axis=0), dw_h.sum(axis=0), db.sum(axis=0)
    else:
        dw_x, dw_h, db = dw_x[0], dw_h[0], db[0]
    dw_ih, dw_hh = _from_slivers(dw_x, g, i), _from_slivers(dw_h, g, h)
    return (dx if need_input else None), dh, dc, dw_ih, dw_hh, db


def _lstm_backward_steps(x, h0, c0, w_ih, w_hh, hc, gates, tanh_c, dhc, need_input):
    t, b, g = gates.shape
    dxw = np.empty((t, b, g), x.dtype)
    dh, dc, db = np.zeros_like(h0), np.zeros_like(c0), np.zeros(g, x.dtype)
    if gates.size:
        _lstm_backward_by_step(c0, w_hh, hc, gates, tanh_c, dhc, dxw, dh, dc, db)
    dx, dw_ih, dw_hh = lstm_param_grads(dxw, x, h0, hc[0], w_ih, need_input)
    return dx, dh, dc, dw_ih, dw_hh, db


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """GRU layer over T steps. Returns hs (T, B, H), and gates (T, B, 3H) and hn (T, B, H)
    saved for the backward."""
    dtype, t, b, h = checks.rnn_layer("gru_forward", 3, x, h0, w_ih, w_hh, biases=(b_ih, b_hh))
    hs = np.empty((t, b, h), dtype)
    gates = np.empty((t, b, 3 * h), dtype)
    hn = np.empty((t, b, h), dtype)
    if gates.size:
        w_hh_t = np.ascontiguousarray(w_hh.T)
        b_ih, b_hh = or_zeros(b_ih, 3 * h, dtype), or_zeros(b_hh, 3 * h, dtype)
        xw = input_projection(x, w_ih)
        _gru_forward(xw, h0, w_hh_t, b_ih, b_hh, hs, gates, hn, dtype.type(1))
    return hs, gates, hn


def gru_backward(x, h0, w_ih, w_hh, hs, gates, hn, dhs, need_input=True):
    """Gradients (dx, dh0, dw_ih, dw_hh, db_ih, db_hh) from dhs (T, B, H), the gradient of hs."""
    dtype, t, b, h = checks.rnn_backward_inputs(
        "gru_backward", 3, x, h0, w_ih, w_hh, dhs, hs, gates=gates, hn=hn
    )
    g = 3 * h
    dxw, dgh = np.empty((t, b, g), dtype), np.empty((t, b, g), dtype)
    dh, db_ih, db_hh = np.zeros_like(h0), np.zeros(g, dtype), np.zeros(g, dtype)
    if gates.size:
        _gru_backward(h0, w_hh, hs, gates, hn, dhs, dxw, dgh, dh, db_ih, db_hh, dtype.type(1))
    dx, dw_ih, dw_hh = gru_param_grads(dxw, dgh, x, h0, hs, w_ih, need_input)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh
