"""NumPy twin of kernels/conv.py: im2col by a loop over kernel offsets and fancy indexing."""

from __future__ import annotations

import numpy as np

from kernels import checks


def _padded(x, p_tblr):
    pt, pb, pl, pr = p_tblr
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def _pads(x_hw, k, s, p_tl, d, out_hw):
    """Bottom/right padding actually read: enough for the last window."""
    need_h = (out_hw[0] - 1) * s[0] + d[0] * (k[0] - 1) + 1
    need_w = (out_hw[1] - 1) * s[1] + d[1] * (k[1] - 1) + 1
    return p_tl[0], max(0, need_h - x_hw[0] - p_tl[0]), p_tl[1], max(0, need_w - x_hw[1] - p_tl[1])


def im2col(x, kernel_hw, stride_hw, pad_tl, dilation_hw, groups, out_hw):
    k, s, p_tl, d = kernel_hw, stride_hw, pad_tl, dilation_hw
    b, c, h, w = x.shape
    xp = _padded(x, _pads((h, w), k, s, p_tl, d, out_hw))
    oh, ow = out_hw
    patches = np.empty((b, c, k[0], k[1], oh, ow), x.dtype)
    for u in range(k[0]):
        for v in range(k[1]):
            hs, ws = u * d[0], v * d[1]
            patches[:, :, u, v] = xp[
                :, :, hs : hs + s[0] * (oh - 1) + 1 : s[0], ws : ws + s[1] * (ow - 1) + 1 : s[1]
            ]
    # (B, C, KH, KW, OH, OW) -> (G, C/G*KH*KW, B*OH*OW)
    patches = patches.reshape(b, groups, c // groups * k[0] * k[1], oh * ow)
    rows = c // groups * k[0] * k[1]
    return np.ascontiguousarray(patches.transpose(1, 2, 0, 3)).reshape(groups, rows, b * oh * ow)


def col2im(dcols, x_shape, kernel_hw, stride_hw, pad_tl, dilation_hw, out_hw):
    k, s, p_tl, d = kernel_hw, stride_hw, pad_tl, dilation_hw
    b, c, h, w = x_shape
    pads = _pads((h, w), k, s, p_tl, d, out_hw)
    dxp = np.zeros((b, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dcols.dtype)
    oh, ow = out_hw
    groups = dcols.shape[0]
    rows = c // groups * k[0] * k[1]
    patches = (
        dcols.reshape(groups, rows, b, oh * ow)
        .transpose(2, 0, 1, 3)
        .reshape(b, c, k[0], k[1], oh, ow)
    )
    for u in range(k[0]):
        for v in range(k[1]):
            hs, ws = u * d[0], v * d[1]
            dxp[
                :, :, hs : hs + s[0] * (oh - 1) + 1 : s[0], ws : ws + s[1] * (ow - 1) + 1 : s[1]
            ] += patches[:, :, u, v]
    return dxp[:, :, pads[0] : pads[0] + h, pads[2] : pads[2] + w]


def conv2d_algorithm(x, w, stride=1, padding=0, dilation=1, groups=1):
    """The twin's one algorithm: im2col and a NumPy matmul."""
    checks.conv_geometry("conv2d", x, w, stride, padding, dilation, groups)
    return "im2col (NumPy twin)"


def conv2d_forward(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    checks.floats("conv2d", input=x, weight=w, bias=bias)
    k, s, p, d, (oh, ow) = checks.conv_geometry("conv2d", x, w, stride, padding, dilation, groups)
    o = w.shape[0]
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"conv2d: bias of shape {bias.shape} does not match {o} output channels")
    cols = im2col(x, k, s, p, d, groups, (oh, ow))
    out = np.matmul(w.reshape(groups, o // groups, -1), cols)  # (G, O/G, B*OH*OW)
    out = out.reshape(o, x.shape[0], oh, ow).transpose(1, 0, 2, 3)
    return out + bias.reshape(1, o, 1, 1) if bias is not None else np.ascontiguousarray(out)


def conv2d_forward_keeping_columns(
    x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, max_bytes=16 << 20
):
    """The twin keeps no columns: its backward recomputes them (the reference path)."""
    return conv2d_forward(x, w, bias, stride, padding, dilation, groups), None


def conv2d_backward(
    x, w, dout, stride=1, padding=0, dilation=1, groups=1, need=(True, True, True), cols=None
):
    k, s, p, d, (oh, ow) = checks.conv_backward_inputs(
        x, w, dout, stride, padding, dilation, groups
    )
    b, o = x.shape[0], w.shape[0]
    dg = dout.transpose(1, 0, 2, 3).reshape(groups, o // groups, b * oh * ow)
    wg = w.reshape(groups, o // groups, -1)
    dx = (
        col2im(np.matmul(wg.transpose(0, 2, 1), dg), x.shape, k, s, p, d, (oh, ow))
        if need[0]
        else None
    )
    dw = None
    if need[1]:
        if cols is None:
            cols = im2col(x, k, s, p, d, groups, (oh, ow))
        dw = np.matmul(dg, cols.transpose(0, 2, 1)).reshape(w.shape)
    dbias = dout.sum(axis=(0, 2, 3)) if need[2] else None
    return dx, dw, dbias
