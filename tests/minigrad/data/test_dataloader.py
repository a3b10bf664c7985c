"""Data sets, samplers and the DataLoader: PyTorch's semantics, seeded orders, and a position
that can be saved and restored."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Subset,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)


def data(n=10):
    return TensorDataset(np.arange(n), np.arange(n, dtype=np.float32) * 2)


def firsts(loader):
    return [b[0].data.tolist() for b in loader]


def test_batches_in_order_with_a_short_last_one_or_dropped():
    assert firsts(DataLoader(data(), batch_size=4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert firsts(DataLoader(data(), batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(data(), batch_size=4)) == 3
    x, y = next(iter(DataLoader(data(), batch_size=3)))
    assert x.dtype == np.int64 and y.dtype == np.float32 and y.data.tolist() == [0, 2, 4]


def test_same_seed_same_order_and_each_epoch_differs():
    mg.manual_seed(1)
    loader = DataLoader(data(20), batch_size=5, shuffle=True)
    a, b = firsts(loader), firsts(loader)
    mg.manual_seed(1)
    assert firsts(loader) == a and firsts(loader) == b
    assert a != b and sorted(sum(a, [])) == list(range(20))
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    assert firsts(DataLoader(data(), 3, shuffle=True, generator=g1)) == firsts(
        DataLoader(data(), 3, shuffle=True, generator=g2)
    )


def test_position_saved_mid_epoch_resumes_on_the_next_batch():
    mg.manual_seed(3)
    loader = DataLoader(data(20), batch_size=3, shuffle=True)
    full = firsts(loader)
    mg.manual_seed(3)
    it = iter(loader)
    seen = [next(it)[0].data.tolist() for _ in range(4)]
    state = loader.state_dict()
    assert state["batches_yielded"] == 4
    fresh = DataLoader(data(20), batch_size=3, shuffle=True)
    fresh.load_state_dict(state)
    assert seen + firsts(fresh) == full
    assert DataLoader(data(), 2).state_dict() == {"batches_yielded": 0, "epoch_seed": None}


def test_split_subset_concat():
    mg.manual_seed(0)
    a, b = random_split(data(10), [7, 3])
    assert len(a) == 7 and len(b) == 3
    assert sorted(
        [int(a[i][0].item()) for i in range(7)] + [int(b[i][0].item()) for i in range(3)]
    ) == list(range(10))
    assert [len(s) for s in random_split(data(10), [0.5, 0.3, 0.2])] == [5, 3, 2]
    with pytest.raises(ValueError, match="lengths sum to 9, but the data set has 10"):
        random_split(data(10), [5, 4])
    both = ConcatDataset([Subset(data(5), [4, 0]), data(3)])
    assert len(both) == 5 and both[0][0].item() == 4 and both[4][0].item() == 2
    with pytest.raises(IndexError, match="index 5 is out of range for 5"):
        both[5]


def test_samplers():
    mg.manual_seed(0)
    drawn = list(WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=4000))
    counts = np.bincount(drawn, minlength=3)
    assert counts[0] == 0 and abs(counts[2] / counts[1] - 3) < 0.4
    assert len(list(RandomSampler(range(5), replacement=True, num_samples=12))) == 12
    with pytest.raises(ValueError, match="non-negative finite"):
        WeightedRandomSampler([-1.0, 1.0], 2)


def test_iterable_dataset_and_collate():
    class Stream(IterableDataset):
        def __iter__(self):
            for i in range(7):
                yield {"x": np.full(2, i, np.float32), "label": i % 2, "text": f"s{i}"}

    batches = list(DataLoader(Stream(), batch_size=3))
    assert [b["x"].shape for b in batches] == [(3, 2), (3, 2), (1, 2)]
    assert batches[0]["label"].data.tolist() == [0, 1, 0] and batches[0]["text"] == [
        "s0",
        "s1",
        "s2",
    ]
    assert default_collate([(1.5, 2), (2.5, 3)])[0].dtype == np.float32
    with pytest.raises(ValueError, match="takes no shuffle"):
        DataLoader(Stream(), shuffle=True)
    with pytest.raises(NotImplementedError, match="num_workers"):
        DataLoader(data(), num_workers=2)


def test_dataset_base_and_errors():
    class Squares(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.float32(i * i)

    assert next(iter(DataLoader(Squares(), batch_size=4))).data.tolist() == [0, 1, 4, 9]
    with pytest.raises(ValueError, match="same first dim"):
        TensorDataset(np.zeros(3), np.zeros(4))
