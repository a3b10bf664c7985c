"""The vector-ISA targets (kernels/isa.py): how one is chosen, that its machine code uses the
registers it was designed for, and that every target this CPU can run matches the NumPy twins.

The main test run checks the kernels under this CPU's own target. Each narrower target runs
the tile-dependent twin tests again in a process of its own (``MINIGRAD_ISA``), since the
target is fixed at import."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import isa

ROOT = Path(__file__).resolve().parents[2]
HOST = isa.host_features()
RUNNABLE = [t for t in isa.TARGETS if not isa.missing(t, HOST)]
X86 = platform.machine().lower() in ("x86_64", "amd64")

AVX512_HOST = {f: True for f in isa.NEEDS["avx512"] + ("avx2", "avx", "sse2")}
AVX2_HOST = {"avx2": True, "fma": True, "avx": True, "avx512f": False}
OLD_HOST = {"sse2": True, "avx": True}  # AVX without AVX2 and FMA (Sandy Bridge)


def test_the_widest_target_the_cpu_runs_is_chosen():
    target, name, features = isa.choose(None, AVX512_HOST, None, None, x86=True)
    assert target == "avx512" and name is None
    assert features.endswith(",-prefer-256-bit") and "+avx512f" in features
    assert isa.choose(None, AVX2_HOST, None, None, x86=True) == ("avx2", None, None)
    assert isa.choose(None, OLD_HOST, None, None, x86=True) == ("portable", None, None)
    assert isa.choose(None, {}, None, None, x86=False) == ("portable", None, None)


def test_a_narrower_target_compiles_for_that_isa():
    assert isa.choose("avx2", AVX512_HOST, None, None, x86=True) == ("avx2", "haswell", "")
    assert isa.choose("portable", AVX2_HOST, None, None, x86=True) == ("portable", "x86-64", "")
    assert isa.choose("portable", {"neon": True}, None, None, x86=False) == (
        "portable",
        None,
        None,
    )


def test_bad_requests_are_refused_by_name():
    with pytest.raises(isa.ISAError, match=r"MINIGRAD_ISA='sse9': expected one of avx512, avx2"):
        isa.choose("sse9", AVX512_HOST, None, None, x86=True)
    with pytest.raises(isa.ISAError, match=r"avx512: this CPU lacks avx512f, avx512bw"):
        isa.choose("avx512", AVX2_HOST, None, None, x86=True)
    with pytest.raises(isa.ISAError, match=r"avx2: this CPU lacks avx2, fma .*can run portable"):
        isa.choose("avx2", OLD_HOST, None, None, x86=True)


def test_numbas_own_settings_are_respected_and_must_agree():
    given = "+avx2,+fma,-avx512f"
    assert isa.choose(None, AVX512_HOST, None, given, x86=True) == ("avx2", None, given)
    assert isa.choose("avx2", AVX512_HOST, "znver3", given, x86=True)[0] == "avx2"
    # a CPU name alone: Numba adds the host's features
    assert isa.choose(None, AVX512_HOST, "znver4", None, x86=True)[0] == "avx512"
    with pytest.raises(isa.ISAError, match=r"MINIGRAD_ISA=avx512 disagrees with NUMBA_CPU_"):
        isa.choose("avx512", AVX512_HOST, None, given, x86=True)


def _env(target: str, **extra) -> dict:
    """This process's environment for a child built for ``target`` (no NUMBA_CPU_* of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    return {**env, "MINIGRAD_ISA": target, **extra}


def _run(target: str, *args: str, timeout: int = 900, **env_extra) -> subprocess.CompletedProcess:
    env = _env(target, **env_extra)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


ASM = """
import re
from numba import types
from kernels import isa, microkernels
f32 = types.Array(types.float32, 1, "C")
sig = (f32, types.uint64, f32, types.uint64, types.int64, f32, types.float32)
microkernels.micro_float32.compile(sig)
asm = microkernels.micro_float32.inspect_asm(sig)
print(isa.TARGET, len(re.findall("zmm", asm)), len(re.findall("ymm", asm)),
      len(re.findall("v?fmadd", asm)))
"""


