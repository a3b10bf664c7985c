"""Recurrent layers with PyTorch's equations, parameter names and layouts.

Parameters of layer k (and of its reverse direction, suffix ``_reverse``):
``weight_ih_l{k}`` (G*H, input), ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}``
(G*H,), with G = 1 (RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU: r, z, n); all initialised
uniform in +-1/sqrt(H), as PyTorch. A state dict therefore loads into ``torch.nn.LSTM`` as is.

How a layer runs: LSTM and GRU layers run on the fused kernels of kernels/rnn.py, one op per
layer and direction (minigrad/ops/rnn.py), which take the input projection of every step
(it does not depend on the recurrence) and the recurrence together. RNN runs step by step
from plain ops, the input projection first as one matmul over the whole sequence: the
readable version of the same idea.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import dtypes
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
from minigrad.ops.indexing import getitem
from minigrad.ops.matmul import matmul
from minigrad.ops.movement import cat, reshape, squeeze, stack, transpose, unsqueeze
from minigrad.ops.rnn import gru_layer, lstm_layer
from minigrad.tensor import Tensor

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_REVERSE_TIME = (slice(None, None, -1),)


def _parameter(*shape: int) -> Parameter:
    return Parameter(np.empty(shape, dtypes.get_default_dtype()))


def _reset_uniform(module: Module, hidden_size: int) -> None:
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _zeros_state(batch: int, hidden: int, like: Tensor) -> Tensor:
    return Tensor._from_array(np.zeros((batch, hidden), like.dtype))


# -- one layer, one direction, over the whole sequence (T, B, features) ----------------------


def _input_projection(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> Tensor:
    """x (T, B, I) @ w_ih.T + bias for all steps at once: (T, B, G*H)."""
    t, b, features = x.shape
    flat = F.linear(reshape(x, (t * b, features)), w_ih, bias)
    return reshape(flat, (t, b, w_ih.shape[0]))


def _simple_recurrence(xw: Tensor, h: Tensor, w_hh: Tensor, nonlinearity: str) -> Tensor:
    """h_t = act(xw_t + h_{t-1} @ w_hh.T), one step at a time; returns every h (T, B, H)."""
    act = F.tanh if nonlinearity == "tanh" else F.relu
    w_t = w_hh.mT
    outputs = []
    for t in range(xw.shape[0]):
        h = act(getitem(xw, t) + matmul(h, w_t))
        outputs.append(h)
    return stack(outputs)


def _run_direction(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """One direction of one layer: returns (outputs (T, B, H), h_T, c_T or None)."""
    # b_hh is added at every step just like b_ih (except in the GRU's n gate): one bias
    bias = None if b_ih is None else b_ih + b_hh
    if mode == "LSTM":
        hc = lstm_layer(x, h0, c0, w_ih, w_hh, bias)
        return getitem(hc, 0), getitem(hc, (0, -1)), getitem(hc, (1, -1))
    if mode == "GRU":
        hs = gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh)
        return hs, getitem(hs, -1), None
    nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
    hs = _simple_recurrence(_input_projection(x, w_ih, bias), h0, w_hh, nonlinearity)
    return hs, getitem(hs, -1), None


# -- the sequence modules -------------------------------------------------------------------


class RNNBase(Module):
    """Shared by RNN, LSTM and GRU: parameters, input checks, layers and directions."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size is not supported yet")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be a positive int, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        gates = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                setattr(self, f"weight_ih_l{layer}{suffix}", _parameter(gates, layer_input))
                setattr(self, f"weight_hh_l{layer}{suffix}", _parameter(gates, hidden_size))
                if bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", _parameter(gates))
                    setattr(self, f"bias_hh_l{layer}{suffix}", _parameter(gates))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self, self.hidden_size)

    def _name(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"

    def _check_input(self, x: Tensor) -> bool:
        """Raise on a wrong input shape; returns whether the input is batched."""
        layout = "(B, T, {i})" if self.batch_first else "(T, B, {i})"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{self._name()}: expected input {layout.format(i=self.input_size)} or "
                f"(T, {self.input_size}) unbatched, got {x.shape}"
            )
        if x.shape[0 if x.ndim == 2 or not self.batch_first else 1] == 0:
            raise ValueError(f"{self._name()}: expected at least one time step, got {x.shape}")
        return x.ndim == 3

    def _initial_state(self, state: Any, batch: int, batched: bool, x: Tensor, what: str):
        """(L*D, B, H) initial states, zeros when not given."""
        count = self.num_layers * (2 if self.bidirectional else 1)
        if state is None:
            return [_zeros_state(batch, self.hidden_size, x)] * count
        expected = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{self._name()}: expected {what} of shape {expected}, got {tuple(state.shape)}"
            )
        if not batched:
            state = unsqueeze(state, 1)
        return [getitem(state, k) for k in range(count)]

    def _run(self, input: Tensor, h0: Any, c0: Any = None):
        batched = self._check_input(input)
        x = input if batched else unsqueeze(input, 1)
        if self.batch_first and batched:
            x = transpose(x, 0, 1)
        batch = x.shape[1]
        hs0 = self._initial_state(h0, batch, batched, x, "h0")
        cs0 = self._initial_state(c0, batch, batched, x, "c0") if self.mode == "LSTM" else None
        directions = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                suffix = "_reverse" if direction else ""
                seq = x if direction == 0 else getitem(x, _REVERSE_TIME)
                hs, h_last, c_last = _run_direction(
                    self.mode,
                    seq,
                    hs0[k],
                    None if cs0 is None else cs0[k],
                    getattr(self, f"weight_ih_l{layer}{suffix}"),
                    getattr(self, f"weight_hh_l{layer}{suffix}"),
                    getattr(self, f"bias_ih_l{layer}{suffix}", None),
                    getattr(self, f"bias_hh_l{layer}{suffix}", None),
                )
                outputs.append(hs if direction == 0 else getitem(hs, _REVERSE_TIME))
                h_n.append(h_last)
                c_n.append(c_last)
            x = outputs[0] if directions == 1 else cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        output = x
        if self.batch_first and batched:
            output = transpose(output, 0, 1)
        h_n, c_n = stack(h_n), (stack(c_n) if self.mode == "LSTM" else None)
        if not batched:
            output, h_n = squeeze(output, 1), squeeze(h_n, 1)
            c_n = None if c_n is None else squeeze(c_n, 1)
        return output, h_n, c_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    Input (T, B, input_size), (B, T, input_size) with ``batch_first``, or (T, input_size);
    ``hx`` (num_layers * directions, B, H). Returns (output (T, B, directions * H), h_n)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        output, h_n, _ = self._run(input, hx)
        return output, h_n


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's equations (gates i, f, g, o):

        i, f, o = sigmoid(x W_i*^T + b_i* + h W_h*^T + b_h*),  g = tanh(...)
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

    ``hx`` is a tuple (h0, c0), each (num_layers * directions, B, H). Returns
    (output (T, B, directions * H), (h_n, c_n))."""

    def __init__(self, input_size: int, hidden_size: int, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", input_size, hidden_size, *args, **kwargs)

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0, c0 = (None, None) if hx is None else hx
        output, h_n, c_n = self._run(input, h0, c0)
        return output, (h_n, c_n)


class GRU(RNNBase):
    """Gated recurrent unit, PyTorch's equations (gates r, z, n):

        r, z = sigmoid(x W_i*^T + b_i* + h W_h*^T + b_h*)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    Returns (output (T, B, directions * H), h_n)."""

    def __init__(self, input_size: int, hidden_size: int, *args: Any, **kwargs: Any) -> None:
        super().__init__("GRU", input_size, hidden_size, *args, **kwargs)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        output, h_n, _ = self._run(input, hx)
        return output, h_n


# -- cells: one time step --------------------------------------------------------------------


class RNNCellBase(Module):
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = self._gates * hidden_size
        self.weight_ih = _parameter(g, input_size)
        self.weight_hh = _parameter(g, hidden_size)
        if bias:
            self.bias_ih = _parameter(g)
            self.bias_hh = _parameter(g)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self, self.hidden_size)

    def _name(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"

    def _prepare(self, input: Tensor) -> tuple[Tensor, bool, int]:
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(
                f"{self._name()}: expected input (B, {self.input_size}) or ({self.input_size},), "
                f"got {input.shape}"
            )
        batched = input.ndim == 2
        x = input if batched else unsqueeze(input, 0)
        return x, batched, x.shape[0]

    def _state(self, state: Any, batch: int, batched: bool, x: Tensor, what: str) -> Tensor:
        if state is None:
            return _zeros_state(batch, self.hidden_size, x)
        expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{self._name()}: expected {what} of shape {expected}, got {tuple(state.shape)}"
            )
        return state if batched else unsqueeze(state, 0)

    def _bias_sum(self) -> Tensor | None:
        return None if self.bias_ih is None else self.bias_ih + self.bias_hh

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


def _unbatch(t: Tensor, batched: bool) -> Tensor:
    return t if batched else squeeze(t, 0)


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu), for input (B, I) or (I,)."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched, batch = self._prepare(input)
        h = self._state(hx, batch, batched, x, "hx")
        pre = F.linear(x, self.weight_ih, self._bias_sum()) + matmul(h, self.weight_hh.mT)
        act = F.tanh if self.nonlinearity == "tanh" else F.relu
        return _unbatch(act(pre), batched)


class LSTMCell(RNNCellBase):
    """One LSTM step on the fused kernel: returns (h', c') for input (B, I) or (I,) and
    ``hx = (h, c)`` (zeros when None)."""

    _gates = 4

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Tensor]:
        x, batched, batch = self._prepare(input)
        h0, c0 = (None, None) if hx is None else hx
        h = self._state(h0, batch, batched, x, "h")
        c = self._state(c0, batch, batched, x, "c")
        hc = lstm_layer(unsqueeze(x, 0), h, c, self.weight_ih, self.weight_hh, self._bias_sum())
        return _unbatch(getitem(hc, (0, 0)), batched), _unbatch(getitem(hc, (1, 0)), batched)


class GRUCell(RNNCellBase):
    """One GRU step on the fused kernel: h' for input (B, I) or (I,) and ``hx`` (B, H)."""

    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched, batch = self._prepare(input)
        h = self._state(hx, batch, batched, x, "hx")
        hs = gru_layer(
            unsqueeze(x, 0), h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        )
        return _unbatch(getitem(hs, 0), batched)
