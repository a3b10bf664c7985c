"""Matrix multiply: a hand-written, cache-blocked GEMM, and the BLAS call it is measured against.

a: (M, K)   b: (K, N)   c: (M, N)      batched: a (..., M, K) @ b (..., K, N), batch dims broadcast

The GEMM follows the usual blocking (Goto's): C is split into MC x NC blocks, one prange
iteration each, so iterations write disjoint blocks. For each KC-deep slice, the block's
part of A is packed into MR-row slivers and of B into NR-column slivers, laid out so the
microkernel reads both contiguously; the microkernel adds the MR x NR product of one A sliver
and one B sliver into a small tile, then into C.

What was measured (benchmarks/kernels.py, the notes in the README): LLVM, through Numba,
vectorizes the microkernel's inner loop with AVX-512 but keeps the tile in memory rather than
in registers (a fully unrolled tile is left scalar, and a stack-allocated tile is not promoted
either), so it peaks near 30 GFLOP/s in float32 where OpenBLAS reaches about 100. minigrad
therefore computes matmul with BLAS (``matmul`` below dispatches to it) and keeps this GEMM as
the measured alternative, for learning and comparison.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels import _validate
from kernels._config import kernel

# Block sizes: KC x NR of B and KC x MR of A stay in L1/L2; MC x KC of A in L2 (2 MiB here).
MC, KC, NC = 96, 256, 480


def _tile(dtype) -> tuple[int, int]:
    """(MR, NR): 8 x 48 float32 (three 16-lane vectors a row), 8 x 24 float64; best measured."""
    return (8, 48) if dtype == np.float32 else (8, 24)


@kernel
def _micro(ap, bp, kc, mr, nr, acc):
    # acc (mr, nr) = sum over k of ap[k, :mr] outer bp[k, :nr]; the j loop vectorizes
    for i in range(mr):
        for j in range(nr):
            acc[i, j] = 0.0
    for k in range(kc):
        for i in range(mr):
            a = ap[k, i]
            for j in range(nr):
                acc[i, j] += a * bp[k, j]


@kernel(parallel=True)
def _gemm(a, b, c, MR, NR):
    M, K = a.shape
    N = b.shape[1]
    n_mb = (M + MC - 1) // MC
    n_nb = (N + NC - 1) // NC
    for job in prange(n_mb * n_nb):
        i0 = (job // n_nb) * MC
        j0 = (job % n_nb) * NC
        mc = min(MC, M - i0)
        nc = min(NC, N - j0)
        n_as = (mc + MR - 1) // MR
        n_bs = (nc + NR - 1) // NR
        apack = np.zeros((n_as, KC, MR), dtype=c.dtype)
        bpack = np.zeros((n_bs, KC, NR), dtype=c.dtype)
        acc = np.empty((MR, NR), dtype=c.dtype)
        for i in range(mc):
            for j in range(nc):
                c[i0 + i, j0 + j] = 0.0
        for k0 in range(0, K, KC):
            kc = min(KC, K - k0)
            for s in range(n_bs):  # pack B: sliver s holds columns j0 + s*NR .. + NR
                for k in range(kc):
                    for j in range(NR):
                        col = s * NR + j
                        bpack[s, k, j] = b[k0 + k, j0 + col] if col < nc else 0.0
            for s in range(n_as):  # pack A: sliver s holds rows i0 + s*MR .. + MR
                for k in range(kc):
                    for i in range(MR):
                        row = s * MR + i
                        apack[s, k, i] = a[i0 + row, k0 + k] if row < mc else 0.0
            for sa in range(n_as):
                mr = min(MR, mc - sa * MR)
                for sb in range(n_bs):
                    nr = min(NR, nc - sb * NR)
                    _micro(apack[sa], bpack[sb], kc, MR, NR, acc)
                    for i in range(mr):
                        for j in range(nr):
                            c[i0 + sa * MR + i, j0 + sb * NR + j] += acc[i, j]


def _check(name, a, b):
    _validate.floats(name, a=a, b=b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(
            f"{name}: both arguments need at least 2 dims, got {a.shape} and {b.shape}"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"{name}: shapes {a.shape} and {b.shape} do not align ({a.shape[-1]} != {b.shape[-2]})"
        )
    try:
        return np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{name}: batch dims of {a.shape} and {b.shape} can't be broadcast"
        ) from None


def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b with the hand-written kernel (2-D or batched with broadcast batch dims)."""
    batch = _check("gemm", a, b)
    m, n = a.shape[-2], b.shape[-1]
    c = np.empty(batch + (m, n), a.dtype)
    if c.size == 0:
        return c
    if a.shape[-1] == 0:
        c[...] = 0.0
        return c
    mr, nr = _tile(a.dtype)
    ab = np.broadcast_to(a, batch + a.shape[-2:])
    bb = np.broadcast_to(b, batch + b.shape[-2:])
    for index in np.ndindex(*batch):
        _gemm(np.ascontiguousarray(ab[index]), np.ascontiguousarray(bb[index]), c[index], mr, nr)
    return c


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b as minigrad computes it: BLAS, which measured faster than ``gemm`` at every shape
    class tried (see the module docstring and benchmarks/kernels.py)."""
    _check("matmul", a, b)
    return np.matmul(a, b)
