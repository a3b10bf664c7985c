"""Walk the op registry with minigrad.testing's conformance runner: every op's forward
against its NumPy reference (float64 and float32), its gradient against finite differences
(float64, and the float32 backward against float64 differences), its second derivative, its
JVP, and vmap against a loop.

The last test makes an op without a spec fail the suite: every Function subclass in
minigrad.ops must appear in the graph of some registered op.
"""

from __future__ import annotations

import pytest

import minigrad as mg
from minigrad.autograd import Function, _topological_order
from minigrad.testing.conformance import (
    check_float32,
    check_forward,
    check_gradients,
    check_gradients_float32,
    check_jvp,
    check_second_order,
    check_vmap,
    registered_specs,
    samples_of,
    tensors_of,
)

SPECS = registered_specs()
_samples = samples_of
_tensors = tensors_of


# The checks are minigrad.testing's conformance runner, the same one users run on their ops.
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize(
    "check",
    [check_forward, check_float32, check_gradients, check_gradients_float32, check_jvp,
     check_vmap],
    ids=["forward", "float32", "gradcheck", "gradcheck_float32", "jvp", "vmap"],
)
def test_conformance(spec, check):
    for sample in samples_of(spec):
        check(spec, sample)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.second_order], ids=lambda s: s.name)
def test_gradgradcheck(spec):
    for sample in samples_of(spec):
        check_second_order(spec, sample)


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
