"""Autograd semantics, as PyTorch defines them."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function, grad
from minigrad.testing import gradcheck


def leaf(values, dtype=np.float64):
    return mg.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def test_gradients_accumulate_on_leaves_until_zeroed():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])
    x.grad.zero_()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_a_value_used_twice_gets_both_gradients():
    x = leaf(3.0)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad.item() == 7.0


def test_graph_is_freed_and_a_second_backward_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])


def test_backward_on_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar outputs.*shape \(2,\)"):
        y.backward()
    y.backward(gradient=mg.tensor([1.0, 10.0], dtype=mg.float64))
    np.testing.assert_array_equal(x.grad.data, [2.0, 20.0])
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\)"):
        (x * 2).backward(gradient=mg.ones(3, dtype=mg.float64))


def test_backward_without_grad_raises_clearly():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0, 2.0]).sum().backward()


def test_chain_of_100000_ops_backpropagates_without_recursion_error():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0000001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0000001**100_000, rtol=1e-9)
    del y
    gc.collect()


def test_no_grad_and_enable_grad():
    x = leaf([1.0])
    with mg.no_grad():
        y = x * 2
        with mg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert mg.is_grad_enabled()

    @mg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad


def test_set_grad_enabled():
    x = leaf([1.0])
    with mg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    with mg.set_grad_enabled(True):
        assert (x * 2).requires_grad


def test_retain_grad_keeps_non_leaf_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    z = (y * y).sum()
    z.backward()
    np.testing.assert_array_equal(y.grad.data, 2 * y.data)
    w = x * 3
    (w * w).sum().backward()
    assert w.grad is None  # not retained


def test_in_place_change_of_a_saved_value_raises():
    x = leaf([1.0, 2.0])
    y = x * 2
    z = y * y  # saves y
    y.add_(1)
    with pytest.raises(
        RuntimeError, match="modified by an in-place operation.*version 1; expected version 0"
    ):
        z.sum().backward()


def test_in_place_change_through_a_view_is_detected():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1
    z = (y * y).sum()  # saves y
    row = y[0]  # a view sharing y's memory and version counter
    row.mul_(10)
    assert y.data[0, 0] == 10.0
    with pytest.raises(RuntimeError, match="in-place"):
        z.backward()


def test_in_place_on_a_leaf_that_requires_grad_raises_but_is_allowed_under_no_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x.add_(1)
    with mg.no_grad():
        x.add_(1)
    np.testing.assert_array_equal(x.data, [2.0, 3.0])
    assert x._version == 1


def test_in_place_ops_are_differentiable_on_non_leaves():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    y.add_(1)
    y.mul_(3)  # y = (2x + 1) * 3: the constant needs no saved y
    y[1] = 0.0  # the middle element no longer depends on x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 0.0, 6.0])


def test_in_place_op_that_needs_its_own_old_value_keeps_it_as_pytorch_does():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.mul_(x)  # x's gradient needs the old y: mul_ keeps it for its own backward
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])  # d(2x * x)/dx = 4x


def test_a_value_saved_by_an_earlier_op_then_overwritten_raises_naming_the_op():
    x = leaf([1.0, 2.0])
    y = x * 2
    z = y * y  # saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match="Mul: .*modified by an in-place operation"):
        z.sum().backward()


def test_setitem_with_a_tensor_value_carries_its_gradient():
    x = leaf([1.0, 2.0])
    buf = mg.zeros(4, dtype=mg.float64)
    buf[1:3] = x * x
    assert buf.requires_grad and not buf.is_leaf
    buf.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_integer_and_boolean_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point"):
        mg.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        mg.tensor([True]).requires_grad_()
    x = leaf([1.5, 2.5])
    assert not x.long().requires_grad  # a cast to int leaves the graph
    assert not (x > 2).requires_grad


def test_detach_shares_data_and_leaves_the_graph():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * 2
    assert y.detach().data is y.data


def test_grad_returns_without_touching_dot_grad():
    x = leaf([1.0, 2.0])
    y = (x**3).sum()
    (g,) = grad(y, x)
    np.testing.assert_array_equal(g.data, [3.0, 12.0])
    assert x.grad is None


def test_grad_allow_unused():
    x, z = leaf([1.0]), leaf([2.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="not used"):
        grad(y, [x, z], retain_graph=True)
    gx, gz = grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0


def test_grad_of_a_non_leaf_input():
    x = leaf([1.0, 2.0])
    h = x * x
    y = (h * 3).sum()
    (gh,) = grad(y, h)
    np.testing.assert_array_equal(gh.data, [3.0, 3.0])


def test_hessian_vector_product():
    # f(x) = sum(x^3) has Hessian diag(6x), so H v = 6 x v.
    x = leaf([1.0, -2.0, 0.5])
    v = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64)
    (g,) = grad((x**3).sum(), x, create_graph=True)
    (hv,) = grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.data, 6 * x.data * v.data)


def test_gradient_penalty_trains_through_the_gradient_norm():
    # A WGAN-GP-style penalty: ||d f / d x||^2 with f(x) = w . tanh(x), differentiated for w.
    x = leaf([0.3, -0.7])
    w = leaf([2.0, -1.0])
    (gx,) = grad((w * x.tanh()).sum(), x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    # gx = w (1 - tanh^2 x), so d penalty / d w = 2 w (1 - tanh^2 x)^2
    s = 1 - np.tanh(x.data) ** 2
    np.testing.assert_allclose(w.grad.data, 2 * w.data * s**2)


def test_backward_create_graph_then_differentiate_grad():
    x = leaf(2.0)
    y = x**4
    y.backward(create_graph=True)
    g = x.grad  # 4 x^3, itself differentiable
    assert g.requires_grad
    (g2,) = grad(g, x)
    assert g2.item() == pytest.approx(12 * 2.0**2)


def test_custom_function_with_wrong_gradient_shape_is_reported():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    x = leaf([1.0, 2.0])
    with pytest.raises(
        RuntimeError,
        match=r"Bad.backward returned a gradient of shape \(\) for input 0, which has shape \(2,\)",
    ):
        Bad.apply(x).sum().backward()


def test_numpy_only_backward_is_rejected_under_create_graph():
    class NumpyOnly(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.sin(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return np.cos(np.asarray(x)) * np.asarray(g)

    x = leaf([1.0])
    y = NumpyOnly.apply(x).sum()
    with pytest.raises(RuntimeError, match="ctx.xp"):
        grad(y, x, create_graph=True)


def test_custom_function_passes_gradcheck():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * g

    gradcheck(Cube.apply, [leaf(np.linspace(-1, 1, 5))])


def test_float32_leaf_gets_float32_grad_when_mixed_with_float64():
    a = mg.tensor([1.0, 2.0], requires_grad=True)  # float32
    b = mg.tensor([3.0, 4.0], dtype=mg.float64, requires_grad=True)
    y = (a * b).sum()
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad.data, [3.0, 4.0])


# -- leaf gradients: copied unless the backward declared them its own ------------------------

_made: list = []


class _Twice(Function):
    # y = 2 * (a + b); the backward makes one new array and returns it for both inputs
    @staticmethod
    def forward(ctx, a, b):
        return 2 * (a + b)

    @staticmethod
    def backward(ctx, grad):
        g = 2 * grad
        _made.append(g)
        ctx.owned(g)  # its own array, but handed to two inputs: the engine must still copy one
        return g, g


class _Double(Function):
    @staticmethod
    def forward(ctx, a, declare):
        ctx.declare = declare
        return 2 * a

    @staticmethod
    def backward(ctx, grad):
        g = 2 * grad
        _made.append(g)
        if ctx.declare:
            ctx.owned(g)
        return g


@pytest.mark.parametrize("declare", [True, False])
def test_a_declared_own_gradient_becomes_the_leafs_grad_without_a_copy(declare):
    _made.clear()
    a = mg.ones(3, requires_grad=True)
    _Double.apply(a, declare=declare).sum().backward()
    assert (a.grad.data is _made[0]) == declare
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0, 2.0])
    _Double.apply(a, declare=declare).sum().backward()  # accumulates into it in place
    np.testing.assert_array_equal(a.grad.data, [4.0, 4.0, 4.0])


def test_leaf_gradients_never_share_memory():
    _made.clear()
    a, b = mg.ones(3, requires_grad=True), mg.ones(3, requires_grad=True)
    _Twice.apply(a, b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    c, d = mg.ones(3, requires_grad=True), mg.ones(3, requires_grad=True)
    (c + d).sum().backward()  # add returns the incoming gradient for both inputs
    assert not np.shares_memory(c.grad.data, d.grad.data)
    lin = mg.nn.Linear(4, 3)
    x = mg.randn(5, 4, requires_grad=True)
    lin(x).sum().backward()
    grads = [lin.weight.grad.data, lin.bias.grad.data, x.grad.data]
    for i, g in enumerate(grads):
        for h in grads[i + 1 :]:
            assert not np.shares_memory(g, h)
    lin.weight.grad.data[...] = 7.0  # clipping or zeroing one gradient touches no other
    np.testing.assert_array_equal(lin.bias.grad.data, np.full(3, 5.0, np.float32))


def test_grad_with_the_same_input_twice_gives_its_gradient_for_both():
    # as torch.autograd.grad(y, [x, x])
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    gx, gx_again = grad((x * x).sum(), [x, x])
    assert gx.tolist() == gx_again.tolist() == [2.0, 4.0]
