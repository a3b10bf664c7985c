"""The layering the design draws, checked on the source: imports only go down,

    benchmarks -> models -> minigrad -> minigrad/backend.py -> kernels

``minigrad/backend.py`` is the one module that imports ``kernels``; each NumPy twin imports
only NumPy, SciPy and ``kernels.checks`` (which imports no Numba), so the twins run where
Numba is not installed; and ``kernels.FAMILIES`` is the one list of kernel families.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import FAMILIES

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["benchmarks", "models", "minigrad", "kernels"]  # top to bottom


def imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (functions included), as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("package", LAYERS)
def test_imports_only_go_down(package):
    above = set(LAYERS[: LAYERS.index(package)])
    upward = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(package)
        for name in imports(path)
        if top(name) in above
    ]
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_only_the_backend_imports_kernels():
    others = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in ("benchmarks", "models", "minigrad")
        for path in sources(package)
        if path != ROOT / "minigrad" / "backend.py"
        for name in imports(path)
        if top(name) == "kernels"
    ]
    assert not others, "kernels imported outside minigrad/backend.py:\n" + "\n".join(others)


def test_twins_import_only_numpy_scipy_and_the_shared_checks():
    allowed = {"__future__", "numpy", "scipy", "kernels", "kernels.checks"}
    for path in sources("kernels/twins") + [ROOT / "kernels" / "checks.py"]:
        extra = {
            n
            for n in imports(path)
            if n not in allowed and top(n) not in ("__future__", "numpy", "scipy")
        }
        assert not extra, f"{path.relative_to(ROOT)} imports {sorted(extra)}"


def test_twins_run_without_numba():
    # a finder that refuses numba, as on a machine where it is not installed
    code = (
        "import sys, importlib.abc\n"
        "class NoNumba(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('numba', 'llvmlite'):\n"
        "            raise ImportError(f'{name} is not installed')\n"
        "sys.meta_path.insert(0, NoNumba())\n"
        "import numpy as np\n"
        "from kernels import FAMILIES\n"
        "for f in FAMILIES:\n"
        "    __import__(f'kernels.twins.{f}')\n"
        "from kernels.twins import conv, softmax\n"
        "x = np.ones((1, 2, 4, 4), np.float32)\n"
        "print(conv.conv2d_forward(x, np.ones((3, 2, 3, 3), np.float32)).shape,\n"
        "      softmax.softmax_forward(np.zeros((2, 4), np.float32), 1).sum())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["(1, 3, 2, 2) 2.0", "[]"], out.stdout


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_has_a_kernel_module_and_a_twin_with_the_same_functions(family):
    kernel = importlib.import_module(f"kernels.{family}")
    twin = importlib.import_module(f"kernels.twins.{family}")

    def public(module):
        return {
            name: fn
            for name, fn in vars(module).items()
            if inspect.isfunction(fn) and not name.startswith("_")
        }

    def parameters(fn):  # names, kinds and defaults; annotations may differ
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    kernels, twins = public(kernel), public(twin)
    missing = sorted(set(twins) - set(kernels))
    assert not missing, f"kernels/twins/{family}.py has {missing}, kernels/{family}.py does not"
    for name, fn in twins.items():
        assert parameters(fn) == parameters(kernels[name]), (
            f"{family}.{name}: {inspect.signature(fn)} != {inspect.signature(kernels[name])}"
        )


def test_the_backend_serves_every_family():
    from minigrad import backend

    for family in FAMILIES:
        assert getattr(backend, family) is backend.implementation(family)
    with pytest.raises(ValueError, match="unknown kernel family 'convolution'"):
        backend.implementation("convolution")


def test_the_command_and_its_benchmarks_work_from_an_installed_copy(tmp_path):
    # a real (non-editable) install of a copy of the project into a folder, run from elsewhere
    source = tmp_path / "source"
    for name in ("minigrad", "kernels", "models", "benchmarks"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "benchmarks" / "overhead.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(target)}

    def command(*args):
        return subprocess.run(
            [sys.executable, "-m", "models", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    out = command("bench", "nonexistent")
    assert out.returncode == 2 and "choose from overhead" in out.stderr, out.stderr
    out = command("recipes")
    assert out.returncode == 0 and "digits-cnn" in out.stdout, out.stderr[-2000:]
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import benchmarks.overhead, models.cli; print(models.cli.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith(str(target)), out.stdout
