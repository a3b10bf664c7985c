"""Samplers: the order in which a DataLoader visits a map-style data set.

A random sampler draws one seed per epoch from its generator (the global one by default, so
``manual_seed`` fixes every epoch's order) and shuffles with it. The seed is remembered, so a
DataLoader can save its position and later replay the same epoch exactly (exact resume).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from minigrad import random


class Sampler:
    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class _SeededSampler(Sampler):
    """A sampler whose epochs are drawn from a per-epoch seed (see the module docstring)."""

    def __init__(self, generator: np.random.Generator | None) -> None:
        self.generator = generator
        self.epoch_seed: int | None = None  # the seed of the epoch in progress
        self._replay_seed: int | None = None

    def _epoch_rng(self) -> np.random.Generator:
        if self._replay_seed is not None:
            seed, self._replay_seed = self._replay_seed, None
        else:
            seed = int(random.rng(self.generator).integers(0, 2**63 - 1))
        self.epoch_seed = seed
        return np.random.default_rng(seed)

    def replay(self, seed: int) -> None:
        """Make the next epoch use ``seed`` instead of drawing one."""
        self._replay_seed = int(seed)


class RandomSampler(_SeededSampler):
    """A random permutation each epoch; with ``replacement``, ``num_samples`` independent
    draws."""

    def __init__(
        self,
        data_source: Any,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        self.data_source, self.replacement = data_source, replacement
        self._num_samples = num_samples
        if num_samples is not None and num_samples <= 0:
            raise ValueError(f"RandomSampler: num_samples must be positive, got {num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        rng, n = self._epoch_rng(), len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        order = np.concatenate(
            [rng.permutation(n) for _ in range(-(-self.num_samples // n))] if n else [[]]
        )
        return iter(order[: self.num_samples].astype(int).tolist())

    def __len__(self) -> int:
        return self.num_samples


class WeightedRandomSampler(_SeededSampler):
    """``num_samples`` indices drawn with probability proportional to ``weights``."""

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(
                "WeightedRandomSampler: weights must be a 1-D sequence of non-negative finite "
                "numbers with a positive sum"
            )
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                f"from {np.count_nonzero(w)} with non-zero weight"
            )
        self.weights, self.num_samples, self.replacement = w, int(num_samples), replacement

    def __iter__(self) -> Iterator[int]:
        rng = self._epoch_rng()
        p = self.weights / self.weights.sum()
        idx = rng.choice(len(p), self.num_samples, replace=self.replacement, p=p)
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups a sampler's indices into lists of ``batch_size`` (the last one shorter unless
    ``drop_last``)."""

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got {batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
