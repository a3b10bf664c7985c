"""Losses and activations: edge values, errors, the L2 penalty and functional_call
(forward/gradient checks are in the op registry; PyTorch comparisons in test_nn_torch.py)."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F


def test_bce_with_logits_is_stable_at_huge_logits():
    x = mg.tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32), requires_grad=True)
    t = mg.tensor(np.array([1.0, 0.0, 1.0, 1.0, 0.0], np.float32))
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.data, [1e4, 0.0, np.log(2), 0.0, 1e4], rtol=1e-6, atol=1e-6)
    loss.sum().backward()
    sigmoid = np.array([0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(x.grad.data, sigmoid - t.data, atol=1e-7)


def test_bce_on_probabilities_0_and_1_is_finite():
    p = mg.tensor(np.array([0.0, 1.0, 0.0, 1.0]), requires_grad=True)
    t = mg.tensor(np.array([1.0, 0.0, 0.0, 1.0]))
    loss = F.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_array_equal(loss.data, [100.0, 100.0, 0.0, 0.0])  # PyTorch's log floor
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad.data))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\], got values in \[-0.5, 2\]"):
        F.binary_cross_entropy(mg.tensor([-0.5, 2.0]), mg.tensor([0.0, 1.0]))


def test_losses_refuse_to_broadcast_and_bad_reductions():
    with pytest.raises(ValueError, match=r"mse_loss: target of shape \(4,\) does not match input"):
        F.mse_loss(mg.zeros((4, 1)), mg.zeros(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.l1_loss(mg.zeros(3), mg.zeros(3), reduction="avg")
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(mg.zeros((4, 3)), mg.zeros((4, 3)), pos_weight=[1, 2])
    with pytest.raises(ValueError, match="beta must be >= 0"):
        F.smooth_l1_loss(mg.zeros(3), mg.zeros(3), beta=-1)


def test_regression_losses_by_hand():
    x, t = mg.tensor([0.0, 1.0, 4.0]), mg.tensor([0.5, 1.0, 1.0])
    assert F.mse_loss(x, t).item() == pytest.approx((0.25 + 0 + 9) / 3)
    assert F.l1_loss(x, t, reduction="sum").item() == pytest.approx(3.5)
    # smooth L1 (beta 1): 0.5 * 0.25, 0, 3 - 0.5; Huber (delta 2): 0.125, 0, 2 * (3 - 1)
    assert F.smooth_l1_loss(x, t, reduction="sum").item() == pytest.approx(0.125 + 2.5)
    assert F.huber_loss(x, t, reduction="sum", delta=2.0).item() == pytest.approx(0.125 + 4.0)


def test_kl_div_batchmean_is_the_kl_divergence_and_zero_targets_count_zero():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    got = F.kl_div(mg.tensor(np.log(q)), mg.tensor(p), reduction="batchmean").item()
    assert got == pytest.approx((0.5 * np.log(2) * 2 + 0.0) / 2)
    assert np.isfinite(got)


def test_loss_modules_hold_options_and_weights_as_buffers():
    loss = nn.BCEWithLogitsLoss(pos_weight=np.array([1.0, 3.0]))
    assert "pos_weight" in loss.state_dict()
    x, t = mg.tensor([[0.0, 0.0]]), mg.tensor([[1.0, 1.0]])
    assert loss(x, t).item() == pytest.approx(np.log(2) * (1 + 3) / 2, rel=1e-6)
    ce = nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=0)
    logits, target = mg.tensor(np.eye(3, dtype=np.float32) * 5), mg.tensor([0, 1, 2])
    assert ce(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target, ignore_index=0, label_smoothing=0.1).item()
    )
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_activation_values():
    x = mg.tensor([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(F.leaky_relu(x, 0.1).data, [-0.2, 0.0, 3.0])
    np.testing.assert_allclose(F.elu(x).data, [np.expm1(-2.0), 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(F.silu(x).data, x.data / (1 + np.exp(-x.data)), rtol=1e-6)
    np.testing.assert_allclose(nn.GELU()(x).data, [-0.04550026, 0.0, 2.99595031], rtol=1e-6)
    np.testing.assert_allclose(nn.GELU("tanh")(x).data, [-0.04540231, 0.0, 2.99636261], rtol=1e-6)
    np.testing.assert_allclose(F.softplus(mg.tensor([30.0, -30.0])).data, [30.0, 9.357623e-14])
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        F.gelu(x, approximate="fast")


def test_l2_penalty_gradient_is_weight_decay_times_weight():
    layer = nn.Linear(3, 2)
    penalty = nn.utils.l2_penalty([layer.weight], weight_decay=0.1)
    assert penalty.item() == pytest.approx(0.05 * float((layer.weight.data**2).sum()), rel=1e-6)
    penalty.backward()
    np.testing.assert_allclose(layer.weight.grad.data, 0.1 * layer.weight.data, rtol=1e-6)
    assert layer.bias.grad is None
    with pytest.raises(ValueError, match="no parameters given"):
        nn.utils.l2_penalty([], 0.1)


def test_functional_call_swaps_and_restores():
    layer = nn.Linear(2, 1, bias=False)
    original = layer.weight
    w = mg.tensor([[1.0, 2.0]], requires_grad=True)
    out = nn.utils.functional_call(layer, {"weight": w}, (mg.tensor([[3.0, 4.0]]),))
    assert out.item() == 11.0 and layer.weight is original
    out.backward()
    np.testing.assert_array_equal(w.grad.data, [[3.0, 4.0]])
    with pytest.raises(KeyError, match="has no parameter or buffer 'bias2'"):
        nn.utils.functional_call(layer, {"bias2": w}, (mg.tensor([[3.0, 4.0]]),))
    assert layer.weight is original
