"""Compile every kernel for float32 and float64 into Numba's cache.

    python -m kernels.precompile

Run once after installing (or let the first calls do it): later processes load the machine
code from $NUMBA_CACHE_DIR instead of compiling. It prints how long it took; run it twice to
see the cold-cache and warm-cache times.
"""

from __future__ import annotations

import importlib
import time
from types import SimpleNamespace

import numpy as np

from kernels import FAMILIES


def exercise(dtype) -> None:
    """Call every kernel once on tiny inputs of ``dtype`` (each path: fast and general), for
    every family in ``kernels.FAMILIES``."""
    k = SimpleNamespace(
        **{family: importlib.import_module(f"kernels.{family}") for family in FAMILIES}
    )

    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = a(2, 3)
    y = k.softmax.softmax_forward(x, 1)
    k.softmax.softmax_backward(y, x, 1)
    k.softmax.softmax_forward(a(2, 3, 2), 1, log=True)
    k.softmax.softmax_backward(
        k.softmax.softmax_forward(a(2, 3, 2), 1, log=True), a(2, 3, 2), 1, log=True
    )
    k.softmax.softmax_backward(k.softmax.softmax_forward(x, 1, log=True), x, 1, log=True)
    k.softmax.softmax_backward(k.softmax.softmax_forward(a(2, 3, 2), 1), a(2, 3, 2), 1)
    t = np.array([0, 2])
    loss, lse = k.softmax.cross_entropy_forward(x, t)
    k.softmax.cross_entropy_backward(x, t, None, lse, loss)
    y, mean, rstd = k.layer_norm.layer_norm_forward(x)
    k.layer_norm.layer_norm_backward(x, None, mean, rstd, y)
    img = a(1, 2, 4, 4)
    for args in ((2,), (3, 1, 1)):
        out, idx = k.pool.max_pool2d_forward(img, *args)
        k.pool.max_pool2d_backward(out, idx, img.shape)
    out, idx = k.pool.max_pool2d_forward(img, 2, 2, 0, 2)
    k.pool.max_pool2d_backward(out, idx, img.shape, 2)
    out = k.pool.avg_pool2d_forward(img, 2)
    k.pool.avg_pool2d_backward(out, img.shape, 2)
    out = k.pool.adaptive_avg_pool2d_forward(img, 2)
    k.pool.adaptive_avg_pool2d_backward(out, img.shape)
    w = a(3, 2, 3, 3)
    out = k.conv.conv2d_forward(img, w, None, 1, 1)
    k.conv.conv2d_backward(img, w, out, 1, 1)
    # a batch of 16 and 16 channels: convolution on batch slivers, by Winograd (3x3) and
    # directly (5x5), kernels/conv_slivers.py
    batch = a(16, 16, 4, 4)
    for k in (3, 5):
        w = a(16, 16, k, k)
        out, kept = k.conv.conv2d_forward_keeping_columns(batch, w, None, 1, k // 2)
        k.conv.conv2d_backward(batch, w, out, 1, k // 2, cols=kept)
    q = a(1, 1, 3, 2)
    o, lse = k.attention.attention_forward(q, q, q, None, True)
    k.attention.attention_backward(q, q, q, o, lse, o, None, True)
    o, lse = k.attention.attention_forward(q, q, q, np.ones((3, 3), bool))
    k.attention.attention_backward(q, q, q, o, lse, o, np.ones((3, 3), bool))
    k.matmul.gemm(a(3, 4), a(4, 2))
    p, g, m, v = a(8), a(8), np.zeros(8, dtype), np.zeros(8, dtype)
    for first in (True, False):
        for nesterov in (True, False):
            k.optim.sgd_step(p, g, m, 0.1, 0.9, 0.0, nesterov, 0.0, first)
    k.optim.sgd_step(p, g, None, 0.1)
    k.optim.adam_step(p, g, m, v, v.copy(), 0.1, 0.9, 0.99, 1e-8, 0.0, False, True, 1)
    k.optim.rmsprop_step(p, g, m, v, v.copy(), 0.1, 0.9, 1e-8, 0.0, 0.9, True)
    k.optim.adagrad_step(p, g, m, 0.1, 0.0, 1e-10, 0.0, 1)
    k.optim.adadelta_step(p, g, m, v, 1.0, 0.9, 1e-6, 0.0)
    big = a(1 << 14)
    k.elementwise.where(big > 0, big, 0.0)
    k.elementwise.where(big > 0, big, big)
    k.elementwise.relu_forward(big)
    k.elementwise.gelu_backward(big, k.elementwise.gelu_forward(big))
    # the LSTM by batch slivers (a batch that fills them, at one thread or two) and by steps
    # (a batch of one): kernels/k.rnn.py, by_slivers
    for batch in (32, 1):
        x, h = a(2, batch, 3), a(batch, 2)
        out = k.rnn.lstm_forward(x, h, h, a(8, 3), a(8, 2), a(8))
        k.rnn.lstm_backward(x, h, h, a(8, 3), a(8, 2), *out, out[0])
    out = k.rnn.gru_forward(x, h, a(6, 3), a(6, 2), a(6), a(6))
    k.rnn.gru_backward(x, h, a(6, 3), a(6, 2), *out, out[0])


def main() -> int:
    import numba

    from kernels import _config

    start = time.perf_counter()
    threshold = _config.PARALLEL_MIN_ELEMENTS
    try:
        # Every parallel kernel has a serial and a parallel build (kernels/_config.py): the
        # tiny inputs below reach the serial ones, and with the threshold at 0 (and more than
        # one thread, where the machine has them) the parallel ones.
        for minimum in (threshold, 0):
            _config.PARALLEL_MIN_ELEMENTS = minimum
            if minimum == 0 and numba.config.NUMBA_NUM_THREADS > 1:
                numba.set_num_threads(2)
            for dtype in (np.float32, np.float64):
                exercise(dtype)
    finally:
        _config.PARALLEL_MIN_ELEMENTS = threshold
    seconds = time.perf_counter() - start
    where = numba.config.CACHE_DIR
    print(
        f"compiled or loaded every kernel for float32 and float64 in {seconds:.1f} s "
        f"(cache: {where})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
