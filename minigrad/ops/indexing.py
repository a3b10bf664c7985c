"""Indexing ops: ``x[index]``, its transpose ``accumulate_at``, ``x[index] = v``, where, gather.

The gradient of ``y = x[index]`` puts each element of dy back where it was read from. If an
index reads the same element twice (``x[[0, 0]]``), both gradients must be added, so the
backward uses ``np.add.at`` (unbuffered) rather than assignment (which would keep only one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend, dtypes
from minigrad.autograd import Function, derived, unbroadcast, untraceable
from minigrad.ops.common import as_tensor, broadcast_shape, normalize_dim, operands
from minigrad.ops.spec import OpSpec, Sample, fixed, register, values
from minigrad.tensor import Tensor

_BASIC = (int, slice, type(None), type(Ellipsis))


def normalize_index(index: Any, shape: tuple, name: str = "getitem") -> tuple:
    """An index as a tuple of ints, slices, None, Ellipsis and integer arrays.

    Tensors and lists become arrays; a boolean mask becomes the integer arrays of its True
    positions (what NumPy does internally), so every advanced index is integer-only.
    """
    items = index if isinstance(index, tuple) else (index,)
    out: list = []
    for item in items:
        if isinstance(item, Tensor):
            if item.data.dtype == np.bool_ and item.ndim > 0:
                untraceable("boolean-mask indexing (the result's shape depends on values)")
            item = item.data
        elif isinstance(item, (list, tuple)):
            item = np.asarray(item)
        elif isinstance(item, np.integer):
            item = int(item)
        if isinstance(item, bool):
            item = np.asarray(item)
        if isinstance(item, np.ndarray):
            if item.dtype == np.bool_ and item.ndim > 0:
                out.extend(np.nonzero(item))
                continue
            if item.dtype.kind not in "iub":
                raise IndexError(
                    f"{name}: tensors used as indices must be integer or boolean, got {item.dtype}"
                )
            out.append(item)
        elif isinstance(item, _BASIC):
            out.append(item)
        else:
            raise IndexError(f"{name}: can't index with {type(item).__name__} {item!r}")
    return tuple(out)


def is_basic(index: tuple) -> bool:
    """Only ints, slices, None and Ellipsis: each element is read at most once (a view)."""
    return all(isinstance(i, _BASIC) for i in index)


def split_int_and_array_index(index: tuple, ndim: int) -> tuple | None:
    """PyTorch's order for an index mixing ints with integer arrays, as two NumPy steps.

    NumPy counts an int as one more advanced index: in ``x[0, :, idx]`` (x of shape
    (2, 3, 4)) the int and ``idx`` are separated by a slice, so their result dim goes first,
    giving (2, 3). PyTorch applies the ints first (``x[0]``, shape (3, 4)) and then the
    arrays (``[:, idx]``), giving (3, 2). Returns ``(ints_first, arrays_after)``, or None
    when the index does not mix the two (one NumPy step then means the same in both).
    """
    has_int = any(isinstance(i, int) for i in index)
    has_array = any(isinstance(i, np.ndarray) for i in index)
    if not (has_int and has_array):
        return None
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    expanded: list = []
    for item in index:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (ndim - consumed))
        else:
            expanded.append(item)
    first = tuple(slice(None) if isinstance(i, np.ndarray) else i for i in expanded)
    # the ints' dims are gone; slices and new dims were applied already
    after = tuple(
        i if isinstance(i, np.ndarray) else slice(None) for i in expanded if not isinstance(i, int)
    )
    return first, after


def _read(x: np.ndarray, index: tuple, name: str) -> np.ndarray:
    try:
        return x[index]
    except IndexError as e:
        raise IndexError(f"{name}: {e} (tensor of shape {x.shape})") from None


def accumulate_into_zeros(shape: tuple, index: tuple, values: np.ndarray) -> np.ndarray:
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeats accumulate)."""
    if (  # whole rows at integer positions (an embedding's gradient): the kernel
        len(index) == 1
        and isinstance(index[0], np.ndarray)
        and index[0].dtype.kind in "iu"
        and len(shape) >= 2
        and values.shape == index[0].shape + tuple(shape[1:])
        and index[0].size > 0
        and index[0].min() >= 0
        and index[0].max() < shape[0]  # in bounds: the kernel does not check
    ):
        rows = values.reshape(index[0].size, -1)
        if not rows.flags.c_contiguous:
            rows = np.ascontiguousarray(rows)
        out = backend.elementwise.scatter_add_rows(shape[0], index[0].reshape(-1), rows)
        return out.reshape(shape)
    out = np.zeros(shape, values.dtype)
    if is_basic(index):
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        return _read(x, index, "getitem")

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.accumulate_at(ctx.input_shapes[0], ctx.index, grad)


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` with ints, slices, None, Ellipsis, integer arrays and boolean masks.
    Ints are applied before integer arrays, as in PyTorch (see split_int_and_array_index)."""
    index = normalize_index(index, x.shape)
    steps = split_int_and_array_index(index, x.ndim)
    if steps is not None:
        return GetItem.apply(GetItem.apply(x, index=steps[0]), index=steps[1])
    return GetItem.apply(x, index=index)


class AccumulateAt(Function):
    @staticmethod
    def forward(ctx, v, shape, index):
        ctx.index = index
        return accumulate_into_zeros(shape, index, v)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.index]


def accumulate_at(shape: tuple, index: Any, values: Tensor) -> Tensor:
    """Zeros of ``shape`` with ``values`` added at ``index``: the transpose of ``x[index]``."""
    return AccumulateAt.apply(
        values, shape=tuple(shape), index=normalize_index(index, tuple(shape))
    )


def _sample_index(index):
    return lambda rng: Sample((values(rng, (4, 3)),), {"index": index})


_INDEXES = [
    1,
    (slice(1, None), -1),
    (None, Ellipsis, slice(None, None, 2)),
    ([0, 2, 0, 0], slice(None)),  # repeated rows: gradients must add up
    (np.array([[1, 1], [3, 0]]), np.array([0, 2])),
    np.array([True, False, True, True]),
]
register(
    OpSpec(
        "getitem",
        lambda x, index: getitem(x, index),
        lambda x, index: x[index],
        fixed(*[_sample_index(i) for i in _INDEXES]),
    )
)
register(
    OpSpec(
        "accumulate_at",
        lambda v: accumulate_at((4, 3), ([0, 2, 0],), v),
        lambda v: accumulate_into_zeros((4, 3), (np.array([0, 2, 0]),), v),
        fixed(lambda rng: Sample((values(rng, (3, 3)),))),
    )
)


class IndexPut(Function):
    @staticmethod
    def forward(ctx, x, v, index):
        out = x.copy()
        out[index] = v
        if ctx.needs_input_grad[0]:
            keep = np.ones(x.shape, dtype=bool)
            keep[index] = False
            ctx.save_for_backward(keep)
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, grad):
        gx = None
        if ctx.needs_input_grad[0]:
            (keep,) = ctx.saved_tensors
            gx = ctx.xp.where(keep, grad, 0)
        gv = (
            unbroadcast(ctx.xp, grad[ctx.index], ctx.input_shapes[1])
            if ctx.needs_input_grad[1]
            else None
        )
        return gx, gv


def index_put(x: Tensor, index: Any, value: Any) -> Tensor:
    """A copy of ``x`` with ``x[index] = value`` (what ``__setitem__`` writes in place)."""
    index = normalize_index(index, x.shape, "setitem")
    value = as_tensor(value, like=x)
    if value.dtype != x.dtype:
        from minigrad.ops.elementwise import cast

        value = cast(value, x.dtype)
    target = _read(x.data, index, "setitem").shape
    try:
        fits = np.broadcast_shapes(value.shape, target) == target
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"setitem: a value of shape {value.shape} can't be assigned to x[index] "
            f"of shape {target}"
        )
    return IndexPut.apply(x, value, index=index)


register(
    OpSpec(
        "index_put",
        lambda x, v: index_put(x, (slice(None), [0, 2]), v),
        lambda x, v: _np_put(x, (slice(None), [0, 2]), v),
        fixed(
            lambda rng: Sample((values(rng, (3, 4)), values(rng, (3, 2)))),
            lambda rng: Sample((values(rng, (3, 4)), values(rng, (2,)))),
        ),
    )
)


def _np_put(x, index, v):
    out = x.copy()
    out[index] = v
    return out


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return backend.elementwise.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        xp = ctx.xp
        _, a_shape, b_shape = ctx.input_shapes
        ga = unbroadcast(xp, xp.where(cond, grad, 0), a_shape) if ctx.needs_input_grad[1] else None
        gb = unbroadcast(xp, xp.where(cond, 0, grad), b_shape) if ctx.needs_input_grad[2] else None
        return None, ga, gb


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` is true, else ``other`` (all three broadcast)."""
    cond = as_tensor(condition)
    if cond.dtype != dtypes.bool_:
        cond = derived(lambda c: c.astype(bool), cond)
    a, b = operands(input, other)
    shape = broadcast_shape(a.shape, b.shape, "where")
    broadcast_shape(cond.shape, shape, "where")
    return Where.apply(cond, a, b)


register(
    OpSpec(
        "where",
        lambda c, a, b: where(c, a, b),
        np.where,
        fixed(
            lambda rng: Sample((rng.random((2, 3)) > 0.5, values(rng, (2, 3)), values(rng, (3,)))),
            lambda rng: Sample((rng.random((3, 1)) > 0.5, values(rng, ()), values(rng, (3, 4)))),
        ),
    )
)


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for dim 0 (PyTorch's gather).

    ``index`` has the same number of dims as ``x`` and is no larger outside ``dim``. It is
    ``x[full_index]`` with the other coordinates spelled out, so backward accumulates.
    """
    idx = as_tensor(index).data
    d = normalize_dim(dim, x.ndim, "gather")
    if not dtypes.is_integer(idx.dtype):
        raise TypeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != x.ndim or any(idx.shape[k] > x.shape[k] for k in range(x.ndim) if k != d):
        raise ValueError(
            f"gather: index of shape {idx.shape} does not fit input of shape {x.shape} "
            f"(same number of dims, no larger outside dim {d})"
        )
    if idx.size and (idx.min() < -x.shape[d] or idx.max() >= x.shape[d]):
        raise IndexError(
            f"gather: index values must be in [0, {x.shape[d]}) for dim {d} of shape {x.shape}, "
            f"got range [{idx.min()}, {idx.max()}]"
        )
    full = tuple(
        idx if k == d else np.arange(n).reshape([-1 if j == k else 1 for j in range(idx.ndim)])
        for k, n in enumerate(idx.shape)
    )
    return GetItem.apply(x, index=full)


register(
    OpSpec(
        "gather",
        lambda x, i: gather(x, 1, i),
        lambda x, i: np.take_along_axis(x, i, 1),
        fixed(lambda rng: Sample((values(rng, (3, 4)), np.array([[0, 0], [3, 1], [2, 2]])))),
    )
)
