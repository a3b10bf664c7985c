"""Optimizers: hand-computed steps, parameter groups, state dicts, errors, clipping."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad import optim


def param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def step_with(opt, p, grad):
    p.grad = mg.tensor(np.array(grad, dtype=p.dtype))
    opt.step()


def test_sgd_momentum_by_hand():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    step_with(opt, p, [1.0, 1.0])  # d = g + 0.5 p = [1.5, 0]; buf = d
    np.testing.assert_allclose(p.data, [1.0 - 0.15, -2.0])
    step_with(opt, p, [1.0, 1.0])  # d = [1.425, 0]; buf = 0.9 [1.5, 0] + d
    np.testing.assert_allclose(p.data, [0.85 - 0.1 * (1.35 + 1.425), -2.0])


def test_adam_first_step_moves_each_weight_by_lr():
    p = param([1.0, -2.0, 3.0])
    opt = optim.Adam([p], lr=0.01)
    step_with(opt, p, [0.5, -3.0, 1e-3])  # bias-corrected m / sqrt(v) = sign(g) on step 1
    np.testing.assert_allclose(p.data, [0.99, -1.99, 2.99], rtol=1e-6)
    assert opt.state[p]["step"] == 1


def test_adamw_decays_weights_even_without_gradient_signal():
    p = param([2.0])
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    step_with(opt, p, [0.0])  # m = v = 0: only the decoupled decay acts
    np.testing.assert_allclose(p.data, [2.0 * (1 - 0.05)])


def test_parameter_groups_have_their_own_settings():
    a, b = param([1.0]), param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad = mg.tensor([1.0], dtype=mg.float64)
    step_with(opt, b, [1.0])
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.0)
    assert opt.param_groups[1]["momentum"] == 0.0  # defaults fill the rest


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3) for _ in range(6)]
    p1, p2 = param([1.0, 2.0, 3.0]), param([1.0, 2.0, 3.0])
    o1 = optim.Adam([p1], lr=0.1, amsgrad=True)
    for g in grads[:3]:
        step_with(o1, p1, g)
    p2.data[...] = p1.data
    o2 = optim.Adam([p2], lr=0.5)
    o2.load_state_dict(o1.state_dict())
    assert o2.param_groups[0]["lr"] == 0.1 and o2.param_groups[0]["amsgrad"]
    for g in grads[3:]:
        step_with(o1, p1, g)
        step_with(o2, p2, g)
    np.testing.assert_array_equal(p1.data, p2.data)


def test_load_state_dict_refuses_wrong_shapes_before_changing_anything():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    step_with(opt, p, [1.0, 1.0])
    state = opt.state_dict()
    other = optim.SGD([param([1.0, 2.0, 3.0])], lr=0.2, momentum=0.9)
    with pytest.raises(ValueError, match=r"state 'momentum_buffer' of parameter 0 has shape"):
        other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == 0.2 and not other.state


def test_zero_grad_and_skipping_parameters_without_gradients():
    a, b = param([1.0]), param([1.0])
    opt = optim.SGD([a, b], lr=0.1)
    step_with(opt, a, [1.0])
    assert b.data[0] == 1.0
    opt.zero_grad()
    assert a.grad is None
    a.grad = mg.tensor([3.0], dtype=mg.float64)
    opt.zero_grad(set_to_none=False)
    assert a.grad.data[0] == 0.0


def test_optimizer_errors_are_clear():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.Adam([param([1.0])], lr=-1)
    with pytest.raises(ValueError, match="nesterov needs momentum > 0"):
        optim.SGD([param([1.0])], lr=0.1, nesterov=True)
    p = param([1.0])
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_step_bumps_the_version_so_stale_graphs_are_caught():
    p = param([1.0, 2.0])
    y = (p * p).sum()  # saves p for backward
    opt = optim.SGD([p], lr=0.1)
    step_with(opt, p, [1.0, 1.0])
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_clip_grad_norm_returns_the_norm_and_scales_together():
    a, b = param([0.0, 0.0]), param([0.0])
    a.grad, b.grad = mg.tensor([3.0, 0.0], dtype=mg.float64), mg.tensor([4.0], dtype=mg.float64)
    norm = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert norm.item() == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), [0.6, 0, 0.8], rtol=1e-5)
    assert nn.utils.clip_grad_norm_([a, b], max_norm=10.0).item() == pytest.approx(1.0, rel=1e-5)
    a.grad = mg.tensor([np.inf, 0.0], dtype=mg.float64)
    with pytest.raises(RuntimeError, match="total norm"):
        nn.utils.clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
    b.grad = mg.tensor([-7.0], dtype=mg.float64)
    nn.utils.clip_grad_value_([b], 2.0)
    assert b.grad.data[0] == -2.0
