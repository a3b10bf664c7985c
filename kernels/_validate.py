"""Checks shared by every kernel and its NumPy twin, so both fail with the same clear error."""

from __future__ import annotations

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def floats(name: str, **arrays: np.ndarray) -> np.dtype:
    """All arrays are float32 or all float64, and C-contiguous; returns the dtype."""
    dtype = None
    for label, a in arrays.items():
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: {label} must be a numpy array, got {type(a).__name__}")
        if a.dtype not in FLOATS:
            raise TypeError(f"{name}: {label} must be float32 or float64, got {a.dtype}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            raise TypeError(f"{name}: {label} is {a.dtype} but the other inputs are {dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name}: {label} must be C-contiguous (use np.ascontiguousarray)")
    return dtype


def rank(name: str, label: str, a: np.ndarray, ndim: int, layout: str) -> None:
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {label} of shape {layout}, got {a.shape}")


def pair(name: str, label: str, value, allow_zero: bool = False) -> tuple[int, int]:
    """An int or a pair of ints, each positive (or >= 0 with allow_zero)."""
    v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(v) != 2 or not all(isinstance(i, (int, np.integer)) for i in v):
        raise ValueError(f"{name}: {label} must be an int or a pair of ints, got {value!r}")
    low = 0 if allow_zero else 1
    if any(i < low for i in v):
        raise ValueError(
            f"{name}: {label} must be {'>= 0' if allow_zero else 'positive'}, got {value!r}"
        )
    return int(v[0]), int(v[1])


def window_output(
    name: str,
    size: int,
    kernel: int,
    stride: int,
    pad: int,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a sliding window (convolution or pooling), as PyTorch computes it."""
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * pad:
        raise ValueError(
            f"{name}: kernel size {kernel} (span {span} with dilation {dilation}) is larger than "
            f"the padded input size {size + 2 * pad}"
        )
    numerator = size + 2 * pad - span
    out = (-(-numerator // stride) if ceil_mode else numerator // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out
