"""Every Numba kernel against its NumPy twin: hypothesis-drawn shapes plus fixed awkward ones
(1x1, odd sizes, stride > kernel, groups = channels, T = 1, empty batch), float32 and float64.

The twins are themselves checked against PyTorch in tests/minigrad/test_functional_torch.py and
through gradcheck in the op registry, so kernel == twin closes the loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels import attention, conv, layer_norm, matmul, microkernels, pool, softmax
from kernels.twins import attention as t_attention
from kernels.twins import conv as t_conv
from kernels.twins import layer_norm as t_layer_norm
from kernels.twins import matmul as t_matmul
from kernels.twins import pool as t_pool
from kernels.twins import softmax as t_softmax

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return {"rtol": 2e-4, "atol": 2e-4} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-9}


def same(a, b, dtype):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y, dtype)
        return
    if a is None or b is None:
        assert a is None and b is None
        return
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind in "iu":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, **tol(dtype))


def arr(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# -- softmax and cross-entropy -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple), data=st.data())
def test_softmax_matches_twin(dtype, shape, data):
    rng = np.random.default_rng(0)
    dim = data.draw(st.integers(0, len(shape) - 1))
    log = data.draw(st.booleans())
    x, g = arr(rng, shape, dtype, 5), arr(rng, shape, dtype)
    y = softmax.softmax_forward(x, dim, log)
    same(y, t_softmax.softmax_forward(x, dim, log), dtype)
    same(
        softmax.softmax_backward(y, g, dim, log), t_softmax.softmax_backward(y, g, dim, log), dtype
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c", [(1, 1), (0, 5), (7, 3), (3, 1000)])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_twin(dtype, n, c, smoothing, weighted):
    rng = np.random.default_rng(1)
    x = arr(rng, (n, c), dtype, 1e4)  # logits of magnitude 1e4 must stay finite
    t = rng.integers(0, c, n)
    if n > 2:
        t[1] = -100
    w = rng.random(c).astype(dtype) if weighted else None
    loss, lse = softmax.cross_entropy_forward(x, t, w, -100, smoothing)
    same((loss, lse), t_softmax.cross_entropy_forward(x, t, w, -100, smoothing), dtype)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(lse))
    g = rng.random(n).astype(dtype)
    d = softmax.cross_entropy_backward(x, t, w, lse, g, -100, smoothing)
    same(d, t_softmax.cross_entropy_backward(x, t, w, lse, g, -100, smoothing), dtype)
    assert np.all(np.isfinite(d))


# -- layer norm ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(r=st.integers(0, 70), d=st.integers(1, 40), affine=st.booleans())
def test_layer_norm_matches_twin(dtype, r, d, affine):
    rng = np.random.default_rng(2)
    x = arr(rng, (r, d), dtype, 3)
    w, b = (arr(rng, (d,), dtype), arr(rng, (d,), dtype)) if affine else (None, None)
    fwd = layer_norm.layer_norm_forward(x, w, b)
    same(fwd, t_layer_norm.layer_norm_forward(x, w, b), dtype)
    dy = arr(rng, (r, d), dtype)
    same(
        layer_norm.layer_norm_backward(x, w, fwd[1], fwd[2], dy),
        t_layer_norm.layer_norm_backward(x, w, fwd[1], fwd[2], dy),
        dtype,
    )


# -- pooling ---------------------------------------------------------------------------------

POOL_CASES = [
    # (B, C, H, W), kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 8), 2, None, 0, 1, False),  # the 2x2 fast path
    ((1, 1, 1, 1), 1, 1, 0, 1, False),  # 1x1
    ((2, 2, 7, 9), 3, 2, 1, 1, True),  # odd sizes, ceil_mode
    ((1, 2, 5, 5), 2, 3, 0, 1, False),  # stride > kernel
    ((1, 2, 9, 9), 3, 1, 1, 2, False),  # dilation
    ((0, 2, 4, 4), 2, 2, 0, 1, False),  # empty batch
    ((2, 1, 6, 7), (2, 3), (1, 2), (1, 1), 1, False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, s, p, d, ceil", POOL_CASES)
def test_max_pool_matches_twin(dtype, shape, k, s, p, d, ceil):
    rng = np.random.default_rng(3)
    x = arr(rng, shape, dtype)
    out, idx = pool.max_pool2d_forward(x, k, s, p, d, ceil)
    same((out, idx), t_pool.max_pool2d_forward(x, k, s, p, d, ceil), dtype)
    g = arr(rng, out.shape, dtype)
    expected = t_pool.max_pool2d_backward(g, idx, shape)
    same(pool.max_pool2d_backward(g, idx, shape), expected, dtype)
    same(pool.max_pool2d_backward(g, idx, shape, k, s, p, d), expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, s, p, d, ceil", [c for c in POOL_CASES if c[4] == 1])
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool_matches_twin(dtype, shape, k, s, p, d, ceil, include_pad):
    rng = np.random.default_rng(4)
    x = arr(rng, shape, dtype)
    out = pool.avg_pool2d_forward(x, k, s, p, ceil, include_pad)
    same(out, t_pool.avg_pool2d_forward(x, k, s, p, ceil, include_pad), dtype)
    g = arr(rng, out.shape, dtype)
    same(
        pool.avg_pool2d_backward(g, shape, k, s, p, ceil, include_pad),
        t_pool.avg_pool2d_backward(g, shape, k, s, p, ceil, include_pad),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@given(h=st.integers(1, 9), w=st.integers(1, 9), oh=st.integers(1, 5), ow=st.integers(1, 5))
def test_adaptive_avg_pool_matches_twin(dtype, h, w, oh, ow):
    rng = np.random.default_rng(5)
    x = arr(rng, (2, 3, h, w), dtype)
    out = pool.adaptive_avg_pool2d_forward(x, (oh, ow))
    same(out, t_pool.adaptive_avg_pool2d_forward(x, (oh, ow)), dtype)
    g = arr(rng, out.shape, dtype)
    same(
        pool.adaptive_avg_pool2d_backward(g, x.shape),
        t_pool.adaptive_avg_pool2d_backward(g, x.shape),
        dtype,
    )


# -- convolution -----------------------------------------------------------------------------

CONV_CASES = [
    # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, 1),
    ((1, 1, 1, 1), (1, 1, 1, 1), 1, 0, 1, 1),  # 1x1
    ((1, 2, 5, 5), (3, 2, 2, 2), 3, 0, 1, 1),  # stride > kernel
    ((2, 4, 6, 6), (4, 1, 3, 3), 1, "same", 1, 4),  # groups = channels (depthwise)
    ((2, 2, 6, 7), (2, 2, 4, 4), 1, "same", (2, 1), 1),  # even kernel, asymmetric 'same'
    ((0, 2, 5, 5), (3, 2, 3, 3), 1, 1, 1, 1),  # empty batch
    ((1, 4, 8, 8), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, s, p, d, g", CONV_CASES)
def test_conv2d_matches_twin(dtype, xs, ws, s, p, d, g):
    rng = np.random.default_rng(6)
    x, w, b = arr(rng, xs, dtype), arr(rng, ws, dtype), arr(rng, (ws[0],), dtype)
    out = conv.conv2d_forward(x, w, b, s, p, d, g)
    same(out, t_conv.conv2d_forward(x, w, b, s, p, d, g), dtype)
    dout = arr(rng, out.shape, dtype)
    same(
        conv.conv2d_backward(x, w, dout, s, p, d, g),
        t_conv.conv2d_backward(x, w, dout, s, p, d, g),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@given(
    b=st.integers(1, 3),
    c=st.integers(1, 4),
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    o=st.integers(1, 4),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
)
def test_conv2d_matches_twin_on_drawn_shapes(dtype, b, c, h, w, o, k, s, p):
    rng = np.random.default_rng(7)
    x, wt = arr(rng, (b, c, h, w), dtype), arr(rng, (o, c, k, k), dtype)
    out = conv.conv2d_forward(x, wt, None, s, p)
    same(out, t_conv.conv2d_forward(x, wt, None, s, p), dtype)
    dout = arr(rng, out.shape, dtype)
    same(conv.conv2d_backward(x, wt, dout, s, p), t_conv.conv2d_backward(x, wt, dout, s, p), dtype)


@pytest.mark.parametrize("module", [conv, t_conv])
def test_conv2d_bias_gradient_keeps_inf_and_nan(module):
    # dbias is summed while dout is laid out for the product: an inf or NaN in dout must
    # still reach it (a sum started from dout[0] * 0 would turn an inf into NaN)
    x, w = np.ones((2, 1, 4, 4), np.float32), np.ones((3, 1, 3, 3), np.float32)
    dout = np.ones((2, 3, 2, 2), np.float32)
    dout[0, 0, 0, 0], dout[1, 1, 1, 1] = np.inf, np.nan
    dbias = module.conv2d_backward(x, w, dout, need=(False, False, True))[2]
    np.testing.assert_array_equal(dbias, [np.inf, np.nan, 8.0])


# -- attention -------------------------------------------------------------------------------

ATTENTION_CASES = [
    # q shape, k shape, mask kind, causal
    ((2, 2, 5, 4), (2, 2, 7, 4), None, False),
    ((1, 1, 1, 4), (1, 1, 1, 4), None, True),  # T = 1
    ((1, 2, 130, 8), (1, 2, 130, 8), None, True),  # crosses block boundaries
    ((2, 1, 9, 4), (2, 1, 9, 4), "bool", False),
    ((2, 2, 9, 4), (2, 2, 9, 4), "additive", False),
    ((1, 1, 300, 4), (1, 1, 300, 4), None, True),  # the long-sequence block size
    # diagonal blocks in strips (kernels/attention.py, STRIP), with more keys than queries,
    # and with a mask on top of the causal one
    ((1, 1, 270, 4), (1, 1, 300, 4), None, True),
    ((1, 2, 290, 4), (1, 2, 290, 4), "bool", True),
    ((0, 2, 4, 4), (0, 2, 4, 4), None, False),  # empty batch
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("qs, ks, mask_kind, causal", ATTENTION_CASES)
def test_attention_matches_twin(dtype, qs, ks, mask_kind, causal):
    rng = np.random.default_rng(8)
    q, k, v = arr(rng, qs, dtype), arr(rng, ks, dtype), arr(rng, ks, dtype)
    mask = None
    if mask_kind == "bool":
        mask = rng.random((qs[2], ks[2])) > 0.3
        mask[0] = False  # a fully masked row: output and gradients 0, not nan
    elif mask_kind == "additive":
        mask = arr(rng, (1, qs[1], qs[2], ks[2]), dtype)
    out = attention.attention_forward(q, k, v, mask, causal)
    same(out, t_attention.attention_forward(q, k, v, mask, causal), dtype)
    assert np.all(np.isfinite(out[0]))
    dout = arr(rng, qs, dtype)
    grads = attention.attention_backward(q, k, v, *out, dout, mask, causal)
    same(grads, t_attention.attention_backward(q, k, v, *out, dout, mask, causal), dtype)


# -- matmul ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(
    m=st.integers(1, 70),
    k=st.integers(0, 300),
    n=st.integers(1, 70),
    batch=st.sampled_from([(), (2,), (2, 1)]),
)
def test_gemm_matches_twin(dtype, m, k, n, batch):
    rng = np.random.default_rng(9)
    a, b = arr(rng, batch + (m, k), dtype), arr(rng, (k, n), dtype)
    same(matmul.gemm(a, b), t_matmul.gemm(a, b), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_crosses_every_block_edge(dtype):
    # M > MC, K > 2 KC and N > NC, none a multiple of the tile: partial blocks, slices, slivers
    m, k, n = matmul.MC + 9, 2 * matmul.KC + 7, matmul.NC + 5
    rng = np.random.default_rng(10)
    a, b = arr(rng, (m, k), dtype), arr(rng, (k, n), dtype)
    same(matmul.gemm(a, b), t_matmul.gemm(a, b), dtype)


def test_gemm_microkernels_file_is_generated():
    from kernels import gen_microkernels

    assert gen_microkernels.main(["--check"]) == 0


# The LSTM's products (kernels/matmul.py, used by kernels/rnn.py): each against NumPy.


def _slivers_of(m, nr):
    """(S, K, NR) by NR-column sliver, zero padded, from m (K, N)."""
    k, n = m.shape
    s = (n + nr - 1) // nr
    out = np.zeros((k, s * nr), m.dtype)
    out[:, :n] = m
    return np.ascontiguousarray(out.reshape(k, s, nr).transpose(1, 0, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@given(m=st.integers(1, 40), k=st.integers(0, 70), n=st.integers(1, 40), transposed=st.booleans())
def test_sliver_product_matches_numpy(dtype, m, k, n, transposed):
    """pack_slivers (of a C array or of a transposed view) then sliver_product: A @ B with the
    result by sliver, padding rows and columns zero."""
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = arr(rng, (m, k), dtype), arr(rng, (k, n), dtype)
    if transposed:
        a = np.ascontiguousarray(a.T).T  # an F-ordered view, packed as it is
    mr, nr = microkernels.sliver_tile(dtype)
    packed = np.empty(matmul.packed_shape(m, k, dtype), dtype)
    matmul.pack_slivers(a, packed)
    c = np.full((-(-n // nr), packed.shape[0] * mr, nr), np.nan, dtype)
    matmul.sliver_product(packed, _slivers_of(b, nr), c)
    got = c.transpose(1, 0, 2).reshape(c.shape[1], -1)
    same(got[:m, :n], a @ b, dtype)
    assert not got[m:].any() and not got[:m, n:].any()


@pytest.mark.parametrize("dtype", DTYPES)
@given(blocks=st.integers(1, 6), p=st.integers(0, 2), n_tiles=st.integers(1, 3))
def test_blocked_product_matches_numpy(dtype, blocks, p, n_tiles):
    """blocked_product: c += A @ B, A's blocks read out of a (Q, P, M, L) array at column p,
    B's rows a stride apart, from a chosen first block; c by sliver, accumulated."""
    rng = np.random.default_rng(blocks * 10 + p)
    mr, nr = microkernels.sliver_tile(dtype)
    q, big_p, m, lanes = blocks + 2, 3, 2 * mr, nr
    a = arr(rng, (q, big_p, m, lanes), dtype)
    stride, n = 2 * lanes, n_tiles * nr
    b = arr(rng, (q * stride, n), dtype)
    start = arr(rng, (n // nr, m, nr), dtype)
    c = start.copy()
    q0, q1 = 1, 1 + blocks
    matmul.blocked_product(a, p, q0, q1, b, stride, c)
    wide = np.concatenate([a[i, p] for i in range(q0, q1)], axis=1)  # (m, blocks * lanes)
    rows = np.concatenate([b[(i - q0) * stride : (i - q0) * stride + lanes] for i in range(q0, q1)])
    want = start.transpose(1, 0, 2).reshape(m, n) + wide @ rows
    same(c.transpose(1, 0, 2).reshape(m, n), want, dtype)


# -- bad input: the same clear error from kernel and twin ----------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda m: m[0].conv2d_forward(
                np.ones((1, 3, 5, 5), np.float32), np.ones((4, 2, 3, 3), np.float32)
            ),
            ValueError,
            r"weight \(4, 2, 3, 3\) expects 2 input channels",
        ),
        (
            lambda m: m[0].conv2d_forward(
                np.ones((1, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32), groups=2
            ),
            ValueError,
            r"divisible by groups 2",
        ),
        (
            lambda m: m[0].conv2d_forward(
                np.ones((1, 1, 2, 2), np.float32), np.ones((1, 1, 3, 3), np.float32)
            ),
            ValueError,
            r"kernel size 3 .* larger than the padded input size 2",
        ),
        (
            lambda m: m[0].conv2d_forward(
                np.ones((3, 5, 5), np.float32), np.ones((1, 3, 3, 3), np.float32)
            ),
            ValueError,
            r"expected input of shape \(B, C, H, W\), got \(3, 5, 5\)",
        ),
        (
            lambda m: m[0].conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3), np.float32)),
            TypeError,
            r"weight is float32 but the other inputs are float64",
        ),
        (
            lambda m: m[1].max_pool2d_forward(np.ones((1, 1, 2, 2), np.float32), 3),
            ValueError,
            r"kernel size 3 .* larger than the padded input",
        ),
        (
            lambda m: m[1].max_pool2d_forward(np.ones((1, 1, 4, 4), np.float32), 2, padding=2),
            ValueError,
            r"padding \(2, 2\) must be at most half the kernel size",
        ),
        (
            lambda m: m[1].max_pool2d_backward(
                np.ones((1, 2, 2, 2), np.float32), np.full((1, 2, 2, 2), 16, np.int32), (1, 2, 4, 4)
            ),
            ValueError,
            r"8 argmax indices are outside the input plane of 4 x 4 elements",
        ),
        (
            lambda m: m[1].max_pool2d_backward(
                np.ones((1, 2, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.int32), (1, 3, 4, 4)
            ),
            ValueError,
            r"input shape \(1, 3, 4, 4\) does not match grad \(1, 2, 2, 2\)",
        ),
        (
            lambda m: m[2].attention_forward(
                *(np.ones((1, 1, 3, 4), np.float32),) * 3, mask=np.ones((2, 5), bool)
            ),
            ValueError,
            r"attn_mask of shape \(2, 5\) does not broadcast to \(1, 1, 3, 3\)",
        ),
        (
            lambda m: m[2].attention_forward(
                np.ones((1, 3, 4), np.float32), *(np.ones((1, 1, 3, 4), np.float32),) * 2
            ),
            ValueError,
            r"expected query of shape \(B, NH, T, D\)",
        ),
        (
            lambda m: m[3].cross_entropy_forward(np.ones((2, 3), np.float32), np.array([0, 3])),
            IndexError,
            r"target 3 is out of range for 3 classes",
        ),
        (
            lambda m: m[3].softmax_forward(np.ones((2, 3), np.int64), 1),
            TypeError,
            r"x must be float32 or float64, got int64",
        ),
    ],
)
@pytest.mark.parametrize("implementation", ["numba", "twin"])
def test_bad_input_is_reported_clearly(call, error, message, implementation):
    modules = (
        (conv, pool, attention, softmax)
        if implementation == "numba"
        else (t_conv, t_pool, t_attention, t_softmax)
    )
    with pytest.raises(error, match=message):
        call(modules)


