"""NaN and infinity in attention inputs propagate as in PyTorch: a NaN or an infinite score
among finite ones makes its row NaN (the flash kernel once mistook such a row for a fully
masked one and returned 0); the kernel and its NumPy twin agree."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.backend import implementation


def poisoned(rng):
    """q, k, v with one NaN, +inf or -inf somewhere, and whether the attention is causal."""
    q, k, v = (rng.standard_normal((1, 2, 5, 4)).astype(np.float32) for _ in range(3))
    arrays = {"q": q, "k": k, "v": v}
    name = "qkv"[rng.integers(3)]
    value = [np.nan, np.inf, -np.inf][rng.integers(3)]
    arrays[name][0, rng.integers(2), rng.integers(5), rng.integers(4)] = value
    return arrays["q"], arrays["k"], arrays["v"], bool(rng.integers(2))


def same(a, b):
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(
        np.nan_to_num(a), np.nan_to_num(b), atol=1e-4
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_kernel_and_twin_agree_on_nan_and_inf():
    kernel, twin = implementation("attention", "numba"), implementation("attention", "numpy")
    rng = np.random.default_rng(0)
    for _ in range(40):
        q, k, v, causal = poisoned(rng)
        out, lse = kernel.attention_forward(q, k, v, None, causal)
        out_t, lse_t = twin.attention_forward(q, k, v, None, causal)
        assert same(out, out_t) and same(lse, lse_t), (q, k, v, causal)


def test_a_nan_key_makes_the_output_nan_not_zero():
    rng = np.random.default_rng(1)
    q, k, v = (mg.tensor(rng.standard_normal((1, 1, 3, 4)).astype(np.float32)) for _ in range(3))
    k.data[0, 0, 1, 2] = np.nan
    out = F.scaled_dot_product_attention(q, k, v)
    assert np.isnan(out.numpy()).all()
    # a fully masked row still gives the documented zeros
    mask = np.array([[False, False, False], [True, True, True], [True, True, True]])
    k.data[0, 0, 1, 2] = 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (out.numpy()[0, 0, 0] == 0).all() and np.isfinite(out.numpy()).all()


def test_multihead_attention_gives_nan_on_both_paths():
    rng = np.random.default_rng(2)
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    x = rng.standard_normal((1, 5, 4)).astype(np.float32)
    key = x.copy()
    key[0, 2, 1] = np.nan
    outs = [
        mha(mg.tensor(x), mg.tensor(key), mg.tensor(x), need_weights=w)[0].detach().numpy()
        for w in (True, False)
    ]
    assert np.isnan(outs[0]).all() and np.isnan(outs[1]).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_and_inf_as_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle (pip install -e '.[torch]')")
    rng = np.random.default_rng(3)
    for _ in range(40):
        q, k, v, causal = poisoned(rng)
        ours = F.scaled_dot_product_attention(
            mg.tensor(q), mg.tensor(k), mg.tensor(v), is_causal=causal
        ).numpy()
        ref = torch.nn.functional.scaled_dot_product_attention(
            torch.tensor(q), torch.tensor(k), torch.tensor(v), is_causal=causal
        ).numpy()
        assert same(ours, ref), (q, k, v, causal)
