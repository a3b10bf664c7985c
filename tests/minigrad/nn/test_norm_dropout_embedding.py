"""Dropout, Embedding, LayerNorm and BatchNorm: behaviour and gradients (PyTorch comparisons
are in test_nn_torch.py)."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.testing import gradcheck


def test_dropout_is_inverted_seeded_and_off_in_eval():
    layer = nn.Dropout(0.25)
    x = mg.ones(20000)
    mg.manual_seed(0)
    a = layer(x).data
    assert set(np.unique(a)) == {0.0, np.float32(1 / 0.75)}
    assert abs(a.mean() - 1.0) < 0.03 and abs((a == 0).mean() - 0.25) < 0.02
    mg.manual_seed(0)
    np.testing.assert_array_equal(layer(x).data, a)  # same seed, same mask
    layer.eval()
    assert layer(x) is x
    assert F.dropout(x, 1.0).data.sum() == 0 and F.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


def test_dropout_gradient_flows_through_kept_elements():
    x = mg.ones(1000, requires_grad=True)
    mg.manual_seed(1)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # 2 where kept, 0 where dropped


def test_embedding_rows_and_padding_gradient():
    mg.manual_seed(2)
    emb = nn.Embedding(5, 3, padding_idx=0)
    assert np.all(emb.weight.data[0] == 0)
    idx = mg.tensor([[0, 2, 2], [4, 0, 1]])
    out = emb(idx)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx.data])
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.data[:, 0], [0, 1, 2, 0, 1])  # row 0 frozen
    with pytest.raises(IndexError, match="index 5 is out of range for 5 embeddings"):
        emb(mg.tensor([5]))
    with pytest.raises(TypeError, match="indices must be integers"):
        emb(mg.tensor([1.0]))


def test_embedding_gradchecks():
    # (without padding_idx: its frozen row is a deliberate departure from the true derivative,
    # which gradcheck rightly flags; that row is checked against PyTorch instead)
    w = mg.randn(6, 2, dtype=mg.float64, requires_grad=True)
    gradcheck(lambda w_: F.embedding(mg.tensor([[1, 1, 5], [0, 3, 1]]), w_), [w])


def test_layer_norm_module():
    ln = nn.LayerNorm((2, 3))
    x = mg.randn(4, 2, 3)
    y = ln(x).data.reshape(4, -1)
    np.testing.assert_allclose(y.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(1), 1, atol=1e-3)
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]


def test_batch_norm_training_and_eval():
    bn = nn.BatchNorm2d(3)
    x = mg.randn(8, 3, 4, 4) * 2 + 1
    y = bn(x).data
    np.testing.assert_allclose(y.mean((0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var((0, 2, 3)), 1, atol=1e-3)
    expected_mean = 0.1 * x.data.mean((0, 2, 3))
    np.testing.assert_allclose(bn.running_mean.data, expected_mean, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    assert list(bn.state_dict()) == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    bn.eval()
    z = bn(x).data
    rv = bn.running_var.data.reshape(1, 3, 1, 1)
    rm = bn.running_mean.data.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(z, (x.data - rm) / np.sqrt(rv + 1e-5), rtol=1e-5, atol=1e-6)
    with pytest.raises(
        ValueError, match=r"BatchNorm2d\(3\): expected input \(B, 3, H, W\), got \(8, 2, 4, 4\)"
    ):
        bn(mg.randn(8, 2, 4, 4))
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(mg.randn(1, 3))


def test_batch_norm_gradchecks_in_training():
    x = mg.randn(4, 2, 3, dtype=mg.float64, requires_grad=True)
    w = mg.randn(2, dtype=mg.float64, requires_grad=True)
    b = mg.randn(2, dtype=mg.float64, requires_grad=True)
    gradcheck(lambda x_, w_, b_: F.batch_norm(x_, None, None, w_, b_, training=True), [x, w, b])
