"""The argument checks and geometry that every kernel and its NumPy twin share, so that both
fail with the same clear error and agree on output shapes.

Plain NumPy: this module imports no Numba, so the twins (kernels/twins/) run without it.
Each family's checks are named after what they check (``conv_geometry``, ``rnn_layer``, ...)
and return what the caller computes with (dtype, geometry, contiguous masks, defaults).
"""

from __future__ import annotations

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_F32, _F64 = FLOATS


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
    numerator = size + 2 * pad - span
    out = (-(-numerator // stride) if ceil_mode else numerator // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    # ceil_mode keeps a window that runs past the end (PyTorch's rule), even the only one
    if out < 1 or (span > size + 2 * pad and not ceil_mode):
        raise ValueError(
            f"{name}: kernel size {kernel} (span {span} with dilation {dilation}) is larger than "
            f"the padded input size {size + 2 * pad}"
        )
    return out


# -- attention -----------------------------------------------------------------------------------


def attention_inputs(name, q, k, v, mask):
    """Shapes of q, k, v (B, NH, T|S, D) and the mask; returns the mask as a float array of 4
    dims (a bool mask becomes 0 / -inf) and whether there is one."""
    floats(name, query=q, key=k, value=v)
    for label, a in (("query", q), ("key", k), ("value", v)):
        rank(name, label, a, 4, "(B, NH, T, D)")
    b, nh, t, d = q.shape
    if k.shape[:2] != (b, nh) or k.shape[3] != d or v.shape[:3] != k.shape[:3]:
        raise ValueError(
            f"{name}: query {q.shape}, key {k.shape} and value {v.shape} must share B and NH, "
            "query and key the head size D, key and value the length S"
        )
    if v.shape[3] != d:
        raise ValueError(
            f"{name}: value head size {v.shape[3]} != query head size {d} (not supported)"
        )
    if mask is None:
        return np.zeros((1, 1, 1, 1), q.dtype), False
    if mask.dtype == np.bool_:
        mask = np.where(mask, 0.0, -np.inf).astype(q.dtype)
    elif mask.dtype != q.dtype:
        raise TypeError(f"{name}: attn_mask must be bool or {q.dtype}, got {mask.dtype}")
    full = (b, nh, t, k.shape[2])
    if mask.ndim > 4 or any(m not in (1, f) for m, f in zip(mask.shape[::-1], full[::-1])):
        raise ValueError(f"{name}: attn_mask of shape {mask.shape} does not broadcast to {full}")
    return np.ascontiguousarray(mask.reshape((1,) * (4 - mask.ndim) + mask.shape)), True


# -- convolution ---------------------------------------------------------------------------------


def conv_padding(name, padding, kernel_hw, dilation_hw, stride_hw):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same' (stride 1 only;
    an odd total goes one more to the bottom/right, as PyTorch does)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride_hw != (1, 1):
                raise ValueError(f"{name}: padding='same' needs stride 1, got stride {stride_hw}")
            pads = []
            for k, d in zip(kernel_hw, dilation_hw):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return pads[0], pads[1], pads[2], pads[3]
        raise ValueError(
            f"{name}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
        )
    ph, pw = pair(name, "padding", padding, allow_zero=True)
    return ph, ph, pw, pw


def conv_geometry(name, x, w, stride, padding, dilation, groups):
    rank(name, "input", x, 4, "(B, C, H, W)")
    rank(name, "weight", w, 4, "(O, C/groups, KH, KW)")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    b, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if c % groups or o % groups:
        raise ValueError(
            f"{name}: in_channels {c} and out_channels {o} must both be divisible by "
            f"groups {groups}"
        )
    if cg != c // groups:
        raise ValueError(
            f"{name}: weight {w.shape} expects {cg * groups} input channels (C/groups = {cg}), "
            f"but the input {x.shape} has {c}"
        )
    sh, sw = pair(name, "stride", stride)
    dh, dw = pair(name, "dilation", dilation)
    pt, pb, pl, pr = conv_padding(name, padding, (kh, kw), (dh, dw), (sh, sw))
    # window_output takes a symmetric pad: give it the mean and check the span on the total.
    oh = _conv_window(name, h, kh, sh, pt, pb, dh)
    ow = _conv_window(name, wd, kw, sw, pl, pr, dw)
    return (kh, kw), (sh, sw), (pt, pl), (dh, dw), (oh, ow)


def _conv_window(name, size, k, s, before, after, d):
    span = d * (k - 1) + 1
    if span > size + before + after:
        raise ValueError(
            f"{name}: kernel size {k} (span {span} with dilation {d}) is larger than the padded "
            f"input size {size + before + after}"
        )
    return (size + before + after - span) // s + 1


def conv_backward_inputs(x, w, dout, stride, padding, dilation, groups):
    """conv2d's geometry, after checking dout against it."""
    floats("conv2d_backward", input=x, weight=w, grad=dout)
    geometry = conv_geometry("conv2d_backward", x, w, stride, padding, dilation, groups)
    expected = (x.shape[0], w.shape[0]) + geometry[-1]
    if dout.shape != expected:
        raise ValueError(f"conv2d_backward: grad {dout.shape} does not match output {expected}")
    return geometry


# -- layer norm ----------------------------------------------------------------------------------


def layer_norm_affine(name, d, dtype, weight, bias):
    for label, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (d,):
            raise ValueError(
                f"{name}: {label} of shape {p.shape} does not match the normalized size {d}"
            )
    w = np.ones(d, dtype) if weight is None else weight
    b = np.zeros(d, dtype) if bias is None else bias
    return w, b


# -- matmul --------------------------------------------------------------------------------------


def matmul_inputs(name, a, b):
    floats(name, a=a, b=b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(
            f"{name}: both arguments need at least 2 dims, got {a.shape} and {b.shape}"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"{name}: shapes {a.shape} and {b.shape} do not align ({a.shape[-1]} != {b.shape[-2]})"
        )
    try:
        return np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{name}: batch dims of {a.shape} and {b.shape} can't be broadcast"
        ) from None


# -- optimizer steps -----------------------------------------------------------------------------


def optimizer_state(name: str, p: np.ndarray, g: np.ndarray, **state: np.ndarray | None) -> None:
    """The parameter, its gradient and every state buffer: one dtype, one shape, contiguous.
    The common case is checked in a few attribute reads (this runs for every parameter at
    every step); anything unusual goes through the full check for its error message."""
    dtype = p.dtype
    if (dtype is _F32 or dtype is _F64) and p.flags.c_contiguous:
        shape = p.shape
        for a in (g, *state.values()):
            if a is not None and (
                a.__class__ is not np.ndarray
                or a.dtype is not dtype
                or a.shape != shape
                or not a.flags.c_contiguous
            ):
                break
        else:
            return
    floats(name, p=p, g=g, **state)
    for label, a in {"g": g, **state}.items():
        if a is not None and a.shape != p.shape:
            raise ValueError(f"{name}: {label} of shape {a.shape} does not match p {p.shape}")


# -- pooling -------------------------------------------------------------------------------------


def pool_geometry(name, x, kernel_size, stride, padding, dilation, ceil_mode):
    floats(name, x=x)
    rank(name, "x", x, 4, "(B, C, H, W)")
    kh, kw = pair(name, "kernel_size", kernel_size)
    sh, sw = pair(name, "stride", kernel_size if stride is None else stride)
    ph, pw = pair(name, "padding", padding, allow_zero=True)
    dh, dw = pair(name, "dilation", dilation)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(
            f"{name}: padding {(ph, pw)} must be at most half the kernel size {(kh, kw)}"
        )
    _, _, h, w = x.shape
    oh = window_output(name, h, kh, sh, ph, dh, ceil_mode)
    ow = window_output(name, w, kw, sw, pw, dw, ceil_mode)
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow)


