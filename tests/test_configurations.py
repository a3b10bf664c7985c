"""The suite's other configurations, run as subprocesses from the one `make test`:

- MINIGRAD_KERNELS=numpy: the op tests (forward, first and second derivatives, forward mode)
  pass on the NumPy twins alone;
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
            "tests/minigrad/test_corners.py",
            "tests/minigrad/test_second_order_kernels.py",
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
    # the comparison of parallel and serial builds skips: without JIT there are no builds
    assert "7 passed, 1 skipped" in result.stdout


SETTINGS = ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "MINIGRAD_PROCESS_SETTINGS")


def _environment_after_import(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


REPORT = (
    "import os, sys; import minigrad; "
    "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), os.environ.get('OMP_WAIT_POLICY'), "
    "sorted(minigrad.process.APPLIED), 'numpy' in sys.modules)"
)


def test_process_settings_are_made_before_numpy_loads():
    # minigrad sets OPENBLAS_THREAD_TIMEOUT before it imports NumPy (which loads OpenBLAS,
    # which reads it once) and OMP_WAIT_POLICY before Numba starts OpenMP
    assert _environment_after_import(REPORT) == (
        "16 PASSIVE ['OMP_WAIT_POLICY', 'OPENBLAS_THREAD_TIMEOUT', 'malloc'] True"
    )
    first = "import os; import benchmarks; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    assert _environment_after_import(first) == "16"


def test_process_settings_keep_what_the_user_set():
    out = _environment_after_import(REPORT, OPENBLAS_THREAD_TIMEOUT="20", OMP_WAIT_POLICY="ACTIVE")
    assert out == "20 ACTIVE ['malloc'] True"
    out = _environment_after_import(REPORT, MINIGRAD_MALLOC="default")
    assert out == "16 PASSIVE ['OMP_WAIT_POLICY', 'OPENBLAS_THREAD_TIMEOUT'] True"


def test_one_variable_turns_every_process_setting_off():
    assert _environment_after_import(REPORT, MINIGRAD_PROCESS_SETTINGS="off") == "None None [] True"
