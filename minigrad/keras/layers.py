"""Keras layers, built on minigrad.nn: Dense, Conv2D, MaxPooling2D, Flatten, Dropout,
Embedding, SimpleRNN, LSTM, GRU.

As in Keras, data is channels-last ((B, H, W, C) images, (B, T, F) sequences), a layer
learns its input size when the model is built (from ``input_shape`` or the first batch), and
weights start as Keras initialises them: glorot-uniform kernels, orthogonal recurrent
kernels, zero biases (an LSTM's forget-gate bias at one), uniform(-0.05, 0.05) embeddings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import minigrad.nn as nn
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.ops.elementwise import cast
from minigrad.ops.movement import permute
from minigrad.tensor import Tensor

_ACTIVATIONS = {
    None: None,
    "linear": None,
    "relu": F.relu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "softmax": lambda x: F.softmax(x, -1),
    "gelu": F.gelu,
    "elu": F.elu,
    "selu": None,  # listed so the error below can say it is missing
    "swish": F.silu,
    "silu": F.silu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "softplus": F.softplus,
}


def get_activation(name: Any) -> Any:
    if callable(name):
        return name
    fn = _ACTIVATIONS.get(name, "missing")
    if fn == "missing" or (fn is None and name not in (None, "linear")):
        known = ", ".join(sorted(k for k, v in _ACTIVATIONS.items() if k and v))
        raise ValueError(f"keras: unknown activation {name!r} (known: linear, {known})")
    return fn


class Layer:
    """A Keras layer: configuration now, minigrad modules once ``build(input_shape)`` runs."""

    def __init__(self, input_shape: tuple | None = None, name: str | None = None, **kwargs: Any):
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.name = name or type(self).__name__.lower()
        self.module: nn.Module | None = None
        self.output_shape: tuple | None = None

    def build(self, input_shape: tuple) -> tuple:
        """Create the weights for inputs of shape (None, ...); returns the output shape."""
        raise NotImplementedError

    def call(self, x: Tensor, training: bool) -> Tensor:
        raise NotImplementedError


class Dense(Layer):
    """activation(x @ kernel + bias) on the last dim."""

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.activation, self.use_bias = units, get_activation(activation), use_bias

    def build(self, input_shape):
        self.module = nn.Linear(input_shape[-1], self.units, bias=self.use_bias)
        init.xavier_uniform_(self.module.weight)
        if self.use_bias:
            init.zeros_(self.module.bias)
        return input_shape[:-1] + (self.units,)

    def call(self, x, training):
        y = self.module(x)
        return y if self.activation is None else self.activation(y)


class Conv2D(Layer):
    """2-D convolution on channels-last images (B, H, W, C); padding 'valid' or 'same'."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        activation: Any = None,
        use_bias: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in ("valid", "same"):
            raise ValueError(f"Conv2D: padding must be 'valid' or 'same', got {padding!r}")
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.filters, self.kernel_size, self.strides, self.padding = filters, k, strides, padding
        self.activation, self.use_bias = get_activation(activation), use_bias

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"Conv2D: expected inputs (batch, H, W, C), got {input_shape}")
        _, h, w, c = input_shape
        s = (self.strides, self.strides) if isinstance(self.strides, int) else tuple(self.strides)
        if self.padding == "same" and s != (1, 1):
            raise NotImplementedError("Conv2D: padding='same' with strides > 1 is not supported")
        self.module = nn.Conv2d(
            c,
            self.filters,
            self.kernel_size,
            s,
            self.padding if self.padding == "same" else 0,
            bias=self.use_bias,
        )
        init.xavier_uniform_(self.module.weight)
        if self.use_bias:
            init.zeros_(self.module.bias)
        if self.padding == "same":
            oh, ow = h, w
        else:
            oh = (h - self.kernel_size[0]) // s[0] + 1
            ow = (w - self.kernel_size[1]) // s[1] + 1
        return (None, oh, ow, self.filters)

    def call(self, x, training):
        y = permute(self.module(permute(x, (0, 3, 1, 2))), (0, 2, 3, 1))
        return y if self.activation is None else self.activation(y)


