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


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_norm_layers_match_pytorch_in_train_and_eval(mode):
    rng = np.random.default_rng(3)
    cases = [
        (nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
        (nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4), (6, 4)),
        (nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2), (3, 2, 7)),
        (nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4)), (2, 5, 3, 4)),
    ]
    for ours, theirs, shape in cases:
        ours.double()
        theirs.double()
        # non-trivial affine parameters and running statistics, the same on both sides
        state = {
            k: rng.standard_normal(v.shape) if v.dtype.kind == "f" else v.data
            for k, v in ours.state_dict().items()
        }
        for k in state:
            if "var" in k:
                state[k] = np.abs(state[k]) + 0.5
        ours.load_state_dict(state)
        theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = rng.standard_normal(shape)
        xo, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        a, b = ours(xo), theirs(xt)
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-9, atol=1e-10)
        g = rng.standard_normal(shape)
        a.backward(mg.tensor(g))
        b.backward(torch.tensor(g))
        np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-8, atol=1e-10)
        for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(
                p.grad.data, tp.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name
            )
        for (name, buf), (_, tbuf) in zip(ours.named_buffers(), theirs.named_buffers()):
            np.testing.assert_allclose(buf.data, tbuf.numpy(), rtol=1e-9, err_msg=name)


def test_embedding_matches_pytorch():
    ours, theirs = nn.Embedding(7, 3, padding_idx=2), torch.nn.Embedding(7, 3, padding_idx=2)
    theirs.load_state_dict({k: torch.tensor(v.data) for k, v in ours.state_dict().items()})
    idx = np.array([[2, 1, 6], [1, 1, 2]])
    a, b = ours(mg.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_array_equal(a.data, b.detach().numpy())
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_array_equal(ours.weight.grad.data, theirs.weight.grad.numpy())