WINOGRAD_CASES = [
    # shapes where kernels/conv_winograd.py takes over from im2col
    ((2, 8, 16, 17), (8, 8, 3, 3), 1),
    (
        (1, 9, 18, 19),
        (10, 9, 3, 3),
        0,
    ),  # no padding, odd output: the last tiles are cut at the edge
    ((1, 8, 17, 33), (8, 8, 3, 3), (2, 1)),  # odd sizes, padding wider than the kernel's half
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, p", WINOGRAD_CASES)
def test_winograd_conv_matches_twin(dtype, xs, ws, p):
    from kernels import conv_winograd

    rng = np.random.default_rng(10)
    x, w, b = arr(rng, xs, dtype), arr(rng, ws, dtype), arr(rng, (ws[0],), dtype)
    out = conv.conv2d_forward(x, w, b, 1, p)
    assert conv_winograd.applies((3, 3), (1, 1), (1, 1), 1, xs[1], ws[0], out.shape[3])
    same(out, t_conv.conv2d_forward(x, w, b, 1, p), dtype)
    dout = arr(rng, out.shape, dtype)
    got = conv.conv2d_backward(x, w, dout, 1, p)
    want = t_conv.conv2d_backward(x, w, dout, 1, p)
    # dw sums over every tile and image: compare relative to its size
    same(got[0], want[0], dtype)
    np.testing.assert_allclose(
        got[1],
        want[1],
        rtol=1e-3 if dtype == np.float32 else 1e-9,
        atol=1e-3 if dtype == np.float32 else 1e-9,
    )
    same(got[2], want[2], dtype)
