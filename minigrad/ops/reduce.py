"""Reductions: sum, mean, max/min, var/std, logsumexp, softmax, log_softmax, argmax.

``dim`` is None (all dims), an int or a tuple of ints; ``keepdim`` keeps reduced dims as
size 1. Backward formulas first put the reduced dims back (``_keep``) so the gradient
broadcasts against the input.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Function, derived
from minigrad.ops.common import contiguous, normalize_dim, normalize_dims, promote_to_float
from minigrad.ops.elementwise import sqrt
from minigrad.ops.spec import OpSpec, register, unary
from minigrad.tensor import Tensor


def _keep(xp: Any, grad: Any, in_shape: tuple, dims: tuple, keepdim: bool) -> Any:
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if keepdim:
        return grad
    shape = tuple(1 if i in dims else n for i, n in enumerate(in_shape))
    return xp.reshape(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.dims, ctx.keepdim = dims, keepdim
        # np.sum(x, ...) is this call behind two layers of Python that cost twice the sum
        return np.add.reduce(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.input_shapes[0]
        grad = _keep(ctx.xp, grad, shape, ctx.dims, ctx.keepdim)
        return ctx.xp.broadcast_to(grad, shape)


def sum(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Sum over ``dim`` (all dims if None)."""
    dims = normalize_dims(dim, x.ndim, "sum")
    return Sum.apply(x, dims=dims, keepdim=keepdim)


_DIM_KWARGS = ({}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, -1)})
_MULTI = [(2, 3), (2, 1, 3), (4, 5)]


def _np_kwargs(fn):
    """Adapt a NumPy reduction to PyTorch's ``dim=``/``keepdim=`` keywords."""

    def ref(x, dim=None, keepdim=False, **kw):
        return fn(x, axis=dim if not isinstance(dim, list) else tuple(dim), keepdims=keepdim, **kw)

    return ref


register(OpSpec("sum", sum, _np_kwargs(np.sum), unary(kwargs=_DIM_KWARGS, shapes=_MULTI)))


