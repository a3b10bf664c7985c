"""Creating tensors, dtypes and promotion, shapes, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg


def test_default_dtypes_follow_pytorch():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(3.5).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([True, False]).dtype == np.bool_
    assert mg.tensor(np.zeros(2, np.float64)).dtype == np.float64  # arrays keep theirs
    assert mg.zeros(2, 3).dtype == np.float32
    assert mg.arange(5).dtype == np.int64
    assert mg.arange(0, 1, 0.25).dtype == np.float32
    assert mg.randn(3, dtype=mg.float64).dtype == np.float64


def test_python_numbers_take_the_tensor_dtype():
    x = mg.tensor([1.0, 2.0])
    assert (x * 2.5).dtype == np.float32
    assert (2 + x).dtype == np.float32
    i = mg.tensor([1, 2])
    assert (i * 2).dtype == np.int64
    assert (i * 2.5).dtype == np.float32  # int tensor with a float: the default float
    assert (i / 2).dtype == np.float32  # true division
    assert (x + mg.tensor([1.0], dtype=mg.float64)).dtype == np.float64


def test_creation_functions():
    assert mg.zeros((2, 3)).shape == (2, 3)
    assert mg.ones(4).data.sum() == 4
    assert mg.full((2,), 7).dtype == np.int64
    assert mg.full((2,), 7.0).data.tolist() == [7.0, 7.0]
    np.testing.assert_array_equal(mg.eye(2).data, np.eye(2))
    np.testing.assert_array_equal(mg.arange(1, 7, 2).data, [1, 3, 5])
    a = np.arange(3.0)
    t = mg.from_numpy(a)
    a[0] = 9
    assert t.data[0] == 9  # shared memory
    copied = mg.tensor(a)
    a[0] = 0
    assert copied.data[0] == 9  # tensor() copies


def test_manual_seed_makes_draws_reproducible():
    mg.manual_seed(3)
    a = mg.randn(5).data.copy()
    mg.manual_seed(3)
    b = mg.randn(5).data
    np.testing.assert_array_equal(a, b)
    mg.manual_seed(4)
    assert not np.array_equal(a, mg.randn(5).data)


def test_shape_helpers_and_python_protocols():
    x = mg.arange(6).reshape(2, 3)
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(-1) == 3
    assert x.dim() == 2 and x.numel() == 6 and len(x) == 2
    assert [row.tolist() for row in x] == [[0, 1, 2], [3, 4, 5]]
    assert mg.tensor(2.5).item() == 2.5 and float(mg.tensor([1.5])) == 1.5
    assert x.T.shape == (3, 2) and x.permute(1, 0).shape == (3, 2)
    assert x.flatten().shape == (6,) and x.unsqueeze(0).shape == (1, 2, 3)
    assert x.unsqueeze(-1).squeeze().shape == (2, 3)
    assert x.view(-1, 2).shape == (3, 2)
    assert [c.shape for c in x.chunk(2, dim=1)] == [(2, 2), (2, 1)]
    assert [c.shape for c in x.split([1, 2], dim=1)] == [(2, 1), (2, 2)]


def test_max_with_dim_returns_values_and_indices():
    x = mg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.data, [5.0, 7.0])
    np.testing.assert_array_equal(indices.data, [1, 0])
    assert x.max().item() == 7.0 and x.min().item() == 0.0


def test_amax_ties_share_the_gradient():
    x = mg.tensor([3.0, 1.0, 3.0], requires_grad=True)
    x.amax().backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.0, 0.5])


def test_repeated_indices_accumulate_in_backward():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])


def test_boolean_mask_indexing_and_gradient():
    x = mg.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    y = x[x > 0]
    np.testing.assert_array_equal(y.data, [1.0, 4.0])
    (y * 10).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[10.0, 0.0], [0.0, 10.0]])


def test_softmax_is_stable_for_large_logits():
    x = mg.tensor([[1e4, 0.0, -1e4]], dtype=mg.float32, requires_grad=True)
    p = x.softmax(dim=1)
    assert np.all(np.isfinite(p.data)) and p.data[0, 0] == 1.0
    lp = x.log_softmax(dim=1)
    assert np.all(np.isfinite(lp.data))
    lp[0, 0].backward()
    assert np.all(np.isfinite(x.grad.data))
    assert mg.logsumexp(x, dim=1).item() == pytest.approx(1e4)


def test_repr():
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(mg.tensor([1.0], dtype=mg.float64)) == "tensor([1.], dtype=float64)"
    assert "requires_grad=True" in repr(mg.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(mg.tensor([1.0], requires_grad=True) * 2)


# -- errors: each names the op and the shapes or values involved ---------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: mg.ones(3, 4) @ mg.ones(5, 2),
            ValueError,
            r"matmul: shapes \(3, 4\) and \(5, 2\) do not align \(4 != 5\)",
        ),
        (lambda: mg.ones(2, 3, 4) @ mg.ones(3, 4, 2), ValueError, r"matmul: batch dims"),
        (
            lambda: mg.ones(()) @ mg.ones(3),
            ValueError,
            r"matmul: both arguments need at least 1 dim",
        ),
        (
            lambda: mg.ones(3) + mg.ones(4),
            ValueError,
            r"add: shapes \(3,\) and \(4,\) can't be broadcast",
        ),
        (lambda: mg.ones(2, 3) * mg.ones(3, 2), ValueError, r"mul: shapes \(2, 3\) and \(3, 2\)"),
        (
            lambda: mg.ones(2, 3).sum(dim=2),
            IndexError,
            r"sum: dim 2 is out of range for a tensor with 2 dims",
        ),
        (
            lambda: mg.ones(2, 3).reshape(4, 2),
            ValueError,
            r"reshape: shape \(4, 2\) is invalid for input of shape \(2, 3\) \(6 elements\)",
        ),
        (
            lambda: mg.ones(2, 3).permute(0, 0),
            ValueError,
            r"permute: dims \(0, 0\) are not a permutation",
        ),
        (
            lambda: mg.ones(2, 3).expand(4, 3),
            ValueError,
            r"expand: shape \(2, 3\) can't be expanded to \(4, 3\)",
        ),
        (lambda: mg.ones(3)[5], IndexError, r"getitem: index 5 is out of bounds.*shape \(3,\)"),
        (
            lambda: mg.ones(3)[mg.tensor([0.5])],
            IndexError,
            r"indices must be integer or boolean, got float32",
        ),
        (
            lambda: mg.cat([mg.ones(2, 3), mg.ones(3, 2)], 0),
            ValueError,
            r"cat: tensor 1 has shape \(3, 2\)",
        ),
        (
            lambda: mg.stack([mg.ones(2), mg.ones(3)]),
            ValueError,
            r"stack: tensor 1 has shape \(3,\)",
        ),
        (
            lambda: mg.ones(2, 3).gather(1, mg.tensor([[3], [0]])),
            IndexError,
            r"gather: index values must be in \[0, 3\)",
        ),
        (lambda: mg.ones(2).item(), ValueError, r"item: only one-element tensors.*shape \(2,\)"),
        (lambda: mg.ones(3).var(dim=0, correction=3), ValueError, r"var: 3 element\(s\)"),
        (lambda: mg.zeros(-1), ValueError, r"zeros: sizes must be non-negative"),
        (lambda: mg.tensor("abc"), TypeError, r"can't make a tensor from str"),
        (lambda: mg.ones(2).split(0), ValueError, r"split: split_size must be positive"),
        (lambda: mg.pad(mg.ones(2), (1,)), ValueError, r"pad:"),
        (
            lambda: mg.where(mg.ones(2) > 0, mg.ones(3), 0.0),
            ValueError,
            r"where: shapes \(2,\) and \(3,\)",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_setitem_shape_mismatch_is_clear():
    x = mg.zeros(4)
    with pytest.raises(
        ValueError,
        match=r"setitem: a value of shape \(3,\) can't be assigned to x\[index\] of shape \(2,\)",
    ):
        x[:2] = mg.ones(3)


def test_in_place_broadcast_beyond_self_is_refused():
    x = mg.zeros(3)
    with pytest.raises(RuntimeError, match=r"add_: the result of shape \(2, 3\)"):
        x.add_(mg.ones(2, 3))
    with pytest.raises(RuntimeError, match="can't be cast"):
        mg.zeros(3, dtype=mg.int64).add_(0.5)


def test_tensor_can_not_be_used_as_a_bool_when_ambiguous():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(mg.ones(2))
