"""The fused optimizer kernels against their NumPy twins, every option, float32 and float64,
over several steps (state buffers included)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels import optim
from kernels.twins import optim as t_optim


def run(module, case, shape, dtype, steps=5, seed=0):
    """Five steps of one optimizer from the same start; returns p and the state buffers."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    state = [np.full(shape, 0.1, dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)]
    for k in range(1, steps + 1):
        case(module, p, rng.standard_normal(shape).astype(dtype), state, k)
    return [p] + state


def sgd(m, p, g, s, k):
    m.sgd_step(p, g, s[0], 0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, first=k == 1)


def sgd_nesterov(m, p, g, s, k):
    m.sgd_step(p, g, s[0], 0.1, momentum=0.9, nesterov=True, first=k == 1)


def adam_amsgrad(m, p, g, s, k):
    m.adam_step(p, g, s[0], s[1], s[2], 0.01, 0.9, 0.999, 1e-8, 0.1, False, True, k)


def adamw(m, p, g, s, k):
    m.adam_step(p, g, s[0], s[1], None, 0.01, 0.8, 0.99, 1e-8, 0.1, True, False, k)


def rmsprop_centered_momentum(m, p, g, s, k):
    m.rmsprop_step(p, g, s[0], s[1], s[2], 0.01, 0.99, 1e-8, 0.01, 0.9, True)


def adagrad(m, p, g, s, k):
    m.adagrad_step(p, g, s[0], 0.1, 0.01, 1e-10, 0.01, k)


def adadelta(m, p, g, s, k):
    m.adadelta_step(p, g, s[1], s[0], 1.0, 0.95, 1e-6, 0.01)


CASES = [sgd, sgd_nesterov, adam_amsgrad, adamw, rmsprop_centered_momentum, adagrad, adadelta]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
@given(shape=st.lists(st.integers(0, 7), min_size=1, max_size=3).map(tuple))
def test_optimizer_kernels_match_twins(dtype, case, shape):
    got, want = run(optim, case, shape, dtype), run(t_optim, case, shape, dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}
    for a, b in zip(got, want):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("module", [optim, t_optim], ids=["kernel", "twin"])
def test_optimizer_kernels_check_shapes_and_dtypes(module):
    p = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"g of shape \(3,\) does not match p \(4,\)"):
        module.sgd_step(p, np.zeros(3, np.float32), None, 0.1)
    with pytest.raises(TypeError, match="m is float64 but the other inputs are float32"):
        module.adam_step(p, p, np.zeros(4), p, None, 0.1, 0.9, 0.99, 1e-8, 0, False, False, 1)
