"""LSTM and GRU over a whole sequence: the recurrence and its gates fused, forward and backward.

T time, B batch, H hidden size, G = 4H (LSTM) or 3H (GRU) gate rows, in PyTorch's order.

x (T, B, I) input, w_ih (G, I), w_hh (G, H), biases (G,).

The input projection of every step, ``xw = x @ w_ih.T`` (T, B, G), does not depend on the
recurrence, so it is one large matmul (BLAS) for all steps. What is left is inherently
sequential: one small matmul with ``w_hh`` per step and the gate arithmetic, which these
kernels fuse into one pass over each step's (B, G) block (biases included) instead of
NumPy's dozen temporaries.

LSTM (gates i, f, g, o; b = b_ih + b_hh, since both are added at every step):
    i, f, o = sigmoid(xw[t] + b + h @ w_hh.T)[i, f, o rows];  g = tanh(...)[g rows]
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
GRU (gates r, z, n; b_hh stays separate because r multiplies its n part):
    gi = xw[t] + b_ih;  gh = h @ w_hh.T + b_hh
    r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z);  n = tanh(gi_n + r * gh_n)
    h_t = (1 - z) * n + z * h_{t-1}

Backward walks the steps in reverse. Each step's gate gradient is also the gradient of its
pre-activation, so the weight gradients are large matmuls at the end, over all steps at once
(dW_ih = dgates.T @ x, dW_hh = dgates.T @ h_{t-1}; for the LSTM one matmul gives both).

sigmoid and tanh are ``sigmoid_fast`` and ``tanh_fast`` (kernels/_math.py): in float32 a
rational approximation of tanh, straight-line arithmetic that vectorizes inside each gate's loop
(they went through exp on a buffer before: the LSTM forward's gate arithmetic took 2.2 ms at
T=64, B=32, H=128, and takes 0.9 ms now); in float64 NumPy's exact tanh.
"""

from __future__ import annotations

import numpy as np

from kernels import _validate
from kernels._config import kernel
from kernels._math import sigmoid_fast, tanh_fast

# Kernels that need 1 take it as ``one``, in the arrays' dtype: a Python float literal would
# make every float32 expression float64 (NumPy's promotion), which measured 2.8 ms against
# 2.1 ms for the LSTM forward's gate arithmetic at T=64, B=32, H=128. Loops run over 1-D row
# views, one simple operation per loop, which LLVM vectorizes (2.1 ms -> 1.0 ms). Each loop
# indexes its views from 0 (the gates as slices i, f, g, o rather than gr[H + j]): LLVM cannot
# tell that H + j is not negative, and Numba's wraparound branch for negative indices keeps
# such a loop scalar.


@kernel
def _lstm_forward(xw, h0, c0, w_hh_t, bias, hc, gates, tanh_c):
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
            for j in range(H):
                i[j] = sigmoid_fast(i[j])
            for j in range(H):
                f[j] = sigmoid_fast(f[j])
            for j in range(H):
                g[j] = tanh_fast(g[j])
            for j in range(H):
                o[j] = sigmoid_fast(o[j])
            for j in range(H):
                c_out[j] = f[j] * c_prev[j] + i[j] * g[j]
            for j in range(H):
                tc = tanh_fast(c_out[j])
                tc_out[j] = tc
                h_out[j] = o[j] * tc


@kernel
def _lstm_backward(c0, w_hh, hc, gates, tanh_c, dhc, dxw, dh, dc, db, one):
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
                dct[j] = dc_out[j] + dc_b[j] + dht[j] * o[j] * (one - tc[j] * tc[j])
            for j in range(H):
                di[j] = dct[j] * g[j] * i[j] * (one - i[j])
            for j in range(H):
                df[j] = dct[j] * c_prev[j] * f[j] * (one - f[j])
            for j in range(H):
                dg[j] = dct[j] * i[j] * (one - g[j] * g[j])
            for j in range(H):
                do[j] = dht[j] * tc[j] * o[j] * (one - o[j])
            for j in range(H):
                dc_b[j] = dct[j] * f[j]
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


def check_layer(name, gates_per_step, x, h0, w_ih, w_hh, c0=None, biases=()):
    """Shapes of a recurrent layer call; returns (dtype, T, B, H)."""
    named = {f"bias{i}": b for i, b in enumerate(biases)}
    dtype = _validate.floats(name, x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, **named)
    _validate.rank(name, "x", x, 3, "(T, B, I)")
    _validate.rank(name, "h0", h0, 2, "(B, H)")
    t, b, i = x.shape
    h = h0.shape[1]
    g = gates_per_step * h
    if h0.shape[0] != b:
        raise ValueError(f"{name}: h0 {h0.shape} does not match the batch of x {x.shape}")
    if w_ih.shape != (g, i):
        raise ValueError(f"{name}: w_ih of shape {w_ih.shape} should be {(g, i)}")
    if w_hh.shape != (g, h):
        raise ValueError(f"{name}: w_hh of shape {w_hh.shape} should be {(g, h)}")
    if c0 is not None and c0.shape != h0.shape:
        raise ValueError(f"{name}: c0 of shape {c0.shape} should match h0 {h0.shape}")
    for bias in biases:
        if bias is not None and bias.shape != (g,):
            raise ValueError(f"{name}: bias of shape {bias.shape} should be {(g,)}")
    return dtype, t, b, h


