"""Helpers every op family uses: turning operands into tensors and checking dims."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from minigrad import dtypes
from minigrad.tensor import Tensor


def as_tensor(x: Any, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor; a Python number takes the dtype of ``like`` (see ``dtypes``)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(like, Tensor) and _is_number(x):
        return Tensor._from_array(np.asarray(x, dtype=dtypes.scalar_dtype(x, like.dtype)))
    return Tensor._from_array(dtypes.to_array(x, None, copy=False))


def _is_number(x: Any) -> bool:
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, complex)


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` itself if C-contiguous (kernels require it), else a contiguous copy."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two operands as tensors of one dtype, casting (differentiably) where they differ.

    A Python number is "weak": it takes the tensor's dtype (see ``dtypes.scalar_dtype``),
    so ``int_tensor * 2.5`` is float32 and ``float32_tensor * 2.5`` stays float32. Two
    tensors (or arrays) promote as NumPy promotes them.
    """
    # The common cases first, with what ``promote`` gives them: two tensors of one dtype stay
    # as they are, and a Python float or int next to a float tensor becomes a 0-d array of
    # the tensor's dtype.
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a.dtype == b.dtype:
                return a, b
        elif type(b) in (float, int) and a.dtype.kind == "f":
            return a, Tensor._from_array(np.asarray(b, dtype=a.dtype))
    elif isinstance(b, Tensor) and type(a) in (float, int) and b.dtype.kind == "f":
        return Tensor._from_array(np.asarray(a, dtype=b.dtype)), b
    return promote(a, b)


def promote(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """``operands`` for any two operands: the general rules of its docstring."""
    weak = None
    if not isinstance(a, Tensor):
        a_is_number = _is_number(a)
        a = as_tensor(a, like=b)
        weak = a.dtype if a_is_number else None
    elif not isinstance(b, Tensor):
        b_is_number = _is_number(b)
        b = as_tensor(b, like=a)
        weak = b.dtype if b_is_number else None
    if a.dtype != b.dtype:
        from minigrad.ops.elementwise import cast

        dt = weak if weak is not None else np.promote_types(a.dtype, b.dtype)
        a, b = cast(a, dt), cast(b, dt)
    return a, b


def broadcast_shape(a: tuple, b: tuple, name: str) -> tuple:
    """The broadcast of two shapes, or a clear error naming the op and both shapes."""
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        raise ValueError(f"{name}: shapes {a} and {b} can't be broadcast together") from None


def normalize_dim(dim: Any, ndim: int, name: str) -> int:
    """A dim in [-ndim, ndim) as a non-negative int (a 0-d tensor accepts 0 and -1)."""
    if not isinstance(dim, (numbers.Integral, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{name}: dim {dim} is out of range for a tensor with {ndim} dims "
            f"(expected a value in [{-n}, {n - 1}])"
        )
    return int(dim) % n if ndim else 0


def normalize_dims(dim: Any, ndim: int, name: str) -> tuple[int, ...]:
    """``dim`` (None for all, an int or a tuple) as a sorted tuple of distinct dims."""
    if dim is None:
        return tuple(range(ndim))
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    out = tuple(normalize_dim(d, ndim, name) for d in dims)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: dim {dim} names a dimension more than once")
    return tuple(sorted(out)) if ndim else ()


def require_float(t: Tensor, name: str) -> None:
    """For ops PyTorch defines on floats only (activations, normalization): a clear error for
    an integer or boolean tensor, never a silently wrong result."""
    if not dtypes.is_floating(t.dtype):
        raise TypeError(
            f"{name}: needs a floating-point tensor, got dtype {t.dtype} (use .float() first)"
        )


def promote_to_float(t: Tensor) -> Tensor:
    """For math functions (exp, log, sin, sigmoid, ...): an integer or boolean tensor becomes
    the default float dtype first, as PyTorch promotes it (NumPy would give float64, or
    float16 for booleans)."""
    if dtypes.is_floating(t.dtype):
        return t
    from minigrad.ops.elementwise import cast

    return cast(t, dtypes.get_default_dtype())
