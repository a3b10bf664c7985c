"""The explain trace against hand-derived gradients, and micrograd's README numbers."""

import io

import numpy as np
import pytest

import minigrad as mg


def test_records_of_a_product_and_a_sum_meeting():
    # y = a*b + a: dy/da = b + 1 (two paths meet at a), dy/db = a
    with mg.record_sites():
        a = mg.tensor(3.0, dtype=mg.float64, requires_grad=True)
        b = mg.tensor(-2.0, dtype=mg.float64, requires_grad=True)
        y = a * b + a
    out = io.StringIO()
    steps = mg.explain(y, names={"a": a, "b": b}, file=out)
    ops = [s.label for s in steps]
    assert ops[0] == "Add" and "Mul" in ops and set(ops[-2:]) == {"a", "b"}
    mul = steps[ops.index("Mul")]
    assert mul.rule == "d(a*b)/da = b, d(a*b)/db = a"
    assert mul.site.endswith("test_explain.py:16")
    np.testing.assert_allclose(mul.grad_in, 1.0)
    np.testing.assert_allclose(mul.grads_out[0], -2.0)  # b
    np.testing.assert_allclose(mul.grads_out[1], 3.0)  # a
    leaf_a = steps[ops.index("a")]
    assert leaf_a.is_sum()
    np.testing.assert_allclose(sorted(float(c) for _, c in leaf_a.contributions), [-2.0, 1.0])
    np.testing.assert_allclose(leaf_a.grad_in, -1.0)
    np.testing.assert_allclose(a.grad.item(), -1.0)
    text = out.getvalue()
    assert "d(a*b)/da = b" in text and "2 paths meet: gradients add" in text
    assert "test_explain.py:16" in text


def test_micrograd_readme_expression():
    # micrograd's README example (github.com/karpathy/micrograd), which prints 24.7041,
    # 138.8338 and 645.5773
    a = mg.tensor(-4.0, dtype=mg.float64, requires_grad=True)
    b = mg.tensor(2.0, dtype=mg.float64, requires_grad=True)
    c = a + b
    d = a * b + b**3
    c = c + (c + 1)
    c = c + (1 + c + (-a))
    d = d + (d * 2 + (b + a).relu())
    d = d + (3 * d + (b - a).relu())
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    assert f"{g.item():.4f}" == "24.7041"
    steps = mg.explain(g, names={"a": a, "b": b}, file=None)
    leaves = {s.label: s for s in steps if s.op == "leaf"}
    assert f"{leaves['a'].grad_in.item():.4f}" == "138.8338"
    assert f"{leaves['b'].grad_in.item():.4f}" == "645.5773"
    assert f"{a.grad.item():.4f}" == "138.8338"
    # each node's incoming gradient is the sum of what its users sent it
    for s in steps[1:]:
        np.testing.assert_allclose(sum(c for _, c in s.contributions), s.grad_in)


def test_tensor_graph_summaries_and_chain_rule_of_matmul():
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    w = mg.tensor(rng.normal(size=(3, 5)), requires_grad=True)
    loss = (x @ w).tanh().sum()
    out = io.StringIO()
    steps = mg.explain(loss, names={"x": x, "w": w}, file=out)
    text = out.getvalue()
    assert "shape (4, 5) mean" in text  # a summary, not a dump
    t = np.tanh(x.data @ w.data)
    g = 1 - t**2
    mm = next(s for s in steps if s.op == "MatMul")
    np.testing.assert_allclose(mm.grad_in, g, rtol=1e-12)
    np.testing.assert_allclose(mm.grads_out[0], g @ w.data.T, rtol=1e-12)
    np.testing.assert_allclose(mm.grads_out[1], x.data.T @ g, rtol=1e-12)
    assert mm.input_shapes == [(4, 3), (3, 5)] and mm.output_shape == (4, 5)


def test_explain_of_a_constant_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.explain(mg.tensor(1.0), file=None)
