"""The LSTM and GRU kernels against their NumPy twins: hypothesis-drawn sizes plus the
awkward ones (T = 1, B = 1, H = 1, an empty batch), float32 and float64, forward and backward;
and the shape errors both give."""

from __future__ import annotations

import contextlib
import re
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels import rnn
from kernels.microkernels import sliver_tile
from kernels.twins import rnn as t_rnn
from tests.kernels.test_kernels import DTYPES, arr, same

sizes = st.tuples(st.integers(1, 6), st.integers(0, 4), st.integers(1, 5), st.integers(1, 6))
AWKWARD = [(1, 1, 1, 1), (1, 3, 2, 4), (7, 1, 3, 1), (3, 0, 2, 3), (2, 2, 5, 9)]


def lstm_args(rng, t, b, i, h, dtype, bias=True):
    return (
        arr(rng, (t, b, i), dtype),
        arr(rng, (b, h), dtype),
        arr(rng, (b, h), dtype),
        arr(rng, (4 * h, i), dtype, 0.5),
        arr(rng, (4 * h, h), dtype, 0.5),
        arr(rng, (4 * h,), dtype) if bias else None,
    )


def gru_args(rng, t, b, i, h, dtype, bias=True):
    return (
        arr(rng, (t, b, i), dtype),
        arr(rng, (b, h), dtype),
        arr(rng, (3 * h, i), dtype, 0.5),
        arr(rng, (3 * h, h), dtype, 0.5),
        arr(rng, (3 * h,), dtype) if bias else None,
        arr(rng, (3 * h,), dtype) if bias else None,
    )


def check_lstm(t, b, i, h, dtype, bias=True):
    rng = np.random.default_rng(t * 1000 + b * 100 + i * 10 + h)
    args = lstm_args(rng, t, b, i, h, dtype, bias)
    out, twin = rnn.lstm_forward(*args), t_rnn.lstm_forward(*args)
    # hc is the output; what each saves for its backward is its own (the kernel's is laid out
    # by batch sliver), so the two are compared through the gradients they lead to
    same(out[0], twin[0], dtype)
    dhc = arr(rng, out[0].shape, dtype)
    x, h0, c0, w_ih, w_hh, _ = args
    same(
        rnn.lstm_backward(x, h0, c0, w_ih, w_hh, *out, dhc),
        t_rnn.lstm_backward(x, h0, c0, w_ih, w_hh, *twin, dhc),
        dtype,
    )


def check_gru(t, b, i, h, dtype, bias=True):
    rng = np.random.default_rng(t * 1000 + b * 100 + i * 10 + h)
    args = gru_args(rng, t, b, i, h, dtype, bias)
    out, twin = rnn.gru_forward(*args), t_rnn.gru_forward(*args)
    same(out, twin, dtype)
    dhs = arr(rng, out[0].shape, dtype)
    x, h0, w_ih, w_hh = args[:4]
    same(
        rnn.gru_backward(x, h0, w_ih, w_hh, *out, dhs),
        t_rnn.gru_backward(x, h0, w_ih, w_hh, *twin, dhs),
        dtype,
    )


@contextlib.contextmanager
def lstm_path(path):
    """Run the LSTM kernels by batch slivers or by steps on BLAS, whatever the thread count
    would choose (kernels/rnn.py, by_slivers)."""
    with mock.patch.object(rnn, "by_slivers", lambda *_: path == "slivers"):
        yield