INTEL = """
import llvmlite.binding as ll
ll.get_host_cpu_name = lambda: "skylake-avx512"
"""


@pytest.mark.skipif(not X86, reason="reads x86 assembly; other CPUs have only the portable target")
@pytest.mark.parametrize(
    "target", RUNNABLE + (["avx512-tuned-for-intel"] if "avx512" in RUNNABLE else [])
)
def test_the_microkernel_uses_the_targets_vector_registers(target, tmp_path):
    """The GEMM microkernel's assembly: zmm registers on avx512 (LLVM's preference for 256-bit
    vectors on Intel turned off), ymm and FMA on avx2, neither on portable (SSE2). Compiled
    into an empty cache, since code loaded from the cache has no assembly to read."""
    script = ASM
    if target == "avx512-tuned-for-intel":  # as on a Skylake-SP, where LLVM prefers 256 bits
        script = INTEL + ASM
    done = _run(target.split("-")[0], "-c", script, NUMBA_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    name, zmm, ymm, fma = done.stdout.split()
    zmm, ymm, fma = int(zmm), int(ymm), int(fma)
    assert name == target.split("-")[0]
    if target.startswith("avx512"):
        assert zmm > 0 and zmm > ymm, done.stdout
    elif target == "avx2":
        assert zmm == 0 and ymm > 0 and fma > 0, done.stdout
    else:
        assert zmm == 0 and ymm == 0, done.stdout


# The twin tests whose kernels depend on the tile shapes: the GEMM, the sliver products, the
# convolution on batch slivers (Winograd too) and the recurrent kernels.
TILE_TESTS = [
    "tests/kernels/test_kernels.py::test_gemm_matches_twin",
    "tests/kernels/test_kernels.py::test_gemm_crosses_every_block_edge",
    "tests/kernels/test_kernels.py::test_sliver_product_matches_numpy",
    "tests/kernels/test_kernels.py::test_blocked_product_matches_numpy",
    "tests/kernels/test_kernels.py::test_winograd_conv_matches_twin",
    "tests/kernels/test_conv_slivers.py",
    "tests/kernels/test_rnn_kernels.py",
]


NARROWER = [t for t in RUNNABLE if t != isa.TARGET]


@pytest.mark.skipif(
    not NARROWER, reason=f"this CPU runs only the {isa.TARGET} target, which the main run tests"
)
def test_every_target_this_cpu_runs_matches_the_twins():
    """One pytest process per narrower target, side by side (most of their time is Numba
    compiling that target's kernels)."""
    runs = {
        target: subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *TILE_TESTS],
            cwd=ROOT,
            env=_env(target),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for target in NARROWER
    }
    for target, run in runs.items():
        out, _ = run.communicate(timeout=1200)
        assert run.returncode == 0, f"{target}:\n{out[-4000:]}"
        assert re.search(r"\d+ passed", out) and " failed" not in out, f"{target}:\n{out[-4000:]}"


def test_an_unknown_target_stops_the_import_with_its_name():
    done = _run("avx1024", "-c", "import minigrad")
    assert done.returncode != 0
    assert "MINIGRAD_ISA='avx1024': expected one of avx512, avx2, portable" in done.stderr


def test_each_target_and_tile_set_has_its_own_numba_cache(tmp_path):
    """A kernel cached with one tile set must never run with another (kernels/_config.py)."""
    script = "import numba, kernels._config; print(numba.config.CACHE_DIR)"
    folders = {}
    for target in RUNNABLE:
        done = _run(target, "-c", script, NUMBA_CACHE_DIR=str(tmp_path))
        assert done.returncode == 0, done.stderr[-2000:]
        folders[target] = done.stdout.strip()
    assert len(set(folders.values())) == len(RUNNABLE)
    for target, folder in folders.items():
        assert folder.startswith(str(tmp_path)) and f"/{target}-" in folder
