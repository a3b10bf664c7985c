"""minigrad.nn.functional: behaviour, shapes and errors (no PyTorch needed; the oracle
comparisons are in test_functional_torch.py)."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.autograd import grad
from minigrad.testing import gradcheck, gradgradcheck


def t64(*shape, seed=0, requires_grad=True):
    return mg.tensor(
        np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad
    )


def test_linear_matches_matmul_and_gradchecks():
    x, w, b = t64(4, 3), t64(5, 3, seed=1), t64(5, seed=2)
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data)
    gradcheck(F.linear, [x, w, b])
    with pytest.raises(
        ValueError, match=r"linear: input of shape \(4, 3\) does not match weight \(5, 4\)"
    ):
        F.linear(x, t64(5, 4))


def test_conv2d_unbatched_and_conv1d_shapes():
    w = t64(4, 3, 3, 3)
    assert F.conv2d(t64(3, 8, 8), w, padding=1).shape == (4, 8, 8)
    assert F.conv2d(t64(2, 3, 8, 8), w, stride=2).shape == (2, 4, 3, 3)
    assert F.conv2d(t64(2, 3, 8, 8), w, padding="same").shape == (2, 4, 8, 8)
    assert F.conv1d(t64(2, 3, 10), t64(4, 3, 3), padding="same").shape == (2, 4, 10)
    assert F.conv1d(t64(3, 10), t64(4, 3, 3), stride=2).shape == (4, 4)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: F.conv2d(t64(8, 28), t64(16, 3, 3, 3)),
            ValueError,
            r"conv2d: expected input of shape \(B, C, H, W\) or \(C, H, W\), got \(8, 28\)",
        ),
        (
            lambda: F.conv2d(t64(8, 1, 28), t64(16, 3, 3, 3)),
            ValueError,
            r"conv2d: weight \(16, 3, 3, 3\) expects 3 input channels .* but the input \(8, 1, 28\) has 8",
        ),
        (
            lambda: F.conv2d(t64(2, 3, 8, 8), t64(16, 2, 3, 3)),
            ValueError,
            r"weight \(16, 2, 3, 3\) expects 2 input channels .* has 3",
        ),
        (
            lambda: F.conv2d(t64(2, 4, 8, 8), t64(6, 2, 3, 3), groups=3),
            ValueError,
            r"divisible by groups 3",
        ),
        (
            lambda: F.conv2d(t64(1, 1, 2, 2), t64(1, 1, 5, 5)),
            ValueError,
            r"kernel size 5 .* larger than the padded input size 2",
        ),
        (
            lambda: F.conv2d(t64(1, 1, 6, 6), t64(1, 1, 3, 3), stride=2, padding="same"),
            ValueError,
            r"padding='same' needs stride 1",
        ),
        (
            lambda: F.max_pool2d(t64(2, 3), 2),
            ValueError,
            r"max_pool2d: expected input of shape \(B, C, H, W\) or \(C, H, W\), got \(2, 3\)",
        ),
        (
            lambda: F.max_pool2d(t64(1, 1, 2, 2), 3),
            ValueError,
            r"kernel size 3 .* larger than the padded input size 2",
        ),
        (
            lambda: F.scaled_dot_product_attention(
                t64(1, 1, 3, 4), t64(1, 1, 3, 4), t64(1, 1, 3, 4), attn_mask=np.ones((2, 2), bool)
            ),
            ValueError,
            r"attn_mask of shape \(2, 2\) does not broadcast to \(1, 1, 3, 3\)",
        ),
        (
            lambda: F.scaled_dot_product_attention(
                t64(1, 1, 3, 4), t64(1, 1, 3, 4), t64(1, 1, 3, 4), dropout_p=0.1
            ),
            NotImplementedError,
            r"dropout_p > 0 is not supported yet",
        ),
        (
            lambda: F.cross_entropy(t64(4, 3), mg.tensor([0, 1, 2, 3])),
            IndexError,
            r"target 3 is out of range for 3 classes",
        ),
        (
            lambda: F.cross_entropy(t64(4, 3), mg.tensor([0, 1, 2])),
            ValueError,
            r"target of shape \(3,\) does not match input \(4, 3\)",
        ),
        (
            lambda: F.cross_entropy(t64(4, 3), mg.tensor([0, 1, 2, 1]), reduction="avg"),
            ValueError,
            r"reduction must be one of",
        ),
        (
            lambda: F.layer_norm(t64(4, 3), (4,)),
            ValueError,
            r"layer_norm: input of shape \(4, 3\) does not end in normalized_shape \(4,\)",
        ),
        (
            lambda: F.conv2d(
                mg.ones(1, 1, 3, 3, dtype=mg.int64), mg.ones(1, 1, 1, 1, dtype=mg.int64)
            ),
            TypeError,
            r"conv2d: expected floating-point",
        ),
    ],
)
def test_bad_input_is_reported_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_max_pool_return_indices_are_int64_flat_positions():
    x = mg.tensor([[[[1.0, 5.0], [3.0, 2.0]]]])
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    assert out.item() == 5.0 and idx.dtype == np.int64 and idx.item() == 1


def test_pools_and_unbatched_inputs():
    assert F.max_pool2d(t64(3, 8, 8), 2).shape == (3, 4, 4)
    assert F.avg_pool1d(t64(2, 3, 9), 3).shape == (2, 3, 3)
    assert F.max_pool1d(t64(3, 9), 2, 2, 1).shape == (3, 5)
    assert F.adaptive_avg_pool2d(t64(2, 3, 7, 5), 1).shape == (2, 3, 1, 1)
    assert F.adaptive_avg_pool2d(t64(2, 3, 7, 5), (None, 2)).shape == (2, 3, 7, 2)


def test_cross_entropy_reductions_agree_with_each_other_and_nll():
    x, t = t64(6, 4), mg.tensor([0, 3, 2, 1, -100, 2])
    per_row = F.cross_entropy(x, t, reduction="none")
    assert per_row.shape == (6,) and per_row.data[4] == 0.0
    np.testing.assert_allclose(F.cross_entropy(x, t, reduction="sum").item(), per_row.data.sum())
    np.testing.assert_allclose(F.cross_entropy(x, t).item(), per_row.data.sum() / 5)
    np.testing.assert_allclose(
        F.cross_entropy(x, t).item(), F.nll_loss(F.log_softmax(x, 1), t).item()
    )


def test_cross_entropy_spatial_targets_and_probabilities():
    x = t64(2, 3, 4, 5)
    t = mg.tensor(np.random.default_rng(1).integers(0, 3, (2, 4, 5)))
    assert F.cross_entropy(x, t, reduction="none").shape == (2, 4, 5)
    onehot = np.eye(3)[t.data.reshape(-1)].reshape(2, 4, 5, 3).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(
        F.cross_entropy(x, mg.tensor(onehot)).item(), F.cross_entropy(x, t).item()
    )


def test_cross_entropy_is_stable_for_huge_logits():
    x = mg.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor([1, 1]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(loss.item(), 1e4, rtol=1e-6)


def test_all_targets_ignored_gives_zero_not_nan():
    x = t64(3, 4)
    loss = F.cross_entropy(x, mg.tensor([-100, -100, -100]))
    loss.backward()
    assert loss.item() == 0.0 and np.all(x.grad.data == 0)


def test_kernel_ops_differentiate_their_gradients():
    x, w = t64(1, 1, 4, 4), t64(1, 1, 3, 3)
    (g,) = grad(F.softmax(x, 1).sum() * 1.0, x, create_graph=True)  # kernel op with a formula
    assert g.requires_grad or np.allclose(g.data, 0)
    # the convolution's gradients, as functions of the input and weight, by finite differences
    assert gradgradcheck(lambda x, w: F.conv2d(x, w) ** 2, (x, w))


def test_max_pool_supports_second_order():
    x = t64(1, 2, 4, 4)
    (g,) = grad((F.max_pool2d(x, 2) ** 2).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    # d/dx of 2 * max at the chosen elements is 2 there, 0 elsewhere
    assert set(np.unique(h.data)) <= {0.0, 2.0} and h.data.sum() == 2.0 * 8


def test_attention_three_dim_inputs_and_causal():
    q, k, v = t64(2, 5, 4), t64(2, 5, 4, seed=1), t64(2, 5, 4, seed=2)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.shape == (2, 5, 4)
    np.testing.assert_allclose(out.data[:, 0], v.data[:, 0])  # the first query sees only key 0


def test_set_num_threads_validates():
    n = mg.get_num_threads()
    mg.set_num_threads(1)
    assert mg.get_num_threads() == 1
    mg.set_num_threads(n)
    with pytest.raises(ValueError, match="set_num_threads: n must be an int from 1 to"):
        mg.set_num_threads(0)


def test_direct_conv_path_gradchecks():
    # 16 channels and a batch of 8 (one full float64 sliver): kernels/conv_slivers.py
    x, w, b = t64(8, 16, 4, 5), t64(16, 16, 3, 3, seed=1), t64(16, seed=2)
    gradcheck(lambda *a: F.conv2d(*a, padding=1), [x, w, b], mode="directional")


def test_winograd_conv_path_gradchecks():
    # 8 channels and width 16: kernels/conv_winograd.py computes this one
    x, w, b = t64(1, 8, 16, 16), t64(8, 8, 3, 3, seed=1), t64(8, seed=2)
    gradcheck(lambda *a: F.conv2d(*a, padding=1), [x, w, b], mode="directional")
