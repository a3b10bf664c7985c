"""The fast path of an op call agrees with the general one.

``Function.apply`` runs calls with one or two inputs (and no vmap, jvp or record_sites)
through ``_apply_one`` / ``_apply_two``, and ``operands`` returns two tensors of one dtype,
or a tensor and a Python number, without its general promotion (``promote``). Each test here
runs the same program on both paths and asks for the same values, dtypes, gradients, graph
and errors.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import autograd
from minigrad.autograd import Function
from minigrad.ops import common


def use_general_path(monkeypatch) -> None:
    """From here to the end of the monkeypatch's context, every op call takes the general
    path: ``Function._apply_general`` and ``promote``."""

    def apply(cls, *inputs, **params):
        return cls._apply_general(inputs, params)

    def operands(a, b):
        return common.promote(a, b)

    monkeypatch.setattr(Function, "apply", classmethod(apply))
    for module in ("minigrad.ops.common", "minigrad.ops.elementwise", "minigrad.ops.matmul"):
        monkeypatch.setattr(sys.modules[module], "operands", operands)


def _inputs():
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    w = mg.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    b = mg.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    m = mg.tensor(rng.standard_normal((4, 2)).astype(np.float64), requires_grad=True)
    c = mg.tensor(rng.standard_normal(4).astype(np.float32))  # a constant
    i = mg.tensor([[1, -2, 3, 4]])  # int64
    return x, w, b, m, c, i


PROGRAMS = {
    "tanh(x*w + b).sum()": lambda x, w, b, m, c, i: [(x * w + b).tanh().sum()],
    "python numbers": lambda x, w, b, m, c, i: [x * 2, 2 * x, x / 3, 3 - x, x**2, 0.5 + x],
    "numbers that promote": lambda x, w, b, m, c, i: [i * 2.5, i * 2, x * True, i + x],
    "numpy numbers": lambda x, w, b, m, c, i: [x * np.float64(2.5), np.float32(2) - x],
    "a constant": lambda x, w, b, m, c, i: [x * c, c * w + b],
    "float64 with float32": lambda x, w, b, m, c, i: [(x @ m).sum(dim=0), m.T @ b],
    "matmul shapes": lambda x, w, b, m, c, i: [b @ x.T, x @ b, b @ b, x.T @ w],
    "relu and views": lambda x, w, b, m, c, i: [x.relu()[1:], x.T.reshape(2, 6) * 3, x[0] + b],
    "reductions": lambda x, w, b, m, c, i: [x.sum(), w.sum(dim=1, keepdim=True), x.mean(0)],
    "comparisons": lambda x, w, b, m, c, i: [(x > w) * x, x.maximum(w), x.clamp(-0.5, 0.5)],
}


def _graph(t: mg.Tensor) -> list:
    """What each node of t's graph recorded, in topological order."""
    if t.grad_fn is None:
        return []
    nodes = autograd._topological_order([t.grad_fn])
    return [
        (
            n.name(),
            n.needs_input_grad,
            n.input_shapes,
            n.input_dtypes,
            [(what, a.dtype, a.shape) for what, a in autograd.saved_values(n)],
        )
        for n in nodes
    ]


def _run(program, grad_enabled: bool = True):
    inputs = _inputs()
    with mg.set_grad_enabled(grad_enabled):
        outs = program(*inputs)
    graphs = [_graph(o) for o in outs]
    loss = sum((o.float() if o.dtype != np.float32 else o).sum() for o in outs if o.requires_grad)
    if grad_enabled:
        loss.backward()
    grads = [None if t.grad is None else t.grad.numpy() for t in inputs]
    return [(o.numpy() if not o.requires_grad else o.detach().numpy()) for o in outs], graphs, grads


def _same(mine, theirs):
    (v1, g1, d1), (v2, g2, d2) = mine, theirs
    for a, b in zip(v1, v2, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert g1 == g2
    for a, b in zip(d1, d2, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(PROGRAMS))
@pytest.mark.parametrize("grad_enabled", [True, False])
def test_fast_and_general_paths_give_the_same_values_graph_and_grads(
    name, grad_enabled, monkeypatch
):
    fast = _run(PROGRAMS[name], grad_enabled)
    with monkeypatch.context() as m:
        use_general_path(m)
        general = _run(PROGRAMS[name], grad_enabled)
    _same(fast, general)


def test_second_order_gradients_agree(monkeypatch):
    def hessian_diagonal():
        x = mg.tensor([0.5, -1.0, 2.0], requires_grad=True)
        (g,) = mg.autograd.grad((x**3 * x.tanh()).sum(), x, create_graph=True)
        g.sum().backward()
        return g.detach().numpy(), x.grad.numpy()

    fast = hessian_diagonal()
    with monkeypatch.context() as m:
        use_general_path(m)
        general = hessian_diagonal()
    for a, b in zip(fast, general):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", ["fast", "general"])
def test_in_place_changes_of_saved_values_are_caught_on_both_paths(path, monkeypatch):
    if path == "general":
        use_general_path(monkeypatch)
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([3.0, 4.0], requires_grad=True)
    y = x * w  # saves both inputs
    with mg.no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match=r"Mul: .*saved value 1 \(input 1, shape \(2,\)\)"):
        y.sum().backward()

    t = (x * 1.0).tanh()  # saves its output
    t.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"Tanh: .*\(the output, shape \(2,\)\) is at version 1"):
        t.sum().backward()

    base = x * 1.0
    s = base.reshape(2, 1).sin()  # saves its input, a view sharing the base's counter
    base.add_(1.0)
    with pytest.raises(RuntimeError, match=r"Sin: .*\(input 0, shape \(2, 1\)\)"):
        s.sum().backward()


@pytest.mark.parametrize("path", ["fast", "general"])
def test_bad_operands_give_the_same_clear_errors(path, monkeypatch):
    if path == "general":
        use_general_path(monkeypatch)
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"add: shapes \(2,\) and \(3,\) can't be broadcast"):
        x + mg.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"mul: shapes \(2,\) and \(3,\) can't be broadcast"):
        x * mg.ones(3)
    with pytest.raises(TypeError, match="can't make a tensor from str"):
        x * "a"
    with pytest.raises(ValueError, match=r"matmul: shapes \(2,\) and \(3, 1\) do not align"):
        x @ mg.ones(3, 1)
    with pytest.raises(ValueError, match="matmul: both arguments need at least 1 dim"):
        x @ mg.tensor(2.0)
    with pytest.raises(ValueError, match="matmul: batch dims of shapes"):
        mg.ones(2, 3, 4) @ mg.ones(3, 4, 5)


@pytest.mark.parametrize(
    "dtype", ["float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool"]
)
@pytest.mark.parametrize("number", [2, -3, 2.5, 0.1, True, 300])
def test_operands_fast_cases_promote_like_the_general_rules(dtype, number):
    t = mg.tensor(np.array([1, 0, 1]).astype(dtype))
    for a, b in ((t, number), (number, t), (t, t), (t, t.double())):
        try:
            expected = common.promote(a, b)
        except (TypeError, OverflowError) as e:
            with pytest.raises(type(e)):
                common.operands(a, b)
            continue
        got = common.operands(a, b)
        for g, e in zip(got, expected):
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(g.numpy(), e.numpy())
