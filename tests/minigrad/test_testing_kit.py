"""minigrad.testing can fail: wrong gradients are caught and reported precisely."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function
from minigrad.testing import GradcheckError, gradcheck, gradgradcheck


class WrongSin(Function):
    """sin with a deliberately wrong backward (+cos instead of cos at one element)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        wrong = np.zeros(x.shape)
        wrong.flat[2] = 0.5
        return g * (ctx.xp.cos(x) + wrong)


class ConstantCosSin(Function):
    """sin whose backward is right to first order but treats cos(x) as a constant, so its
    second derivative is wrong: only gradgradcheck can see that."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * np.cos(np.asarray(x))  # NumPy, not ctx.xp: cut from the graph


def x64(n=5, seed=0):
    return mg.tensor(
        np.random.default_rng(seed).uniform(-1, 1, n), dtype=mg.float64, requires_grad=True
    )


def test_wrong_backward_is_caught_with_the_worst_element_reported():
    x = x64()
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongSin.apply, [x])
    msg = str(info.value)
    assert "input 0 (shape (5,)) at index (2,)" in msg
    analytic = float(re.search(r"analytic (\S+),", msg).group(1))
    numeric = float(re.search(r"numeric (\S+) ", msg).group(1))
    assert analytic == pytest.approx(np.cos(x.data[2]) + 0.5)
    assert numeric == pytest.approx(np.cos(x.data[2]), rel=1e-6)


def test_wrong_backward_is_caught_in_directional_mode():
    x = x64(50)
    with pytest.raises(GradcheckError, match="directional"):
        gradcheck(WrongSin.apply, [x], mode="directional")
    assert gradcheck(mg.sin, [x], mode="directional")


def test_right_backward_passes_both_modes():
    x = x64()
    assert gradcheck(lambda t: (t.sin() * t).sum(), [x])
    assert gradcheck(lambda t: t.sin() * t, [x], mode="directional")


def test_raise_exception_false_returns_false():
    assert gradcheck(WrongSin.apply, [x64()], raise_exception=False) is False


def test_wrong_second_derivative_is_caught_by_gradgradcheck_only():
    x = x64()
    assert gradcheck(ConstantCosSin.apply, [x])
    with pytest.raises(GradcheckError):
        gradgradcheck(ConstantCosSin.apply, [x])
    assert gradgradcheck(mg.sin, [x])


def test_gradcheck_takes_float64_or_float32_and_gradgradcheck_float64():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(mg.sin, [mg.tensor([1.0], dtype=mg.float16, requires_grad=True)])
    with pytest.raises(ValueError, match="float64"):
        gradgradcheck(mg.sin, [mg.tensor([1.0], requires_grad=True)])
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(mg.sin, [mg.tensor([1.0], dtype=mg.float64)])


def test_float32_gradcheck_checks_the_float32_backward_against_float64_differences():
    x = mg.tensor(np.random.default_rng(0).uniform(-1, 1, 5).astype(np.float32),
                  requires_grad=True)
    assert gradcheck(lambda t: (t.sin() * t).sum(), [x])
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(5,\)\) at index \(2,\)"):
        gradcheck(WrongSin.apply, [x])


class Cube(Function):
    """x^3, with a backward that is right or wrong."""

    wrong = False

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (3.3 if Cube.wrong else 3.0) * x * x


def test_check_op_runs_every_check_on_a_users_op_and_catches_a_wrong_backward():
    from minigrad.ops.spec import OpSpec, unary
    from minigrad.testing import check_op

    spec = OpSpec("user_cube", Cube.apply, lambda x: x**3, unary())
    check_op(spec, draws=5)  # forward, float32, gradients, jvp, vmap, drawn samples
    Cube.wrong = True
    try:
        with pytest.raises(GradcheckError):
            check_op(spec, checks=["gradcheck"])
        with pytest.raises(AssertionError, match="user_cube jvp"):
            check_op(spec, checks=["jvp"])  # its JVP comes from the backward too
    finally:
        Cube.wrong = False
    with pytest.raises(ValueError, match=r"unknown checks \['speed'\]"):
        check_op(spec, checks=["speed"])


def test_gradcheck_with_several_inputs_and_outputs_and_constants():
    a, b = x64(3, 1), x64(3, 2)
    c = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64)  # held fixed
    assert gradcheck(lambda a, b, c: (a * b + c, (a / (b + 3)).sum()), [a, b, c])
