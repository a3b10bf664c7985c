"""The global random generator behind ``rand``, ``randn``, dropout and initialisation.

``manual_seed(s)`` makes every later draw reproducible. Functions that draw accept an
optional ``generator`` (a ``numpy.random.Generator``) to use instead of the global one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator; returns it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def rng(generator: np.random.Generator | None = None) -> np.random.Generator:
    """The generator to draw from: the one given, else the global one."""
    return _generator if generator is None else generator


def get_rng_state() -> dict[str, Any]:
    """The global generator's state as a JSON-serialisable dict (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a state returned by ``get_rng_state``."""
    _generator.bit_generator.state = state
