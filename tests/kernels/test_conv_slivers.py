"""kernels/conv_slivers.py: convolution on batch slivers (Winograd for 3x3 filters, direct for
the others), against the NumPy twin.

Its shapes are ones that conv2d dispatches to it (kernels/conv.py, _sliver_pads): they are
checked to take that path, so that a change of rule cannot quietly leave it untested.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels import checks, conv, conv_slivers
from kernels.microkernels import sliver_tile
from kernels.twins import conv as t_conv

from .test_kernels import DTYPES, arr, same

SLIVER_CASES = [
    # x shape, w shape, padding: batches that fill their slivers in both dtypes
    ((16, 16, 6, 7), (16, 16, 3, 3), 1),  # one full sliver (two in float64)
    ((13, 18, 7, 9), (20, 18, 5, 5), 2),  # a sliver with missing images; padded channels
    ((13, 18, 7, 9), (20, 18, 3, 3), 1),  # the same through Winograd
    ((32, 16, 5, 5), (17, 16, 4, 4), "same"),  # even kernel: padding 1 above, 2 below
    ((14, 16, 4, 6), (16, 16, 3, 3), (2, 1)),  # padding wider than the kernel's half
    ((16, 9, 3, 20), (5, 9, 1, 9), (0, 4)),  # 1x9; rows wider than a block of 16 columns
    ((16, 16, 9, 35), (32, 16, 3, 3), 1),  # two blocks of 16 columns and a short one
    ((16, 8, 6, 6), (4, 8, 3, 3), 1),  # 8 channels in, 4 out: both padded to a tile
]


def _takes_sliver_path(x, w, padding):
    geometry = checks.conv_geometry("conv2d", x, w, 1, padding, 1, 1)
    return conv._sliver_pads(x, w, geometry[0], geometry[1], geometry[2], geometry[3], 1,
                             geometry[4]) is not None  # fmt: skip


def _check(xs, ws, padding, dtype, seed=11):
    rng = np.random.default_rng(seed)
    x, w, b = arr(rng, xs, dtype), arr(rng, ws, dtype), arr(rng, (ws[0],), dtype)
    assert _takes_sliver_path(x, w, padding)
    out, kept = conv.conv2d_forward_keeping_columns(x, w, b, 1, padding)
    same(out, t_conv.conv2d_forward(x, w, b, 1, padding), dtype)
    assert kept is not None  # the sliver layout of x, which the backward reuses
    dout = arr(rng, out.shape, dtype)
    want = t_conv.conv2d_backward(x, w, dout, 1, padding)
    for cols in (kept, None):
        got = conv.conv2d_backward(x, w, dout, 1, padding, cols=cols)
        same(got[0], want[0], dtype)
        # dw and dbias sum over every image and position: compare relative to their size
        for g, v in zip(got[1:], want[1:]):
            np.testing.assert_allclose(
                g, v, rtol=1e-3 if dtype == np.float32 else 1e-9,
                atol=1e-3 if dtype == np.float32 else 1e-9,
            )  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, padding", SLIVER_CASES)
def test_sliver_conv_matches_twin(dtype, xs, ws, padding):
    _check(xs, ws, padding, dtype)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False), (False, False, True)])
def test_sliver_conv_computes_only_what_is_needed(need):
    rng = np.random.default_rng(12)
    x, w = arr(rng, (16, 16, 5, 5), np.float32), arr(rng, (16, 16, 3, 3), np.float32)
    dout = arr(rng, (16, 16, 5, 5), np.float32)
    got = conv.conv2d_backward(x, w, dout, 1, 1, need=need)
    want = t_conv.conv2d_backward(x, w, dout, 1, 1)
    for flag, g, v in zip(need, got, want):
        if flag:
            np.testing.assert_allclose(g, v, rtol=1e-3, atol=1e-3)
        else:
            assert g is None


def test_sliver_conv_ignores_kept_columns_of_another_shape():
    # columns from some other path (or a stale call) are not the sliver layout: recomputed
    rng = np.random.default_rng(13)
    x, w = arr(rng, (16, 16, 5, 5), np.float64), arr(rng, (16, 16, 3, 3), np.float64)
    dout = arr(rng, (16, 16, 5, 5), np.float64)
    got = conv.conv2d_backward(x, w, dout, 1, 1, cols=np.zeros((1, 144, 400)))
    same(got, t_conv.conv2d_backward(x, w, dout, 1, 1), np.float64)


def test_sliver_conv_on_two_threads_matches_twin(two_threads):
    """The parallel builds: rows of (sliver, output row) share out over the threads, and the
    weight gradient sums one partial per thread."""
    for dtype in DTYPES:
        _check((13, 18, 7, 9), (20, 18, 5, 5), 2, dtype, seed=14)
        _check((13, 18, 7, 9), (20, 18, 3, 3), 1, dtype, seed=15)


def test_sliver_conv_dispatch_rule():
    """Stride 1, no dilation or groups, padding up to KH-1, 9 taps or more, 8 channels in and
    4 out or more, and a batch that fills 75 % of its slivers; everything else stays on
    im2col or Winograd on (B, C, H, W) (measured: conv_slivers.applies)."""

    def takes(b=32, c=16, o=16, k=(3, 3), s=(1, 1), d=(1, 1), g=1, pads=(1, 1, 1, 1),
              dtype=np.float32):  # fmt: skip
        return conv_slivers.applies(k, s, d, g, pads, b, c, o, dtype)

    for dtype in (np.float32, np.float64):  # the batch fills 75 % of its NR-image slivers
        nr = sliver_tile(dtype)[1]
        fill = -(-3 * nr // 4)
        assert takes(b=fill, dtype=dtype) and not takes(b=fill - 1, dtype=dtype)
        assert takes(b=2 * nr, dtype=dtype) and not takes(b=nr + nr // 4, dtype=dtype)
    assert not takes(b=1)
    assert not takes(s=(2, 2)) and not takes(d=(2, 1)) and not takes(g=2, c=32, o=32)
    assert takes(c=8, o=4) and not takes(c=3) and not takes(o=3)
    assert not takes(pads=(3, 3, 1, 1))
    assert takes(k=(5, 5), pads=(2, 2, 2, 2)) and not takes(k=(1, 1), pads=(0,) * 4)
    # the README's benchmark shapes: two of three take it; one input channel does not
    assert takes(b=64, c=32, o=64) and takes(b=32, c=64, o=64) and not takes(b=64, c=1, o=32)
