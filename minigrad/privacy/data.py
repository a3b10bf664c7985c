"""Poisson sampling for DP-SGD: every sample joins each batch independently with probability
``sample_rate``, so batch sizes vary (and a batch may be empty). The privacy analysis of the
accountant assumes exactly this sampling (Mironov, Talwar and Zhang 2019)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad import random
from minigrad.data.dataloader import DataLoader, default_collate
from minigrad.tensor import Tensor


class UniformWithReplacementSampler:
    """A batch sampler: ``steps`` batches (default 1 / sample_rate, as Opacus) of the indices
    i in [0, num_samples) for which a uniform draw falls below ``sample_rate``. Draws come
    from ``generator`` or minigrad's global generator."""

    def __init__(
        self,
        num_samples: int,
        sample_rate: float,
        generator: np.random.Generator | None = None,
        steps: int | None = None,
    ) -> None:
        if num_samples <= 0:
            raise ValueError(
                f"UniformWithReplacementSampler: num_samples must be > 0, got {num_samples}"
            )
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(
                f"UniformWithReplacementSampler: sample_rate must be in (0, 1], got {sample_rate}"
            )
        self.num_samples, self.sample_rate, self.generator = num_samples, sample_rate, generator
        self.steps = int(1 / sample_rate) if steps is None else steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        gen = random.rng(self.generator)
        for _ in range(self.steps):
            yield np.flatnonzero(gen.random(self.num_samples) < self.sample_rate).tolist()


def _empty_like(sample: Any) -> Any:
    """A batch of zero samples shaped like ``sample`` collated (dims after the first kept)."""
    if isinstance(sample, Tensor):
        return Tensor._from_array(sample.data[:0])
    if isinstance(sample, (tuple, list)):
        fields = [_empty_like(f) for f in sample]
        return tuple(fields) if isinstance(sample, tuple) else fields
    if isinstance(sample, dict):
        return {k: _empty_like(v) for k, v in sample.items()}
    return sample[:0]


def _collate_allowing_empty(dataset: Any, collate: Callable) -> Callable:
    def collate_fn(batch: list) -> Any:
        if batch:
            return collate(batch)
        return _empty_like(collate([dataset[0]]))

    return collate_fn


class DPDataLoader(DataLoader):
    """A DataLoader over ``dataset`` with Poisson sampling at ``sample_rate``: ``len()``
    batches of random size, mean ``sample_rate * len(dataset)``; an empty batch comes out
    with the shapes of a real one and zero rows. ``from_data_loader`` keeps a loader's data
    set and collate function and sets the rate to 1 / len(loader), as Opacus."""

    def __init__(
        self,
        dataset: Any,
        *,
        sample_rate: float,
        collate_fn: Callable | None = None,
        generator: np.random.Generator | None = None,
        steps: int | None = None,
    ) -> None:
        sampler = UniformWithReplacementSampler(len(dataset), sample_rate, generator, steps)
        super().__init__(
            dataset,
            batch_sampler=sampler,
            collate_fn=_collate_allowing_empty(dataset, collate_fn or default_collate),
        )
        self.sample_rate = sample_rate

    @classmethod
    def from_data_loader(
        cls, data_loader: DataLoader, generator: np.random.Generator | None = None
    ) -> DPDataLoader:
        if len(data_loader) == 0:
            raise ValueError("DPDataLoader.from_data_loader: the loader gives no batch")
        return cls(
            data_loader.dataset,
            sample_rate=1 / len(data_loader),
            collate_fn=data_loader.collate_fn,
            generator=generator,
            steps=len(data_loader),  # not int(1 / (1 / n)), which can round down to n - 1
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError(
            "DPDataLoader: a Poisson-sampled epoch cannot be resumed part-way (its batches are "
            "fresh random draws, and the accountant must count them); start a new epoch"
        )