def max_pool_backward_inputs(grad, argmax, input_shape):
    """max_pool2d_backward's shape checks."""
    floats("max_pool2d_backward", grad=grad)
    if grad.shape != argmax.shape:
        raise ValueError(f"max_pool2d_backward: grad {grad.shape} and argmax {argmax.shape} differ")
    if len(input_shape) != 4 or tuple(input_shape[:2]) != grad.shape[:2]:
        raise ValueError(
            f"max_pool2d_backward: input shape {tuple(input_shape)} does not match grad "
            f"{grad.shape} (B, C, H, W with the same B and C)"
        )


def refuse_argmax_outside_plane(bad, input_shape):
    """The error for ``bad`` argmax indices outside their input plane (none: no error)."""
    if bad:
        raise ValueError(
            f"max_pool2d_backward: {bad} argmax indices are outside the input plane of "
            f"{input_shape[2]} x {input_shape[3]} elements (argmax from another input?)"
        )


def pool_divisor(name, divisor_override):
    if divisor_override is None:
        return 0
    if divisor_override <= 0:
        raise ValueError(f"{name}: divisor_override must be positive, got {divisor_override}")
    return int(divisor_override)


def avg_pool_backward_inputs(grad, input_shape, kernel_size, stride, padding, ceil_mode):
    """The geometry of avg_pool2d's backward, after checking grad against it."""
    floats("avg_pool2d_backward", grad=grad)
    probe = np.empty((1, 1) + tuple(input_shape[2:]), grad.dtype)
    k, s, p, d, (oh, ow) = pool_geometry(
        "avg_pool2d_backward", probe, kernel_size, stride, padding, 1, ceil_mode
    )
    if grad.shape != tuple(input_shape[:2]) + (oh, ow):
        raise ValueError(f"avg_pool2d_backward: grad {grad.shape} does not match output {(oh, ow)}")
    return k, s, p, (oh, ow)


