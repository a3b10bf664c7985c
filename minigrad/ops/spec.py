"""The op registry: every differentiable op registers a spec of how to test it.

A spec names the public function, a NumPy reference, and a generator of sample arguments
(which shapes, which values: the domain where the op is defined and smooth, away from points
such as relu's kink). ``tests/minigrad/test_op_registry.py`` walks this registry and checks
every op's forward against its reference and its first and second derivatives with
``minigrad.testing.gradcheck`` / ``gradgradcheck``. Users can register specs for their own ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Sample:
    """One call of an op: positional arrays and keyword arguments.

    Floating arrays are the differentiable inputs (passed as tensors); integer and boolean
    arrays are passed as tensors that need no gradient; keyword values are passed as they are.
    """

    args: tuple
    kwargs: dict = field(default_factory=dict)


@dataclass
class OpSpec:
    """How to test one differentiable op."""

    name: str
    op: Callable[..., Any]  # minigrad function taking tensors
    reference: Callable[..., Any]  # NumPy function taking arrays
    samples: Callable[[np.random.Generator], Sequence[Sample]]
    second_order: bool = True  # check gradgradcheck too
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3


REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"register: an op named {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


# -- sample generators ---------------------------------------------------------------

SHAPES = [(), (5,), (2, 3), (2, 1, 3)]
BROADCAST_PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((), (2, 2)), ((4,), ())]


def values(
    rng: np.random.Generator,
    shape: tuple,
    domain: tuple[float, float] = (-2.0, 2.0),
    avoid: Sequence[float] = (),
    margin: float = 0.05,
) -> np.ndarray:
    """float64 values uniform in ``domain``, kept at least ``margin`` from each ``avoid`` point."""
    x = rng.uniform(domain[0], domain[1], size=shape)
    for p in avoid:
        near = np.abs(x - p) < margin
        x = np.where(near, p + np.where(x >= p, margin, -margin) * 2, x)
    return np.asarray(x, dtype=np.float64)


def unary(domain=(-2.0, 2.0), avoid=(), kwargs: Sequence[dict] = ({},), shapes=SHAPES):
    """Samples for a one-input op: each shape, each keyword set."""

    def make(rng: np.random.Generator) -> list[Sample]:
        return [Sample((values(rng, s, domain, avoid),), dict(k)) for s in shapes for k in kwargs]

    return make


def binary(
    domain_a=(-2.0, 2.0), domain_b=(-2.0, 2.0), avoid_a=(), avoid_b=(), pairs=BROADCAST_PAIRS
):
    """Samples for a two-input broadcasting op."""

    def make(rng: np.random.Generator) -> list[Sample]:
        return [
            Sample((values(rng, sa, domain_a, avoid_a), values(rng, sb, domain_b, avoid_b)))
            for sa, sb in pairs
        ]

    return make


def fixed(*samples: Callable[[np.random.Generator], Sample]):
    """Samples built by hand: each argument is a function of the generator."""

    def make(rng: np.random.Generator) -> list[Sample]:
        return [f(rng) for f in samples]

    return make
