"""Property tests driven by hypothesis, using the public strategies in minigrad.testing."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.testing import gradcheck
from minigrad.testing import strategies as mst

BINARY = {
    "add": (mg.Tensor.__add__, np.add),
    "sub": (mg.Tensor.__sub__, np.subtract),
    "mul": (mg.Tensor.__mul__, np.multiply),
    "maximum": (mg.maximum, np.maximum),
}


@given(
    st.sampled_from(sorted(BINARY)), mst.broadcast_shape_pairs(max_dims=3, max_side=3), st.data()
)
def test_broadcasting_binary_ops_match_numpy_and_gradcheck(name, shapes, data):
    op, ref = BINARY[name]
    a = data.draw(mst.tensors(shapes[0], min_value=-3, max_value=3, requires_grad=True))
    b = data.draw(mst.tensors(shapes[1], min_value=-3, max_value=3, requires_grad=True))
    if name == "maximum":  # ties are a kink: keep the operands apart
        b = mg.tensor(
            np.where(np.abs(a.data - b.data) < 1e-3, b.data + 0.5, b.data), requires_grad=True
        )
    out = op(a, b)
    np.testing.assert_allclose(out.data, ref(a.data, b.data))
    gradcheck(op, [a, b])


@given(
    mst.shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
        lambda s: st.tuples(mst.tensors(s, requires_grad=True), mst.dims(len(s)), st.booleans())
    )
)
def test_sum_and_mean_over_any_dims(args):
    x, dim, keepdim = args
    axis = tuple(dim) if isinstance(dim, tuple) else dim
    np.testing.assert_allclose(
        x.sum(dim, keepdim).data, np.sum(x.data, axis=axis, keepdims=keepdim)
    )
    np.testing.assert_allclose(
        x.mean(dim, keepdim).data, np.mean(x.data, axis=axis, keepdims=keepdim)
    )
    gradcheck(lambda t: t.mean(dim, keepdim), [x])


@given(
    mst.shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
        lambda s: st.tuples(mst.tensors(s, requires_grad=True), mst.index_expressions(s))
    )
)
def test_indexing_matches_numpy_and_accumulates(args):
    x, index = args
    out = x[index]
    expected = x.data[index]
    np.testing.assert_array_equal(out.data, expected)
    if out.data.size:
        gradcheck(lambda t: t[index], [x], mode="directional")
        # The gradient counts how often each element was read.
        x.grad = None
        out.sum().backward()
        counts = np.zeros(x.shape)
        np.add.at(counts, index if isinstance(index, tuple) else (index,), 1.0)
        np.testing.assert_array_equal(x.grad.data, counts)


@given(
    mst.tensors(
        mst.shapes(min_dims=1, max_dims=3, max_side=4),
        min_value=-50,
        max_value=50,
        requires_grad=True,
    )
)
def test_softmax_rows_sum_to_one_and_gradcheck(x):
    p = x.softmax(dim=-1)
    np.testing.assert_allclose(p.data.sum(-1), 1.0)
    gradcheck(lambda t: t.log_softmax(dim=-1), [x], mode="directional")
