"""Fixtures shared by the kernel tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def two_threads(monkeypatch):
    """Numba at two threads, with every parallel kernel on its parallel build however small
    its input (kernels/_config.py, PARALLEL_MIN_ELEMENTS); skips where there is one core or
    no JIT, since there is then no parallel build to run."""
    import numba

    from kernels import _config

    if numba.config.NUMBA_NUM_THREADS < 2 or numba.config.DISABLE_JIT:
        pytest.skip("one core or no JIT: there is no parallel build to run")
    previous = numba.get_num_threads()
    numba.set_num_threads(2)
    monkeypatch.setattr(_config, "PARALLEL_MIN_ELEMENTS", 0)
    yield
    numba.set_num_threads(previous)
