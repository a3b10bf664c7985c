"""Pooling: max (with the argmax saved for backward), average and adaptive average.

x, dx: (B, C, H, W)    out, grad, argmax: (B, C, OH, OW)
argmax holds the flat index h * W + w of the chosen input element in its (H, W) plane, as
PyTorch's return_indices does (int32 here; minigrad widens it to int64 where it is shown).
Every kernel runs one prange iteration per (B, C) plane, and planes never overlap, so the
backward scatters need no atomics. 1-D pooling is 2-D pooling with H = 1 (minigrad reshapes).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels import checks
from kernels._config import kernel

# -- max pooling ------------------------------------------------------------------------------


@kernel(parallel=True)
def _max_pool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, argmax):
    B, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for i in range(OH):
            for j in range(OW):
                best = -np.inf
                where = -1
                for u in range(kh):
                    h = i * sh - ph + u * dh
                    if h < 0 or h >= H:
                        continue
                    for v in range(kw):
                        w = j * sw - pw + v * dw
                        if w < 0 or w >= W:
                            continue
                        value = x[b, c, h, w]
                        if value > best or where < 0 or np.isnan(value):
                            best = value
                            where = h * W + w
                out[b, c, i, j] = best
                argmax[b, c, i, j] = where


@kernel(parallel=True)
def _max_pool_forward_inside(x, kh, kw, sh, sw, dh, dw, out, argmax):
    # The same when every window lies inside the input (no padding, no ceil_mode overhang):
    # no bounds checks, and the first element of the window starts the search.
    B, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for i in range(OH):
            h0 = i * sh
            for j in range(OW):
                w0 = j * sw
                best = x[b, c, h0, w0]
                where = h0 * W + w0
                for u in range(kh):
                    for v in range(kw):
                        value = x[b, c, h0 + u * dh, w0 + v * dw]
                        if value > best or np.isnan(value):
                            best = value
                            where = (h0 + u * dh) * W + w0 + v * dw
                out[b, c, i, j] = best
                argmax[b, c, i, j] = where


@kernel(parallel=True)
def _max_pool_forward_2x2(x, out, argmax):
    # 2x2 windows with stride 2, the most common pooling in CNNs, written out so that LLVM
    # vectorizes along the row: about 6x faster than the general loop above.
    B, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for i in range(OH):
            top, bottom = x[b, c, 2 * i], x[b, c, 2 * i + 1]
            o, a = out[b, c, i], argmax[b, c, i]
            base = 2 * i * W
            for j in range(OW):
                best, k = top[2 * j], base + 2 * j
                value = top[2 * j + 1]
                if value > best or np.isnan(value):
                    best, k = value, base + 2 * j + 1
                value = bottom[2 * j]
                if value > best or np.isnan(value):
                    best, k = value, base + W + 2 * j
                value = bottom[2 * j + 1]
                if value > best or np.isnan(value):
                    best, k = value, base + W + 2 * j + 1
                o[j] = best
                a[j] = k


@kernel(parallel=True)
def _max_pool_backward(grad, argmax, dx):
    # grad, argmax (planes, OH*OW); dx (planes, H*W): zero each plane (a vectorized fill),
    # then add every output gradient at its argmax, a flat index into the plane. Overlapping
    # windows add up. On LeNet's (64, 6, 28, 28) input: 0.06 ms, against 0.34 ms for writing
    # each window's elements in turn (stride-2 stores that stayed scalar) and 0.17 ms for
    # that loop written out for 2x2 windows.
    # Returns how many indices fell outside their plane (skipped: never a write out of bounds).
    P, N = grad.shape
    size = dx.shape[1]
    bad = 0
    for plane in prange(P):
        d, g, a = dx[plane], grad[plane], argmax[plane]
        for i in range(size):
            d[i] = 0.0
        for q in range(N):
            k = a[q]
            if 0 <= k < size:
                d[k] += g[q]
            else:
                bad += 1
    return bad


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over each window; returns (out, argmax)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = checks.pool_geometry(
        "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode
    )
    b, c, h, w = x.shape
    out = np.empty((b, c, oh, ow), x.dtype)
    # int32 indices: a plane never has 2^31 elements, and half the bytes is a measurable win.
    argmax = np.empty((b, c, oh, ow), np.int32)
    if out.size:
        inside = (
            ph == 0
            and pw == 0
            and (oh - 1) * sh + (kh - 1) * dh < h
            and (ow - 1) * sw + (kw - 1) * dw < w
        )
        if inside and (kh, kw, sh, sw, dh, dw) == (2, 2, 2, 2, 1, 1):
            _max_pool_forward_2x2(x, out, argmax)
        elif inside:
            _max_pool_forward_inside(x, kh, kw, sh, sw, dh, dw, out, argmax)
        else:
            _max_pool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, out, argmax)
    return out, argmax


def max_pool2d_backward(
    grad, argmax, input_shape, kernel_size=None, stride=None, padding=0, dilation=1
):
    """dx (input_shape) with each output gradient added at its argmax. The geometry
    arguments are accepted for the twin's signature and not needed: argmax holds flat
    indices into each input plane."""
    checks.max_pool_backward_inputs(grad, argmax, input_shape)
    dx = np.empty(input_shape, grad.dtype)
    if dx.size:
        planes = input_shape[0] * input_shape[1]
        bad = _max_pool_backward(
            np.ascontiguousarray(grad).reshape(planes, -1),
            np.ascontiguousarray(argmax).reshape(planes, -1),
            dx.reshape(planes, -1),
        )
        checks.refuse_argmax_outside_plane(bad, input_shape)
    return dx


# -- average pooling --------------------------------------------------------------------------
# PyTorch's divisor: the window clipped to the padded input (count_include_pad=True) or to
# the input itself (False), unless divisor_override is given.


@kernel
def _window(i, stride, pad, k, size):
    start = i * stride - pad
    end = min(start + k, size + pad)
    padded = end - start
    return max(start, 0), min(end, size), padded


@kernel(parallel=True)
def _avg_pool_forward(x, kh, kw, sh, sw, ph, pw, include_pad, divisor, out):
    B, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for i in range(OH):
            h0, h1, hpad = _window(i, sh, ph, kh, H)
            for j in range(OW):
                w0, w1, wpad = _window(j, sw, pw, kw, W)
                s = 0.0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        s += x[b, c, h, w]
                if divisor > 0:
                    n = divisor
                elif include_pad:
                    n = hpad * wpad
                else:
                    n = (h1 - h0) * (w1 - w0)
                out[b, c, i, j] = s / n if n > 0 else 0.0


@kernel(parallel=True)
def _avg_pool_backward(grad, kh, kw, sh, sw, ph, pw, include_pad, divisor, dx):
    B, C, H, W = dx.shape
    OH, OW = grad.shape[2], grad.shape[3]
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for h in range(H):
            for w in range(W):
                dx[b, c, h, w] = 0.0
        for i in range(OH):
            h0, h1, hpad = _window(i, sh, ph, kh, H)
            for j in range(OW):
                w0, w1, wpad = _window(j, sw, pw, kw, W)
                if divisor > 0:
                    n = divisor
                elif include_pad:
                    n = hpad * wpad
                else:
                    n = (h1 - h0) * (w1 - w0)
                if n == 0:
                    continue
                g = grad[b, c, i, j] / n
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        dx[b, c, h, w] += g


def avg_pool2d_forward(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Mean over each window (PyTorch's divisor rules)."""
    (kh, kw), (sh, sw), (ph, pw), _, (oh, ow) = checks.pool_geometry(
        "avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode
    )
    out = np.empty(x.shape[:2] + (oh, ow), x.dtype)
    if out.size:
        _avg_pool_forward(
            x,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            count_include_pad,
            checks.pool_divisor("avg_pool2d", divisor_override),
            out,
        )
    return out


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
    """dx of avg_pool2d: each output gradient spread evenly over its window."""
    (kh, kw), (sh, sw), (ph, pw), _ = checks.avg_pool_backward_inputs(
        grad, input_shape, kernel_size, stride, padding, ceil_mode
    )
    dx = np.empty(input_shape, grad.dtype)
    if dx.size:
        _avg_pool_backward(
            grad,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            count_include_pad,
            checks.pool_divisor("avg_pool2d_backward", divisor_override),
            dx,
        )
    return dx