def input_projection(x, w_ih):
    """x (T, B, I) @ w_ih.T for all steps: (T, B, G), one matmul."""
    t, b, i = x.shape
    return (x.reshape(t * b, i) @ w_ih.T).reshape(t, b, w_ih.shape[0])


def previous_h(h0, hs):
    """h_{t-1} for every step: h0, then the outputs of all but the last step (T, B, H)."""
    return np.concatenate([h0[None], hs[:-1]], axis=0)


def or_zeros(bias, g, dtype):
    return np.zeros(g, dtype) if bias is None else bias


def check_backward(name, gates_per_step, x, h0, w_ih, w_hh, grad, out, c0=None, **saved):
    """A backward call's shapes: the layer's, the saved arrays', and the gradient against the
    output it is the gradient of; returns (dtype, T, B, H)."""
    dims = check_layer(name, gates_per_step, x, h0, w_ih, w_hh, c0=c0)
    _validate.floats(name, grad=grad, out=out, **saved)
    if grad.shape != out.shape:
        raise ValueError(f"{name}: the gradient of shape {grad.shape} should be {out.shape}")
    return dims


def lstm_param_grads(dxw, x, h0, hs, w_ih, need_input=True):
    """(dx, dW_ih, dW_hh) from the gates' gradient dxw (T, B, 4H): dx = dxw @ W_ih (None
    unless ``need_input``: a first layer on data skips that matmul, a seventh of the step),
    and both weight gradients as one matmul, dgates.T @ [x | h_{t-1}] over all T * B rows."""
    t, b, g = dxw.shape
    i = x.shape[2]
    flat = dxw.reshape(t * b, g)
    rows = np.concatenate([x, previous_h(h0, hs)], axis=2).reshape(t * b, i + h0.shape[1])
    both = flat.T @ rows
    dx = (flat @ w_ih).reshape(x.shape) if need_input else None
    return dx, both[:, :i], both[:, i:]


def gru_param_grads(dxw, dgh, x, h0, hs, w_ih, need_input=True):
    """(dx, dW_ih, dW_hh) from the gradients of the input projection dxw and of the recurrent
    projection dgh (T, B, 3H); dx is None unless ``need_input``."""
    t, b, g = dxw.shape
    flat_x, flat_h = dxw.reshape(t * b, g), dgh.reshape(t * b, g)
    dx = (flat_x @ w_ih).reshape(x.shape) if need_input else None
    dw_ih = flat_x.T @ x.reshape(t * b, x.shape[2])
    dw_hh = flat_h.T @ previous_h(h0, hs).reshape(t * b, h0.shape[1])
    return dx, dw_ih, dw_hh


def lstm_forward(x, h0, c0, w_ih, w_hh, bias=None):
    """LSTM layer over T steps. Returns hc (2, T, B, H) (every h, every c), and gates
    (T, B, 4H) and tanh_c (T, B, H) saved for the backward. ``bias`` is b_ih + b_hh."""
    dtype, t, b, h = check_layer("lstm_forward", 4, x, h0, w_ih, w_hh, c0=c0, biases=(bias,))
    hc = np.empty((2, t, b, h), dtype)
    gates = np.empty((t, b, 4 * h), dtype)
    tanh_c = np.empty((t, b, h), dtype)
    if gates.size:
        w_hh_t = np.ascontiguousarray(w_hh.T)
        bias = or_zeros(bias, 4 * h, dtype)
        _lstm_forward(input_projection(x, w_ih), h0, c0, w_hh_t, bias, hc, gates, tanh_c)
    return hc, gates, tanh_c


def lstm_backward(x, h0, c0, w_ih, w_hh, hc, gates, tanh_c, dhc, need_input=True):
    """Gradients (dx, dh0, dc0, dw_ih, dw_hh, dbias) from dhc (2, T, B, H), the gradient of
    lstm_forward's hc output."""
    dtype, t, b, h = check_backward(
        "lstm_backward", 4, x, h0, w_ih, w_hh, dhc, hc, c0=c0, gates=gates, tanh_c=tanh_c
    )
    dxw = np.empty((t, b, 4 * h), dtype)
    dh, dc, db = np.zeros_like(h0), np.zeros_like(c0), np.zeros(4 * h, dtype)
    if gates.size:
        _lstm_backward(c0, w_hh, hc, gates, tanh_c, dhc, dxw, dh, dc, db, dtype.type(1))
    dx, dw_ih, dw_hh = lstm_param_grads(dxw, x, h0, hc[0], w_ih, need_input)
    return dx, dh, dc, dw_ih, dw_hh, db


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """GRU layer over T steps. Returns hs (T, B, H), and gates (T, B, 3H) and hn (T, B, H)
    saved for the backward."""
    dtype, t, b, h = check_layer("gru_forward", 3, x, h0, w_ih, w_hh, biases=(b_ih, b_hh))
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
    dtype, t, b, h = check_backward(
        "gru_backward", 3, x, h0, w_ih, w_hh, dhs, hs, gates=gates, hn=hn
    )
    g = 3 * h
    dxw, dgh = np.empty((t, b, g), dtype), np.empty((t, b, g), dtype)
    dh, db_ih, db_hh = np.zeros_like(h0), np.zeros(g, dtype), np.zeros(g, dtype)
    if gates.size:
        _gru_backward(h0, w_hh, hs, gates, hn, dhs, dxw, dgh, dh, db_ih, db_hh, dtype.type(1))
    dx, dw_ih, dw_hh = gru_param_grads(dxw, dgh, x, h0, hs, w_ih, need_input)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh
