"""Dtypes: the names users write (``minigrad.float32``) and the rules for choosing one.

minigrad's dtypes are NumPy's ``np.dtype`` objects, so ``tensor.dtype == np.float32`` works
and the arrays underneath never need converting. The rules follow PyTorch:

- Python floats (and lists of them) become the default dtype, float32;
  Python ints become int64 and Python bools bool.
- NumPy arrays keep their dtype.
- In ``tensor OP number`` the number adopts the tensor's dtype when it is of the same kind
  (``float32_tensor * 2.5`` is float32); a float with an integer tensor gives the default
  float dtype. Two tensors give NumPy's promotion of their dtypes (float32 + float64 -> float64).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

# PyTorch's aliases (``minigrad.float`` and ``minigrad.int`` are set in __init__, so that
# this module keeps the builtins float and int)
half, double = float16, float64
short, long = int16, int64

_SUPPORTED = {float16, float32, float64, int8, uint8, int16, int32, int64, bool_}
_default_dtype = float32


def get_default_dtype() -> np.dtype:
    """The dtype of tensors made from Python floats (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating dtype (float32 or float64)."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt not in (float32, float64):
        raise ValueError(f"set_default_dtype: only float32 or float64, got {dt}")
    _default_dtype = dt


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def is_integer(dtype: np.dtype) -> bool:
    return dtype.kind in "iu"


def check_supported(dtype: np.dtype, who: str) -> np.dtype:
    if dtype not in _SUPPORTED:
        raise TypeError(
            f"{who}: dtype {dtype} is not supported (use one of float16, float32, float64, "
            "int8, uint8, int16, int32, int64, bool)"
        )
    return dtype


def resolve(dtype: Any) -> np.dtype:
    """A user's dtype argument as an np.dtype (None means the default float dtype)."""
    if dtype is None:
        return _default_dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"not a dtype: {dtype!r}") from None
    return check_supported(dt, "dtype")


def resolve_float(dtype: Any, who: str) -> np.dtype:
    dt = resolve(dtype)
    if dt not in (float32, float64):
        raise TypeError(f"{who}: needs float32 or float64, got {dt}")
    return dt


def to_array(data: Any, dtype: Any, copy: bool) -> np.ndarray:
    """Convert user data to an array under the rules in this module's docstring."""
    if isinstance(data, np.ndarray):
        arr = np.array(data, copy=True) if copy else data
    else:
        if isinstance(data, (str, bytes)) or data is None:
            raise TypeError(f"can't make a tensor from {type(data).__name__} {data!r}")
        try:
            arr = np.asarray(data)
        except ValueError as e:
            raise ValueError(f"can't make a tensor from this data: {e}") from None
        if arr.dtype == float64 and not isinstance(data, np.generic) and dtype is None:
            # Python floats -> the default dtype, unless a dtype is asked for: then they are
            # converted once, to it (tensor([0.548], dtype=float64) is exact, as in PyTorch)
            arr = arr.astype(_default_dtype)
        elif arr.dtype.kind in "iu" and not isinstance(data, np.generic):
            arr = arr.astype(int64)
    if dtype is not None:
        arr = arr.astype(resolve(dtype), copy=False)
    if arr.dtype.kind in "OUSc":
        raise TypeError(f"can't make a tensor of dtype {arr.dtype}")
    check_supported(arr.dtype, "tensor")
    return arr


def scalar_dtype(value: Any, tensor_dtype: np.dtype) -> np.dtype:
    """The dtype a Python number takes next to a tensor of ``tensor_dtype``."""
    if isinstance(value, (bool, np.bool_)):
        return tensor_dtype
    if isinstance(value, numbers.Integral):
        return int64 if tensor_dtype == bool_ else tensor_dtype
    if isinstance(value, numbers.Real):
        return tensor_dtype if is_floating(tensor_dtype) else _default_dtype
    raise TypeError(f"unsupported operand type {type(value).__name__}")


def check_size(shape: tuple, who: str) -> tuple:
    for n in shape:
        if not isinstance(n, (numbers.Integral, np.integer)) or n < 0:
            raise ValueError(f"{who}: sizes must be non-negative integers, got {shape}")
    return tuple(int(n) for n in shape)
