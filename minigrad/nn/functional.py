"""``minigrad.nn.functional``, imported as ``F``: the functional API with PyTorch's names.

Everything here is a differentiable op from ``minigrad/ops``; the hot ones (conv, pooling,
softmax, cross-entropy, layer_norm, attention) run the kernels chosen in
``minigrad/backend.py``.
"""

from __future__ import annotations

import numpy as np

from minigrad import dtypes, random
from minigrad.autograd import derived, no_grad, untraceable
from minigrad.ops import (
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    conv1d,
    conv2d,
    cross_entropy,
    elu,
    gelu,
    huber_loss,
    kl_div,
    l1_loss,
    layer_norm,
    leaky_relu,
    log_softmax,
    logsigmoid,
    max_pool1d,
    max_pool2d,
    mse_loss,
    nll_loss,
    relu,
    scaled_dot_product_attention,
    sigmoid,
    silu,
    smooth_l1_loss,
    softmax,
    softplus,
    tanh,
)
from minigrad.ops.common import as_tensor, require_float
from minigrad.ops.indexing import getitem, where
from minigrad.ops.matmul import linear
from minigrad.tensor import Tensor

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsigmoid",
    "max_pool1d",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]


def dropout(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    1 / (1 - p), so the expected value is unchanged; the identity when not training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    shape, dtype = input.shape, input.dtype

    def mask() -> np.ndarray:  # each element 0 or 1 / (1 - p)
        return np.multiply(random.keep_mask(shape, p, generator), 1.0 / (1.0 - p), dtype=dtype)

    return input * Tensor._from_array(random.draw(mask))


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) at the integer indices ``input`` (any shape);
    rows read at ``padding_idx`` get no gradient, as in PyTorch."""
    idx = as_tensor(input)
    if not dtypes.is_integer(idx.dtype):
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    n = weight.shape[0]

    def in_range(i: np.ndarray) -> np.ndarray:  # an op, so that a compiled step checks too
        if i.size and (i.min() < 0 or i.max() >= n):
            bad = int(i.max() if i.max() >= n else i.min())
            raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings")
        return i

    idx = derived(in_range, idx)
    rows = getitem(weight, idx.data)
    if padding_idx is None:
        return rows
    if not -n <= padding_idx < n:
        raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for {n} embeddings")
    padding_idx %= n  # -1 is the last row, as in PyTorch
    keep = derived(lambda i: (i != padding_idx)[..., None], idx)
    return where(keep, rows, rows.detach())


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) over the batch and any spatial dims, as PyTorch.

    Training: batch statistics (biased variance), and the running statistics, if given, move
    by ``momentum`` towards the batch mean and the unbiased variance. Evaluation: the
    running statistics."""
    require_float(input, "batch_norm")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input (B, C, ...), got {input.shape}")
    c = input.shape[1]
    dims = (0,) + tuple(range(2, input.ndim))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        count = input.data.size // c
        if count < 2:
            raise ValueError(
                "batch_norm: training needs more than one value per channel, got input "
                f"{input.shape}"
            )
        # The statistics are taken around a shift, a constant for autograd: the channel means
        # accumulated in float64 and rounded to the input's dtype. Data far from zero (say
        # 1e3 + N(0, 1) in float32) then loses no digits to cancellation, and the output and
        # gradients are as exact as the dtype allows; mathematically nothing changes. The
        # running statistics take the float64 mean and variance, rounded once.
        untraceable("batch_norm in training mode (its statistics are computed outside the graph)")
        mean = input.data.mean(axis=dims, keepdims=True, dtype=np.float64)
        centred = input - Tensor._from_array(mean.astype(input.dtype))
        mean_offset = centred.mean(dims, keepdim=True)
        var = centred.var(dims, keepdim=True, correction=0)
        if running_mean is not None and running_var is not None:
            with no_grad():
                running_mean.data[...] = (
                    1 - momentum
                ) * running_mean.data + momentum * mean.reshape(c)
                biased = input.data.var(axis=dims, dtype=np.float64)
                unbiased = biased * count / (count - 1)
                running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation needs running_mean and running_var")
        centred = input
        mean_offset = running_mean.reshape(shape)
        var = running_var.reshape(shape)
    out = (centred - mean_offset) / (var + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
