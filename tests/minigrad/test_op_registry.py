"""Walk the op registry: every op's forward against its NumPy reference, its gradient
against finite differences (gradcheck) and its second derivative (gradgradcheck).

The last test makes an op without a spec fail the suite: every Function subclass in
minigrad.ops must appear in the graph of some registered op.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function, _topological_order
from minigrad.ops.spec import REGISTRY
from minigrad.testing import gradcheck, gradgradcheck

SPECS = sorted(REGISTRY.values(), key=lambda s: s.name)


def _tensors(sample, dtype=np.float64, requires_grad=True):
    return [
        mg.Tensor(
            a.astype(dtype) if a.dtype.kind == "f" else a,
            requires_grad=requires_grad and a.dtype.kind == "f",
        )
        for a in sample.args
    ]


def _samples(spec):
    return spec.samples(np.random.default_rng(sum(map(ord, spec.name))))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_forward_matches_reference(spec):
    for sample in _samples(spec):
        out = spec.op(*_tensors(sample), **sample.kwargs)
        expected = spec.reference(*sample.args, **sample.kwargs)
        assert out.shape == np.shape(expected), (sample.kwargs, out.shape, np.shape(expected))
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_forward_float32_keeps_dtype(spec):
    for sample in _samples(spec):
        out = spec.op(*_tensors(sample, np.float32, requires_grad=False), **sample.kwargs)
        assert out.dtype == np.float32
        expected = spec.reference(*sample.args, **sample.kwargs)
        np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_gradcheck(spec):
    for sample in _samples(spec):
        inputs = _tensors(sample)
        gradcheck(
            lambda *xs, kw=sample.kwargs: spec.op(*xs, **kw),
            inputs,
            eps=spec.eps,
            atol=spec.atol,
            rtol=spec.rtol,
        )


@pytest.mark.parametrize("spec", [s for s in SPECS if s.second_order], ids=lambda s: s.name)
def test_gradgradcheck(spec):
    for sample in _samples(spec):
        inputs = _tensors(sample)
        gradgradcheck(
            lambda *xs, kw=sample.kwargs: spec.op(*xs, **kw),
            inputs,
            eps=spec.eps,
            atol=spec.atol,
            rtol=spec.rtol,
        )


def _jvp_against_differences(spec, sample, rng):
    inputs = _tensors(sample, requires_grad=False)
    floats = [k for k, t in enumerate(inputs) if t.data.dtype.kind == "f"]
    directions = {k: rng.standard_normal(inputs[k].shape) for k in floats}

    def along(h):
        moved = [
            mg.tensor(t.data + h * directions[k]) if k in directions else t
            for k, t in enumerate(inputs)
        ]
        return spec.op(*moved, **sample.kwargs).data

    def call(*xs):
        full = list(inputs)
        for k, x in zip(floats, xs):
            full[k] = x
        return spec.op(*full, **sample.kwargs)

    _, tangent = mg.func.jvp(
        call, [inputs[k] for k in floats], [mg.tensor(directions[k]) for k in floats]
    )
    numeric = (along(spec.eps) - along(-spec.eps)) / (2 * spec.eps)
    np.testing.assert_allclose(tangent.data, numeric, rtol=spec.rtol, atol=spec.atol)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_jvp_matches_finite_differences(spec):
    """Forward mode: the tangent each op's JVP rule gives, against central differences of
    the forward along a random direction (float64)."""
    rng = np.random.default_rng(7)
    for sample in _samples(spec):
        _jvp_against_differences(spec, sample, rng)


def _all_functions() -> set[type]:
    """Every Function subclass defined in minigrad.ops (imported by ``import minigrad``)."""
    found, todo = set(), [Function]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("minigrad.ops"):
                found.add(sub)
    return found


def test_every_function_has_a_spec():
    """An op added without a registered spec fails here."""
    covered: set[type] = set()
    for spec in SPECS:
        for sample in _samples(spec):
            inputs = _tensors(sample)
            out = spec.op(*inputs, **sample.kwargs)
            # under create_graph the gradient's own graph uses more ops: some are linear in
            # the incoming gradient only (an average pool's), so that one requires grad too
            incoming = mg.ones_like(out).requires_grad_(spec.second_order)
            grads = mg.autograd.grad(
                out,
                [t for t in inputs if t.requires_grad],
                incoming,
                create_graph=spec.second_order,
                allow_unused=True,
            )
            roots = [
                t.grad_fn
                for t in (out, *[g for g in grads if g is not None])
                if t.grad_fn is not None
            ]
            covered |= {type(n) for n in _topological_order(roots)}
    missing = sorted(c.__name__ for c in _all_functions() - covered)
    assert not missing, f"ops with no registered spec exercising them: {missing}"
