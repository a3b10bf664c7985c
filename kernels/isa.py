"""Which vector instruction set the kernels are built for: chosen once, at import, from the CPU.

The GEMM, LSTM and convolution kernels are built on register-tile microkernels
(kernels/_microkernels.py) whose best tile depends on how many vector registers the CPU has
and how wide they are. kernels/gen_microkernels.py writes one set of tiles per target:

- ``avx512``: 32 registers of 512 bits (Intel Skylake-SP and later, AMD Zen 4 and later);
- ``avx2``: 16 registers of 256 bits, with FMA (Intel Haswell and later, AMD Zen 1-3);
- ``portable``: small tiles that fit 16 registers of 128 bits (SSE2, ARM NEON, anything else).

The target is the widest one the CPU supports; ``MINIGRAD_ISA=avx2`` (or ``portable``) picks a
narrower one, which is how the tests check every target this machine can run against the NumPy
twins. The choice also sets the CPU and features Numba compiles for (``numba.config.CPU_NAME``
and ``CPU_FEATURES``), for three reasons:

1. A narrower target is compiled for that ISA (``haswell`` for avx2, ``x86-64`` for portable on
   an x86 CPU), so that its machine code, not only its tile shapes, is what it would be on
   such a CPU.
2. On AVX-512, LLVM's tuning for Intel CPUs prefers 256-bit vectors (``prefer-256-bit``), and
   its SLP vectorizer then builds each 16-float row of a tile from two ymm registers, twice
   the instructions the tile was designed for. The avx512 target turns that preference off,
   so the microkernels use zmm registers on Intel as on AMD (tests/kernels/test_isa.py reads
   the generated assembly).
3. Numba keys its cache on the CPU name and features, so the machine code of each target is
   cached apart: a kernel compiled with one target's tiles is never loaded with another's.

If ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` is set, those are respected and the target is
read from them; ``MINIGRAD_ISA`` must then agree. Plain Python (no Numba) at import time of
this module except for llvmlite's feature query.
"""

from __future__ import annotations

import os
import platform

import llvmlite.binding as ll
from numba.core import config

TARGETS = ("avx512", "avx2", "portable")

# What each target needs from the CPU (LLVM's feature names).
NEEDS = {
    "avx512": ("avx512f", "avx512bw", "avx512dq", "avx512vl", "fma"),
    "avx2": ("avx2", "fma"),
    "portable": (),
}

# The width of a vector register on each target, in bits (portable: the narrowest that SSE2
# and NEON share).
VECTOR_BITS = {"avx512": 512, "avx2": 256, "portable": 128}

# What Numba compiles for when a target is narrower than the CPU (x86 only): (CPU name,
# features); an empty feature string means "the CPU name's own features".
_NARROWER_X86 = {"avx2": ("haswell", ""), "portable": ("x86-64", "")}


class ISAError(ValueError):
    """MINIGRAD_ISA names an unknown target, one this CPU cannot run, or one that disagrees
    with NUMBA_CPU_NAME / NUMBA_CPU_FEATURES."""


def parse_features(text: str) -> dict[str, bool]:
    """LLVM's feature string ("+avx2,-avx512f,...") as {name: enabled}."""
    out = {}
    for item in text.split(","):
        item = item.strip()
        if item[:1] in "+-" and len(item) > 1:
            out[item[1:]] = item[0] == "+"
    return out


def host_features() -> dict[str, bool]:
    """The host CPU's features, as LLVM reports them ({} where it cannot)."""
    try:
        return dict(ll.get_host_cpu_features())
    except RuntimeError:
        return {}


def missing(target: str, features: dict[str, bool]) -> list[str]:
    """The features ``target`` needs that ``features`` lacks."""
    return [f for f in NEEDS[target] if not features.get(f, False)]


def widest(features: dict[str, bool]) -> str:
    """The widest target these features can run."""
    return next(t for t in TARGETS if not missing(t, features))


def cpu_model() -> str | None:
    """The CPU's marketing name: /proc/cpuinfo on Linux, sysctl on macOS; None if unknown."""
    import subprocess
    import sys

    try:
        if sys.platform == "darwin":
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            return out.stdout.strip() or None
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
    return None


def _x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _codegen_started() -> bool:
    """Whether Numba's CPU code generator exists already (it reads the CPU name and features
    once, when it is created by the first compilation or cache load)."""
    from numba.core.registry import cpu_target

    return "_toplevel_target_context" in cpu_target.__dict__


def choose(
    requested: str | None,
    host: dict[str, bool],
    cpu_name: str | None,
    cpu_features: str | None,
    x86: bool,
) -> tuple[str, str | None, str | None]:
    """(target, CPU name, features) for Numba: pure, so that every case can be tested.

    ``requested`` is MINIGRAD_ISA (or None), ``host`` the CPU's features, ``cpu_name`` and
    ``cpu_features`` what NUMBA_CPU_NAME / NUMBA_CPU_FEATURES say (None when unset)."""
    if requested is not None and requested not in TARGETS:
        raise ISAError(f"MINIGRAD_ISA={requested!r}: expected one of {', '.join(TARGETS)}")
    if cpu_name is not None or cpu_features is not None:  # the user's own Numba settings
        features = host if cpu_features is None else parse_features(cpu_features)
        if cpu_features == "" and cpu_name is not None:  # the CPU name's features: unknown
            features = {}
        target = widest(features)
        if requested is not None and requested != target:
            raise ISAError(
                f"MINIGRAD_ISA={requested} disagrees with NUMBA_CPU_NAME={cpu_name!r} / "
                f"NUMBA_CPU_FEATURES={cpu_features!r}, which give {target}: unset one of them"
            )
        return target, cpu_name, cpu_features
    best = widest(host)
    target = best if requested is None else requested
    lacking = missing(target, host)
    if lacking:
        raise ISAError(
            f"MINIGRAD_ISA={target}: this CPU lacks {', '.join(lacking)} (it can run "
            f"{', '.join(t for t in TARGETS if not missing(t, host))})"
        )
    if target == best:
        if target == "avx512":  # vectors of 512 bits on Intel too (see the module's text)
            flat = ",".join(("+" if on else "-") + name for name, on in sorted(host.items()))
            return target, None, flat + ",-prefer-256-bit"
        return target, None, None  # Numba's own choice: the host
    if x86:
        name, features = _NARROWER_X86[target]
        return target, name, features
    return target, None, None  # ARM and others: only the portable target exists


def _configure() -> str:
    requested = os.environ.get("MINIGRAD_ISA", "").strip().lower() or None
    target, name, features = choose(
        requested, host_features(), config.CPU_NAME, config.CPU_FEATURES, _x86()
    )
    if (name, features) != (config.CPU_NAME, config.CPU_FEATURES):
        if _codegen_started():
            raise ISAError(
                f"minigrad's kernels for {target} need Numba to compile for "
                f"{name or 'the host CPU'}, but Numba compiled something before minigrad was "
                "imported: import minigrad first, or set NUMBA_CPU_NAME / NUMBA_CPU_FEATURES"
            )
        config.CPU_NAME, config.CPU_FEATURES = name, features
    return target


TARGET = _configure()


def describe() -> dict:
    """The target and what Numba compiles for: for benchmark reports."""
    return {
        "target": TARGET,
        "vector_bits": VECTOR_BITS[TARGET],
        "numba_cpu": config.CPU_NAME or ll.get_host_cpu_name(),
        "requested": os.environ.get("MINIGRAD_ISA") or None,
    }
