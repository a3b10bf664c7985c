"""Timing harness and benchmarks. Run one with ``python -m benchmarks.<name>``."""

import os

# before any benchmark imports NumPy: see OPENBLAS_THREAD_TIMEOUT in minigrad/__init__.py
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")
