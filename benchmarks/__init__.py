"""Timing harness and benchmarks. Run one with ``python -m benchmarks.<name>``."""

# minigrad first, before any benchmark imports NumPy: importing it sets OPENBLAS_THREAD_TIMEOUT
# (see minigrad/__init__.py), which OpenBLAS reads once, when NumPy loads it
import minigrad  # noqa: F401