def adaptive_pool_size(name, x_shape, output_size):
    oh, ow = pair(name, "output_size", output_size)
    return oh, ow


# -- recurrent layers ----------------------------------------------------------------------------


def rnn_layer(name, gates_per_step, x, h0, w_ih, w_hh, c0=None, biases=()):
    """Shapes of a recurrent layer call; returns (dtype, T, B, H)."""
    named = {f"bias{i}": b for i, b in enumerate(biases)}
    dtype = floats(name, x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, **named)
    rank(name, "x", x, 3, "(T, B, I)")
    rank(name, "h0", h0, 2, "(B, H)")
    t, b, i = x.shape
    h = h0.shape[1]
    g = gates_per_step * h
    if h0.shape[0] != b:
        raise ValueError(f"{name}: h0 {h0.shape} does not match the batch of x {x.shape}")
    if w_ih.shape != (g, i):
        raise ValueError(f"{name}: w_ih of shape {w_ih.shape} should be {(g, i)}")
    if w_hh.shape != (g, h):
        raise ValueError(f"{name}: w_hh of shape {w_hh.shape} should be {(g, h)}")
    if c0 is not None and c0.shape != h0.shape:
        raise ValueError(f"{name}: c0 of shape {c0.shape} should match h0 {h0.shape}")
    for bias in biases:
        if bias is not None and bias.shape != (g,):
            raise ValueError(f"{name}: bias of shape {bias.shape} should be {(g,)}")
    return dtype, t, b, h


def rnn_backward_inputs(name, gates_per_step, x, h0, w_ih, w_hh, grad, out, c0=None, **saved):
    """A backward call's shapes: the layer's, the saved arrays', and the gradient against the
    output it is the gradient of; returns (dtype, T, B, H)."""
    dims = rnn_layer(name, gates_per_step, x, h0, w_ih, w_hh, c0=c0)
    floats(name, grad=grad, out=out, **saved)
    if grad.shape != out.shape:
        raise ValueError(f"{name}: the gradient of shape {grad.shape} should be {out.shape}")
    return dims


# -- softmax and cross-entropy -------------------------------------------------------------------


def softmax_dim(name: str, x: np.ndarray, dim: int) -> None:
    if not 0 <= dim < max(x.ndim, 1):
        raise ValueError(f"{name}: dim {dim} is out of range for shape {x.shape}")


def cross_entropy_inputs(name, logits, target, weight, ignore_index):
    dtype = floats(name, logits=logits, weight=weight)
    rank(name, "logits", logits, 2, "(N, C)")
    n, c = logits.shape
    if not isinstance(target, np.ndarray) or target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must be an integer array of class indices")
    if target.shape != (n,):
        raise ValueError(
            f"{name}: target of shape {target.shape} does not match logits {logits.shape} "
            f"(expected ({n},))"
        )
    if weight is not None and weight.shape != (c,):
        raise ValueError(f"{name}: weight of shape {weight.shape} does not match {c} classes")
    valid = target != ignore_index
    if n and valid.any():
        bad = target[valid & ((target < 0) | (target >= c))]
        if bad.size:
            raise IndexError(f"{name}: target {int(bad[0])} is out of range for {c} classes")
    w = np.ones(c, dtype) if weight is None else weight
    return np.ascontiguousarray(target, dtype=np.int64), w