class MaxPooling2D(Layer):
    """Max pooling on channels-last images; padding 'valid'."""

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        if padding != "valid":
            raise NotImplementedError("MaxPooling2D: only padding='valid' is supported")
        self.pool_size = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
        self.strides = (
            self.pool_size
            if strides is None
            else ((strides, strides) if isinstance(strides, int) else tuple(strides))
        )

    def build(self, input_shape):
        _, h, w, c = input_shape
        self.module = nn.MaxPool2d(self.pool_size, self.strides)
        return (
            None,
            (h - self.pool_size[0]) // self.strides[0] + 1,
            (w - self.pool_size[1]) // self.strides[1] + 1,
            c,
        )

    def call(self, x, training):
        return permute(self.module(permute(x, (0, 3, 1, 2))), (0, 2, 3, 1))


class Flatten(Layer):
    def build(self, input_shape):
        return (None, int(np.prod(input_shape[1:])))

    def call(self, x, training):
        return x.reshape(x.shape[0], -1)


class Dropout(Layer):
    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate

    def build(self, input_shape):
        return input_shape

    def call(self, x, training):
        return F.dropout(x, self.rate, training)


class Embedding(Layer):
    """Rows of a (input_dim, output_dim) table at integer indices."""

    def __init__(self, input_dim: int, output_dim: int, input_length: int | None = None, **kwargs):
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = input_dim, output_dim

    def build(self, input_shape):
        self.module = nn.Embedding(self.input_dim, self.output_dim)
        init.uniform_(self.module.weight, -0.05, 0.05)
        return tuple(input_shape) + (self.output_dim,)

    def call(self, x, training):
        return self.module(x if x.dtype.kind in "iu" else cast(x, np.int64))


class _Recurrent(Layer):
    _kind = "RNN"

    def __init__(
        self,
        units: int,
        activation: str = "tanh",
        return_sequences: bool = False,
        return_state: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if return_state:
            raise NotImplementedError(f"{type(self).__name__}: return_state is not supported")
        if activation not in ("tanh", "relu") or (activation != "tanh" and self._kind != "RNN"):
            raise ValueError(f"{type(self).__name__}: activation {activation!r} is not supported")
        self.units, self.activation, self.return_sequences = units, activation, return_sequences

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__}: expected inputs (batch, timesteps, features), "
                f"got {input_shape}"
            )
        features = input_shape[-1]
        if self._kind == "RNN":
            self.module = nn.RNN(
                features, self.units, nonlinearity=self.activation, batch_first=True
            )
        else:
            self.module = getattr(nn, self._kind)(features, self.units, batch_first=True)
        m = self.module
        gates = m.weight_ih_l0.shape[0] // self.units
        init.xavier_uniform_(m.weight_ih_l0)
        for g in range(gates):  # Keras: each gate's recurrent kernel orthogonal
            block = Tensor(np.empty((self.units, self.units), m.weight_hh_l0.dtype))
            init.orthogonal_(block)
            m.weight_hh_l0.data[g * self.units : (g + 1) * self.units] = block.data
        init.zeros_(m.bias_ih_l0)
        init.zeros_(m.bias_hh_l0)
        if self._kind == "LSTM":  # unit_forget_bias
            m.bias_ih_l0.data[self.units : 2 * self.units] = 1.0
        steps = input_shape[1]
        return (None, steps, self.units) if self.return_sequences else (None, self.units)

    def call(self, x, training):
        out, _ = self.module(x)
        return out if self.return_sequences else out[:, -1]


class SimpleRNN(_Recurrent):
    _kind = "RNN"


class LSTM(_Recurrent):
    _kind = "LSTM"


class GRU(_Recurrent):
    """Keras's GRU with ``reset_after=True`` (its default), which is PyTorch's equation."""

    _kind = "GRU"
