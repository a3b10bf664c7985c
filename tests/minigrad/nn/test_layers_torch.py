"""Activations, losses, recurrent and attention layers against PyTorch: the same weights
(copied through the state dict), the same inputs, then every output, the input gradients and
every parameter gradient compared in float64, in train and eval mode. Skipped (with the
reason shown) where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn

torch = pytest.importorskip("torch")


def flat(out):
    if isinstance(out, tuple):
        return [z for o in out for z in flat(o)]
    return [] if out is None else [out]


def compare(ours, theirs, inputs, call=None, mode="train", rtol=1e-8):
    """Load theirs into ours, run both on ``inputs`` (arrays; float ones get gradients),
    and compare outputs and all gradients."""
    ours.double()
    theirs.double()
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    getattr(ours, mode)()
    getattr(theirs, mode)()
    call = call or (lambda m, *xs: m(*xs))
    floats = [np.asarray(x).dtype.kind == "f" for x in inputs]
    xo = [mg.tensor(x, requires_grad=f) for x, f in zip(inputs, floats)]
    xt = [torch.tensor(x, requires_grad=f) for x, f in zip(inputs, floats)]
    a, b = flat(call(ours, *xo)), flat(call(theirs, *xt))
    assert len(a) == len(b)
    loss_a, loss_b = 0.0, 0.0
    for y, z in zip(a, b):
        np.testing.assert_allclose(y.data, z.detach().numpy(), rtol=rtol, atol=1e-10)
        weights = np.cos(np.arange(y.data.size)).reshape(y.shape)  # a fixed, varied cotangent
        loss_a = loss_a + (y * mg.tensor(weights)).sum()
        loss_b = loss_b + (z * torch.tensor(weights)).sum()
    loss_a.backward()
    loss_b.backward()
    for u, w, f in zip(xo, xt, floats):
        if f:
            np.testing.assert_allclose(u.grad.data, w.grad.numpy(), rtol=rtol, atol=1e-10)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.data, theirs_params[name].grad.numpy(), rtol=rtol, atol=1e-10, err_msg=name
        )


rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.ELU(0.5), torch.nn.ELU(0.5)),
        (nn.GELU(), torch.nn.GELU()),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.Softplus(2.0, 3.0), torch.nn.Softplus(2.0, 3.0)),
    ],
    ids=lambda m: repr(m),
)
def test_activations_match(ours, theirs):
    compare(ours, theirs, [r(4, 5) * 3])


LOSSES = [
    (nn.MSELoss(), torch.nn.MSELoss(), "reals"),
    (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), "reals"),
    (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), "reals"),
    (nn.HuberLoss(delta=0.8), torch.nn.HuberLoss(delta=0.8), "reals"),
    (
        nn.BCELoss(weight=np.linspace(0.5, 1.5, 3)),
        torch.nn.BCELoss(weight=torch.linspace(0.5, 1.5, 3, dtype=torch.float64)),
        "probabilities",
    ),
    (
        nn.BCEWithLogitsLoss(pos_weight=np.array([0.5, 2.0, 3.0]), reduction="none"),
        torch.nn.BCEWithLogitsLoss(
            pos_weight=torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64), reduction="none"
        ),
        "logits",
    ),
    (nn.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"), "kl"),
    (
        nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5]), label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(
            weight=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64), label_smoothing=0.1
        ),
        "classes",
    ),
    (nn.NLLLoss(ignore_index=1), torch.nn.NLLLoss(ignore_index=1), "classes"),
]


@pytest.mark.parametrize("ours, theirs, kind", LOSSES, ids=[type(c[0]).__name__ for c in LOSSES])
def test_losses_match(ours, theirs, kind):
    x = r(4, 3)
    if kind == "reals":
        inputs = [x, r(4, 3)]
    elif kind == "probabilities":
        inputs = [rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(0, 1, (4, 3))]
    elif kind == "logits":
        inputs = [x * 10, rng.uniform(0, 1, (4, 3))]
    elif kind == "kl":
        p = rng.uniform(0.1, 1, (4, 3))
        inputs = [np.log(p / p.sum(1, keepdims=True)), rng.dirichlet(np.ones(3), 4)]
    else:
        inputs = [x, np.array([0, 2, 1, 1])]
    compare(ours, theirs, inputs)


RECURRENT = [
    ({}, (5, 3, 4)),
    ({"num_layers": 2, "bidirectional": True}, (5, 3, 4)),
    ({"batch_first": True, "bias": False}, (3, 5, 4)),
    ({"num_layers": 3}, (2, 1, 4)),
    ({}, (6, 4)),  # unbatched
]


@pytest.mark.parametrize("kwargs, shape", RECURRENT, ids=[str(c) for c in RECURRENT])
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_recurrent_layers_match(name, kwargs, shape, mode):
    compare(
        getattr(nn, name)(4, 6, **kwargs),
        getattr(torch.nn, name)(4, 6, **kwargs),
        [r(*shape)],
        mode=mode,
    )


def test_recurrent_initial_states_and_relu_match():
    h0, c0 = r(2, 3, 5), r(2, 3, 5)
    compare(
        nn.LSTM(4, 5, num_layers=2),
        torch.nn.LSTM(4, 5, num_layers=2),
        [r(6, 3, 4), h0, c0],
        call=lambda m, x, h, c: m(x, (h, c)),
    )
    compare(
        nn.RNN(4, 5, nonlinearity="relu", bidirectional=True),
        torch.nn.RNN(4, 5, nonlinearity="relu", bidirectional=True),
        [r(6, 3, 4), h0],
    )


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match(name, batched):
    x, h = (r(3, 4), r(3, 5)) if batched else (r(4), r(5))
    if name == "LSTMCell":
        call = lambda m, x, h, c: m(x, (h, c))  # noqa: E731
        inputs = [x, h, h * 0.5]
    else:
        call, inputs = None, [x, h]
    compare(getattr(nn, name)(4, 5), getattr(torch.nn, name)(4, 5), inputs, call=call)


KPM = np.array([[False, False, True, False], [False, True, True, False], [False] * 4])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"key_padding_mask": KPM, "need_weights": False},
        {"attn_mask": r(5, 4), "average_attn_weights": False},
        {"attn_mask": np.triu(np.ones((5, 4), bool), 1), "key_padding_mask": KPM},
    ],
    ids=["plain", "padding_flash", "float_mask", "bool_masks"],
)
@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_matches(kwargs, batch_first):
    q, kv = (r(3, 5, 8), r(3, 4, 8)) if batch_first else (r(5, 3, 8), r(4, 3, 8))
    mask_kwargs = {
        k: torch.tensor(v) if isinstance(v, np.ndarray) and k.endswith("mask") else v
        for k, v in kwargs.items()
    }
    compare(
        nn.MultiheadAttention(8, 2, batch_first=batch_first),
        torch.nn.MultiheadAttention(8, 2, batch_first=batch_first),
        [q, kv, kv * 0.5],
        call=lambda m, q, k, v: m(q, k, v, **(kwargs if isinstance(m, nn.Module) else mask_kwargs)),
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_matches(mode, norm_first, activation):
    kw = dict(
        d_model=8,
        nhead=2,
        dim_feedforward=16,
        dropout=0.0,
        activation=activation,
        norm_first=norm_first,
        batch_first=True,
    )
    causal = np.triu(np.ones((5, 5), bool), 1)
    compare(
        nn.TransformerEncoderLayer(**kw),
        torch.nn.TransformerEncoderLayer(**kw),
        [r(3, 5, 8)],
        call=lambda m, x: m(
            x, src_mask=causal if isinstance(m, nn.Module) else torch.tensor(causal)
        ),
        mode=mode,
    )
    pad = KPM[:, [0, 1, 2, 3, 3]]
    compare(
        nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), 2, norm=nn.LayerNorm(8)),
        torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(**kw),
            2,
            norm=torch.nn.LayerNorm(8),
            enable_nested_tensor=False,
        ),
        [r(3, 5, 8)],
        call=lambda m, x: m(
            x, src_key_padding_mask=pad if isinstance(m, nn.Module) else torch.tensor(pad)
        ),
        mode=mode,
    )


def test_saved_lstm_and_transformer_load_into_pytorch(tmp_path):
    """minigrad.save writes safetensors that PyTorch's modules load by name."""
    for ours, theirs, shape in [
        (nn.LSTM(4, 6, num_layers=2), torch.nn.LSTM(4, 6, num_layers=2), (5, 2, 4)),
        (
            nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
            torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
            (5, 2, 8),
        ),
    ]:
        ours.double().eval()
        theirs.double().eval()
        path = tmp_path / f"{type(ours).__name__}.safetensors"
        mg.save(ours.state_dict(), path)
        theirs.load_state_dict({k: torch.tensor(v.data) for k, v in mg.load(path).items()})
        x = r(*shape)
        a = flat(ours(mg.tensor(x)))[0].data
        b = flat(theirs(torch.tensor(x)))[0].detach().numpy()
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
