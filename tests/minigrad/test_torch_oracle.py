"""PyTorch as an optional oracle: the same expressions give the same values and gradients.

Skipped (with the reason shown) where torch is not installed: `pip install -e '.[torch]'`.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

CASES = {
    "mlp_softmax": lambda m, a, b, c: (m.matmul(a, b) + c).relu().log_softmax(dim=-1).sum(),
    "broadcast_arith": lambda m, a, b, c: ((a[:, :1] * c - c / (a.sum() + 10)) ** 2).mean(),
    "reductions": lambda m, a, b, c: (
        a.var(dim=0).sum() + a.std() + m.logsumexp(b, dim=1).sum() + a.amax(dim=1).sum()
    ),
    "movement": lambda m, a, b, c: m.cat([a.T, b], dim=1).reshape(-1)[::3].sigmoid().sum(),
    "indexing": lambda m, a, b, c: (
        (a[[0, 0, 2]] * 2).sum() + a.gather(1, m.tensor([[0], [2], [1]])).sum()
    ),
    "where_clamp": lambda m, a, b, c: m.where(a > 0, a.exp(), a.tanh()).clamp(-0.5, 2.0).sum(),
}


def _inputs(lib, arrays):
    return [lib.tensor(x, requires_grad=True) for x in arrays]


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_pytorch(name):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((3, 3)), rng.standard_normal((3, 4)), rng.standard_normal((4,))]
    ours = _inputs(mg, arrays)
    theirs = _inputs(torch, arrays)
    out_ours = CASES[name](mg, *ours)
    out_theirs = CASES[name](torch, *theirs)
    out_ours.backward()
    out_theirs.backward()
    np.testing.assert_allclose(out_ours.item(), out_theirs.item(), rtol=1e-10)
    for o, t in zip(ours, theirs):
        if t.grad is None:
            assert o.grad is None
        else:
            np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-9, atol=1e-12)