PATHS = ["slivers", "steps"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(size=sizes, bias=st.booleans())
def test_lstm_matches_twin(path, dtype, size, bias):
    with lstm_path(path):
        check_lstm(*size, dtype, bias)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_over_several_slivers_matches_twin(path, dtype):
    """Batches of 2 to 3 slivers, a padded last one, and steps across two weight-gradient
    chunks (kernels/rnn.py, CHUNK)."""
    with lstm_path(path):
        for size in [(19, 40, 3, 6), (9, 32, 16, 16), (3, 17, 5, 4)]:
            check_lstm(*size, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(size=sizes, bias=st.booleans())
def test_gru_matches_twin(dtype, size, bias):
    check_gru(*size, dtype, bias)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", AWKWARD)
def test_awkward_sizes(dtype, size):
    for path in PATHS:
        with lstm_path(path):
            check_lstm(*size, dtype)
    check_gru(*size, dtype)


def test_saturated_gates_stay_finite():
    """Pre-activations of +-1e4 saturate sigmoid and tanh without overflow or NaN."""
    x = np.array([[[1e4, -1e4]]], np.float32)
    h0 = np.zeros((1, 1), np.float32)
    w_ih = np.tile(np.array([[1.0, 1.0]], np.float32), (4, 1))
    w_hh = np.ones((4, 1), np.float32)
    for module in (rnn, t_rnn):
        hc, gates, tanh_c = module.lstm_forward(x, h0, h0, w_ih, w_hh)
        assert np.all(np.isfinite(hc)) and np.all(np.isfinite(gates))
        grads = module.lstm_backward(x, h0, h0, w_ih, w_hh, hc, gates, tanh_c, np.ones_like(hc))
        assert all(np.all(np.isfinite(g)) for g in grads)
    x = np.full((2, 1, 1), -1e4, np.float32)
    for module in (rnn, t_rnn):
        hs, gates, hn = module.gru_forward(x, h0, np.ones((3, 1), np.float32), w_hh[:3])
        assert np.all(np.isfinite(hs)) and np.all(np.isfinite(gates))


@pytest.mark.parametrize("module", [rnn, t_rnn], ids=["kernel", "twin"])
def test_shape_errors_name_the_arrays(module):
    f = np.float32
    x, h0 = np.zeros((3, 2, 4), f), np.zeros((2, 5), f)
    with pytest.raises(ValueError, match=r"w_ih of shape \(20, 3\) should be \(20, 4\)"):
        module.lstm_forward(x, h0, h0, np.zeros((20, 3), f), np.zeros((20, 5), f))
    with pytest.raises(ValueError, match=r"h0 \(3, 5\) does not match the batch of x"):
        module.gru_forward(x, np.zeros((3, 5), f), np.zeros((15, 4), f), np.zeros((15, 5), f))
    with pytest.raises(TypeError, match="h0 is float64 but the other inputs are float32"):
        module.gru_forward(x, np.zeros((2, 5)), np.zeros((15, 4), f), np.zeros((15, 5), f))
    with pytest.raises(ValueError, match=r"bias of shape \(3,\) should be \(20,\)"):
        module.lstm_forward(x, h0, h0, np.zeros((20, 4), f), np.zeros((20, 5), f), np.zeros(3, f))


def test_lstm_backward_refuses_saved_arrays_of_the_wrong_shape():
    rng = np.random.default_rng(5)
    args = lstm_args(rng, 3, 2, 3, 4, np.float32)
    x, h0, c0, w_ih, w_hh, _ = args
    with lstm_path("slivers"):
        hc, gates, cells = rnn.lstm_forward(*args)
    cut = gates[..., :-1].copy()  # one column short of the sliver width
    with pytest.raises(
        ValueError, match=rf"saved gates of shape {re.escape(str(cut.shape))} should"
    ):
        rnn.lstm_backward(x, h0, c0, w_ih, w_hh, hc, cut, cells, np.ones_like(hc))
    hc, gates, tanh_c = t_rnn.lstm_forward(*args)  # by steps, the twin's layout
    with pytest.raises(ValueError, match=r"saved cells of shape \(3, 2, 3\) should be"):
        rnn.lstm_backward(
            x, h0, c0, w_ih, w_hh, hc, gates, tanh_c[..., :3].copy(), np.ones_like(hc)
        )


@pytest.mark.parametrize("module", [rnn, t_rnn], ids=["kernel", "twin"])
def test_backward_skips_the_input_gradient_when_not_needed(module):
    rng = np.random.default_rng(3)
    args = lstm_args(rng, 4, 2, 3, 5, np.float64)
    out = module.lstm_forward(*args)
    dhc = arr(rng, out[0].shape, np.float64)
    x, h0, c0, w_ih, w_hh, _ = args
    full = module.lstm_backward(x, h0, c0, w_ih, w_hh, *out, dhc)
    part = module.lstm_backward(x, h0, c0, w_ih, w_hh, *out, dhc, need_input=False)
    assert full[0] is not None and part[0] is None
    for a, b in zip(full[1:], part[1:]):
        np.testing.assert_array_equal(a, b)
    args = gru_args(rng, 4, 2, 3, 5, np.float64)
    out = module.gru_forward(*args)
    dhs = arr(rng, out[0].shape, np.float64)
    full = module.gru_backward(*args[:4], *out, dhs)
    part = module.gru_backward(*args[:4], *out, dhs, need_input=False)
    assert full[0] is not None and part[0] is None
    for a, b in zip(full[1:], part[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_slivers_on_two_threads_match_the_twin(dtype, two_threads):
    """The LSTM runs its batch slivers one per thread (kernels/rnn.py): with two threads and a
    batch of three slivers, the parallel build must give the twin's output and gradients,
    the weight gradients summed over the slivers included."""
    with lstm_path("slivers"):  # a batch of 40 would run by steps at two threads
        check_lstm(19, 40, 3, 6, dtype)


def test_lstm_runs_by_slivers_when_the_batch_fills_them():
    """kernels/rnn.py, by_slivers: by slivers when the batch fills enough of the columns the
    threads would compute (80 % at one thread, 70 % at two), by steps on BLAS otherwise
    (measured: half-empty slivers took 1.1 to 2.5 times as long)."""
    import numba

    previous = numba.get_num_threads()
    try:
        for dtype in (np.float32, np.float64):  # in units of the sliver width NR
            nr = sliver_tile(dtype)[1]
            numba.set_num_threads(1)
            full = -(-4 * nr // 5)  # 80 % of one sliver
            assert rnn.by_slivers(full, dtype) and not rnn.by_slivers(full - 1, dtype)
            assert rnn.by_slivers(2 * nr, dtype) and rnn.by_slivers(4 * nr, dtype)
            assert not rnn.by_slivers(nr // 2, dtype)
            if numba.config.NUMBA_NUM_THREADS >= 2:
                numba.set_num_threads(2)
                assert rnn.by_slivers(2 * nr, dtype) and rnn.by_slivers(3 * nr, dtype)
                assert not rnn.by_slivers(nr, dtype)  # one sliver: a thread would idle
                assert not rnn.by_slivers(5 * nr // 2, dtype)  # 2 + 1 slivers, 5/8 full
    finally:
        numba.set_num_threads(previous)