def mean(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Mean over ``dim``: the sum divided by the number of elements reduced."""
    x = promote_to_float(x)
    dims = normalize_dims(dim, x.ndim, "mean")
    count = math.prod(x.shape[d] for d in dims)
    if count == 0:
        raise ValueError(f"mean: reducing dims {dims} of shape {x.shape} averages no elements")
    return sum(x, dims, keepdim) / count


register(OpSpec("mean", mean, _np_kwargs(np.mean), unary(kwargs=_DIM_KWARGS, shapes=_MULTI)))


def _check_reduced_dims_not_empty(name: str, shape: tuple, dims: tuple) -> None:
    """A max over no elements is undefined (PyTorch refuses too); other dims may be empty,
    which gives an empty result."""
    empty = [d for d in dims if shape[d] == 0]
    if empty or (not dims and math.prod(shape) == 0):
        raise ValueError(
            f"{name}: can't reduce over dim {empty[0] if empty else dims} of size 0 "
            f"(tensor of shape {shape})"
        )


class Amax(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        _check_reduced_dims_not_empty("amax", x.shape, dims)
        out = np.max(x, axis=dims, keepdims=True)
        hit = x == out
        # Ties share the gradient evenly, as torch.amax does.
        ctx.save_for_backward(hit / np.sum(hit, axis=dims, keepdims=True))
        ctx.dims, ctx.keepdim = dims, keepdim
        return out if keepdim else np.squeeze(out, axis=dims)

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return _keep(ctx.xp, grad, ctx.input_shapes[0], ctx.dims, ctx.keepdim) * share


def amax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Maximum over ``dim``; tied maxima share the gradient evenly."""
    return Amax.apply(x, dims=normalize_dims(dim, x.ndim, "amax"), keepdim=keepdim)


def amin(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Minimum over ``dim``: -amax(-x)."""
    return -amax(-x, dim, keepdim)


register(OpSpec("amax", amax, _np_kwargs(np.max), unary(kwargs=_DIM_KWARGS, shapes=_MULTI)))
register(OpSpec("amin", amin, _np_kwargs(np.min), unary(kwargs=_DIM_KWARGS, shapes=_MULTI)))

MaxMin = namedtuple("MaxMin", ["values", "indices"])


def _arg_extreme(np_arg, name: str, x: Tensor, dim: int | None, keepdim: bool) -> Tensor:
    if dim is None:
        _check_reduced_dims_not_empty(name, x.shape, tuple(range(x.ndim)))
        return derived(lambda a: np.asarray(np_arg(a), dtype=np.int64), x)
    d = normalize_dim(dim, x.ndim, name)
    if x.ndim == 0:  # a 0-d tensor is its own extreme, at index 0 (as PyTorch)
        return Tensor._from_array(np.zeros((), dtype=np.int64))
    _check_reduced_dims_not_empty(name, x.shape, (d,))
    return derived(lambda a: np_arg(a, axis=d, keepdims=keepdim).astype(np.int64), x)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first maximum, of the flattened tensor if ``dim`` is None (int64)."""
    return _arg_extreme(np.argmax, "argmax", x, dim, keepdim)


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first minimum, of the flattened tensor if ``dim`` is None (int64)."""
    return _arg_extreme(np.argmin, "argmin", x, dim, keepdim)


def _values_and_indices(arg_fn, name: str, x: Tensor, dim: int, keepdim: bool) -> MaxMin:
    """(values, indices) along ``dim``: the values are gathered at the indices, so the
    gradient goes to exactly that element, as in PyTorch."""
    from minigrad.ops.indexing import gather

    d = normalize_dim(dim, x.ndim, name)
    if x.ndim == 0:  # a 0-d tensor: itself (a copy in the graph) at index 0
        return MaxMin(x.clone(), arg_fn(x, d))
    idx = arg_fn(x, d, keepdim=True)
    values = gather(x, d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return MaxMin(values, idx)


def max(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """``max(x)``: the largest value (ties share the gradient). ``max(x, dim)``: the named
    tuple (values, indices) along ``dim``."""
    return amax(x) if dim is None else _values_and_indices(argmax, "max", x, dim, keepdim)


def min(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """Like ``max``, for the smallest value."""
    return amin(x) if dim is None else _values_and_indices(argmin, "min", x, dim, keepdim)


register(
    OpSpec(
        "max_dim",
        lambda x: max(x, 1).values,
        lambda x: np.max(x, axis=1),
        unary(shapes=[(2, 3), (4, 5, 2)]),
    )
)
register(
    OpSpec(
        "min_dim",
        lambda x: min(x, -1, keepdim=True).values,
        lambda x: np.min(x, axis=-1, keepdims=True),
        unary(shapes=[(2, 3), (4, 5, 2)]),
    )
)


def var(x: Tensor, dim: Any = None, keepdim: bool = False, correction: int = 1) -> Tensor:
    """Variance over ``dim``, dividing by N - correction (1: unbiased, as PyTorch's default)."""
    x = promote_to_float(x)
    dims = normalize_dims(dim, x.ndim, "var")
    n = math.prod(x.shape[d] for d in dims)
    if n - correction <= 0:
        raise ValueError(
            f"var: {n} element(s) along dims {dims} of shape {x.shape} is too few for "
            f"correction={correction}"
        )
    centered = x - mean(x, dims, keepdim=True)
    return sum(centered * centered, dims, keepdim) / (n - correction)


def std(x: Tensor, dim: Any = None, keepdim: bool = False, correction: int = 1) -> Tensor:
    """Standard deviation: sqrt(var)."""
    return sqrt(var(x, dim, keepdim=keepdim, correction=correction))


register(
    OpSpec(
        "var",
        var,
        lambda x, dim=None, keepdim=False: np.var(x, axis=dim, keepdims=keepdim, ddof=1),
        unary(kwargs=({}, {"dim": 0}, {"dim": -1, "keepdim": True}), shapes=[(5,), (3, 4)]),
    )
)
register(
    OpSpec(
        "std",
        lambda x: std(x, -1, correction=0),
        lambda x: np.std(x, axis=-1),
        unary(shapes=[(5,), (3, 4)]),
    )
)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        m = np.max(x, axis=dims, keepdims=True, initial=-np.inf)  # -inf over no elements
        m = np.where(np.isfinite(m), m, 0)  # rows of -inf stay -inf instead of nan
        with np.errstate(divide="ignore"):  # log(0): an empty or all -inf row gives -inf
            out = np.log(np.sum(np.exp(x - m), axis=dims, keepdims=True)) + m
        if not keepdim:
            out = np.squeeze(out, axis=dims)
        # Save the returned array itself: under create_graph it is rebuilt as this node's
        # output, connected to x, whereas any other array would count as a constant.
        ctx.save_for_backward(x, out)
        ctx.dims, ctx.keepdim = dims, keepdim
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        xp = ctx.xp
        if not ctx.keepdim:
            out = xp.reshape(out, tuple(1 if i in ctx.dims else n for i, n in enumerate(x.shape)))
        return _keep(xp, grad, x.shape, ctx.dims, ctx.keepdim) * xp.exp(x - out)


def logsumexp(x: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x), dim)), computed without overflow."""
    dims = normalize_dims(dim, x.ndim, "logsumexp")
    return LogSumExp.apply(promote_to_float(x), dims=dims, keepdim=keepdim)


def _np_logsumexp(x, dim, keepdim=False):
    m = np.max(x, axis=dim, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True)) + m
    return out if keepdim else np.squeeze(out, axis=dim)


register(
    OpSpec(
        "logsumexp",
        logsumexp,
        _np_logsumexp,
        unary(
            kwargs=({"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 1)}),
            shapes=[(3, 4), (2, 3, 2)],
        ),
    )
)


class Softmax(Function):
    # Forward and first-order backward run the fused kernels (minigrad/backend.py); under
    # create_graph the backward is the formula below on Tensors, so it stays differentiable.
    @staticmethod
    def forward(ctx, x, dim):
        y = backend.softmax.softmax_forward(contiguous(x), dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if not ctx._create_graph:
            return backend.softmax.softmax_backward(y, contiguous(grad), ctx.dim)
        # The Jacobian of softmax is diag(y) - y y^T; applied to grad without forming it:
        return y * (grad - ctx.xp.sum(grad * y, ctx.dim, True))


def softmax(x: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x), dim), stable for large values."""
    if x.numel() == 0:
        return Tensor._from_array(x.data.copy())
    return Softmax.apply(promote_to_float(x), dim=normalize_dim(dim, x.ndim, "softmax"))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        y = backend.softmax.softmax_forward(contiguous(x), dim, log=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if not ctx._create_graph:
            return backend.softmax.softmax_backward(y, contiguous(grad), ctx.dim, log=True)
        return grad - ctx.xp.exp(y) * ctx.xp.sum(grad, ctx.dim, True)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """x - logsumexp(x, dim): log-probabilities, stable for large values."""
    if x.numel() == 0:
        return Tensor._from_array(x.data.copy())
    return LogSoftmax.apply(promote_to_float(x), dim=normalize_dim(dim, x.ndim, "log_softmax"))


def _np_softmax(x, dim):
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


register(
    OpSpec("softmax", softmax, _np_softmax, unary(kwargs=({"dim": 0}, {"dim": -1}), shapes=_MULTI))
)
register(
    OpSpec(
        "log_softmax",
        log_softmax,
        lambda x, dim: np.log(_np_softmax(x, dim)),
        unary(kwargs=({"dim": 0}, {"dim": -1}), shapes=_MULTI),
    )
)
