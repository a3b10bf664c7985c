"""Movement ops: reshape, permute, expand, pad, cat, and what is built from them.

None of these change values, only where they sit, so every backward moves the gradient
back: reshape it back, permute it back, sum what expand copied, cut out what pad added.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.autograd import Function, unbroadcast
from minigrad.ops.common import normalize_dim, operands
from minigrad.ops.spec import OpSpec, Sample, fixed, register, unary, values
from minigrad.tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return np.reshape(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.reshape(grad, ctx.input_shapes[0])


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """The same elements in a new shape (one size may be -1, inferred)."""
    shape = tuple(int(n) for n in shape)
    known = math.prod(n for n in shape if n != -1)
    if shape.count(-1) > 1 or any(n < -1 for n in shape):
        raise ValueError(f"reshape: invalid shape {shape}")
    if (shape.count(-1) == 0 and known != x.numel()) or (
        shape.count(-1) == 1 and (known == 0 or x.numel() % known)
    ):
        raise ValueError(
            f"reshape: shape {shape} is invalid for input of shape {x.shape} "
            f"({x.numel()} elements)"
        )
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


view = reshape

register(
    OpSpec(
        "reshape",
        lambda x: reshape(x, (3, -1)),
        lambda x: np.reshape(x, (3, -1)),
        unary(shapes=[(2, 3), (6,), (3, 2, 1)]),
    )
)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = tuple(int(i) for i in np.argsort(ctx.dims))
        return ctx.xp.permute(grad, inverse)


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorder the dims: output dim i is input dim ``dims[i]``."""
    dims = tuple(normalize_dim(d, x.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(
            f"permute: dims {dims} are not a permutation of the {x.ndim} dims of {x.shape}"
        )
    if dims == tuple(range(x.ndim)):
        return x
    return Permute.apply(x, dims=dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims."""
    d0, d1 = normalize_dim(dim0, x.ndim, "transpose"), normalize_dim(dim1, x.ndim, "transpose")
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, dims)


register(
    OpSpec(
        "permute",
        lambda x: permute(x, (2, 0, 1)),
        lambda x: np.transpose(x, (2, 0, 1)),
        unary(shapes=[(2, 3, 4)]),
    )
)
register(OpSpec("transpose", lambda x: transpose(x, 0, 1), lambda x: x.T, unary(shapes=[(2, 3)])))


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(ctx.xp, grad, ctx.input_shapes[0])


def expand(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Broadcast to ``shape`` without copying (-1 keeps a dim; new dims go in front)."""
    shape = tuple(int(n) for n in shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: can't expand shape {x.shape} to fewer dims {shape}")
    target = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))
    for i, n in enumerate(x.shape):
        if n != 1 and n != target[lead + i]:
            raise ValueError(
                f"expand: shape {x.shape} can't be expanded to {shape}: dim {i} has size {n}, "
                "only size-1 dims can be expanded"
            )
    if target == x.shape:
        return x
    return Expand.apply(x, shape=target)


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    return expand(x, shape)


register(
    OpSpec(
        "expand",
        lambda x: expand(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)).copy(),
        unary(shapes=[(3, 1), (4,), ()]),
    )
)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = normalize_dim(start_dim, x.ndim, "flatten"), normalize_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = math.prod(x.shape[s : e + 1])
    return reshape(x, x.shape[:s] + (merged,) + x.shape[e + 1 :])


def squeeze(x: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dims (only ``dim`` if given; a dim whose size is not 1 is kept)."""
    if dim is None:
        dims = {i for i, n in enumerate(x.shape) if n == 1}
    else:
        ds = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {normalize_dim(d, x.ndim, "squeeze") for d in ds}
        dims = {d for d in dims if x.ndim and x.shape[d] == 1}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in dims))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at position ``dim`` (in [-ndim-1, ndim])."""
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


register(
    OpSpec(
        "flatten_squeeze_unsqueeze",
        lambda x: unsqueeze(squeeze(flatten(x, 1)), 0),
        lambda x: x.reshape(1, x.shape[0], -1),
        unary(shapes=[(2, 1, 3), (3, 2, 2)]),
    )
)


class Pad(Function):
    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        return np.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        index = tuple(slice(lo, lo + n) for (lo, _), n in zip(ctx.widths, ctx.input_shapes[0]))
        return grad[index]


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with a constant, PyTorch style: ``pad`` lists (before, after) pairs starting from
    the last dim, so ``(1, 1, 2, 0)`` pads the last dim by 1 and 1 and the one before by 2 and 0."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented yet (only 'constant')")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: {pad} must hold (before, after) pairs for at most {x.ndim} dims")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {pad} is not supported")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return Pad.apply(x, widths=tuple(widths), value=value)


register(
    OpSpec(
        "pad",
        lambda x: pad(x, (1, 2, 0, 1), value=0.5),
        lambda x: np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, 1), (1, 2)], constant_values=0.5),
        unary(shapes=[(2, 3), (2, 2, 3)]),
    )
)


class Cat(Function):
    @staticmethod
    def forward(ctx, *xs, dim):
        ctx.dim = dim
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        grads, start = [], 0
        for shape in ctx.input_shapes:
            stop = start + shape[ctx.dim]
            grads.append(grad[(slice(None),) * ctx.dim + (slice(start, stop),)])
            start = stop
        return tuple(grads)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim; all other dims must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    tensors = [first] + [operands(first, t)[1] for t in tensors[1:]]
    tensors = [operands(t, tensors[-1])[0] for t in tensors]  # one dtype for all
    d = normalize_dim(dim, first.ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or any(
            a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != d
        ):
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape}, which does not match tensor 0's "
                f"{first.shape} outside dim {d}"
            )
    return Cat.apply(*tensors, dim=d)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"stack: tensor {i} has shape {t.shape}, tensor 0 has {tensors[0].shape}"
            )
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def _two(shape_a, shape_b):
    return lambda rng: Sample((values(rng, shape_a), values(rng, shape_b)))


register(
    OpSpec(
        "cat",
        lambda a, b: cat([a, b, a], 1),
        lambda a, b: np.concatenate([a, b, a], 1),
        fixed(_two((2, 3), (2, 1)), _two((1, 2, 2), (1, 4, 2))),
    )
)
register(
    OpSpec(
        "stack",
        lambda a, b: stack([a, b], -1),
        lambda a, b: np.stack([a, b], -1),
        fixed(_two((2, 3), (2, 3))),
    ),
)


def split(x: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """Split into pieces of ``split_size`` (the last may be smaller) or of the listed sizes."""
    d = normalize_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, numbers.Integral):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} don't add up to {n}, the size of dim {d}")
    pieces, start = [], 0
    for s in sizes:
        pieces.append(x[(slice(None),) * d + (slice(start, start + s),)])
        start += s
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of equal size (the last may be smaller), as PyTorch."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[normalize_dim(dim, x.ndim, "chunk")]
    return split(x, max(-(-n // chunks), 1), dim)


register(
    OpSpec(
        "split_chunk",
        lambda x: cat([*split(x, [1, 3], 1)[::-1], *chunk(x, 3, 1)], 1),
        lambda x: np.concatenate([x[:, 1:], x[:, :1], x[:, :2], x[:, 2:4]], 1),
        unary(shapes=[(2, 4)]),
    )
)
