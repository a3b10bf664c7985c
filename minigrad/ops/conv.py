"""Convolution ops on the im2col kernels (minigrad/backend.py picks Numba or NumPy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend, dtypes
from minigrad.autograd import Function
from minigrad.ops.common import as_tensor, contiguous, operands
from minigrad.ops.movement import squeeze, unsqueeze
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor


class Conv2d(Function):
    # x (B, C, H, W), w (O, C/G, KH, KW), optional bias (O,) -> (B, O, OH, OW)
    @staticmethod
    def forward(ctx, x, w, *bias, stride, padding, dilation, groups):
        # the inputs themselves are saved (not contiguous copies), so that under create_graph
        # they come back connected to the graph
        ctx.save_for_backward(x, w)
        x, w = contiguous(x), contiguous(w)
        ctx.params = (stride, padding, dilation, groups)
        b = bias[0] if bias else None
        if ctx.needs_input_grad[1]:
            # keep the im2col columns (up to 16 MB) for the weight gradient: recomputing them
            # was a tenth of a LeNet training step
            out, ctx.cols = backend.conv.conv2d_forward_keeping_columns(x, w, b, *ctx.params)
        else:
            out, ctx.cols = backend.conv.conv2d_forward(x, w, b, *ctx.params), None
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        cols, ctx.cols = ctx.cols, None  # freed with the node's other saved values
        has_bias = len(ctx.needs_input_grad) == 3
        if ctx._create_graph:  # the gradients as ops of their own, differentiable again
            dx = _input_grad(ctx.params, grad, w, x.shape) if ctx.needs_input_grad[0] else None
            dw = _weight_grad(ctx.params, x, grad, w.shape) if ctx.needs_input_grad[1] else None
            return (dx, dw, grad.sum((0, 2, 3))) if has_bias else (dx, dw)
        need = (
            ctx.needs_input_grad[0],
            ctx.needs_input_grad[1],
            has_bias and ctx.needs_input_grad[2],
        )
        dx, dw, db = backend.conv.conv2d_backward(
            contiguous(x), contiguous(w), contiguous(grad), *ctx.params, need=need, cols=cols
        )
        ctx.owned(dx, dw, db)  # the kernels allocate each of them
        return (dx, dw, db) if has_bias else (dx, dw)


# Second order. A convolution's two gradients are bilinear: dx = Conv2dInputGrad(dy, w) (a
# transposed convolution) and dw = Conv2dWeightGrad(x, dy). Their own gradients are made of
# the same three ops, so they differentiate to any order (h is the incoming gradient):
#   InputGrad(g, w):  d/dg = conv2d(h, w),     d/dw = WeightGrad(h, g)
#   WeightGrad(x, g): d/dx = InputGrad(g, h),  d/dg = conv2d(x, h)
# On arrays the three run the first-order kernels; on Tensors (create_graph) they are ops.


def _conv(params, x, w):
    if isinstance(x, Tensor):
        return Conv2d.apply(x, w, **dict(zip(("stride", "padding", "dilation", "groups"), params)))
    return backend.conv.conv2d_forward(contiguous(x), contiguous(w), None, *params)


def _input_grad(params, g, w, x_shape):
    if isinstance(g, Tensor):
        return Conv2dInputGrad.apply(g, w, x_shape=tuple(x_shape), params=params)
    shape_only = np.empty(x_shape, g.dtype)  # the kernel reads the input's shape only
    return backend.conv.conv2d_backward(
        shape_only, contiguous(w), contiguous(g), *params, need=(True, False, False)
    )[0]


def _weight_grad(params, x, g, w_shape):
    if isinstance(x, Tensor):
        return Conv2dWeightGrad.apply(x, g, w_shape=tuple(w_shape), params=params)
    shape_only = np.empty(w_shape, x.dtype)  # the kernel reads the weight's shape only
    return backend.conv.conv2d_backward(
        contiguous(x), shape_only, contiguous(g), *params, need=(False, True, False)
    )[1]


class Conv2dInputGrad(Function):
    @staticmethod
    def forward(ctx, g, w, x_shape, params):
        ctx.params = params
        ctx.save_for_backward(g, w)
        return _input_grad(params, g, w, x_shape)

    @staticmethod
    def backward(ctx, h):
        g, w = ctx.saved_tensors
        dg = _conv(ctx.params, h, w) if ctx.needs_input_grad[0] else None
        dw = _weight_grad(ctx.params, h, g, w.shape) if ctx.needs_input_grad[1] else None
        return dg, dw


class Conv2dWeightGrad(Function):
    @staticmethod
    def forward(ctx, x, g, w_shape, params):
        ctx.params = params
        ctx.save_for_backward(x, g)
        return _weight_grad(params, x, g, w_shape)

    @staticmethod
    def backward(ctx, h):
        x, g = ctx.saved_tensors
        dx = _input_grad(ctx.params, g, h, x.shape) if ctx.needs_input_grad[0] else None
        dg = _conv(ctx.params, x, h) if ctx.needs_input_grad[1] else None
        return dx, dg


def _float_operands(name: str, x: Any, w: Any) -> tuple[Tensor, Tensor]:
    x, w = operands(x, w)
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{name}: expected floating-point input and weight, got {x.dtype}")
    return x, w


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    input (B, C, H, W) or unbatched (C, H, W); weight (O, C/groups, KH, KW); bias (O,).
    padding: int, pair, 'same' (stride 1) or 'valid'.
    """
    x, w = _float_operands("conv2d", input, weight)
    if w.ndim != 4:
        raise ValueError(f"conv2d: expected weight of shape (O, C/groups, KH, KW), got {w.shape}")
    if x.ndim not in (3, 4):
        raise ValueError(
            f"conv2d: expected input of shape (B, C, H, W) or (C, H, W), got {x.shape}"
        )
    cg = w.shape[1]
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if x.shape[-3] % groups or w.shape[0] % groups:
        raise ValueError(
            f"conv2d: in_channels {x.shape[-3]} and out_channels {w.shape[0]} must both be "
            f"divisible by groups {groups}"
        )
    if x.shape[-3] != cg * groups:
        raise ValueError(
            f"conv2d: weight {w.shape} expects {cg * groups} input channels (C/groups = {cg}, "
            f"groups = {groups}), but the input {x.shape} has {x.shape[-3]}"
        )
    unbatched = x.ndim == 3
    if unbatched:
        x = unsqueeze(x, 0)
    inputs = [x, w]
    if bias is not None:
        inputs.append(operands(as_tensor(bias, like=w), w)[0])
    out = Conv2d.apply(*inputs, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return squeeze(out, 0) if unbatched else out


def _pair_1d(value: Any, fill: int) -> Any:
    """A 1-D op's int (or 1-tuple) argument as the (H, W) pair of the 2-D op with H = 1."""
    if isinstance(value, str):
        return value
    v = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    return (fill, v)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation: input (B, C, L) or (C, L), weight (O, C/groups, K)."""
    x, w = _float_operands("conv1d", input, weight)
    if w.ndim != 3:
        raise ValueError(f"conv1d: expected weight of shape (O, C/groups, K), got {w.shape}")
    if x.ndim not in (2, 3):
        raise ValueError(f"conv1d: expected input of shape (B, C, L) or (C, L), got {x.shape}")
    out = conv2d(
        unsqueeze(x, -2),
        unsqueeze(w, 2),
        bias,
        _pair_1d(stride, 1),
        _pair_1d(padding, 0),
        _pair_1d(dilation, 1),
        groups,
    )
    return squeeze(out, -2)


def _np_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """A direct (loop over output positions) reference, independent of im2col."""
    # the shared geometry rules (kernels/checks.py), not the computation
    (kh, kw), (sh, sw), (pt, pl), (dh, dw), (oh, ow) = backend.checks.conv_geometry(
        "conv2d", x, w, stride, padding, dilation, groups
    )
    bsz, c = x.shape[:2]
    o = w.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pt + kh * dh), (pl, pl + kw * dw)))
    out = np.zeros((bsz, o, oh, ow))
    cg, og = c // groups, o // groups
    for i in range(oh):
        for j in range(ow):
            patch = xp[
                :,
                :,
                i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                j * sw : j * sw + dw * (kw - 1) + 1 : dw,
            ]
            for g in range(groups):
                out[:, g * og : (g + 1) * og, i, j] = np.einsum(
                    "bckl,ockl->bo", patch[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og]
                )
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def _conv_sample(xs, ws, bias=True, **kw):
    def make(rng):
        args = (values(rng, xs), values(rng, ws)) + ((values(rng, (ws[0],)),) if bias else ())
        return Sample(args, kw)

    return make


register(
    OpSpec(
        "conv2d",
        conv2d,
        _np_conv2d,
        fixed(
            _conv_sample((2, 3, 5, 6), (4, 3, 3, 3), padding=1),
            _conv_sample(
                (1, 4, 6, 5), (2, 2, 2, 3), bias=False, stride=(2, 1), dilation=(1, 2), groups=2
            ),
            _conv_sample((1, 2, 4, 4), (2, 2, 2, 2), padding="same"),
            _conv_sample((1, 1, 3, 3), (1, 1, 1, 1)),
        ),
    )
)
register(
    OpSpec(
        "conv1d",
        conv1d,
        lambda x, w, b=None, **kw: _np_conv2d(
            x[:, :, None],
            w[:, :, None],
            b,
            _pair_1d(kw.get("stride", 1), 1),
            _pair_1d(kw.get("padding", 0), 0),
            1,
            1,
        )[:, :, 0],
        fixed(_conv_sample((2, 3, 7), (4, 3, 3), stride=2, padding=1)),
    )
)
