"""Shared test configuration: hypothesis profiles and the path to the shared data sets.

Profiles: ``ci`` (few examples, used by .ci/run), ``dev`` (the default) and ``thorough``
(many examples). Choose with MINIGRAD_HYPOTHESIS_PROFILE=thorough python -m pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("thorough", max_examples=400, deadline=None)
settings.load_profile(
    os.environ.get("MINIGRAD_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MINIGRAD_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip (with the reason) where this checkout has no copy beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
