"""Generated kernels of fused elementwise chains (kernels/fused.py): forward and backward
against NumPy on full, row and scalar inputs, clear errors, and a second process that finds
the compiled kernels in Numba's cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernels.fused import Chain, FusedKernels

ROOT = Path(__file__).resolve().parents[2]

# out = tanh(x * w + b): x full, w scalar, b row; and every gradient
CHAIN = Chain(
    kinds=("full", "scalar", "row"),
    forward=(("t0", "a0 * a1"), ("t1", "t0 + a2"), ("t2", "tanh_fast(t1)")),
    result="t2",
    backward=(
        ("d2", "gr[j]"),
        ("d1", "d2 * (1.0 - t2 * t2)"),
        ("d0", "d1"),
        ("e0", "d0 * a1"),
        ("e1", "d0 * a0"),
        ("e2", "d1"),
    ),
    grads=("e0", "e1", "e2"),
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 5), (1, 5)])
def test_forward_and_backward_match_numpy(dtype, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = np.asarray(0.7, dtype)
    b = rng.standard_normal(shape[-1]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    k = FusedKernels(CHAIN, (x.shape, w.shape, b.shape), shape, dtype)
    y = np.tanh(x * w + b)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(k.forward(x, w, b), y, atol=tol)
    dz = g * (1 - y * y)
    gx, gw, gb = k.backward(g, x, w, b)
    np.testing.assert_allclose(gx, dz * w, atol=tol)
    np.testing.assert_allclose(gw, np.sum(dz * x), rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(gb, dz.reshape(-1, shape[-1]).sum(0), rtol=tol * 10, atol=tol)
    assert gx.dtype == gw.dtype == gb.dtype == dtype


def test_only_the_needed_gradients_are_computed():
    chain = Chain(CHAIN.kinds, CHAIN.forward, CHAIN.result, CHAIN.backward, ("e0", None, None))
    x, w, b = np.ones((3, 4), np.float32), np.asarray(2.0, np.float32), np.zeros(4, np.float32)
    k = FusedKernels(chain, (x.shape, w.shape, b.shape), x.shape, np.float32)
    gx, gw, gb = k.backward(np.ones_like(x), x, w, b)
    assert gw is None and gb is None
    np.testing.assert_allclose(gx, 2 * (1 - np.tanh(2.0) ** 2), rtol=1e-6)


def test_bad_inputs_name_the_input_and_the_shape():
    x, w, b = np.ones((3, 4), np.float32), np.asarray(2.0, np.float32), np.zeros(4, np.float32)
    k = FusedKernels(CHAIN, (x.shape, w.shape, b.shape), x.shape, np.float32)
    with pytest.raises(ValueError, match=r"input 2 has shape \(5,\)"):
        k.forward(x, w, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="input 0 .* float64"):
        k.forward(x.astype(np.float64), w, b)
    with pytest.raises(ValueError, match="gradient of shape"):
        k.backward(np.ones((4, 3), np.float32), x, w, b)
    with pytest.raises(ValueError, match="bad chain"):
        FusedKernels(Chain(("diagonal",), (), "a0", (), (None,)), ((3,),), (3,), np.float32)


_CHILD = """
import numpy as np
from tests.kernels.test_fused import CHAIN
from kernels.fused import FusedKernels
x, w, b = np.ones((3, 4), np.float32), np.asarray(2.0, np.float32), np.zeros(4, np.float32)
k = FusedKernels(CHAIN, (x.shape, w.shape, b.shape), x.shape, np.float32)
k.forward(x, w, b)
k.backward(x, x, w, b)
print("hits", sum(k._forward.stats.cache_hits.values()), sum(k._backward.stats.cache_hits.values()))
"""


def test_a_second_process_loads_the_kernels_from_the_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))

    def child() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split("hits")[-1].split()

    assert child() == ["0", "0"]  # cold: compiled and written
    assert list(tmp_path.rglob("fused/chain_*.py"))  # the source, named by its hash
    assert child() == ["1", "1"]  # warm: both kernels loaded, nothing compiled
