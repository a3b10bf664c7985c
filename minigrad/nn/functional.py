"""``minigrad.nn.functional``, imported as ``F``: the functional API with PyTorch's names.

Everything here is a differentiable op from ``minigrad/ops``; the hot ones (conv, pooling,
softmax, cross-entropy, layer_norm, attention) run the kernels chosen in
``minigrad/backend.py``.
"""

from __future__ import annotations

from minigrad.ops import (
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    cross_entropy,
    layer_norm,
    log_softmax,
    max_pool1d,
    max_pool2d,
    nll_loss,
    relu,
    scaled_dot_product_attention,
    sigmoid,
    softmax,
    tanh,
)
from minigrad.ops.common import operands
from minigrad.ops.matmul import matmul
from minigrad.tensor import Tensor

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "conv1d",
    "conv2d",
    "cross_entropy",
    "layer_norm",
    "linear",
    "log_softmax",
    "max_pool1d",
    "max_pool2d",
    "nll_loss",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "tanh",
]


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias, with weight (out_features, in_features) as in PyTorch."""
    x, w = operands(input, weight)
    if w.ndim != 2:
        raise ValueError(
            f"linear: expected weight of shape (out_features, in_features), got {w.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight {w.shape} "
            f"(expected the last input dim to be {w.shape[1]})"
        )
    out = matmul(x, w.mT)
    return out if bias is None else out + bias
