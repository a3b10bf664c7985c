"""State dicts cross over to PyTorch by name and give the same outputs and gradients.
Skipped (with the reason shown) where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn

torch = pytest.importorskip("torch")


def pair():
    ours = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, groups=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4, 5),
        nn.LogSoftmax(dim=1),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 3, groups=2),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 5),
        torch.nn.LogSoftmax(dim=1),
    )
    return ours.double(), theirs.double()


def test_our_state_dict_loads_into_pytorch(tmp_path):
    ours, theirs = pair()
    mg.save(ours.state_dict(), tmp_path / "m.safetensors")
    theirs.load_state_dict(
        {k: torch.tensor(v.data) for k, v in mg.load(tmp_path / "m.safetensors").items()}
    )
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 6))
    xo, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a, b = ours(xo), theirs(xt)
    np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12)
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_pytorch_state_dict_loads_into_ours():
    ours, theirs = pair()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    np.testing.assert_allclose(
        ours(mg.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10
    )
