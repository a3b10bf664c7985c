"""Second and third derivatives through the kernel-backed ops (convolution, pooling, layer
norm, cross-entropy, attention, LSTM, GRU) against PyTorch in float64: the gradient of a
function of the gradient, and once more. gradgradcheck covers each op alone
(test_op_registry.py); these run whole layers with every geometry option."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch", reason="PyTorch is the oracle (pip install -e '.[torch]')")


def derivatives(lib, fn, arrays, orders=3):
    """Gradients of a scalar of fn's output, then of a scalar of those gradients, and so on:
    orders - 1 arrays per input after the first order."""
    if lib is torch:
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    else:
        ts = [mg.tensor(a, requires_grad=True) for a in arrays]
    y = fn(lib, *ts)
    scalar = (y * y * y).sum()
    found = []
    for order in range(1, orders + 1):
        gs = lib.autograd.grad(scalar, ts, create_graph=order < orders, allow_unused=True)
        gs = [g if g is not None else ts[0].sum() * 0 for g in gs]
        if order > 1:
            found += [g.detach().numpy() for g in gs]
        scalar = sum(((g * g) if order % 2 else (g * g * g)).sum() for g in gs)
    return found


def assert_match(fn, arrays, orders=3):
    expected = derivatives(torch, fn, arrays, orders)
    got = derivatives(mg, fn, arrays, orders)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(e).max()))


rng = np.random.default_rng(0)


def normal(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize(
    "geometry",
    [
        {},
        {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2},
        {"padding": "same"},
    ],
    ids=["plain", "strided_dilated_grouped", "same"],
)
def test_conv2d(geometry):
    def fn(lib, x, w, b):
        # a non-contiguous input: the op must see the tensor itself, not a copy
        x = x.transpose(2, 3).transpose(2, 3)
        return lib.nn.functional.conv2d(x, w, b, **geometry)

    groups = geometry.get("groups", 1)
    assert_match(fn, [normal(2, 4, 6, 5), normal(6, 4 // groups, 3, 2) * 0.5, normal(6)])


def test_conv1d():
    assert_match(
        lambda lib, x, w: lib.nn.functional.conv1d(x, w, stride=2, padding=1),
        [normal(2, 3, 7), normal(4, 3, 3) * 0.5],
    )


def test_average_pools():
    def fn(lib, x):
        F = lib.nn.functional
        a = F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        return a.sum() + F.adaptive_avg_pool2d(x * x, (2, 3)).sum()

    assert_match(fn, [normal(2, 3, 5, 7)])


def test_layer_norm():
    # PyTorch's own third derivative of layer_norm treats the saved statistics as constants
    # (it disagrees with its composed formula), so the comparison stops at the second order
    assert_match(
        lambda lib, x, w, b: lib.nn.functional.layer_norm(x, (4,), w, b),
        [normal(3, 2, 4), normal(4), normal(4)],
        orders=2,
    )


def test_layer_norm_third_derivative_matches_finite_differences():
    x0 = normal(3, 4)

    def third(x_array, with_gradient=False):
        x = mg.tensor(x_array, requires_grad=True)
        y = mg.nn.functional.layer_norm(x, (4,))
        (g1,) = mg.autograd.grad((y * y * y).sum(), [x], create_graph=True)
        (g2,) = mg.autograd.grad((g1 * g1).sum(), [x], create_graph=True)
        s = (g2 * g2 * g2).sum()
        return mg.autograd.grad(s, [x])[0].numpy() if with_gradient else s.item()

    h, numeric = 1e-6, np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[i] = h
        numeric[i] = (third(x0 + e) - third(x0 - e)) / (2 * h)
    analytic = third(x0, with_gradient=True)
    assert np.abs(analytic - numeric).max() < 1e-7 * np.abs(numeric).max()


def test_cross_entropy_with_weights_smoothing_and_ignored_rows():
    target = np.array([0, 3, -100, 2, 1, 1])
    weight = np.array([0.5, 1.0, 2.0, 1.5])

    def fn(lib, x):
        return lib.nn.functional.cross_entropy(
            x, lib.tensor(target), weight=lib.tensor(weight), label_smoothing=0.1
        )

    assert_match(fn, [normal(6, 4)])


@pytest.mark.parametrize("variant", ["plain", "causal", "bool_mask", "learned_bias", "value_dim"])
def test_attention(variant):
    mask = np.tri(5, 6, 1, dtype=bool)
    dv = 4 if variant == "value_dim" else 3

    def fn(lib, q, k, v, bias):
        if lib is mg:
            kw = {
                "causal": {"is_causal": True},
                "bool_mask": {"attn_mask": mg.tensor(mask)},
                "learned_bias": {"attn_mask": bias},
            }.get(variant, {})
            return mg.nn.functional.scaled_dot_product_attention(q, k, v, **kw)
        # PyTorch's CPU attention has no double backward: its plain formula is the oracle
        scores = q @ k.transpose(-1, -2) / np.sqrt(3)
        if variant == "causal":
            scores = scores.masked_fill(~torch.ones(5, 6, dtype=torch.bool).tril(), -np.inf)
        if variant == "bool_mask":
            scores = scores.masked_fill(~torch.tensor(mask), -np.inf)
        if variant == "learned_bias":
            scores = scores + bias
        return torch.softmax(scores, -1) @ v + 0 * bias.sum()

    arrays = [normal(2, 2, 5, 3), normal(2, 2, 6, 3), normal(2, 2, 6, dv), normal(1, 2, 5, 6)]
    assert_match(fn, arrays)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_layers_two_deep_and_bidirectional(kind):
    torch_layer = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True).double()
    mg_layer = getattr(mg.nn, kind)(3, 4, num_layers=2, bidirectional=True)
    params = {k: v.detach().numpy() for k, v in torch_layer.state_dict().items()}
    names = list(params)

    def fn(lib, x, *weights):
        state = dict(zip(names, weights))
        if lib is torch:
            return torch.func.functional_call(torch_layer, state, (x,))[0]
        return mg.nn.utils.functional_call(mg_layer, state, (x,))[0]

    assert_match(fn, [normal(5, 2, 3)] + [params[n] for n in names], orders=2)


def test_batch_norm_in_training_and_nll_loss():
    def fn(lib, x, w, b):
        F = lib.nn.functional
        y = F.batch_norm(x, None, None, w, b, training=True)
        logp = F.log_softmax(y.sum((2, 3)), 1)
        return F.nll_loss(logp, lib.tensor(np.array([0, 2, 1, 2, 0])), reduction="sum")

    assert_match(fn, [normal(5, 3, 2, 2), normal(3), normal(3)], orders=2)
