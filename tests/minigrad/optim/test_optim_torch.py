"""200 steps of each optimizer on the same parameters and gradients as PyTorch give the same
parameters to float32 tolerance; every schedule gives PyTorch's learning rates (and
OneCycleLR its momenta). Skipped where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.optim import lr_scheduler as ls

torch = pytest.importorskip("torch")

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01)),
]


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=[f"{n}{k}" for n, k in OPTIMIZERS])
def test_200_steps_match_pytorch(name, kwargs):
    rng = np.random.default_rng(0)
    shapes = [(5, 3), (3,), (4, 2, 2)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [mg.tensor(a.copy(), requires_grad=True) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    o, t = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    for _ in range(200):
        for p, q in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, q.grad = mg.tensor(g), torch.tensor(g)
        o.step()
        t.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=2e-5)


S = torch.optim.lr_scheduler


def schedules():
    return [
        (lambda o: ls.StepLR(o, 7, 0.5), lambda t: S.StepLR(t, 7, 0.5), "sgd"),
        (
            lambda o: ls.MultiStepLR(o, [3, 10], 0.3),
            lambda t: S.MultiStepLR(t, [3, 10], 0.3),
            "sgd",
        ),
        (lambda o: ls.ExponentialLR(o, 0.9), lambda t: S.ExponentialLR(t, 0.9), "sgd"),
        (
            lambda o: ls.CosineAnnealingLR(o, 10, 1e-3),
            lambda t: S.CosineAnnealingLR(t, 10, 1e-3),
            "sgd",
        ),
        (lambda o: ls.LinearLR(o, 0.1, 1.0, 8), lambda t: S.LinearLR(t, 0.1, 1.0, 8), "sgd"),
        (
            lambda o: ls.LambdaLR(o, lambda e: 1 / (1 + e)),
            lambda t: S.LambdaLR(t, lambda e: 1 / (1 + e)),
            "sgd",
        ),
        (
            lambda o: ls.SequentialLR(
                o, [ls.LinearLR(o, 0.1, 1.0, 5), ls.ExponentialLR(o, 0.9)], [5]
            ),
            lambda t: S.SequentialLR(t, [S.LinearLR(t, 0.1, 1.0, 5), S.ExponentialLR(t, 0.9)], [5]),
            "sgd",
        ),
        (
            lambda o: ls.OneCycleLR(o, 1.0, total_steps=30),
            lambda t: S.OneCycleLR(t, 1.0, total_steps=30),
            "sgd",
        ),
        (
            lambda o: ls.OneCycleLR(
                o, 1.0, total_steps=30, three_phase=True, anneal_strategy="linear"
            ),
            lambda t: S.OneCycleLR(
                t, 1.0, total_steps=30, three_phase=True, anneal_strategy="linear"
            ),
            "adam",
        ),
    ]


@pytest.mark.parametrize("make_ours, make_theirs, kind", schedules())
def test_schedules_match_pytorch(make_ours, make_theirs, kind):
    p, q = (
        mg.tensor(np.zeros(2, np.float32), requires_grad=True),
        torch.zeros(2, requires_grad=True),
    )
    if kind == "sgd":
        o, t = optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([q], lr=0.1, momentum=0.9)
    else:
        o, t = optim.Adam([p], lr=0.1), torch.optim.Adam([q], lr=0.1)
    so, st = make_ours(o), make_theirs(t)
    for _ in range(30):
        assert o.param_groups[0]["lr"] == pytest.approx(
            t.param_groups[0]["lr"], rel=1e-12, abs=1e-15
        )
        if kind == "sgd":
            assert o.param_groups[0]["momentum"] == pytest.approx(t.param_groups[0]["momentum"])
        else:
            assert o.param_groups[0]["betas"][0] == pytest.approx(t.param_groups[0]["betas"][0])
        p.grad, q.grad = mg.tensor(np.ones(2, np.float32)), torch.ones(2)
        o.step()
        t.step()
        so.step()
        st.step()
    assert so.get_last_lr() == pytest.approx(st.get_last_lr())
