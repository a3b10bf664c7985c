"""The kernels' scalar math (kernels/_math.py) against NumPy's exact functions, inside compiled
kernels where the fast versions are used: exp_shifted's accuracy and its limits, tanh_fast and
sigmoid_fast in float32 (the rational approximation) and float64 (exact)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels._config import kernel
from kernels._math import exp_shifted, sigmoid_fast, tanh_fast


@kernel
def _exp(x, shift, out):
    return exp_shifted(x, shift, out)


@kernel
def _tanh(x, out):
    for i in range(x.shape[0]):
        out[i] = tanh_fast(x[i])


@kernel
def _sigmoid(x, out):
    for i in range(x.shape[0]):
        out[i] = sigmoid_fast(x[i])


@pytest.mark.parametrize("lo, hi, ulps", [(-87.0, 88.0, 5.0), (-20.0, 0.0, 1.5)])
def test_exp_float32_is_within_a_few_ulp_and_sums_its_outputs(lo, hi, ulps):
    x = np.linspace(lo, hi, 400_001).astype(np.float32)
    out = np.empty_like(x)
    total = _exp(x + np.float32(0.5), np.float32(0.5), out)
    # the reference is the exact exp of the argument the kernel sees, x + 0.5 - 0.5 in float32
    exact = np.exp(((x + np.float32(0.5)) - np.float32(0.5)).astype(np.float64))
    normal = exact > 4 * np.finfo(np.float32).tiny  # results below are flushed to 0 by design
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert (np.abs(out - exact) <= ulps * ulp)[normal].all()
    if hi <= 0:  # (over the whole range the float32 total overflows, as it should)
        assert total == pytest.approx(out.astype(np.float64).sum(), rel=1e-5)


def test_exp_float64_is_close_to_exact():
    x = np.linspace(-700, 700, 200_001)
    out = np.empty_like(x)
    _exp(x, 0.0, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_limits(dtype):
    x = np.array([-np.inf, -1e4, 0.0, 1e4, np.inf], dtype)
    out = np.empty_like(x)
    _exp(x, dtype(0.0), out)
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0, np.inf, np.inf])


def test_tanh_and_sigmoid_float32_are_within_4e7_of_exact():
    x = np.linspace(-12, 12, 2_000_001).astype(np.float32)
    exact = x.astype(np.float64)
    out = np.empty_like(x)
    _tanh(x, out)
    assert np.abs(out - np.tanh(exact)).max() <= 4e-7
    assert np.abs(out).max() <= 1.0  # never beyond +-1
    _sigmoid(x, out)
    assert np.abs(out - 1.0 / (1.0 + np.exp(-exact))).max() <= 4e-7
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_tanh_float32_is_accurate_near_zero_and_keeps_nan_and_limits():
    x = np.array([1e-30, -1e-8, 1e-4, 0.0, np.inf, -np.inf, np.nan], np.float32)
    out = np.empty_like(x)
    _tanh(x, out)
    np.testing.assert_allclose(out[:4], np.tanh(x[:4].astype(np.float64)), rtol=1e-6, atol=0)
    assert abs(out[4] - 1.0) <= 4e-7 and abs(out[5] + 1.0) <= 4e-7
    assert np.isnan(out[6])


def test_tanh_and_sigmoid_float64_are_exact():
    x = np.linspace(-30, 30, 10_001)
    out = np.empty_like(x)
    _tanh(x, out)
    np.testing.assert_allclose(out, np.tanh(x), rtol=1e-15, atol=1e-16)
    _sigmoid(x, out)
    np.testing.assert_allclose(out, 0.5 * (1 + np.tanh(0.5 * x)), rtol=1e-15, atol=1e-16)
