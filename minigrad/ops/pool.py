"""Pooling ops on the pooling kernels (minigrad/backend.py picks Numba or NumPy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.common import contiguous, require_float
from minigrad.ops.conv import _pair_1d
from minigrad.ops.movement import squeeze, unsqueeze
from minigrad.ops.spec import OpSpec, register, unary
from minigrad.tensor import Tensor


class MaxPool2d(Function):
    # x (B, C, H, W) -> out (B, C, OH, OW); argmax (flat index in each plane) kept for backward
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        out, argmax = backend.pool.max_pool2d_forward(
            contiguous(x), kernel_size, stride, padding, dilation, ceil_mode
        )
        ctx.argmax = argmax
        ctx.geometry = (kernel_size, stride, padding, dilation)
        return out

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.input_shapes[0]
        argmax = ctx.argmax
        # A window that lies entirely in the padding (possible with dilation or ceil_mode)
        # gives -inf and argmax -1: no input element was chosen, so none gets its gradient.
        outside = argmax < 0
        if outside.any():
            grad = ctx.xp.where(outside, 0, grad)
            argmax = np.where(outside, 0, argmax).astype(ctx.argmax.dtype)
        if not ctx._create_graph:
            dx = backend.pool.max_pool2d_backward(contiguous(grad), argmax, shape, *ctx.geometry)
            ctx.owned(dx)  # allocated by the kernel (and by its twin)
            return dx
        # Differentiable form: the gradient lands on the chosen elements, dx = accumulate_at(...)
        b, c, _, w = shape
        rows = np.arange(b).reshape(-1, 1, 1, 1), np.arange(c).reshape(1, -1, 1, 1)
        index = (*rows, argmax // w, argmax % w)
        return ctx.xp.accumulate_at(shape, index, grad)


def _batched(name: str, x: Tensor, dims: int, layout: str) -> tuple[Tensor, bool]:
    require_float(x, name)
    if x.ndim not in (dims, dims + 1):
        raise ValueError(f"{name}: expected input of shape {layout}, got {x.shape}")
    return (unsqueeze(x, 0), True) if x.ndim == dims else (x, False)


def max_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Max over each window of (B, C, H, W) or (C, H, W); with ``return_indices`` also the
    int64 flat index (h * W + w) of each maximum, as PyTorch."""
    x, unbatched = _batched("max_pool2d", input, 3, "(B, C, H, W) or (C, H, W)")
    out = MaxPool2d.apply(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
    )
    indices = None
    if return_indices:
        node = out.grad_fn
        argmax = (
            node.argmax
            if node is not None
            else backend.pool.max_pool2d_forward(
                contiguous(x.data), kernel_size, stride, padding, dilation, ceil_mode
            )[1]
        )
        indices = Tensor._from_array(argmax.astype(np.int64))
    if unbatched:
        out = squeeze(out, 0)
        indices = None if indices is None else Tensor._from_array(indices.data[0])
    return (out, indices) if return_indices else out


def max_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Tensor:
    """Max over windows of (B, C, L) or (C, L)."""
    x, unbatched = _batched("max_pool1d", input, 2, "(B, C, L) or (C, L)")
    out = max_pool2d(
        unsqueeze(x, 2),
        _pair_1d(kernel_size, 1),
        None if stride is None else _pair_1d(stride, 1),
        _pair_1d(padding, 0),
        _pair_1d(dilation, 1),
        ceil_mode,
    )
    out = squeeze(out, 2)
    return squeeze(out, 0) if unbatched else out


class AvgPool2d(Function):
    @staticmethod
    def forward(
        ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ):
        ctx.params = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return backend.pool.avg_pool2d_forward(contiguous(x), *ctx.params)

    @staticmethod
    def backward(ctx, grad):
        return _avg_pool_grad(ctx.params, grad, ctx.input_shapes[0])


# An average pool is linear, so its gradient is a linear map of the incoming gradient, whose
# own gradient is the pool again: the pair differentiates to any order. On arrays both run
# the first-order kernels; on Tensors (create_graph) they are ops.
_AVG_KEYWORDS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                 "divisor_override")


def _avg_pool(params, h):
    if isinstance(h, Tensor):
        return AvgPool2d.apply(h, **dict(zip(_AVG_KEYWORDS, params)))
    return backend.pool.avg_pool2d_forward(contiguous(h), *params)


def _avg_pool_grad(params, g, x_shape):
    if isinstance(g, Tensor):
        return AvgPool2dGrad.apply(g, x_shape=tuple(x_shape), params=params)
    return backend.pool.avg_pool2d_backward(contiguous(g), tuple(x_shape), *params)


