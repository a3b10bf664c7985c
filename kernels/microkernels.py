"""The microkernels' public face: for each dtype, the tile shapes and the register-tile
products that the GEMM (kernels/matmul.py), the LSTM (kernels/rnn.py) and the convolution on
batch slivers (kernels/conv_slivers.py) are built on.

The products themselves are generated straight-line code (kernels/_microkernels.py, from
kernels/gen_microkernels.py), one set per vector ISA; the one for this CPU's target
(kernels/isa.py) is bound here at import. Each helper here picks the float32 or float64 one;
called from a kernel it is inlined, and its choice and tile sizes are compile-time constants
there:

- ``packed_tile_product``: the MR x NR product of a packed A sliver and a packed B sliver,
  added into (or, with ``zero``, written to) a tile of C; the GEMM's microkernel.
- ``sliver_tile_product``: the same for the 16-row sliver tiles of weights packed once
  (``matmul.pack_slivers``), used by the LSTM and the batch-sliver convolution.
- ``strided_tile_product``: a sliver tile product whose operands are read in place, jumping
  between blocks of rows, with no packing at all.
- ``gemm_tile`` / ``sliver_tile`` (a dtype) and ``gemm_tile_of`` / ``sliver_tile_of`` (an
  array, usable inside a kernel): the tile shape (MR, NR).
"""

from __future__ import annotations

import numpy as np

from kernels import _microkernels
from kernels._config import inlined_overload
from kernels.gen_microkernels import TARGETS
from kernels.isa import TARGET

# This CPU's target's tiles (kernels/isa.py) and products.
TILES = TARGETS[TARGET]["gemm"]
SLIVER_TILES = TARGETS[TARGET]["sliver"]


def _product(kind: str, dtype: str):
    return getattr(_microkernels, f"micro{kind}_{dtype}_{TARGET}")


micro_float32, micro_float64 = _product("", "float32"), _product("", "float64")
micro_sliver_float32 = _product("_sliver", "float32")
micro_sliver_float64 = _product("_sliver", "float64")
micro_strided_float32 = _product("_strided", "float32")
micro_strided_float64 = _product("_strided", "float64")


def gemm_tile(dtype) -> tuple[int, int]:
    """(MR, NR) of the microkernel for this dtype."""
    return TILES[np.dtype(dtype).name]


def packed_tile_product(ap, pa, bp, pb, kc, out, zero):
    """The microkernel for the panels' dtype (a Numba overload picks it at compile time)."""
    (micro_float32 if ap.dtype == np.float32 else micro_float64)(ap, pa, bp, pb, kc, out, zero)


@inlined_overload(packed_tile_product)
def _packed_tile_product_overload(ap, pa, bp, pb, kc, out, zero):
    chosen = micro_float32 if ap.dtype.name == "float32" else micro_float64
    return lambda ap, pa, bp, pb, kc, out, zero: chosen(ap, pa, bp, pb, kc, out, zero)


def sliver_tile(dtype) -> tuple[int, int]:
    """(MR, NR) of the sliver microkernels for this dtype."""
    return SLIVER_TILES[np.dtype(dtype).name]


def sliver_tile_of(c):
    """(MR, NR) of the sliver microkernels for c's dtype, compile-time constants in a kernel."""
    return sliver_tile(c.dtype)


@inlined_overload(sliver_tile_of)
def _sliver_tile_of_overload(c):
    mr, nr = SLIVER_TILES[c.dtype.name]
    return lambda c: (mr, nr)


def sliver_tile_product(ap, pa, bp, pb, kc, out, zero):
    """The packed sliver microkernel for the panels' dtype (chosen at compile time)."""
    fn = micro_sliver_float32 if ap.dtype == np.float32 else micro_sliver_float64
    fn(ap, pa, bp, pb, kc, out, zero)


@inlined_overload(sliver_tile_product)
def _sliver_tile_product_overload(ap, pa, bp, pb, kc, out, zero):
    chosen = micro_sliver_float32 if ap.dtype.name == "float32" else micro_sliver_float64
    return lambda ap, pa, bp, pb, kc, out, zero: chosen(ap, pa, bp, pb, kc, out, zero)


def strided_tile_product(ap, pa, lda, run, jump, bp, pb, ldb, jump_b, blocks, out):
    """The in-place microkernel for the operands' dtype (chosen at compile time)."""
    fn = micro_strided_float32 if ap.dtype == np.float32 else micro_strided_float64
    fn(ap, pa, lda, run, jump, bp, pb, ldb, jump_b, blocks, out)


@inlined_overload(strided_tile_product)
def _strided_tile_product_overload(ap, pa, lda, run, jump, bp, pb, ldb, jump_b, blocks, out):
    chosen = micro_strided_float32 if ap.dtype.name == "float32" else micro_strided_float64

    def impl(ap, pa, lda, run, jump, bp, pb, ldb, jump_b, blocks, out):
        chosen(ap, pa, lda, run, jump, bp, pb, ldb, jump_b, blocks, out)

    return impl


def gemm_tile_of(c):
    """(MR, NR) for c's dtype; inside a kernel they are compile-time constants, which lets LLVM
    unroll the packing loops (measured: 15-20 % of the whole GEMM's time against passing them)."""
    return gemm_tile(c.dtype)


@inlined_overload(gemm_tile_of)
def _gemm_tile_of_overload(c):
    mr, nr = TILES[c.dtype.name]
    return lambda c: (mr, nr)
