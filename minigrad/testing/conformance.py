"""The op-conformance runner: for a user's own op, exactly the checks minigrad runs for its
own ops (tests/minigrad/test_op_registry.py calls these same functions).

An op is described by an ``OpSpec`` (minigrad/ops/spec.py): the minigrad function, a NumPy
reference, and a generator of sample arguments. ``check_op(spec)`` then checks, on every
sample:

- ``forward``: the output against the reference in float64, to 1e-12;
- ``float32``: float32 inputs give a float32 output, close to the reference;
- ``gradcheck``: first derivatives against finite differences (float64);
- ``gradcheck_float32``: the float32 backward against float64 finite differences;
- ``gradgradcheck``: second derivatives (when ``spec.second_order``);
- ``jvp``: forward mode (minigrad.func.jvp) against finite differences along a random
  direction;
- ``vmap``: ``minigrad.func.vmap`` of the op over a stack of two samples against the two
  calls.

``check_op(spec, draws=20)`` also draws that many more samples with hypothesis, from seeds
it draws, and runs the forward and gradient checks on them (a property over the spec's
sample space; needs the ``hypothesis`` package). As a pytest parametrization over the
registry::

    @pytest.mark.parametrize("spec", minigrad.testing.registered_specs(), ids=str)
    def test_my_ops(spec):
        minigrad.testing.check_op(spec)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.ops.spec import REGISTRY, OpSpec, Sample
from minigrad.tensor import Tensor
from minigrad.testing.gradcheck import gradcheck, gradgradcheck

CHECKS = ("forward", "float32", "gradcheck", "gradcheck_float32", "gradgradcheck", "jvp", "vmap")


def registered_specs() -> list[OpSpec]:
    """Every registered spec (minigrad's and the user's), sorted by name."""
    return sorted(REGISTRY.values(), key=lambda s: s.name)


def samples_of(spec: OpSpec, seed: int | None = None) -> Sequence[Sample]:
    """The spec's samples; by default from a seed derived from its name (reproducible)."""
    return spec.samples(np.random.default_rng(sum(map(ord, spec.name)) if seed is None else seed))


def tensors_of(sample: Sample, dtype: Any = np.float64, requires_grad: bool = True) -> list:
    """A sample's arrays as tensors: float arrays in ``dtype`` (requiring grad), the others
    (integer targets, boolean masks) as they are."""
    return [
        Tensor(
            a.astype(dtype) if a.dtype.kind == "f" else a,
            requires_grad=requires_grad and a.dtype.kind == "f",
        )
        for a in sample.args
    ]


def _call(spec: OpSpec, sample: Sample):
    return lambda *xs: spec.op(*xs, **sample.kwargs)


def check_forward(spec: OpSpec, sample: Sample) -> None:
    out = spec.op(*tensors_of(sample), **sample.kwargs)
    expected = spec.reference(*sample.args, **sample.kwargs)
    if tuple(out.shape) != np.shape(expected):
        raise AssertionError(
            f"{spec.name}: output shape {out.shape}, reference {np.shape(expected)} "
            f"(keywords {sample.kwargs})"
        )
    np.testing.assert_allclose(
        out.data, expected, rtol=1e-12, atol=1e-12, err_msg=f"{spec.name} forward"
    )


def check_float32(spec: OpSpec, sample: Sample) -> None:
    out = spec.op(*tensors_of(sample, np.float32, requires_grad=False), **sample.kwargs)
    if out.dtype != np.float32:
        raise AssertionError(f"{spec.name}: float32 inputs gave a {out.dtype} output")
    expected = spec.reference(*sample.args, **sample.kwargs)
    np.testing.assert_allclose(
        out.data, expected, rtol=1e-4, atol=1e-5, err_msg=f"{spec.name} float32 forward"
    )


def check_gradients(spec: OpSpec, sample: Sample) -> None:
    gradcheck(_call(spec, sample), tensors_of(sample), spec.eps, spec.atol, spec.rtol)


