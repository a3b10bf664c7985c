"""The suite's other configurations, run as subprocesses from the one `make test`:

- MINIGRAD_KERNELS=numpy: the op tests pass on the NumPy twins alone;
- NUMBA_DISABLE_JIT=1: a small selection of kernels runs as plain Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(paths: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_op_tests_pass_on_the_numpy_twins():
    result = run_pytest(
        [
            "tests/minigrad/test_op_registry.py",
            "tests/minigrad/test_functional.py",
            "tests/minigrad/nn/test_layers_gradcheck.py",
        ],
        MINIGRAD_KERNELS="numpy",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_backend_reports_the_numpy_twins_when_asked():
    code = "import minigrad.backend as b; print(b.KERNELS, b.conv.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MINIGRAD_KERNELS": "numpy"},
        timeout=300,
    )
    assert out.stdout.split() == ["numpy", "kernels.twins.conv"], out.stderr


def test_kernels_run_without_jit():
    result = run_pytest(["tests/kernels/test_small_selection.py"], NUMBA_DISABLE_JIT="1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "8 passed" in result.stdout
