"""NumPy twin of kernels/rnn.py: the same recurrences, one step at a time, vectorized over
the batch and hidden units, in PyTorch's (T, B, H) layout throughout (the kernels' LSTM by
steps keeps the same layout and saves the same arrays). The all-steps matmuls are shared with
the kernel module."""

from __future__ import annotations

import numpy as np

from kernels import checks

# -- the all-steps products, shared with the Numba module ---------------------------------


def input_projection(x, w_ih):
    """x (T, B, I) @ w_ih.T for all steps: (T, B, G), one matmul."""
    t, b, i = x.shape
    return (x.reshape(t * b, i) @ w_ih.T).reshape(t, b, w_ih.shape[0])


def _previous_h(h0, hs):
    """h_{t-1} for every step: h0, then the outputs of all but the last step (T, B, H)."""
    return np.concatenate([h0[None], hs[:-1]], axis=0)


def or_zeros(bias, g, dtype):
    return np.zeros(g, dtype) if bias is None else bias


def gru_param_grads(dxw, dgh, x, h0, hs, w_ih, need_input=True):
    """(dx, dW_ih, dW_hh) from the gradients of the input projection dxw and of the recurrent
    projection dgh (T, B, 3H); dx is None unless ``need_input``."""
    t, b, g = dxw.shape
    flat_x, flat_h = dxw.reshape(t * b, g), dgh.reshape(t * b, g)
    dx = (flat_x @ w_ih).reshape(x.shape) if need_input else None
    dw_ih = flat_x.T @ x.reshape(t * b, x.shape[2])
    dw_hh = flat_h.T @ _previous_h(h0, hs).reshape(t * b, h0.shape[1])
    return dx, dw_ih, dw_hh


def lstm_param_grads(dxw, x, h0, hs, w_ih, need_input=True):
    """(dx, dW_ih, dW_hh) from the gates' gradient dxw (T, B, 4H), by steps: dx = dxw @ W_ih
    (None unless ``need_input``), and both weight gradients as one matmul over all T * B rows,
    dgates.T @ [x | h_{t-1}]. Shared with the Numba module."""
    t, b, g = dxw.shape
    i = x.shape[2]
    flat = dxw.reshape(t * b, g)
    rows = np.concatenate([x, _previous_h(h0, hs)], axis=2).reshape(t * b, i + h0.shape[1])
    both = flat.T @ rows
    dx = (flat @ w_ih).reshape(x.shape) if need_input else None
    return dx, both[:, :i], both[:, i:]


def _sigmoid(v):
    return 0.5 * (1 + np.tanh(0.5 * v))


def rnn_algorithm(x, w_hh):
    """The twin's one way: step by step, NumPy matmuls."""
    return "steps (NumPy twin)"


def lstm_forward(x, h0, c0, w_ih, w_hh, bias=None):
    dtype, t, b, h = checks.rnn_layer("lstm_forward", 4, x, h0, w_ih, w_hh, c0=c0, biases=(bias,))
    hc = np.empty((2, t, b, h), dtype)
    gates = np.empty((t, b, 4 * h), dtype)
    tanh_c = np.empty((t, b, h), dtype)
    xw = input_projection(x, w_ih) + or_zeros(bias, 4 * h, dtype)
    hp, cp = h0, c0
    for s in range(t):
        i, f, g, o = np.split(xw[s] + hp @ w_hh.T, 4, axis=1)
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        gates[s] = np.concatenate([i, f, g, o], axis=1)
        hc[1, s] = cp = f * cp + i * g
        tanh_c[s] = np.tanh(cp)
        hc[0, s] = hp = o * tanh_c[s]
    return hc, gates, tanh_c


def lstm_backward(x, h0, c0, w_ih, w_hh, hc, gates, cells, dhc, need_input=True):
    tanh_c = cells  # what this twin's forward saves of the cells: tanh(c_t)
    dtype, t, b, h = checks.rnn_backward_inputs(
        "lstm_backward", 4, x, h0, w_ih, w_hh, dhc, hc, c0=c0, gates=gates, tanh_c=tanh_c
    )
    dxw = np.empty((t, b, 4 * h), dtype)
    dh, dc = np.zeros_like(h0), np.zeros_like(c0)
    for s in range(t - 1, -1, -1):
        i, f, g, o = np.split(gates[s], 4, axis=1)
        tc = tanh_c[s]
        cp = c0 if s == 0 else hc[1, s - 1]
        dht = dhc[0, s] + dh
        dct = dhc[1, s] + dc + dht * o * (1 - tc * tc)
        dxw[s] = np.concatenate(
            [
                dct * g * i * (1 - i),
                dct * cp * f * (1 - f),
                dct * i * (1 - g * g),
                dht * tc * o * (1 - o),
            ],
            axis=1,
        )
        dc = dct * f
        dh = dxw[s] @ w_hh
    dx, dw_ih, dw_hh = lstm_param_grads(dxw, x, h0, hc[0], w_ih, need_input)
    return dx, dh.astype(dtype), dc.astype(dtype), dw_ih, dw_hh, dxw.sum(axis=(0, 1))


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    dtype, t, b, h = checks.rnn_layer("gru_forward", 3, x, h0, w_ih, w_hh, biases=(b_ih, b_hh))
    hs = np.empty((t, b, h), dtype)
    gates = np.empty((t, b, 3 * h), dtype)
    hn = np.empty((t, b, h), dtype)
    xw = input_projection(x, w_ih) + or_zeros(b_ih, 3 * h, dtype)
    b_hh = or_zeros(b_hh, 3 * h, dtype)
    hp = h0
    for s in range(t):
        xr, xz, xn = np.split(xw[s], 3, axis=1)
        hr, hz, hn[s] = np.split(hp @ w_hh.T + b_hh, 3, axis=1)
        r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
        n = np.tanh(xn + r * hn[s])
        gates[s] = np.concatenate([r, z, n], axis=1)
        hs[s] = hp = (1 - z) * n + z * hp
    return hs, gates, hn


def gru_backward(x, h0, w_ih, w_hh, hs, gates, hn, dhs, need_input=True):
    dtype, t, b, h = checks.rnn_backward_inputs(
        "gru_backward", 3, x, h0, w_ih, w_hh, dhs, hs, gates=gates, hn=hn
    )
    g = 3 * h
    dxw, dgh = np.empty((t, b, g), dtype), np.empty((t, b, g), dtype)
    dh = np.zeros_like(h0)
    for s in range(t - 1, -1, -1):
        r, z, n = np.split(gates[s], 3, axis=1)
        hp = h0 if s == 0 else hs[s - 1]
        d = dhs[s] + dh
        dn = d * (1 - z) * (1 - n * n)
        dz = d * (hp - n) * z * (1 - z)
        dr = dn * hn[s] * r * (1 - r)
        dxw[s] = np.concatenate([dr, dz, dn], axis=1)
        dgh[s] = np.concatenate([dr, dz, dn * r], axis=1)
        dh = d * z + dgh[s] @ w_hh
    dx, dw_ih, dw_hh = gru_param_grads(dxw, dgh, x, h0, hs, w_ih, need_input)
    db_ih, db_hh = dxw.sum(axis=(0, 1)), dgh.sum(axis=(0, 1))
    return dx, dh.astype(dtype), dw_ih, dw_hh, db_ih.astype(dtype), db_hh.astype(dtype)