# -- adaptive average pooling -------------------------------------------------------------------
# Output cell i covers input rows floor(i * H / OH) .. ceil((i + 1) * H / OH), as PyTorch.


@kernel(parallel=True)
def _adaptive_avg_forward(x, out):
    B, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for i in range(OH):
            h0, h1 = (i * H) // OH, -((-(i + 1) * H) // OH)
            for j in range(OW):
                w0, w1 = (j * W) // OW, -((-(j + 1) * W) // OW)
                s = 0.0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        s += x[b, c, h, w]
                out[b, c, i, j] = s / ((h1 - h0) * (w1 - w0))


@kernel(parallel=True)
def _adaptive_avg_backward(grad, dx):
    B, C, H, W = dx.shape
    OH, OW = grad.shape[2], grad.shape[3]
    for plane in prange(B * C):
        b, c = plane // C, plane % C
        for h in range(H):
            for w in range(W):
                dx[b, c, h, w] = 0.0
        for i in range(OH):
            h0, h1 = (i * H) // OH, -((-(i + 1) * H) // OH)
            for j in range(OW):
                w0, w1 = (j * W) // OW, -((-(j + 1) * W) // OW)
                g = grad[b, c, i, j] / ((h1 - h0) * (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        dx[b, c, h, w] += g


def adaptive_avg_pool2d_forward(x, output_size):
    """Average pooling to a fixed output size (1 gives global average pooling)."""
    checks.floats("adaptive_avg_pool2d", x=x)
    checks.rank("adaptive_avg_pool2d", "x", x, 4, "(B, C, H, W)")
    oh, ow = checks.adaptive_pool_size("adaptive_avg_pool2d", x.shape, output_size)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"adaptive_avg_pool2d: input of shape {x.shape} has an empty plane")
    out = np.empty(x.shape[:2] + (oh, ow), x.dtype)
    if out.size:
        _adaptive_avg_forward(x, out)
    return out


def adaptive_avg_pool2d_backward(grad, input_shape):
    checks.floats("adaptive_avg_pool2d_backward", grad=grad)
    dx = np.empty(input_shape, grad.dtype)
    if dx.size:
        _adaptive_avg_backward(grad, dx)
    return dx
