"""Per-sample gradients of every supported layer, in float64, against (a) one backward pass
per sample in minigrad and (b) Opacus's GradSampleModule on the same weights and data (its
DPLSTM / DPGRU / DPRNN / DPMultiheadAttention stand in for the layers Opacus does not sample
directly); both loss reductions."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.privacy import GradSampleModule, per_sample_grads


def build(ns, kind: str, rnn_ns=None):
    """The same small classifier (logits (B, 5)) in minigrad.nn or torch.nn (``ns``);
    ``rnn_ns`` supplies the recurrent and attention layers (Opacus's DP layers for torch)."""
    rnn_ns = rnn_ns or ns

    class Net(ns.Module):
        def __init__(self):
            super().__init__()
            if kind == "linear3d":
                self.body = ns.Linear(6, 7)
                self.head = ns.Linear(7, 5)
            elif kind == "conv2d":
                self.body = ns.Conv2d(2, 4, 3, stride=2, padding=1, groups=2)
                self.head = ns.Linear(36, 5)
            elif kind == "conv_same":  # an even kernel: PyTorch pads one more after
                self.body = ns.Conv2d(2, 4, (2, 3), padding="same", dilation=(2, 1))
                self.head = ns.Linear(144, 5)
            elif kind == "conv1d":
                self.body = ns.Conv1d(3, 4, 3, dilation=2, padding=1)
                self.head = ns.Linear(28, 5)
            elif kind.startswith("embedding"):
                pad = 0 if kind == "embedding_pad" else None
                self.body = ns.Embedding(7, 4, padding_idx=pad)
                self.head = ns.Linear(4, 5)
            elif kind == "layernorm":
                self.body = ns.LayerNorm(6)
                self.head = ns.Linear(6, 5)
            elif kind in ("rnn", "lstm", "gru"):
                cls = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[kind]
                if rnn_ns is not ns:
                    cls = "DP" + cls
                self.body = getattr(rnn_ns, cls)(4, 3, batch_first=True)
                self.head = ns.Linear(3, 5)
            elif kind.startswith("mha"):  # mha_tm: time-major (L, B, E)
                cls = "MultiheadAttention" if rnn_ns is ns else "DPMultiheadAttention"
                self.body = getattr(rnn_ns, cls)(6, 2, batch_first=kind == "mha")
                self.head = ns.Linear(6, 5)

        def forward(self, x):
            if kind in ("linear3d", "layernorm"):
                return self.head(self.body(x)).mean(1)
            if kind in ("conv2d", "conv_same", "conv1d"):
                h = self.body(x)
                return self.head(h.reshape(h.shape[0], -1))
            if kind.startswith("embedding"):
                return self.head(self.body(x).mean(1))
            if kind in ("rnn", "lstm", "gru"):
                out, _ = self.body(x)
                return self.head(out).mean(1)
            out, _ = self.body(x, x, x)
            return self.head(out).mean(1 if kind == "mha" else 0)

    return Net()


def inputs(kind: str, rng, batch: int = 5):
    shapes = {
        "linear3d": (batch, 3, 6),
        "conv2d": (batch, 2, 6, 6),
        "conv_same": (batch, 2, 6, 6),
        "conv1d": (batch, 3, 9),
        "layernorm": (batch, 3, 6),
        "rnn": (batch, 4, 4),
        "lstm": (batch, 4, 4),
        "gru": (batch, 4, 4),
        "mha": (batch, 3, 6),
        "mha_tm": (3, batch, 6),
    }
    if kind.startswith("embedding"):
        return rng.integers(0, 7, (batch, 5))
    return rng.normal(size=shapes[kind])


KINDS = ["linear3d", "conv2d", "conv_same", "conv1d", "embedding", "embedding_pad", "layernorm", "rnn",
         "lstm", "gru", "mha"]  # fmt: skip


def one_by_one(model, x, y, reduction):
    """Per-sample gradients the slow way: one forward and backward per sample."""
    out = {n: [] for n, _ in model.named_parameters()}
    for b in range(len(x)):
        model.zero_grad()
        loss = F.cross_entropy(model(mg.tensor(x[b : b + 1])), mg.tensor(y[b : b + 1]))
        loss.backward()
        for n, p in model.named_parameters():
            out[n].append(p.grad.data.copy() if p.grad is not None else np.zeros(p.shape))
    return {n: np.stack(v) for n, v in out.items()}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", KINDS)
def test_against_one_backward_per_sample(kind, reduction, rng):
    mg.manual_seed(1)
    model = build(nn, kind).double()
    x, y = inputs(kind, rng), rng.integers(0, 5, 5)
    loss_fn = (
        F.cross_entropy
        if reduction == "mean"
        else lambda o, t: F.cross_entropy(o, t, reduction="sum")
    )
    ours = per_sample_grads(model, loss_fn, (mg.tensor(x), mg.tensor(y)), loss_reduction=reduction)
    slow = one_by_one(model, x, y, reduction)
    assert set(ours) == set(slow)
    for name in slow:
        assert ours[name].shape == (5, *dict(model.named_parameters())[name].shape)
        np.testing.assert_allclose(ours[name], slow[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_batch_second_layouts_and_masks(rng):
    """RNN and attention with batch_first=False, cross-attention with a key padding mask."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(4, 6, num_layers=2, bidirectional=True)
            self.proj = nn.Linear(12, 6)
            self.att = nn.MultiheadAttention(6, 3)
            self.head = nn.Linear(6, 5)

        def forward(self, x, mem, pad):
            h, h_n = self.gru(x)  # (T, B, 12)
            q = self.proj(h)
            o, _ = self.att(q, mem, mem, key_padding_mask=pad)
            return self.head(o).mean(0) + h_n.sum(0).sum(-1, keepdim=True)

    mg.manual_seed(2)
    model = Net().double()
    x, mem = rng.normal(size=(4, 3, 4)), rng.normal(size=(5, 3, 6))
    pad = np.zeros((3, 5), bool)
    pad[1, 3:] = True
    y = rng.integers(0, 5, 3)
    ours = per_sample_grads(
        model,
        F.cross_entropy,
        (mg.tensor(x), mg.tensor(mem), mg.tensor(pad), mg.tensor(y)),
        batch_first=False,
    )
    for b in range(3):
        model.zero_grad()
        out = model(
            mg.tensor(x[:, b : b + 1]), mg.tensor(mem[:, b : b + 1]), mg.tensor(pad[b : b + 1])
        )
        F.cross_entropy(out, mg.tensor(y[b : b + 1])).backward()
        for n, p in model.named_parameters():
            np.testing.assert_allclose(ours[n][b], p.grad.data, rtol=1e-9, atol=1e-12, err_msg=n)


def test_grad_sample_module_sets_grad_sample_and_keeps_grad(rng):
    mg.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    x, y = mg.tensor(rng.normal(size=(8, 4))), mg.tensor(rng.integers(0, 3, 8))
    F.cross_entropy(model(x), y).backward()
    plain = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    wrapped = GradSampleModule(model)
    F.cross_entropy(wrapped(x), y).backward()
    for p, g in zip(model.parameters(), plain):
        assert p.grad_sample.shape == (8, *p.shape)
        np.testing.assert_allclose(p.grad.data, g, rtol=1e-12)  # .grad unchanged
        np.testing.assert_allclose(p.grad_sample.mean(0), g, rtol=1e-10, atol=1e-14)  # mean loss
    wrapped.remove_hooks()
    model.zero_grad()
    for p in model.parameters():
        p.grad_sample = None
    F.cross_entropy(model(x), y).backward()
    assert all(p.grad_sample is None for p in model.parameters())


def test_refuses_a_layer_without_a_rule():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(NotImplementedError, match=r"1 \(BatchNorm2d\)"):
        GradSampleModule(model)
    with pytest.raises(ValueError, match="loss_reduction must be 'mean' or 'sum', got 'max'"):
        GradSampleModule(nn.Linear(2, 2), loss_reduction="max")


# -- Opacus as the oracle ----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    "kind", [k for k in KINDS if k not in ("embedding_pad", "mha")] + ["mha_tm"]
)
def test_against_opacus(kind, reduction, rng):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is Opacus's base (pip install -e '.[torch]')"
    )
    opacus = pytest.importorskip(
        "opacus", reason="Opacus is the per-sample gradient oracle (pip install -e '.[privacy]')"
    )
    from opacus.layers import DPGRU, DPLSTM, DPRNN, DPMultiheadAttention  # noqa: F401

    mg.manual_seed(4)
    ours = build(nn, kind).double()
    theirs = build(torch.nn, kind, rnn_ns=__import__("opacus.layers", fromlist=["x"])).double()
    state = {k: torch.tensor(np.asarray(v.data)) for k, v in ours.state_dict().items()}
    if kind in ("mha_tm", "rnn", "lstm", "gru"):  # Opacus's layers load their plain twin's state
        if kind == "mha_tm":  # (its attention keeps q, k, v as three Linear layers)
            plain = torch.nn.MultiheadAttention(6, 2)
        else:
            plain = getattr(torch.nn, kind.upper())(4, 3, batch_first=True)
        plain.double().load_state_dict(
            {k[5:]: v for k, v in state.items() if k.startswith("body.")}
        )
        theirs.body.load_state_dict(plain.state_dict())
        theirs.head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    else:
        theirs.load_state_dict(state)
    x, y = inputs(kind, rng, batch=6), rng.integers(0, 6, 6) % 5
    # Opacus 1.6.0's DPMultiheadAttention with batch_first=True reshapes its heads' outputs
    # to (B, L, E) without moving the head dim first, so it is compared time-major
    batch_first = kind != "mha_tm"
    gsm = opacus.GradSampleModule(theirs, batch_first=batch_first, loss_reduction=reduction)
    out = gsm(torch.tensor(x))
    torch.nn.functional.cross_entropy(out, torch.tensor(y), reduction=reduction).backward()
    expected = {n: p.grad_sample.detach().numpy() for n, p in theirs.named_parameters()}
    if kind == "mha_tm":
        for part in ("weight", "bias"):
            expected[f"body.in_proj_{part}"] = np.concatenate(
                [expected.pop(f"body.{q}linear.{part}") for q in "qkv"], axis=1
            )
    loss_fn = (
        F.cross_entropy
        if reduction == "mean"
        else lambda o, t: F.cross_entropy(o, t, reduction="sum")
    )
    got = per_sample_grads(
        ours,
        loss_fn,
        (mg.tensor(x), mg.tensor(y)),
        loss_reduction=reduction,
        batch_first=batch_first,
    )
    assert set(got) == set(expected)
    for name in got:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-8, atol=1e-11, err_msg=name)


def test_a_layer_called_twice_sums_its_calls(rng):
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(self.lin(self.lin(x).tanh()))

    mg.manual_seed(7)
    model = Shared().double()
    x, y = rng.normal(size=(5, 4)), rng.integers(0, 3, 5)
    ours = per_sample_grads(model, F.cross_entropy, (mg.tensor(x), mg.tensor(y)))
    slow = one_by_one(model, x, y, "mean")
    for name in slow:
        np.testing.assert_allclose(ours[name], slow[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_replay_refuses_dropout_it_cannot_redraw(rng):
    model = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    wrapped = GradSampleModule(model)
    out, _ = wrapped(mg.randn(5, 2, 3))
    with pytest.raises(ValueError, match=r"cannot replay dropout between layers \(dropout=0.5\)"):
        out.sum().backward()
    wrapped.remove_hooks()
    model.eval()
    grads = per_sample_grads(
        model, lambda o, t: o[0].sum(), (mg.randn(5, 2, 3), None), batch_first=False
    )
    assert grads["weight_ih_l1"].shape == (2, 16, 4)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "mha"])
def test_recurrent_and_attention_layers_run_batched_not_per_sample(kind, rng, capfd):
    """Their per-sample gradients come from one more batched pass of the layer (vmap of
    grad, the recurrences as their equations), which says nothing on stderr; a loop over
    the samples would say so."""
    mg.manual_seed(1)
    model = build(nn, kind).double()
    x, y = inputs(kind, rng), rng.integers(0, 5, 5)
    ours = per_sample_grads(model, F.cross_entropy, (mg.tensor(x), mg.tensor(y)))
    slow = one_by_one(model, x, y, "mean")
    for name in slow:
        np.testing.assert_allclose(ours[name], slow[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert "once per sample" not in capfd.readouterr().err
