"""Integer and boolean tensors in float ops: the math functions promote them to the default
float dtype as PyTorch does (NumPy alone gives float64, or float16 for booleans), the
activations PyTorch defines on floats only refuse them by name, and a loss's class weights
must match the classes."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "cos", "sigmoid", "tanh", "erf"])
@pytest.mark.parametrize("values", [[1, 2, 3], [True, False, True]])
def test_math_functions_promote_to_the_default_float(name, values):
    x = mg.tensor(values)
    out = getattr(mg, name)(x) if hasattr(mg, name) else getattr(x, name)()
    assert out.dtype == mg.float32
    expected = (
        getattr(mg, name)(mg.tensor(np.array(values, np.float32)))
        if hasattr(mg, name)
        else (getattr(mg.tensor(np.array(values, np.float32)), name)())
    )
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


@pytest.mark.parametrize("fn", [F.gelu, F.silu, F.elu, F.softplus, F.leaky_relu])
def test_float_only_activations_refuse_integers(fn):
    with pytest.raises(TypeError, match="needs a floating-point tensor, got dtype int64"):
        fn(mg.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="got dtype bool"):
        fn(mg.tensor([True, False]))


def test_gelu_of_floats_is_not_half_of_x():
    assert F.gelu(mg.tensor([1.0])).item() == pytest.approx(0.8413447)


def test_losses_check_the_class_weights():
    with pytest.raises(
        ValueError, match=r"nll_loss: weight of shape \(3,\) does not match 4 classes"
    ):
        F.nll_loss(mg.randn(3, 4), mg.tensor([0, 1, 2]), weight=mg.ones(3))
    with pytest.raises(ValueError, match="does not match 4 classes"):
        F.cross_entropy(mg.randn(3, 4), mg.tensor([0, 1, 2]), weight=mg.ones(3))


def test_cross_entropy_of_one_unbatched_sample():
    x = np.array([0.5, -1.0, 2.0, 0.1], np.float32)
    expected = -(x[2] - np.log(np.exp(x).sum()))
    assert F.cross_entropy(mg.tensor(x), mg.tensor(2)).item() == pytest.approx(expected, rel=1e-6)


def test_normalization_refuses_integers_by_name():
    with pytest.raises(TypeError, match="batch_norm: needs a floating-point tensor"):
        F.batch_norm(mg.tensor([[1, 2], [3, 5]]), None, None, training=True)
    with pytest.raises(TypeError, match="layer_norm: needs a floating-point tensor"):
        F.layer_norm(mg.tensor([[1, 2], [3, 5]]), 2)
