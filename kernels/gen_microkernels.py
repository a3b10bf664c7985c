"""Writes kernels/_microkernels.py, the register-tile microkernels: on packed operands (the
GEMM's), and on operands read in place (``micro_strided_*``, for the LSTM's weight gradient),
for each target vector ISA (``TARGETS``; kernels/isa.py picks one at import).

    python -m kernels.gen_microkernels          # rewrite the file
    python -m kernels.gen_microkernels --check  # exit 1 if the file is stale (a test runs it)

Why generated: the microkernel keeps its MR x NR tile of C in MR * NR scalar variables, so that
LLVM keeps them in vector registers; any loop over the tile, or an array holding it, makes LLVM
keep the tile in memory, since it cannot prove the tile and the packed panels never alias
(kernels/matmul.py tells the measurements). 192 variables written out by hand would be
unreadable and error-prone; written out by this script, the pattern is the one in ``_source``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

# The tiles of each target (kernels/isa.py chooses one at import). The tile of C lives in
# vector registers, with one vector of B per NR / lanes and one broadcast value of A besides:
#
# - avx512 (32 registers of 16 float32 / 8 float64): the GEMM's 12 x 16 is 12 registers for the
#   tile; the slivers' 16 rows divide the LSTM's gate rows (4H) and H + I exactly at the usual
#   sizes, where 12 left a third of a tile idle, and run as fast from L1 (117 GFLOP/s float32).
# - avx2 (16 registers of 8 float32 / 4 float64): 6 x 16 is 12 registers for the tile, 2 for a
#   row of B and 1 for A, the classic Haswell shape; the slivers take 8 rows of one register.
#   (4 x 16 ran the LSTM faster on haswell code, 0.89 of the time, but the convolution's
#   weight gradient needs MR to be a multiple of NR; 8 x 16 needs 19 registers and spilled.)
# - portable (16 registers of 128 bits: SSE2 and NEON alike): 4 x 8 float32 is 8 registers.
#
# NR is always a whole number of the target's vectors; the sliver MR divides 4H whenever H is a
# multiple of 4 and is a multiple of NR (the convolution's weight gradient lays out channels
# padded to MR in blocks of NR: kernels/conv_slivers.py). Measured on each machine by
# ``python -m benchmarks.kernels --only gemm``.
TARGETS = {
    "avx512": {
        "gemm": {"float32": (12, 16), "float64": (12, 8)},
        "sliver": {"float32": (16, 16), "float64": (16, 8)},
    },
    "avx2": {
        "gemm": {"float32": (6, 16), "float64": (6, 8)},
        "sliver": {"float32": (8, 8), "float64": (8, 4)},
    },
    "portable": {
        "gemm": {"float32": (4, 8), "float64": (4, 4)},
        "sliver": {"float32": (8, 4), "float64": (4, 4)},
    },
}

TARGET = pathlib.Path(__file__).with_name("_microkernels.py")


def _tile(mr: int, nr: int) -> list[list[str]]:
    """The names of the MR x NR scalar variables that hold a tile of C."""
    return [[f"c{i}_{j}" for j in range(nr)] for i in range(mr)]


def _body(tile: list[list[str]], a_of, indent: str) -> list[str]:
    """One step of k: NR values of B, then for each row one value of A (``a_of(i)``, an index
    expression) times all of them, added into the tile."""
    nr = len(tile[0])
    lines = [f"{indent}b{j} = bp[pb + np.uint64({j})]" for j in range(nr)]
    for i, row in enumerate(tile):
        lines.append(f"{indent}a = ap[{a_of(i)}]")
        lines += [f"{indent}{c} += a * b{j}" for j, c in enumerate(row)]
    return lines


def _stores(tile: list[list[str]]) -> list[str]:
    """The tile written back to out, row-major."""
    nr = len(tile[0])
    return [
        f"    out[np.uint64({i * nr + j})] = {c}"
        for i, row in enumerate(tile)
        for j, c in enumerate(row)
    ]


def _source(name: str, mr: int, nr: int) -> str:
    tile = _tile(mr, nr)
    lines = [
        f"def {name}(ap, pa, bp, pb, kc, out, zero):",
        f'    """out[:{mr * nr}] = the {mr} x {nr} tile sum over k < kc of',
        f"    ap[pa + k*{mr} + i] * bp[pb + k*{nr} + j], row-major; indices are uint64 (no",
        '    negative-index wraparound to check, so the loads stay plain and contiguous)."""',
    ]
    lines += [f"    {c} = zero" for row in tile for c in row]
    lines.append("    for _ in range(kc):")
    lines += _body(tile, lambda i: f"pa + np.uint64({i})", "        ")
    lines.append(f"        pa += np.uint64({mr})")
    lines.append(f"        pb += np.uint64({nr})")
    return "\n".join(lines + _stores(tile)) + "\n"


def _strided_source(name: str, mr: int, nr: int) -> str:
    tile = _tile(mr, nr)
    lines = [
        f"def {name}(ap, pa, lda, run, jump, bp, pb, ldb, jump_b, blocks, out):",
        f'    """out[:{mr * nr}] += the {mr} x {nr} tile of A @ B, both operands read in place:',
        f"    A's {mr} rows lda apart, k contiguous for ``run`` steps, then ``jump`` on to the",
        f"    next block; B's rows ldb apart, {nr} contiguous columns, ``jump_b`` on after each",
        "    block; blocks * run steps in all.",
        '    Indices are uint64, as in the packed microkernels."""',
    ]
    lines += [
        f"    {c} = out[np.uint64({i * nr + j})]"
        for i, row in enumerate(tile)
        for j, c in enumerate(row)
    ]
    lines += [f"    r{i} = np.uint64({i}) * lda" for i in range(1, mr)]
    lines.append("    for _ in range(blocks):")
    lines.append("        for _ in range(run):")
    lines += _body(tile, lambda i: "pa" if i == 0 else f"pa + r{i}", "            ")
    lines.append("            pa += np.uint64(1)")
    lines.append("            pb += ldb")
    lines.append("        pa += jump")
    lines.append("        pb += jump_b")
    return "\n".join(lines + _stores(tile)) + "\n"


def _check(targets) -> None:
    for target, tiles in targets.items():
        for dtype, (mr, nr) in tiles["sliver"].items():
            if mr % nr:
                raise ValueError(f"{target} {dtype}: sliver MR {mr} is not a multiple of NR {nr}")


def render() -> str:
    _check(TARGETS)
    parts = [
        '"""GEMM microkernels: GENERATED by kernels/gen_microkernels.py, do not edit by hand."""\n',
        "import numpy as np\n",
        "from kernels._config import slp_kernel\n",
    ]
    for i, (target, tiles) in enumerate(TARGETS.items()):
        gap = "\n" if i else ""  # two blank lines between sections, as between functions
        parts.append(f"{gap}# -- {target} " + "-" * (93 - len(target)) + "\n")
        for dtype, (mr, nr) in tiles["gemm"].items():
            name = f"micro_{dtype}_{target}"
            parts.append(f"\n@slp_kernel\n{_source(name, mr, nr)}")
        for dtype, (mr, nr) in tiles["sliver"].items():
            name = f"micro_sliver_{dtype}_{target}"
            parts.append(f"\n@slp_kernel\n{_source(name, mr, nr)}")
        for dtype, (mr, nr) in tiles["sliver"].items():
            name = f"micro_strided_{dtype}_{target}"
            parts.append(f"\n@slp_kernel\n{_strided_source(name, mr, nr)}")
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python -m kernels.gen_microkernels")
            return 1
        return 0
    tmp = TARGET.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
