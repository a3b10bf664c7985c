"""Layer normalization on the fused kernel (minigrad/backend.py picks Numba or NumPy)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.common import as_tensor, contiguous, operands, require_float
from minigrad.ops.movement import reshape
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor


class LayerNorm(Function):
    # x (R, D); optional weight (D,) and bias (D,) as further inputs
    @staticmethod
    def forward(ctx, x, *affine, eps, has_weight, has_bias):
        weight = affine[0] if has_weight else None
        bias = affine[-1] if has_bias else None
        y, mean, rstd = backend.layer_norm.layer_norm_forward(contiguous(x), weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)  # x itself: under create_graph it is
        ctx.flags = (has_weight, has_bias, eps)  # then connected to the graph
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_tensors
        has_weight, has_bias, eps = ctx.flags
        if ctx._create_graph:
            dx, dw, db = _layer_norm_backward_ops(x, weight, grad, eps)
        else:
            dx, dw, db = backend.layer_norm.layer_norm_backward(
                contiguous(x), weight, mean, rstd, contiguous(grad)
            )
        return (dx,) + ((dw,) if has_weight else ()) + ((db,) if has_bias else ())


def _layer_norm_backward_ops(x: Tensor, weight: Tensor | None, grad: Tensor, eps: float):
    """The kernel's backward written with minigrad ops, for create_graph: the statistics are
    recomputed from x (the saved mean and 1/std are constants), so that the result is
    differentiable again."""
    centred = x - x.mean(1, keepdim=True)
    rstd = ((centred * centred).mean(1, keepdim=True) + eps) ** -0.5
    xhat = centred * rstd
    dxhat = grad if weight is None else grad * weight
    dx = rstd * (
        dxhat - dxhat.mean(1, keepdim=True) - xhat * (dxhat * xhat).mean(1, keepdim=True)
    )
    return dx, (grad * xhat).sum(0), grad.sum(0)


def layer_norm(
    input: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dims (mean 0, variance 1, biased),
    then scale by ``weight`` and shift by ``bias`` (both of ``normalized_shape``)."""
    require_float(input, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    n = len(shape)
    if n == 0 or input.shape[input.ndim - n :] != shape or input.ndim < n:
        raise ValueError(
            f"layer_norm: input of shape {input.shape} does not end in normalized_shape {shape}"
        )
    d = math.prod(shape)
    inputs = [reshape(input, (-1, d)) if input.numel() else reshape(input, (0, d))]
    for label, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            p = operands(as_tensor(p, like=input), input)[0]
            if p.shape != shape:
                raise ValueError(
                    f"layer_norm: {label} of shape {p.shape} != normalized_shape {shape}"
                )
            inputs.append(reshape(p, (d,)))
    out = LayerNorm.apply(
        *inputs, eps=float(eps), has_weight=weight is not None, has_bias=bias is not None
    )
    return reshape(out, input.shape)


def _np_layer_norm(x, shape, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


register(
    OpSpec(
        "layer_norm",
        lambda x, w, b: layer_norm(x, w.shape, w, b),
        lambda x, w, b: _np_layer_norm(x, w.shape, w, b),
        fixed(
            lambda rng: Sample((values(rng, (3, 5)), values(rng, (5,)), values(rng, (5,)))),
            lambda rng: Sample(
                (values(rng, (2, 3, 2, 2)), values(rng, (2, 2)), values(rng, (2, 2)))
            ),
        ),
    )
)
register(
    OpSpec(
        "layer_norm_plain",
        lambda x: layer_norm(x, x.shape[-1]),
        lambda x: _np_layer_norm(x, (x.shape[-1],)),
        fixed(lambda rng: Sample((values(rng, (4, 6)),))),
    )
)
