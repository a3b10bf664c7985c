"""NumPy twin of kernels/pool.py: loops over kernel offsets (or output cells), vectorized
over batch, channels and positions."""

from __future__ import annotations

import numpy as np

from kernels import checks


def _offsets(k, s, p, d, size, out):
    """For each kernel offset u: the input index of every output position (may be outside)."""
    return [np.arange(out) * s - p + u * d for u in range(k)]


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = checks.pool_geometry(
        "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode
    )
    b, c, h, w = x.shape
    out = np.full((b, c, oh, ow), -np.inf, x.dtype)
    argmax = np.full((b, c, oh, ow), -1, np.int32)
    for rows in _offsets(kh, sh, ph, dh, h, oh):
        for cols in _offsets(kw, sw, pw, dw, w, ow):
            valid = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
            r, q = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
            values = x[:, :, r[:, None], q[None, :]]
            better = valid & ((values > out) | (argmax < 0) | np.isnan(values))
            out = np.where(better, values, out)
            argmax = np.where(better, (r[:, None] * w + q[None, :]), argmax).astype(np.int32)
    return out, argmax


def max_pool2d_backward(
    grad, argmax, input_shape, kernel_size=None, stride=None, padding=0, dilation=1
):
    checks.max_pool_backward_inputs(grad, argmax, input_shape)
    b, c, h, w = input_shape
    checks.refuse_argmax_outside_plane(
        np.count_nonzero((argmax < 0) | (argmax >= h * w)), input_shape
    )
    dx = np.zeros((b * c, h * w), grad.dtype)
    planes = np.repeat(np.arange(b * c), grad.shape[2] * grad.shape[3])
    np.add.at(dx, (planes, argmax.reshape(-1)), grad.reshape(-1))
    return dx.reshape(input_shape)


def _avg_divisors(h, w, oh, ow, k, s, p, include_pad, divisor):
    def windows(size, out, k, s, p):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        return np.maximum(start, 0), np.minimum(end, size), end - start

    h0, h1, hpad = windows(h, oh, k[0], s[0], p[0])
    w0, w1, wpad = windows(w, ow, k[1], s[1], p[1])
    if divisor:
        n = np.full((oh, ow), divisor)
    elif include_pad:
        n = hpad[:, None] * wpad[None, :]
    else:
        n = (h1 - h0)[:, None] * (w1 - w0)[None, :]
    return (h0, h1), (w0, w1), n


def avg_pool2d_forward(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    k, s, p, _, (oh, ow) = checks.pool_geometry(
        "avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode
    )
    b, c, h, w = x.shape
    (h0, h1), (w0, w1), n = _avg_divisors(
        h,
        w,
        oh,
        ow,
        k,
        s,
        p,
        count_include_pad,
        checks.pool_divisor("avg_pool2d", divisor_override),
    )
    out = np.zeros((b, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, h0[i] : h1[i], w0[j] : w1[j]].sum(axis=(2, 3))
    return (out / np.where(n > 0, n, 1)).astype(x.dtype)


def avg_pool2d_backward(
    grad,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    k, s, p, (oh, ow) = checks.avg_pool_backward_inputs(
        grad, input_shape, kernel_size, stride, padding, ceil_mode
    )
    h, w = input_shape[2:]
    (h0, h1), (w0, w1), n = _avg_divisors(
        h,
        w,
        oh,
        ow,
        k,
        s,
        p,
        count_include_pad,
        checks.pool_divisor("avg_pool2d_backward", divisor_override),
    )
    dx = np.zeros(input_shape, grad.dtype)
    g = grad / np.where(n > 0, n, 1)
    for i in range(oh):
        for j in range(ow):
            dx[:, :, h0[i] : h1[i], w0[j] : w1[j]] += g[:, :, i, j][:, :, None, None]
    return dx


def _adaptive_windows(size, out):
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool2d_forward(x, output_size):
    checks.floats("adaptive_avg_pool2d", x=x)
    checks.rank("adaptive_avg_pool2d", "x", x, 4, "(B, C, H, W)")
    oh, ow = checks.adaptive_pool_size("adaptive_avg_pool2d", x.shape, output_size)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"adaptive_avg_pool2d: input of shape {x.shape} has an empty plane")
    out = np.empty(x.shape[:2] + (oh, ow), x.dtype)
    for i, (h0, h1) in enumerate(_adaptive_windows(x.shape[2], oh)):
        for j, (w0, w1) in enumerate(_adaptive_windows(x.shape[3], ow)):
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def adaptive_avg_pool2d_backward(grad, input_shape):
    checks.floats("adaptive_avg_pool2d_backward", grad=grad)
    dx = np.zeros(input_shape, grad.dtype)
    oh, ow = grad.shape[2:]
    for i, (h0, h1) in enumerate(_adaptive_windows(input_shape[2], oh)):
        for j, (w0, w1) in enumerate(_adaptive_windows(input_shape[3], ow)):
            dx[:, :, h0:h1, w0:w1] += (grad[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return dx
