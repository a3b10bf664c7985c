"""Generated kernels of fused elementwise chains (kernels/fused.py): forward and backward
against NumPy on full, row and scalar inputs in float32 and float64 (row and scalar
gradients summed over the rows, in float64), clear errors for bad inputs, and a second
process that finds the generated file and its compiled kernels in Numba's cache.

The references are computed in float64 from the same inputs. Tolerances: float64 kernels
differ from NumPy by rounding order only; float32 kernels also round each operation to
float32, and their tanh, sigmoid and erf are kernels/_math.py's approximations (within 4e-7
absolute).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernels.fused import Chain, FusedKernels, kernel_source

ROOT = Path(__file__).resolve().parents[2]

TOL = {np.float32: 2e-6, np.float64: 1e-12}  # absolute, on values of order 1

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


def _tanh_chain(x, w, b, g):
    y = np.tanh(x * w + b)
    dz = g * (1 - y * y)
    return y, (dz * w, np.sum(dz * x), dz)


# out = relu(x + b) * m + sigmoid(x): x full, b row, m full
RELU_CHAIN = Chain(
    kinds=("full", "row", "full"),
    forward=(
        ("t0", "a0 + a1"),
        ("t1", "(t0 if not t0 <= 0.0 else 0.0)"),
        ("t2", "t1 * a2"),
        ("t3", "sigmoid_fast(a0)"),
        ("t4", "t2 + t3"),
    ),
    result="t4",
    backward=(
        ("d4", "gr[j]"),
        ("d2", "d4"),
        ("d3", "d4"),
        ("d1", "d2 * a2"),
        ("d0", "(d1 if t0 > 0.0 else 0.0)"),
        ("e0", "d0 + d3 * t3 * (1.0 - t3)"),
        ("e1", "d0"),
        ("e2", "d2 * t1"),
    ),
    grads=("e0", "e1", "e2"),
)


def _relu_chain(x, b, m, g):
    z = x + b
    s = 1 / (1 + np.exp(-x))
    y = np.maximum(z, 0) * m + s
    dz = np.where(z > 0, g * m, 0)
    return y, (dz + g * s * (1 - s), dz, g * np.maximum(z, 0))


# out = exp(x) / d + erf(x) * c: x full, d row (away from 0), c scalar
DIV_CHAIN = Chain(
    kinds=("full", "row", "scalar"),
    forward=(
        ("t0", "math.exp(a0)"),
        ("t1", "t0 / a1"),
        ("t2", "erf_fast(a0)"),
        ("t3", "t2 * a2"),
        ("t4", "t1 + t3"),
    ),
    result="t4",
    backward=(
        ("d4", "gr[j]"),
        ("d1", "d4"),
        ("d3", "d4"),
        ("d0", "d1 / a1"),
        ("d2", "d3 * a2"),
        ("e0", "d0 * t0 + d2 * 1.1283791670955126 * math.exp(-a0 * a0)"),
        ("e1", "-d1 * t1 / a1"),
        ("e2", "d3 * t2"),
    ),
    grads=("e0", "e1", "e2"),
)


def _div_chain(x, d, c, g):
    erf = np.vectorize(math.erf, otypes=[np.float64])(x)
    y = np.exp(x) / d + erf * c
    de = g * 2 / np.sqrt(np.pi) * np.exp(-x * x)
    return y, (g * np.exp(x) / d + de * c, -g * np.exp(x) / (d * d), np.sum(g * erf))


def _inputs(kinds, shape, dtype, rng, positive_rows=False):
    arrays = []
    for kind in kinds:
        if kind == "full":
            a = rng.uniform(-2, 2, shape)
        elif kind == "row":
            a = rng.uniform(0.5, 2.0, shape[-1:]) if positive_rows else rng.normal(size=shape[-1:])
        else:
            a = np.asarray(rng.uniform(0.5, 1.5))
        arrays.append(a.astype(dtype))
    return arrays


def _reduce_like(grad, shape):
    """A reference gradient (of the output's shape) summed to an input's shape."""
    grad = np.asarray(grad, np.float64)
    if grad.shape == shape:
        return grad
    if shape == ():
        return grad.sum()
    return grad.reshape(-1, *shape).sum(0)


CHAINS = {
    "tanh(x*w+b)": (CHAIN, _tanh_chain, False),
    "relu(x+b)*m+sigmoid(x)": (RELU_CHAIN, _relu_chain, False),
    "exp(x)/d+erf(x)*c": (DIV_CHAIN, _div_chain, True),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 5), (1, 5), (40, 3), (0, 5), (1,)], ids=str)
@pytest.mark.parametrize("name", list(CHAINS))
def test_forward_and_backward_match_numpy(name, shape, dtype):
    chain, reference, positive_rows = CHAINS[name]
    rng = np.random.default_rng(0)
    arrays = _inputs(chain.kinds, shape, dtype, rng, positive_rows)
    g = rng.uniform(-1, 1, shape).astype(dtype)
    k = FusedKernels(chain, tuple(a.shape for a in arrays), shape, dtype)
    want, want_grads = reference(*[a.astype(np.float64) for a in arrays], g.astype(np.float64))
    got = k.forward(*arrays)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])
    grads = k.backward(g, *arrays)
    assert len(grads) == len(arrays)
    for i, (a, gx, w) in enumerate(zip(arrays, grads, want_grads)):
        w = _reduce_like(np.broadcast_to(w, shape) if np.ndim(w) else w, a.shape)
        assert gx.shape == a.shape and gx.dtype == dtype, i
        # a summed gradient: each term rounds once, the sum itself is taken in float64
        terms = max(1, int(np.prod(shape)) // max(1, a.size))
        np.testing.assert_allclose(
            gx, w, rtol=TOL[dtype], atol=TOL[dtype] * terms * 4, err_msg=f"gradient {i}"
        )


def test_broadcast_row_sums_accumulate_in_float64():
    """The row gradient of x + b over 10001 rows: 1e4 then 10000 times 1e-4. Summed in
    float32 the small terms vanish (1e4 + 1e-4 == 1e4); summed in float64 they add to 1."""
    chain = Chain(("full", "row"), (("t0", "a0 + a1"),), "t0", (("d", "gr[j]"),), (None, "d"))
    rows = 10001
    k = FusedKernels(chain, ((rows, 2), (2,)), (rows, 2), np.float32)
    g = np.full((rows, 2), 1e-4, np.float32)
    g[0] = 1e4
    x, b = np.zeros((rows, 2), np.float32), np.zeros(2, np.float32)
    gx, gb = k.backward(g, x, b)
    assert gx is None
    want = np.float32(np.sum(g.astype(np.float64), axis=0))
    np.testing.assert_array_equal(gb, want)
    assert gb[0] > 10000.5


def test_a_row_input_of_several_trailing_dims_and_a_leading_one():
    chain = Chain(
        ("full", "row", "row"),
        (("t0", "a0 * a1"), ("t1", "t0 - a2")),
        "t1",
        (("d", "gr[j]"), ("e0", "d * a1"), ("e1", "d * a0"), ("e2", "-d")),
        ("e0", "e1", "e2"),
    )
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 5))
    w, c = rng.normal(size=(4, 5)), rng.normal(size=(1, 4, 5))
    g = rng.normal(size=(2, 4, 5))
    k = FusedKernels(chain, (x.shape, w.shape, c.shape), x.shape, np.float64)
    np.testing.assert_allclose(k.forward(x, w, c), x * w - c, rtol=1e-14)
    gx, gw, gc = k.backward(g, x, w, c)
    np.testing.assert_allclose(gx, g * w, rtol=1e-14)
    np.testing.assert_allclose(gw, (g * x).sum(0), rtol=1e-12)
    np.testing.assert_allclose(gc, -g.sum(0, keepdims=True), rtol=1e-12)
    assert gc.shape == (1, 4, 5)


def test_non_contiguous_inputs_are_read_as_their_values():
    x = np.arange(20, dtype=np.float32).reshape(4, 5).T  # (5, 4), not C-contiguous
    m = np.asfortranarray(np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4))
    b = np.linspace(-1, 1, 8, dtype=np.float32)[::2]  # strided (4,)
    k = FusedKernels(RELU_CHAIN, ((5, 4), (4,), (5, 4)), (5, 4), np.float32)
    want, _ = _relu_chain(x.astype(np.float64), b, m, np.ones((5, 4)))
    np.testing.assert_allclose(k.forward(x, b, m), want, rtol=2e-6, atol=2e-6)
    g = np.ones((4, 5), np.float32).T
    gx, gb, gm = k.backward(g, x, b, m)
    _, (wx, wb, wm) = _relu_chain(x.astype(np.float64), b, m, np.ones((5, 4)))
    np.testing.assert_allclose(gb, wb.sum(0), rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(gm, wm, rtol=2e-6, atol=2e-6)


def test_only_the_needed_gradients_are_computed():
    chain = Chain(CHAIN.kinds, CHAIN.forward, CHAIN.result, CHAIN.backward, ("e0", None, None))
    x, w, b = np.ones((3, 4), np.float32), np.asarray(2.0, np.float32), np.zeros(4, np.float32)
    k = FusedKernels(chain, (x.shape, w.shape, b.shape), x.shape, np.float32)
    gx, gw, gb = k.backward(np.ones_like(x), x, w, b)
    assert gw is None and gb is None
    np.testing.assert_allclose(gx, 2 * (1 - np.tanh(2.0) ** 2), rtol=1e-6)
    assert "gx1" not in k.source and "gx2" not in k.source


def test_the_source_depends_on_the_dtype_only_through_its_scalar_type():
    s32, s64 = kernel_source(CHAIN, np.float32), kernel_source(CHAIN, np.float64)
    assert s32 == kernel_source(CHAIN, np.float32)  # deterministic: one file per chain
    assert "F = np.float32" in s32 and "F = np.float64" in s64
    assert s32.replace("float32", "float64") == s64
    assert "F(1.0)" in s32  # literals typed: no float64 detour in a float32 kernel


def test_bad_inputs_name_the_input_and_the_shape():
    x, w, b = np.ones((3, 4), np.float32), np.asarray(2.0, np.float32), np.zeros(4, np.float32)
    k = FusedKernels(CHAIN, (x.shape, w.shape, b.shape), x.shape, np.float32)
    with pytest.raises(ValueError, match=r"input 2 has shape \(5,\)"):
        k.forward(x, w, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"input 2 has shape \(1, 4\)"):
        k.forward(x, w, b.reshape(1, 4))
    with pytest.raises(ValueError, match=r"input 0 has shape \(3, 4\) and dtype float64"):
        k.forward(x.astype(np.float64), w, b)
    with pytest.raises(ValueError, match=r"input 1 has shape \(1,\)"):
        k.backward(x, x, w.reshape(1), b)
    with pytest.raises(ValueError, match="input 1 .* dtype int64"):
        k.backward(x, x, np.asarray(2), b)
    with pytest.raises(ValueError, match=r"gradient of shape \(4, 3\), expected \(3, 4\)"):
        k.backward(np.ones((4, 3), np.float32), x, w, b)
    with pytest.raises(ValueError, match="bad chain"):
        FusedKernels(Chain(("diagonal",), (), "a0", (), (None,)), ((3,),), (3,), np.float32)
    with pytest.raises(ValueError, match="bad chain"):  # two kinds, one shape
        FusedKernels(CHAIN, (x.shape, w.shape), x.shape, np.float32)
    with pytest.raises(ValueError, match="rows of 4 do not divide"):
        FusedKernels(CHAIN, ((3, 5), (), (4,)), (3, 5), np.float32)


def test_a_wrong_number_of_inputs_is_refused():
    """The wrapper validates: one input too few or too many is a ValueError, not Numba's
    TypeError about its arguments, nor an extra array silently ignored."""
    x, w, b = np.ones((3, 4), np.float32), np.asarray(2.0, np.float32), np.zeros(4, np.float32)
    k = FusedKernels(CHAIN, (x.shape, w.shape, b.shape), x.shape, np.float32)
    with pytest.raises(ValueError, match="3 inputs"):
        k.forward(x, w)
    with pytest.raises(ValueError, match="3 inputs"):
        k.forward(x, w, b, b)
    with pytest.raises(ValueError, match="3 inputs"):
        k.backward(x, x, w)


_CHILD = """
import numpy as np
from kernels.fused import Chain, FusedKernels
CHAIN = {chain!r}
x, w, b = np.ones((3, 4), np.float32), np.asarray(2.0, np.float32), np.zeros(4, np.float32)
k = FusedKernels(CHAIN, (x.shape, w.shape, b.shape), x.shape, np.float32)
y = k.forward(x, w, b)
gx, gw, gb = k.backward(x, x, w, b)
print("hits", sum(k._forward.stats.cache_hits.values()), sum(k._backward.stats.cache_hits.values()))
print("misses", sum(k._forward.stats.cache_misses.values()), sum(k._backward.stats.cache_misses.values()))
print("values", float(y[0, 0]), float(gw))
"""


def test_a_second_process_loads_the_kernels_from_the_cache(tmp_path):
    """The same chain built in two processes: the first (with an empty cache folder)
    writes the generated file and compiles; the second reuses the file as it is and loads
    both kernels from Numba's cache, compiling nothing."""
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path),
        NUMBA_DEBUG_CACHE="1",
        PYTHONPATH=str(ROOT),
    )
    env.pop("NUMBA_DISABLE_JIT", None)

    def child() -> tuple[dict, list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD.format(chain=CHAIN)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        stats = {
            line.split()[0]: line.split()[1:]
            for line in lines
            if line.split() and line.split()[0] in ("hits", "misses", "values")
        }
        cache = [line for line in lines if line.startswith("[cache]") and "chain_" in line]
        return stats, cache

    stats, cache = child()
    assert stats["hits"] == ["0", "0"] and stats["misses"] == ["1", "1"]  # cold: compiled
    assert any("data saved" in line for line in cache)
    (generated,) = list(tmp_path.rglob("fused/chain_*.py"))  # the source, named by its hash
    assert generated.read_text() == kernel_source(CHAIN, np.float32)
    mtime = generated.stat().st_mtime_ns
    first_values = stats["values"]

    stats, cache = child()
    assert stats["hits"] == ["1", "1"] and stats["misses"] == ["0", "0"]  # warm
    loaded = [line for line in cache if "data loaded" in line]
    assert any("forward" in line for line in loaded) and any("backward" in line for line in loaded)
    assert not any("data saved" in line for line in cache)  # nothing compiled again
    assert generated.stat().st_mtime_ns == mtime  # the file was reused, not rewritten
    assert stats["values"] == first_values
