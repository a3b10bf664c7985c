"""Timing harness and benchmarks. Run one with ``python -m benchmarks.<name>``."""
