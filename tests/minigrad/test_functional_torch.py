"""minigrad.nn.functional against torch.nn.functional: same inputs, same outputs and gradients.
Skipped (with the reason shown) where torch is not installed: pip install -e '.[torch]'."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(0)


def arrays(*shapes):
    return [rng.standard_normal(s) for s in shapes]


CASES = {
    "linear": (lambda f, x, w, b: f.linear(x, w, b), arrays((4, 3), (5, 3), (5,)), {}),
    "conv2d": (
        lambda f, x, w, b: f.conv2d(x, w, b, stride=2, padding=1),
        arrays((2, 3, 7, 8), (4, 3, 3, 3), (4,)),
        {},
    ),
    "conv2d_groups_dilation": (
        lambda f, x, w: f.conv2d(x, w, None, 1, 2, 2, 2),
        arrays((1, 4, 9, 9), (6, 2, 3, 3)),
        {},
    ),
    "conv2d_direct": (  # a batch of 16, 16 channels: kernels/conv_slivers.py
        lambda f, x, w, b: f.conv2d(x, w, b, padding=(2, 1)),
        arrays((16, 16, 5, 6), (16, 16, 3, 3), (16,)),
        {},
    ),
    "conv2d_same_even": (
        lambda f, x, w: f.conv2d(x, w, padding="same"),
        arrays((1, 2, 6, 7), (3, 2, 4, 2)),
        {},
    ),
    "conv1d": (
        lambda f, x, w, b: f.conv1d(x, w, b, stride=2, padding=1),
        arrays((2, 3, 11), (4, 3, 3), (4,)),
        {},
    ),
    "max_pool2d": (lambda f, x: f.max_pool2d(x, 3, 2, 1, ceil_mode=True), arrays((2, 3, 8, 9)), {}),
    "max_pool2d_2x2": (lambda f, x: f.max_pool2d(x, 2), arrays((2, 3, 8, 8)), {}),
    "max_pool1d": (lambda f, x: f.max_pool1d(x, 3, 2, 1), arrays((2, 3, 10)), {}),
    "avg_pool2d": (
        lambda f, x: f.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        arrays((2, 3, 8, 9)),
        {},
    ),
    "avg_pool1d": (lambda f, x: f.avg_pool1d(x, 2), arrays((2, 3, 9)), {}),
    "adaptive_avg_pool2d": (
        lambda f, x: f.adaptive_avg_pool2d(x, (3, 2)),
        arrays((2, 3, 7, 5)),
        {},
    ),
    "softmax": (lambda f, x: f.softmax(x, dim=1), arrays((3, 4, 2)), {}),
    "log_softmax": (lambda f, x: f.log_softmax(x, dim=-1), arrays((3, 5)), {}),
    "layer_norm": (
        lambda f, x, w, b: f.layer_norm(x, (3, 4), w, b),
        arrays((2, 5, 3, 4), (3, 4), (3, 4)),
        {},
    ),
    "attention": (
        lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v),
        arrays((2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 4)),
        {},
    ),
    "attention_causal": (
        lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True),
        arrays((1, 2, 70, 8), (1, 2, 70, 8), (1, 2, 70, 8)),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    fn, arrs, _ = CASES[name]
    ours = [mg.tensor(a, requires_grad=True) for a in arrs]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrs]
    out_ours, out_theirs = fn(F, *ours), fn(TF, *theirs)
    np.testing.assert_allclose(out_ours.data, out_theirs.detach().numpy(), rtol=1e-9, atol=1e-10)
    g = rng.standard_normal(out_ours.shape)
    out_ours.backward(mg.tensor(g))
    out_theirs.backward(torch.tensor(g))
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("mask_kind", ["bool", "float"])
def test_attention_with_masks_matches_torch(mask_kind):
    q, k, v = arrays((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4))
    mask = rng.random((5, 5)) > 0.3 if mask_kind == "bool" else rng.standard_normal((2, 1, 5, 5))
    if mask_kind == "bool":
        mask[:, 0] = True  # keep every row attending to something (torch gives nan otherwise)
    ours = [mg.tensor(a, requires_grad=True) for a in (q, k, v)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    a = F.scaled_dot_product_attention(*ours, attn_mask=mask)
    b = TF.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask))
    np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-9, atol=1e-10)
    a.sum().backward()
    b.sum().backward()
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options",
    [{}, {"label_smoothing": 0.2}, {"weight": True}, {"weight": True, "label_smoothing": 0.1}],
)
def test_cross_entropy_and_nll_match_torch(reduction, options):
    x = rng.standard_normal((7, 5)) * 3
    t = rng.integers(0, 5, 7)
    t[2] = -100
    w = rng.random(5) + 0.5 if options.get("weight") else None
    smoothing = options.get("label_smoothing", 0.0)
    xo, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    kw_o = {
        "weight": None if w is None else mg.tensor(w),
        "reduction": reduction,
        "label_smoothing": smoothing,
    }
    kw_t = {
        "weight": None if w is None else torch.tensor(w),
        "reduction": reduction,
        "label_smoothing": smoothing,
    }
    a = F.cross_entropy(xo, mg.tensor(t), **kw_o)
    b = TF.cross_entropy(xt, torch.tensor(t), **kw_t)
    np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-9, atol=1e-12)
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-8, atol=1e-12)
    if not smoothing:
        lp = rng.standard_normal((7, 5))
        a = F.nll_loss(
            mg.tensor(lp), mg.tensor(t), None if w is None else mg.tensor(w), reduction=reduction
        )
        b = TF.nll_loss(
            torch.tensor(lp),
            torch.tensor(t),
            None if w is None else torch.tensor(w),
            reduction=reduction,
        )
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-9)


def test_cross_entropy_with_probability_targets_matches_torch():
    x, p = rng.standard_normal((4, 3)), rng.dirichlet(np.ones(3), 4)
    a = F.cross_entropy(mg.tensor(x), mg.tensor(p), label_smoothing=0.1)
    b = TF.cross_entropy(torch.tensor(x), torch.tensor(p), label_smoothing=0.1)
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-9)
