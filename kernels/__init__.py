"""Numba CPU kernels, each with a plain NumPy twin: float arrays in, float arrays out.

Nothing here imports minigrad; ``minigrad/backend.py`` is the one module of minigrad that
imports this package (docs/design.md). ``FAMILIES`` is the one list of kernel families: each
is a module here and a twin of the same name in ``kernels/twins/``, and the backend, the
precompiler and the tests all read it. ``kernels/checks.py`` holds the argument checks that a
kernel and its twin share; it imports no Numba, so the twins run without it.
"""

FAMILIES = (
    "attention",
    "conv",
    "elementwise",
    "layer_norm",
    "matmul",
    "optim",
    "pool",
    "rnn",
    "softmax",
)
