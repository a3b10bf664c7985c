"""The branch-free where against np.where (and ReLU and GELU against their twins): same values (inf and NaN included), same dtype,
for arrays large enough to take the kernel path and small ones that fall back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels import elementwise
from kernels.twins import elementwise as t_elementwise


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 7, (1 << 14) + 3])
@given(scalar_b=st.booleans(), seed=st.integers(0, 100))
def test_where_matches_numpy(dtype, n, scalar_b, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n,)).astype(dtype)
    if n:
        a[:3] = [np.inf, -np.inf, np.nan][: min(3, n)]
    cond = rng.random(n) > 0.5
    b = 0 if scalar_b else rng.standard_normal(n).astype(dtype)
    got = elementwise.where(cond, a, b)
    want = t_elementwise.where(cond, a, b)
    assert got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (7,), (64, 6, 28, 28), ((1 << 14) + 3,)])
def test_relu_forward_matches_its_twin(dtype, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    special = [np.nan, -np.inf, np.inf, -0.0, 0.0, 1e-30, -1e-30]
    x.reshape(-1)[: min(len(special), x.size)] = special[: min(len(special), x.size)]
    out, positive = elementwise.relu_forward(x)
    want_out, want_positive = t_elementwise.relu_forward(x)
    assert out.dtype == dtype and out.shape == shape and positive.dtype == np.bool_
    np.testing.assert_array_equal(out, want_out)  # NaN stays NaN, -inf gives 0
    np.testing.assert_array_equal(positive, want_positive)
    assert not np.signbit(out[x == 0]).any()  # relu(-0.0) is +0.0


def test_where_keeps_shapes_and_falls_back_for_broadcasting():
    cond = np.random.default_rng(0).random((128, 200)) > 0.3
    a = np.ones((128, 200), np.float32)
    np.testing.assert_array_equal(elementwise.where(cond, a, 2.5), np.where(cond, a, 2.5))
    row = np.arange(200, dtype=np.float32)
    np.testing.assert_array_equal(elementwise.where(cond, row, a), np.where(cond, row, a))


def test_float32_gelu_is_within_a_few_ulp_of_the_exact_one():
    import math

    from kernels.twins import elementwise as twin

    x = np.linspace(-7, 7, 200_001).astype(np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    fast = elementwise.gelu_forward(x)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, exact, rtol=0, atol=2.5e-6)  # |x| <= 7: ~3 ulp of 7
    g = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(
        elementwise.gelu_backward(x, g), twin.gelu_backward(x, g), rtol=1e-5, atol=1e-6
    )
    # far tails: the density underflows to 0 without NaN, so the gradient is g or 0
    tails = np.resize(np.array([20.0, -20.0, 100.0, -100.0], np.float32), 1 << 15)
    ones = np.ones_like(tails)
    np.testing.assert_array_equal(elementwise.gelu_backward(tails, ones), (tails > 0) * ones)
    small = x[:10].astype(np.float64)  # float64 and small arrays: SciPy's exact erf
    np.testing.assert_array_equal(elementwise.gelu_forward(small), twin.gelu_forward(small))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, n, d", [(0, 3, 4), (1, 1, 1), (96, 27, 10), (50, 5, 7)])
def test_scatter_add_rows_matches_its_twin(dtype, k, n, d):
    rng = np.random.default_rng(k)
    idx = rng.integers(0, n, k)
    values = rng.standard_normal((k, d)).astype(dtype)
    got = elementwise.scatter_add_rows(n, idx, values)
    want = t_elementwise.scatter_add_rows(n, idx, values)
    assert got.dtype == dtype and got.shape == (n, d)
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14)
