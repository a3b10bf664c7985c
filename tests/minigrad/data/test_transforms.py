"""Transforms: property tests (flip twice is the identity, rotation by 0 is the identity,
crops stay in bounds, outputs keep dtype and range) and seeded reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import minigrad as mg
from minigrad.data import transforms as T

images = st.builds(
    lambda h, w, seed: np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8),
    st.integers(1, 24),
    st.integers(1, 24),
    st.integers(0, 1000),
)


@given(images)
def test_flipping_twice_is_the_identity(a):
    for flip in (T.RandomHorizontalFlip(p=1.0), T.RandomVerticalFlip(p=1.0)):
        np.testing.assert_array_equal(np.asarray(flip(flip(Image.fromarray(a)))), a)
        np.testing.assert_array_equal(flip(flip(a)), a)  # on arrays too


@given(images)
def test_rotation_by_zero_is_the_identity(a):
    np.testing.assert_array_equal(np.asarray(T.RandomRotation((0, 0))(a)), a)
    np.testing.assert_array_equal(np.asarray(T.RandomAffine(0)(a)), a)


@given(images, st.integers(1, 8), st.integers(1, 8), st.integers(0, 3))
def test_crops_stay_in_bounds_and_keep_dtype(a, h, w, pad):
    img = Image.fromarray(a)
    h, w = min(h, a.shape[0] + 2 * pad), min(w, a.shape[1] + 2 * pad)
    out = np.asarray(T.RandomCrop((h, w), padding=pad)(img))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    if pad == 0:  # the crop is a window of the image
        windows = np.lib.stride_tricks.sliding_window_view(a, (h, w, 3))
        assert (windows == out).all(axis=(-3, -2, -1)).any()
    out = np.asarray(T.RandomResizedCrop(7)(img))
    assert out.shape == (7, 7, 3) and out.dtype == np.uint8


@given(images)
def test_to_tensor_and_normalize_keep_range_and_dtype(a):
    t = T.ToTensor()(a)
    assert t.shape == (3,) + a.shape[:2] and t.dtype == np.float32
    assert 0.0 <= t.data.min() and t.data.max() <= 1.0
    np.testing.assert_allclose(t.data[:, 0, 0], a[0, 0] / 255.0, rtol=1e-6)
    n = T.Normalize([0.5] * 3, [0.5] * 3)(t)
    assert n.dtype == np.float32 and -1.0 <= n.data.min() and n.data.max() <= 1.0
    jittered = T.Compose([T.ColorJitter(0.4, 0.4, 0.4, 0.1), T.Grayscale(3), T.ToTensor()])(a)
    assert jittered.dtype == np.float32 and 0 <= jittered.data.min() and jittered.data.max() <= 1


def test_the_same_seed_gives_the_same_augmentation():
    a = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    aug = T.Compose(
        [
            T.RandomResizedCrop(24),
            T.RandomHorizontalFlip(),
            T.RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 5),
            T.ToTensor(),
        ]
    )
    mg.manual_seed(4)
    first = aug(a).data
    mg.manual_seed(4)
    np.testing.assert_array_equal(aug(a).data, first)
    assert not np.array_equal(aug(a).data, first)


def test_resize_center_crop_and_errors():
    img = Image.new("RGB", (40, 20))
    assert T.Resize(10)(img).size == (20, 10) and T.Resize((8, 6))(img).size == (6, 8)
    assert T.CenterCrop(10)(img).size == (10, 10)
    with pytest.raises(ValueError, match="larger than the image"):
        T.RandomCrop(50)(img)
    with pytest.raises(TypeError, match="expected a Pillow image"):
        T.CenterCrop(3)(np.zeros((4, 4), np.float64))
    with pytest.raises(ValueError, match=r"expected a \(3, H, W\) tensor"):
        T.Normalize([0, 0, 0], [1, 1, 1])(mg.zeros((2, 4, 4)))
