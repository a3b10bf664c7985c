"""Generated kernels for fused elementwise chains (minigrad.compile).

A chain such as ``relu(x @ W + b)`` or ``h + relu(z)`` is described to this module as
plain data: its inputs, each one of

- ``"full"``: an array of the output's shape (N,) flattened;
- ``"row"``: an array broadcast over the leading dims (a bias), (M,) with N = R * M;
- ``"scalar"``: one value;

and scalar statements ``t3 = t1 * a2`` over them. ``fused_kernels`` writes one Python file
with two Numba kernels (the forward, and the backward that recomputes the chain and sends
the gradient back through it), keyed by a hash of their source, to Numba's cache folder, and
imports it. With ``cache=True`` a second process compiles nothing.

Shapes (fixed letters): R rows, M columns of a row input, N = R * M output elements.
The forward writes out (N,); the backward reads g (N,) and writes a (N,) gradient for a
full input, sums over the rows into (M,) for a row input (in float64, then rounded), and
into one value for a scalar input.

The plain-Python twin of a generated kernel is the same source run by the interpreter
(``NUMBA_DISABLE_JIT=1``); the tests compare compiled programs with eager minigrad, whose
ops have twins of their own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from kernels import _config  # noqa: F401  (sets Numba's cache folder first)

KINDS = ("full", "row", "scalar")


@dataclass(frozen=True)
class Chain:
    """A fused chain: ``kinds[i]`` of input ``a<i>``; ``forward``: (name, expression)
    statements ending with the output ``result``; ``backward``: statements run after the
    forward ones, which read ``g`` (the output's gradient) and end with ``grads[i]``, the
    variable holding input i's gradient (None where none is needed)."""

    kinds: tuple
    forward: tuple
    result: str
    backward: tuple
    grads: tuple


_LITERAL = re.compile(r"(?<![\w.])(\d+\.\d*(?:e[-+]?\d+)?)")


def _typed(expr: str) -> str:
    """Float literals as scalars of the kernel's dtype (``F(0.5)``): a float64 literal would
    take every float32 element through float64 and back, which keeps loops from
    vectorizing."""
    return _LITERAL.sub(r"F(\1)", expr)


def kernel_source(chain: Chain, dtype) -> str:
    """The Python source of the chain's two Numba kernels for arrays of ``dtype``.

    Each kernel loops over rows, and within a row over columns from index 0 on slices of the
    full inputs, so that LLVM sees no negative index and vectorizes the column loop."""
    n = len(chain.kinds)
    xs = ", ".join(f"x{i}" for i in range(n))
    row_slices, loads = [], []
    for i, kind in enumerate(chain.kinds):
        if kind == "full":
            row_slices.append(f"r{i} = x{i}[i * cols : (i + 1) * cols]")
            loads.append(f"a{i} = r{i}[j]")
        elif kind == "row":
            loads.append(f"a{i} = x{i}[j]")
        else:
            loads.append(f"a{i} = x{i}[0]")
    fwd = [f"{name} = {_typed(expr)}" for name, expr in chain.forward]
    head = [
        "import math",
        "",
        "import numpy as np",
        "",
        "from kernels._config import strict_kernel",
        "from kernels._math import erf_fast, sigmoid_fast, tanh_fast",
        "",
        f"F = np.{np.dtype(dtype).name}",
        "",
        "",
    ]
    lines = head + [
        "@strict_kernel",
        f"def forward(rows, cols, {xs}, out):",
        "    for i in range(rows):",
        *["        " + s for s in row_slices],
        "        o = out[i * cols : (i + 1) * cols]",
        "        for j in range(cols):",
        *["            " + s for s in loads + fwd],
        f"            o[j] = {chain.result}",
        "",
        "",
    ]
    needed = [i for i, g in enumerate(chain.grads) if g is not None]
    gs = "".join(f", gx{i}" for i in needed)
    bwd = [f"{name} = {_typed(expr)}" for name, expr in chain.backward]
    slices, stores = [], []
    for i in needed:
        kind, var = chain.kinds[i], chain.grads[i]
        if kind == "full":
            slices.append(f"s{i} = gx{i}[i * cols : (i + 1) * cols]")
            stores.append(f"s{i}[j] = {var}")
        elif kind == "row":
            stores.append(f"acc{i}[j] += {var}")
        else:
            stores.append(f"acc{i}[0] += {var}")
    lines += ["@strict_kernel", f"def backward(rows, cols, g, {xs}{gs}):"]
    for i in needed:  # sums over rows in float64, rounded once at the end
        if chain.kinds[i] != "full":
            lines.append(f"    acc{i} = np.zeros(gx{i}.shape[0], np.float64)")
    lines += [
        "    for i in range(rows):",
        *["        " + s for s in row_slices + slices],
        "        gr = g[i * cols : (i + 1) * cols]",
        "        for j in range(cols):",
        *["            " + s.replace("g[k]", "gr[j]") for s in loads + fwd + bwd + stores],
    ]
    for i in needed:
        if chain.kinds[i] != "full":
            lines.append(f"    for m in range(gx{i}.shape[0]):")
            lines.append(f"        gx{i}[m] = acc{i}[m]")
    lines.append("")
    return "\n".join(lines)


def _folder() -> Path:
    return Path(numba.config.CACHE_DIR) / "fused"


_loaded: dict[str, object] = {}


def _module(source: str):
    """Import the kernels' source from a file named by its hash, writing it first if it is
    not there (atomically: a file is never seen half written)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    if digest in _loaded:
        return _loaded[digest]
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chain_{digest}.py"
    if not path.exists() or path.read_text() != source:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    name = f"minigrad_fused_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _loaded[digest] = module
    return module


class FusedKernels:
    """The forward and backward of one chain at fixed shapes, behind validating wrappers."""

    def __init__(self, chain: Chain, shapes: tuple, out_shape: tuple, dtype) -> None:
        if len(shapes) != len(chain.kinds) or any(k not in KINDS for k in chain.kinds):
            raise ValueError(f"fused kernel: bad chain description {chain.kinds}")
        self.chain = chain
        self.source = kernel_source(chain, dtype)
        module = _module(self.source)
        self._forward, self._backward = module.forward, module.backward
        self.shapes = tuple(tuple(s) for s in shapes)
        self.out_shape = tuple(out_shape)
        self.dtype = np.dtype(dtype)
        size = int(np.prod(self.out_shape, dtype=np.int64))
        cols = size  # one row, unless an input is broadcast over rows
        for kind, shape in zip(chain.kinds, self.shapes):
            if kind == "row":
                cols = int(np.prod(shape, dtype=np.int64))
        if cols and size % cols:
            raise ValueError(f"fused kernel: rows of {cols} do not divide {self.out_shape}")
        self.rows, self.cols = (size // cols if cols else 0), cols

    def _flat(self, arrays: tuple) -> list:
        if len(arrays) != len(self.shapes):
            raise ValueError(
                f"fused kernel: the chain takes {len(self.shapes)} inputs, {len(arrays)} given"
            )
        flat = []
        for i, (a, shape) in enumerate(zip(arrays, self.shapes)):
            if a.shape != shape or a.dtype != self.dtype:
                raise ValueError(
                    f"fused kernel: input {i} has shape {a.shape} and dtype {a.dtype}, "
                    f"expected {shape} {self.dtype}"
                )
            flat.append(np.ascontiguousarray(a).reshape(-1))
        return flat

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        """The chain's output (out_shape) from its inputs."""
        out = np.empty(self.out_shape, self.dtype)
        self._forward(self.rows, self.cols, *self._flat(arrays), out.reshape(-1))
        return out

    def backward(self, grad: np.ndarray, *arrays: np.ndarray) -> tuple:
        """The gradient of each input that needs one (None for the others)."""
        if grad.shape != self.out_shape:
            raise ValueError(
                f"fused kernel: gradient of shape {grad.shape}, expected {self.out_shape}"
            )
        g = np.ascontiguousarray(grad, dtype=self.dtype).reshape(-1)
        outs = []
        result = []
        for shape, need in zip(self.shapes, self.chain.grads):
            if need is None:
                result.append(None)
                continue
            gx = np.empty(shape, self.dtype)
            outs.append(gx.reshape(-1))
            result.append(gx)
        self._backward(self.rows, self.cols, g, *self._flat(arrays), *outs)
        return tuple(result)
