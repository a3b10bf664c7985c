"""LSTM and GRU layers over a whole sequence, on the fused kernels (kernels/rnn.py, through
minigrad/backend.py).

One op runs one layer in one direction over all T steps: the input projection of every step,
the recurrence with its gates fused, and in backward the weight gradients over all steps (how
each kernel lays this out is in kernels/rnn.py). The graph holds one node per layer and
direction instead of a dozen per time step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.common import contiguous, require_float
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor


class LSTMLayer(Function):
    # x (T, B, I), h0 c0 (B, H), w_ih (4H, I), w_hh (4H, H), bias (4H,) -> hc (2, T, B, H)
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias):
        hc, gates, cells = backend.rnn.lstm_forward(
            *(contiguous(a) for a in (x, h0, c0, w_ih, w_hh, bias))
        )
        # the inputs themselves (under create_graph they come back connected to the graph)
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, bias, hc, gates, cells)
        return hc

    @staticmethod
    def backward(ctx, grad):
        x, h0, c0, w_ih, w_hh, bias, hc, gates, cells = ctx.saved_tensors
        if ctx._create_graph:
            return _lstm_backward_ops(x, h0, c0, w_ih, w_hh, bias, grad)
        inputs = (contiguous(a) for a in (x, h0, c0, w_ih, w_hh))
        grads = backend.rnn.lstm_backward(
            *inputs, hc, gates, cells, contiguous(grad), need_input=ctx.needs_input_grad[0]
        )
        ctx.owned(*grads)  # every one a new array
        return grads


def _bias(bias: Tensor | None, rows: int, like: Tensor) -> Tensor:
    return Tensor._from_array(np.zeros(rows, like.dtype)) if bias is None else bias


def lstm_layer(
    x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor | None = None
) -> Tensor:
    """One LSTM layer over the sequence x (T, B, I) from states h0, c0 (B, H), with PyTorch's
    gate order i, f, g, o; ``bias`` is b_ih + b_hh. Returns (2, T, B, H): the hidden state h
    and the cell state c of every step."""
    require_float(x, "lstm_layer")
    bias = _bias(bias, w_ih.shape[0], x)
    if _per_sample_weights(w_ih, w_hh, bias):
        return _lstm_equations(x, h0, c0, w_ih, w_hh, bias)
    return LSTMLayer.apply(x, h0, c0, w_ih, w_hh, bias)


class GRULayer(Function):
    # x (T, B, I), h0 (B, H), w_ih (3H, I), w_hh (3H, H), b_ih b_hh (3H,) -> hs (T, B, H)
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        hs, gates, hn = backend.rnn.gru_forward(
            *(contiguous(a) for a in (x, h0, w_ih, w_hh, b_ih, b_hh))
        )
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh, hs, gates, hn)
        return hs

    @staticmethod
    def backward(ctx, grad):
        x, h0, w_ih, w_hh, b_ih, b_hh, hs, gates, hn = ctx.saved_tensors
        if ctx._create_graph:
            return _gru_backward_ops(x, h0, w_ih, w_hh, b_ih, b_hh, grad)
        inputs = (contiguous(a) for a in (x, h0, w_ih, w_hh))
        grads = backend.rnn.gru_backward(
            *inputs, hs, gates, hn, contiguous(grad), need_input=ctx.needs_input_grad[0]
        )
        ctx.owned(*grads)  # every one a new array
        return grads


def gru_layer(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    """One GRU layer over the sequence x (T, B, I) from h0 (B, H), with PyTorch's gate order
    r, z, n. Returns every hidden state (T, B, H)."""
    require_float(x, "gru_layer")
    rows = w_ih.shape[0]
    b_ih, b_hh = _bias(b_ih, rows, x), _bias(b_hh, rows, x)
    if _per_sample_weights(w_ih, w_hh, b_ih, b_hh):
        return _gru_equations(x, h0, w_ih, w_hh, b_ih, b_hh)
    return GRULayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh)


def _per_sample_weights(*weights: Tensor) -> bool:
    """Inside vmap with weights that differ per sample (vmap(grad(...)) over a layer's
    parameters: per-sample gradients), where the kernels, which take one weight, cannot
    run batched: the layer then runs as its equations, whose ops all batch."""
    from minigrad import batching

    return batching.batch_size is not None and any(batching.is_batched(w) for w in weights)


def _lstm_equations(x, h0, c0, w_ih, w_hh, bias) -> Tensor:
    """The LSTM layer as minigrad ops, step by step: (2, T, B, H) as LSTMLayer."""
    from minigrad.ops.movement import stack

    steps = _lstm_steps(x, h0, c0, w_ih, w_hh, bias)
    return stack([stack([s.h for s in steps]), stack([s.c for s in steps])])


def _gru_equations(x, h0, w_ih, w_hh, b_ih, b_hh) -> Tensor:
    """The GRU layer as minigrad ops, step by step: (T, B, H) as GRULayer."""
    from minigrad.ops.movement import stack

    return stack([s.h for s in _gru_steps(x, h0, w_ih, w_hh, b_ih, b_hh)])


# -- second order: backpropagation through time written with minigrad ops ----------------
#
# Under create_graph the kernels' backward is replaced by the same equations as ops, so that
# the gradients are differentiable again. The forward is run again first, as ops, because the
# gates the kernel saved are constants to the graph.


def _add(total: Tensor | None, term: Tensor) -> Tensor:
    return term if total is None else total + term


class _LSTMStep(NamedTuple):
    h_prev: Tensor
    c_prev: Tensor
    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor
    tanh_c: Tensor
    h: Tensor
    c: Tensor


def _lstm_steps(x, h0, c0, w_ih, w_hh, bias) -> list[_LSTMStep]:
    """The LSTM's equations (the module docstring of kernels/rnn.py) run as minigrad ops,
    every step's gates kept: the layer's forward as ops, and what its backward as ops needs."""
    from minigrad.ops.elementwise import sigmoid, tanh
    from minigrad.ops.movement import chunk

    h, c, steps = h0, c0, []
    for t in range(x.shape[0]):
        zi, zf, zg, zo = chunk(x[t] @ w_ih.mT + bias + h @ w_hh.mT, 4, -1)
        i, f, g, o = sigmoid(zi), sigmoid(zf), tanh(zg), sigmoid(zo)
        c_new = f * c + i * g
        tanh_c = tanh(c_new)
        h_new = o * tanh_c
        steps.append(_LSTMStep(h, c, i, f, g, o, tanh_c, h_new, c_new))
        h, c = h_new, c_new
    return steps


class _GRUStep(NamedTuple):
    h_prev: Tensor
    r: Tensor
    z: Tensor
    n: Tensor
    hn: Tensor
    h: Tensor


def _gru_steps(x, h0, w_ih, w_hh, b_ih, b_hh) -> list[_GRUStep]:
    """The GRU's equations run as minigrad ops, every step's gates kept."""
    from minigrad.ops.elementwise import sigmoid, tanh
    from minigrad.ops.movement import chunk

    h, steps = h0, []
    for t in range(x.shape[0]):
        xr, xz, xn = chunk(x[t] @ w_ih.mT + b_ih, 3, -1)
        hr, hz, hn = chunk(h @ w_hh.mT + b_hh, 3, -1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = tanh(xn + r * hn)
        h_new = (1 - z) * n + z * h
        steps.append(_GRUStep(h, r, z, n, hn, h_new))
        h = h_new
    return steps


def _lstm_backward_ops(x, h0, c0, w_ih, w_hh, bias, grad) -> tuple:
    from minigrad.ops.movement import cat, stack

    steps = _lstm_steps(x, h0, c0, w_ih, w_hh, bias)
    dh_next = dc_next = dw_ih = dw_hh = db = None
    dxs = []
    for t in reversed(range(x.shape[0])):
        h_prev, c_prev, i, f, g, o, tc, _, _ = steps[t]
        dh = _add(dh_next, grad[0, t])  # from the output and from step t + 1
        dc = _add(dc_next, grad[1, t] + dh * o * (1 - tc * tc))
        dz = cat(
            [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
             dh * tc * o * (1 - o)],
            -1,
        )
        dxs.append(dz @ w_ih)
        dh_next, dc_next = dz @ w_hh, dc * f
        dw_ih, dw_hh = _add(dw_ih, dz.mT @ x[t]), _add(dw_hh, dz.mT @ h_prev)
        db = _add(db, dz.sum(0))
    return stack(dxs[::-1]), dh_next, dc_next, dw_ih, dw_hh, db


def _gru_backward_ops(x, h0, w_ih, w_hh, b_ih, b_hh, grad) -> tuple:
    from minigrad.ops.movement import cat, stack

    steps = _gru_steps(x, h0, w_ih, w_hh, b_ih, b_hh)
    dh_next = dw_ih = dw_hh = db_ih = db_hh = None
    dxs = []
    for t in reversed(range(x.shape[0])):
        h_prev, r, z, n, hn, _ = steps[t]
        dh = _add(dh_next, grad[t])
        dn = dh * (1 - z) * (1 - n * n)  # through n's tanh
        dr = dn * hn * r * (1 - r)
        dz = dh * (h_prev - n) * z * (1 - z)
        d_input, d_hidden = cat([dr, dz, dn], -1), cat([dr, dz, dn * r], -1)
        dxs.append(d_input @ w_ih)
        dh_next = dh * z + d_hidden @ w_hh
        dw_ih, dw_hh = _add(dw_ih, d_input.mT @ x[t]), _add(dw_hh, d_hidden.mT @ h_prev)
        db_ih, db_hh = _add(db_ih, d_input.sum(0)), _add(db_hh, d_hidden.sum(0))
    return stack(dxs[::-1]), dh_next, dw_ih, dw_hh, db_ih, db_hh


# -- references for the registry: the textbook equations, one step at a time ---------------


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _np_lstm(xs, h0, c0, w_ih, w_hh, bias):
    h, c, hs, cs = h0, c0, [], []
    for x in xs:
        i, f, g, o = np.split(x @ w_ih.T + bias + h @ w_hh.T, 4, axis=-1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        h = _sig(o) * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.stack([np.stack(hs), np.stack(cs)])


def _np_gru(xs, h0, w_ih, w_hh, b_ih, b_hh):
    h, hs = h0, []
    for x in xs:
        xr, xz, xn = np.split(x @ w_ih.T + b_ih, 3, axis=-1)
        hr, hz, hn = np.split(h @ w_hh.T + b_hh, 3, axis=-1)
        r, z = _sig(xr + hr), _sig(xz + hz)
        h = (1 - z) * np.tanh(xn + r * hn) + z * h
        hs.append(h)
    return np.stack(hs)


def _rnn_sample(t, b, i, h, gates, lstm):
    def make(rng):
        g = gates * h
        args = [values(rng, (t, b, i)), values(rng, (b, h))]
        if lstm:
            args.append(values(rng, (b, h)))
        args += [values(rng, (g, i), (-0.8, 0.8)), values(rng, (g, h), (-0.8, 0.8))]
        args += [values(rng, (g,)) for _ in range(1 if lstm else 2)]
        return Sample(tuple(args))

    return make


register(
    OpSpec(
        "lstm_layer",
        lstm_layer,
        _np_lstm,
        fixed(_rnn_sample(4, 2, 3, 3, 4, True), _rnn_sample(1, 3, 2, 2, 4, True)),
    )
)
register(
    OpSpec(
        "gru_layer",
        gru_layer,
        _np_gru,
        fixed(_rnn_sample(4, 2, 3, 3, 3, False), _rnn_sample(1, 3, 2, 2, 3, False)),
    )
)
