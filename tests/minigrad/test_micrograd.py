"""micrograd's README expression, written with minigrad tensors: a smoke test of the whole
engine (broadcasting scalars, pow, relu, division, in-place += on non-leaves, backward)."""

import pytest

import minigrad as mg


def test_micrograd_readme_expression():
    a = mg.tensor(-4.0, dtype=mg.float64, requires_grad=True)
    b = mg.tensor(2.0, dtype=mg.float64, requires_grad=True)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert g.item() == pytest.approx(24.7041, abs=5e-5)
    assert a.grad.item() == pytest.approx(138.8338, abs=5e-5)
    assert b.grad.item() == pytest.approx(645.5773, abs=5e-5)
