"""The one place where Numba's compilation flags are set (docs/design.md, "The kernel contract").

- ``cache=True``: compiled machine code is stored in ``$NUMBA_CACHE_DIR`` (by default
  ``~/.cache/minigrad/numba``), in a folder per vector ISA target and tile set
  (``_cache_dir``), and reused by later processes.
- ``fastmath`` without ``nnan`` and ``ninf``: reassociation and contraction (FMA) are allowed,
  but infinities and NaNs keep their meaning, because masks use ``-inf``.
- ``error_model="numpy"``: division by zero gives inf/nan like NumPy instead of raising,
  which also removes a branch from every division.
- ``parallel=True`` only for kernels whose ``prange`` iterations write disjoint outputs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import types
from pathlib import Path

import numba
from numba import njit
from numba.extending import overload

# kernels.isa sets the CPU Numba compiles for: imported before any compilation
from kernels import isa


def _cache_dir() -> str:
    """Numba's cache folder for this build of the kernels: ``$NUMBA_CACHE_DIR`` (or
    ``~/.cache/minigrad/numba``) / ``<target>-<hash of the generated microkernels>``.

    Numba keys a cached kernel on its own source file, not on the files it calls into; the
    sliver and GEMM kernels take their tile shapes from kernels/_microkernels.py, while the
    Python code around them sizes their buffers from the same tiles. A kernel cached with one
    tile set and run with another would write past its buffers. So each target and each
    version of the generated tiles gets a folder of its own."""
    base = numba.config.CACHE_DIR or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "minigrad",
        "numba",
    )
    generated = Path(__file__).with_name("_microkernels.py").read_bytes()
    digest = hashlib.sha256(generated + isa.TARGET.encode()).hexdigest()[:12]
    return os.path.join(base, f"{isa.TARGET}-{digest}")


# set before any kernel module decorates its first kernel (they all import this module first)
numba.config.CACHE_DIR = _cache_dir()

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


# Below this many elements in its first array, a parallel kernel runs its serial build: waking
# the sleeping thread pool costs about 70 us a call at 2 threads (measured), which is more
# than the whole work of, say, a softmax over a (32, 10) batch (1 us). Read at call time.
# ``minigrad tune`` does not measure it (kernels/tune.py says why).
PARALLEL_MIN_ELEMENTS = 1 << 16


def _jit(fn, parallel: bool):
    return njit(
        cache=True, fastmath=set(FASTMATH), error_model="numpy", parallel=parallel, nogil=True
    )(fn)


class ParallelKernel:
    """A kernel compiled twice, with ``parallel=True`` and without: the call picks the serial
    build for small inputs or a single thread, the parallel one otherwise."""

    def __init__(self, fn):
        self.parallel = _jit(fn, True)
        # Numba's cache names its files after the function's qualified name and line, so the
        # serial build needs a function of its own name, or it would load the parallel code.
        serial = types.FunctionType(
            fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__
        )
        serial.__qualname__ = fn.__qualname__ + "_serial"
        self.serial = _jit(serial, False)
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        if args[0].size < PARALLEL_MIN_ELEMENTS or numba.get_num_threads() == 1:
            return self.serial(*args)
        return self.parallel(*args)


def kernel(fn=None, *, parallel: bool = False):
    """``@kernel``: njit with the project's flags. ``@kernel(parallel=True)``: a
    ParallelKernel, for kernels whose prange iterations write disjoint outputs."""

    def decorate(f):
        return ParallelKernel(f) if parallel else _jit(f, False)

    return decorate if fn is None else decorate(fn)


def strict_kernel(fn):
    """``@strict_kernel``: njit with FMA contraction as the only fast-math flag. Without
    ``reassoc`` and ``nsz``, LLVM may not rewrite ``d + (-d)`` to 0, which turns a NaN
    gradient into -0; the generated kernels of minigrad.compile's fused chains must give
    the NaNs eager mode gives (kernels/fused.py). Their loops have no reduction over the
    vectorized index, so they vectorize without ``reassoc``."""
    return njit(cache=True, fastmath={"contract"}, error_model="numpy", nogil=True)(fn)


def slp_kernel(fn):
    """``@slp_kernel``: njit for a straight-line kernel written as scalar operations that only
    LLVM's SLP vectorizer turns into vector code (the GEMM microkernels, kernels/matmul.py).

    Numba leaves the SLP vectorizer off by default and reads the switch when a function is
    compiled, so this dispatcher turns it on for its own compilations only, whether they start
    from Python or from another kernel that calls it. fastmath here is ``contract`` (FMA) alone:
    with ``reassoc``, the loop vectorizer takes the k loop first, as a reduction with gathers,
    and the tile never reaches vector registers (3.5x slower, measured).
    """
    from numba.core import config

    dispatcher = njit(cache=True, fastmath={"contract"}, error_model="numpy", nogil=True)(fn)
    if not hasattr(dispatcher, "compile"):  # NUMBA_DISABLE_JIT=1: the plain Python function
        return dispatcher
    compile_plain = dispatcher.compile

    def compile_with_slp(sig):
        saved = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1
        try:
            return compile_plain(sig)
        finally:
            config.SLP_VECTORIZE = saved

    dispatcher.compile = compile_with_slp
    return dispatcher


def inlined_overload(fn):
    """``@inlined_overload(stub)``: a Numba overload with the project's fastmath flags, inlined
    into each kernel that calls it (see kernels/_math.py for why inlining matters)."""
    return overload(fn, fastmath=set(FASTMATH), inline="always")