def check_gradients_float32(spec: OpSpec, sample: Sample) -> None:
    gradcheck(_call(spec, sample), tensors_of(sample, np.float32), spec.eps)


def check_second_order(spec: OpSpec, sample: Sample) -> None:
    if spec.second_order:
        gradgradcheck(_call(spec, sample), tensors_of(sample), None, spec.eps, spec.atol,
                      spec.rtol)


def check_jvp(spec: OpSpec, sample: Sample, seed: int = 7) -> None:
    from minigrad.func import jvp

    rng = np.random.default_rng(seed)
    inputs = tensors_of(sample, requires_grad=False)
    floats = [k for k, t in enumerate(inputs) if t.data.dtype.kind == "f"]
    directions = {k: rng.standard_normal(inputs[k].shape) for k in floats}

    def along(h: float) -> np.ndarray:
        moved = [
            Tensor(t.data + h * directions[k]) if k in directions else t
            for k, t in enumerate(inputs)
        ]
        return spec.op(*moved, **sample.kwargs).data

    def call(*xs: Tensor) -> Tensor:
        full = list(inputs)
        for k, x in zip(floats, xs):
            full[k] = x
        return spec.op(*full, **sample.kwargs)

    _, tangent = jvp(call, [inputs[k] for k in floats], [Tensor(directions[k]) for k in floats])
    numeric = (along(spec.eps) - along(-spec.eps)) / (2 * spec.eps)
    np.testing.assert_allclose(
        tangent.data, numeric, rtol=spec.rtol, atol=spec.atol, err_msg=f"{spec.name} jvp"
    )


def check_vmap(spec: OpSpec, sample: Sample) -> None:
    """vmap over a batch of two: the sample and the sample with its float inputs scaled,
    against the two calls."""
    from minigrad.func import vmap
    from minigrad.ops.movement import stack

    first = tensors_of(sample, requires_grad=False)
    second = [
        Tensor(t.data * 0.75) if t.data.dtype.kind == "f" else t for t in first
    ]
    batched = [
        stack([a, b], 0) if a.data.dtype.kind == "f" else a for a, b in zip(first, second)
    ]
    in_dims = tuple(0 if a.data.dtype.kind == "f" else None for a in first)
    out = vmap(_call(spec, sample), in_dims=in_dims)(*batched)
    expected = np.stack([_call(spec, sample)(*first).data, _call(spec, sample)(*second).data])
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12,
                               err_msg=f"{spec.name} vmap")


_RUNNERS = {
    "forward": check_forward,
    "float32": check_float32,
    "gradcheck": check_gradients,
    "gradcheck_float32": check_gradients_float32,
    "gradgradcheck": check_second_order,
    "jvp": check_jvp,
    "vmap": check_vmap,
}


def check_op(spec: OpSpec, checks: Sequence[str] = CHECKS, draws: int = 0) -> None:
    """Run ``checks`` (all by default) on every sample of ``spec``; raises AssertionError
    (GradcheckError for derivatives) naming the op and the check. ``draws`` > 0 adds that
    many hypothesis-drawn samples for the forward and gradient checks."""
    unknown = [c for c in checks if c not in _RUNNERS]
    if unknown:
        raise ValueError(f"check_op: unknown checks {unknown}; choose from {CHECKS}")
    for sample in samples_of(spec):
        for name in checks:
            _RUNNERS[name](spec, sample)
    if draws:
        _drawn(spec, draws)


def _drawn(spec: OpSpec, draws: int) -> None:
    try:
        from hypothesis import given, settings
        from hypothesis import strategies as st
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError("check_op(draws=...) needs hypothesis: pip install hypothesis") from e

    @settings(max_examples=draws, deadline=None, database=None)
    @given(st.integers(0, 2**32 - 1))
    def holds(seed: int) -> None:
        for sample in samples_of(spec, seed):
            check_forward(spec, sample)
            check_gradients(spec, sample)

    holds()
