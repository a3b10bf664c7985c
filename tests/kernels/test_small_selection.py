"""A small selection of kernel-vs-twin checks on tiny inputs. It runs twice: here with JIT,
and from tests/test_configurations.py with NUMBA_DISABLE_JIT=1, which executes the kernels
as plain Python, so they stay debuggable with print and pdb."""

from __future__ import annotations

import numpy as np

from kernels import attention, conv, layer_norm, matmul, pool, rnn, softmax
from kernels.twins import attention as t_attention
from kernels.twins import conv as t_conv
from kernels.twins import layer_norm as t_layer_norm
from kernels.twins import matmul as t_matmul
from kernels.twins import pool as t_pool
from kernels.twins import rnn as t_rnn
from kernels.twins import softmax as t_softmax

rng = np.random.default_rng(0)


def close(a, b):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9)


def test_softmax_and_cross_entropy():
    x = rng.standard_normal((3, 4))
    close(softmax.softmax_forward(x, 1), t_softmax.softmax_forward(x, 1))
    close(softmax.softmax_forward(x, 0, log=True), t_softmax.softmax_forward(x, 0, log=True))
    t = np.array([0, 3, -100])
    fwd = softmax.cross_entropy_forward(x, t, None, -100, 0.1)
    close(fwd, t_softmax.cross_entropy_forward(x, t, None, -100, 0.1))
    g = np.ones(3)
    close(
        softmax.cross_entropy_backward(x, t, None, fwd[1], g, -100, 0.1),
        t_softmax.cross_entropy_backward(x, t, None, fwd[1], g, -100, 0.1),
    )


def test_layer_norm():
    x, w = rng.standard_normal((3, 5)), rng.standard_normal(5)
    fwd = layer_norm.layer_norm_forward(x, w, None)
    close(fwd, t_layer_norm.layer_norm_forward(x, w, None))
    dy = rng.standard_normal((3, 5))
    close(
        layer_norm.layer_norm_backward(x, w, fwd[1], fwd[2], dy),
        t_layer_norm.layer_norm_backward(x, w, fwd[1], fwd[2], dy),
    )


def test_pooling():
    x = rng.standard_normal((1, 2, 5, 4))
    out, idx = pool.max_pool2d_forward(x, 2, 1, 1)
    close((out,), (t_pool.max_pool2d_forward(x, 2, 1, 1)[0],))
    close(
        pool.max_pool2d_backward(out, idx, x.shape), t_pool.max_pool2d_backward(out, idx, x.shape)
    )
    top = np.ascontiguousarray(x[:, :, :4])  # 4 x 4: the 2x2 fast path
    close(pool.max_pool2d_forward(top, 2)[0], t_pool.max_pool2d_forward(top, 2)[0])
    close(pool.avg_pool2d_forward(x, 3, 2, 1), t_pool.avg_pool2d_forward(x, 3, 2, 1))
    close(pool.adaptive_avg_pool2d_forward(x, 2), t_pool.adaptive_avg_pool2d_forward(x, 2))


def test_conv():
    x, w = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((3, 2, 2, 3))
    out = conv.conv2d_forward(x, w, None, 1, 1)
    close(out, t_conv.conv2d_forward(x, w, None, 1, 1))
    close(conv.conv2d_backward(x, w, out, 1, 1), t_conv.conv2d_backward(x, w, out, 1, 1))


def test_attention():
    q, k, v = (rng.standard_normal((1, 1, 3, 2)) for _ in range(3))
    out = attention.attention_forward(q, k, v, None, True)
    close(out, t_attention.attention_forward(q, k, v, None, True))
    close(
        attention.attention_backward(q, k, v, *out, out[0], None, True),
        t_attention.attention_backward(q, k, v, *out, out[0], None, True),
    )


def test_gemm():
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    close(matmul.gemm(a, b), t_matmul.gemm(a, b))


def test_parallel_builds_match_the_serial_ones(two_threads):
    """Small inputs run each kernel's serial build (kernels/_config.py); with the threshold at
    0 and two threads the same calls run the parallel builds, which must agree."""
    for check in (
        test_softmax_and_cross_entropy,
        test_layer_norm,
        test_pooling,
        test_conv,
        test_attention,
    ):
        check()


def test_lstm_and_gru():
    t, b, i, h = 3, 2, 2, 3
    x, h0, c0 = (
        rng.standard_normal((t, b, i)),
        rng.standard_normal((b, h)),
        rng.standard_normal((b, h)),
    )
    w_ih, w_hh, bias = (
        rng.standard_normal((4 * h, i)),
        rng.standard_normal((4 * h, h)),
        rng.standard_normal(4 * h),
    )
    out = rnn.lstm_forward(x, h0, c0, w_ih, w_hh, bias)
    twin = t_rnn.lstm_forward(x, h0, c0, w_ih, w_hh, bias)
    close(out[0], twin[0])  # what each saves for its backward is laid out its own way
    g = rng.standard_normal(out[0].shape)
    close(
        rnn.lstm_backward(x, h0, c0, w_ih, w_hh, *out, g),
        t_rnn.lstm_backward(x, h0, c0, w_ih, w_hh, *twin, g),
    )
    w_ih, w_hh, b_ih, b_hh = w_ih[: 3 * h], w_hh[: 3 * h], bias[: 3 * h], bias[h:]
    out = rnn.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
    close(out, t_rnn.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh))
    g = rng.standard_normal(out[0].shape)
    close(
        rnn.gru_backward(x, h0, w_ih, w_hh, *out, g),
        t_rnn.gru_backward(x, h0, w_ih, w_hh, *out, g),
    )
