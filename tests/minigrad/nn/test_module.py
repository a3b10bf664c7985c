"""Module, containers and layers: registration, state dicts, modes, init, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.testing import gradcheck


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 4)])
        self.heads = nn.ModuleDict({"out": nn.Linear(4, 3)})
        self.register_buffer("steps", mg.zeros(1))
        self.register_buffer("scratch", mg.zeros(2), persistent=False)
        self.scale = 2.0  # a plain attribute, not state

    def forward(self, x):
        h = F.max_pool2d(self.conv(x), 2).flatten(1)
        for block in self.blocks:
            h = block(h).relu()
        return self.heads["out"](h) * self.scale


def test_registration_and_names():
    m = Tiny()
    names = [n for n, _ in m.named_parameters()]
    assert names == [
        "conv.weight",
        "conv.bias",
        "blocks.0.weight",
        "blocks.0.bias",
        "blocks.1.weight",
        "blocks.1.bias",
        "heads.out.weight",
        "heads.out.bias",
    ]
    # a module's own tensors before its children's, as PyTorch orders them; the
    # non-persistent buffer is left out
    assert list(m.state_dict()) == ["steps"] + names
    assert m.num_parameters() == 2 * 9 + 2 + 8 * 8 + 8 + 8 * 4 + 4 + 4 * 3 + 3
    assert [n for n, _ in m.named_children()] == ["conv", "blocks", "heads"]
    assert len(list(m.modules())) == 7
    assert m(mg.randn(5, 1, 4, 4)).shape == (5, 3)


def test_train_eval_zero_grad_apply_and_to():
    m = Tiny()
    m.eval()
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    m(mg.randn(2, 1, 4, 4)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Tiny" and "Conv2d" in seen
    m.double()
    assert all(p.dtype == np.float64 for p in m.parameters())


def test_load_state_dict_round_trip_and_strictness():
    a, b = Tiny(), Tiny()
    b.load_state_dict(a.state_dict())
    x = mg.randn(2, 1, 4, 4)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    sd = a.state_dict()
    del sd["conv.bias"]
    sd["extra"] = mg.zeros(1)
    with pytest.raises(
        KeyError, match=r"missing keys \['conv.bias'\], unexpected keys \['extra'\]"
    ):
        b.load_state_dict(sd)
    result = b.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["conv.bias"] and result.unexpected_keys == ["extra"]


def test_wrong_shape_is_refused_naming_key_and_shapes_and_module_is_unchanged():
    m = Tiny()
    before = {k: v.data.copy() for k, v in m.state_dict().items()}
    sd = Tiny().state_dict()
    sd["blocks.1.weight"] = mg.zeros(4, 7)
    with pytest.raises(
        ValueError,
        match=r"'blocks.1.weight' has shape \(4, 7\) in the state dict but \(4, 8\) in the module",
    ):
        m.load_state_dict(sd)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.data, before[k])  # nothing was written


def test_assignment_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="can't assign ndarray to parameter 'weight'"):
        m.weight = np.zeros((2, 2))

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        NoInit()


def test_sequential_indexing_and_repr():
    s = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert len(s) == 3 and isinstance(s[1], nn.ReLU) and len(s[:2]) == 2
    text = repr(s)
    assert (
        "(0): Linear(in_features=4, out_features=8, bias=True)" in text and "58 parameters" in text
    )


def test_layer_input_errors_name_the_layer_and_expected_shape():
    with pytest.raises(
        ValueError, match=r"Conv2d\(3, 16\): expected input \(B, 3, H, W\), got \(8, 1, 28, 28\)"
    ):
        nn.Conv2d(3, 16, 3)(mg.randn(8, 1, 28, 28))
    with pytest.raises(
        ValueError, match=r"Conv1d\(2, 4\): expected input \(B, 2, L\), got \(3, 5, 7\)"
    ):
        nn.Conv1d(2, 4, 3)(mg.randn(3, 5, 7))
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=4, out_features=2\): expected input \(\.\.\., 4\), got \(3, 5\)",
    ):
        nn.Linear(4, 2)(mg.randn(3, 5))


def test_default_init_matches_pytorch_bounds():
    mg.manual_seed(0)
    lin = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.bias.data).max() <= bound
    assert np.abs(lin.weight.data).max() > 0.9 * bound  # uniform over the whole range
    conv = nn.Conv2d(4, 8, 3, groups=2)
    assert conv.weight.shape == (8, 2, 3, 3)
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(2 * 9)


def test_init_functions():
    mg.manual_seed(1)
    w = mg.zeros(400, 300)
    nn.init.xavier_normal_(w)
    assert abs(w.data.std() - math.sqrt(2 / 700)) < 0.02 * math.sqrt(2 / 700) * 10
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / 300)) < 0.05 * math.sqrt(2 / 300)
    q = mg.zeros(5, 8, dtype=mg.float64)
    nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.data @ q.data.T, np.eye(5), atol=1e-12)
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.init.xavier_uniform_(mg.zeros(3))


def test_a_small_network_gradchecks_in_float64():
    mg.manual_seed(2)
    net = nn.Sequential(
        nn.Conv1d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(15, 2)
    ).double()
    x = mg.randn(2, 2, 5, dtype=mg.float64, requires_grad=True)
    gradcheck(lambda x: net(x), [x])
    # and through the weights: a Linear layer's output as a function of its weight
    lin = nn.Linear(3, 2).double()
    w = mg.tensor(lin.weight.data, requires_grad=True)
    gradcheck(lambda w_: F.linear(mg.tensor(np.ones((4, 3))), w_, lin.bias.detach()), [w])