class AvgPool2dGrad(Function):
    @staticmethod
    def forward(ctx, g, x_shape, params):
        ctx.params = params
        return _avg_pool_grad(params, g, x_shape)

    @staticmethod
    def backward(ctx, h):
        return _avg_pool(ctx.params, h)


def avg_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over each window of (B, C, H, W) or (C, H, W), with PyTorch's divisor rules."""
    x, unbatched = _batched("avg_pool2d", input, 3, "(B, C, H, W) or (C, H, W)")
    out = AvgPool2d.apply(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )
    return squeeze(out, 0) if unbatched else out


def avg_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """Mean over windows of (B, C, L) or (C, L)."""
    x, unbatched = _batched("avg_pool1d", input, 2, "(B, C, L) or (C, L)")
    out = avg_pool2d(
        unsqueeze(x, 2),
        _pair_1d(kernel_size, 1),
        None if stride is None else _pair_1d(stride, 1),
        _pair_1d(padding, 0),
        ceil_mode,
        count_include_pad,
    )
    out = squeeze(out, 2)
    return squeeze(out, 0) if unbatched else out


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        ctx.output_size = output_size
        return _adaptive_pool(output_size, x)

    @staticmethod
    def backward(ctx, grad):
        return _adaptive_pool_grad(grad, ctx.input_shapes[0])


def _adaptive_pool(output_size, h):  # linear too: the same pairing as the average pool
    if isinstance(h, Tensor):
        return AdaptiveAvgPool2d.apply(h, output_size=output_size)
    return backend.pool.adaptive_avg_pool2d_forward(contiguous(h), output_size)


def _adaptive_pool_grad(g, x_shape):
    if isinstance(g, Tensor):
        return AdaptiveAvgPool2dGrad.apply(g, x_shape=tuple(x_shape))
    return backend.pool.adaptive_avg_pool2d_backward(contiguous(g), tuple(x_shape))


class AdaptiveAvgPool2dGrad(Function):
    @staticmethod
    def forward(ctx, g, x_shape):
        return _adaptive_pool_grad(g, x_shape)

    @staticmethod
    def backward(ctx, h):
        return _adaptive_pool(ctx.input_shapes[0][2:], h)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed (OH, OW) (an int for both; None keeps that input size)."""
    x, unbatched = _batched("adaptive_avg_pool2d", input, 3, "(B, C, H, W) or (C, H, W)")
    size = (
        (output_size, output_size)
        if isinstance(output_size, (int, type(None)))
        else tuple(output_size)
    )
    size = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(size))
    out = AdaptiveAvgPool2d.apply(x, output_size=size)
    return squeeze(out, 0) if unbatched else out


# -- specs: the references are independent NumPy loops over windows -------------------------


def _np_pool(x, reduce, kernel_size, stride=None, padding=0, fill=0.0):
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    p = (padding, padding) if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    oh = (xp.shape[2] - k[0]) // s[0] + 1
    ow = (xp.shape[3] - k[1]) // s[1] + 1
    out = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(
                xp[:, :, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]], axis=(2, 3)
            )
    return out


register(
    OpSpec(
        "max_pool2d",
        max_pool2d,
        lambda x, **kw: _np_pool(x, np.max, fill=-np.inf, **kw),
        unary(
            shapes=[(2, 3, 4, 6), (1, 2, 5, 5)],
            kwargs=({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}),
        ),
    )
)
register(
    OpSpec(
        "max_pool1d",
        lambda x: max_pool1d(x, 3, 2, 1),
        lambda x: _np_pool(x[:, :, None], np.max, (1, 3), (1, 2), (0, 1), fill=-np.inf)[:, :, 0],
        unary(shapes=[(2, 3, 8)]),
    )
)
register(
    OpSpec(
        "avg_pool2d",
        avg_pool2d,
        lambda x, **kw: _np_pool(x, np.mean, **kw),
        unary(
            shapes=[(2, 3, 4, 6)],
            kwargs=({"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}),
        ),
    )
)
register(
    OpSpec(
        "avg_pool1d",
        lambda x: avg_pool1d(x, 2),
        lambda x: _np_pool(x[:, :, None], np.mean, (1, 2))[:, :, 0],
        unary(shapes=[(2, 3, 8)]),
    )
)


def _np_adaptive(x, size):
    oh, ow = size
    h, w = x.shape[2:]
    out = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, h1 = i * h // oh, -(-(i + 1) * h // oh)
            w0, w1 = j * w // ow, -(-(j + 1) * w // ow)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


register(
    OpSpec(
        "adaptive_avg_pool2d",
        lambda x: adaptive_avg_pool2d(x, (2, 3)),
        lambda x: _np_adaptive(x, (2, 3)),
        unary(shapes=[(2, 3, 5, 7), (1, 1, 2, 2)]),
    )
)
