"""Hypothesis strategies for testing ops: shapes, tensors, dims and index expressions.

    from hypothesis import given
    from minigrad.testing import strategies as mst

    @given(mst.tensors(shape=mst.shapes(max_dims=3), requires_grad=True))
    def test_my_op(x): ...

Values are bounded and finite by default, so a property test exercises the math, not
overflow. Needs the ``hypothesis`` package (the ``test`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad.tensor import Tensor


def shapes(
    min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5
) -> st.SearchStrategy:
    """Array shapes, e.g. (), (3,), (2, 1, 4)."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    shape: tuple, min_dims: int = 0, max_dims: int = 4, max_side: int = 5
) -> st.SearchStrategy:
    """Shapes that broadcast against ``shape``."""
    return hnp.broadcastable_shapes(shape, min_dims=min_dims, max_dims=max_dims, max_side=max_side)


def broadcast_shape_pairs(max_dims: int = 4, max_side: int = 5) -> st.SearchStrategy:
    """Pairs of shapes that broadcast together, e.g. ((2, 1, 3), (4, 1))."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=max_dims, max_side=max_side
    ).map(lambda r: r.input_shapes)


def arrays(
    shape: Any,
    dtype: Any = np.float64,
    min_value: float = -10.0,
    max_value: float = 10.0,
) -> st.SearchStrategy:
    """Finite float arrays with values in [min_value, max_value]; ``shape`` may be a strategy."""
    elements = st.floats(
        min_value,
        max_value,
        allow_nan=False,
        allow_infinity=False,
        width=np.dtype(dtype).itemsize * 8,
    )
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


def tensors(
    shape: Any = None,
    dtype: Any = np.float64,
    min_value: float = -10.0,
    max_value: float = 10.0,
    requires_grad: bool = False,
) -> st.SearchStrategy:
    """Tensors with bounded finite values (float64 by default, as gradchecks need)."""
    shape = shapes() if shape is None else shape
    return arrays(shape, dtype, min_value, max_value).map(
        lambda a: Tensor(a, requires_grad=requires_grad)
    )


@st.composite
def dims(draw: Any, ndim: int, allow_none: bool = True, allow_tuple: bool = True) -> Any:
    """A ``dim=`` argument for a tensor with ``ndim`` dims: None, an int (maybe negative),
    or a tuple of distinct dims."""
    options = []
    if allow_none:
        options.append(st.none())
    if ndim > 0:
        options.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            options.append(
                st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
                    tuple
                )
            )
    if not options:
        return None
    return draw(st.one_of(*options))


@st.composite
def index_expressions(draw: Any, shape: tuple) -> Any:
    """An index for a tensor of ``shape``: basic (ints, slices, None, Ellipsis), integer
    arrays (repeats included) or a boolean mask."""
    kinds = [hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True)]
    if len(shape) > 0 and all(n > 0 for n in shape):
        kinds.append(
            hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2, max_side=4))
        )
        kinds.append(hnp.arrays(np.bool_, shape))
    return draw(st.one_of(*kinds))
