"""DataLoader: batches from a data set, in a seeded order, with a position that can be saved
and restored (so an interrupted training run resumes on exactly the next batch)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad import dtypes
from minigrad.data.dataset import IterableDataset
from minigrad.data.sampler import BatchSampler, RandomSampler, SequentialSampler, _SeededSampler
from minigrad.tensor import Tensor


def default_collate(batch: list[Any]) -> Any:
    """Stack a list of samples into a batch, field by field: tensors and arrays are stacked
    along a new first dim; Python ints become an int64 tensor, Python floats a tensor of the
    default float dtype; tuples, lists and dicts are collated per field; strings stay lists."""
    first = batch[0]
    if isinstance(first, Tensor):
        return Tensor._from_array(np.stack([b.data for b in batch]))
    if isinstance(first, np.ndarray):
        return Tensor._from_array(np.stack(batch))
    if isinstance(first, (bool, np.bool_)):
        return Tensor._from_array(np.array(batch, dtype=np.bool_))
    if isinstance(first, (int, np.integer)):
        return Tensor._from_array(np.array(batch, dtype=np.int64))
    if isinstance(first, (float, np.floating)):
        dtype = first.dtype if isinstance(first, np.floating) else dtypes.get_default_dtype()
        return Tensor._from_array(np.array(batch, dtype=dtype))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise ValueError("default_collate: samples in a batch have different lengths")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterate over ``dataset`` in batches, as PyTorch's DataLoader.

    ``shuffle=True`` draws a new order each epoch from ``generator`` (the global generator by
    default: ``manual_seed`` makes the orders reproducible). ``sampler`` or ``batch_sampler``
    replace the default order. ``state_dict()`` records the position inside the current epoch
    and ``load_state_dict()`` makes the next iteration continue from there with the same order.
    Loading happens in this process (``num_workers`` must be 0).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool = False,
        sampler: Any = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        drop_last: bool = False,
        generator: np.random.Generator | None = None,
    ) -> None:
        if num_workers != 0:
            raise NotImplementedError(
                "DataLoader: num_workers > 0 is not supported; minigrad loads in the training "
                "process (see benchmarks/data.py for the loader's throughput)"
            )
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(
                f"DataLoader: batch_size must be a positive int (or None), got {batch_size!r}"
            )
        self.dataset = dataset
        self.iterable = isinstance(dataset, IterableDataset)
        if self.iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader: an IterableDataset takes no shuffle or sampler")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: give sampler or shuffle=True, not both")
        if batch_sampler is not None and (
            batch_size != 1 or shuffle or sampler is not None or drop_last
        ):
            raise ValueError(
                "DataLoader: batch_sampler excludes batch_size, shuffle, sampler and drop_last"
            )
        self.batch_size, self.drop_last = batch_size, drop_last
        self.collate_fn = collate_fn or default_collate
        if not self.iterable:
            if sampler is None:
                sampler = (
                    RandomSampler(dataset, generator=generator)
                    if shuffle
                    else SequentialSampler(dataset)
                )
            if batch_sampler is None and batch_size is not None:
                batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self._yielded = 0  # batches of the current epoch handed out so far
        self._skip = 0  # batches to skip on the next iteration (after load_state_dict)
        self._in_epoch = False

    def __len__(self) -> int:
        if self.iterable:
            raise TypeError("DataLoader: an IterableDataset has no length")
        if self.batch_sampler is None:
            return len(self.sampler)
        return len(self.batch_sampler)

    def _index_batches(self) -> Iterator[Any]:
        if self.batch_sampler is not None:
            return iter(self.batch_sampler)
        return iter(self.sampler)  # batch_size=None: one sample at a time, not collated

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip = self._skip, 0
        self._yielded, self._in_epoch = 0, True
        if self.iterable:
            yield from self._iterate_stream(skip)
        else:
            for k, indices in enumerate(self._index_batches()):
                if k < skip:  # replaying a saved position: the order, without loading data
                    self._yielded += 1
                    continue
                if self.batch_sampler is None:
                    item = self.dataset[indices]
                else:
                    item = self.collate_fn([self.dataset[i] for i in indices])
                self._yielded += 1
                yield item
        self._in_epoch = False

    def _iterate_stream(self, skip: int) -> Iterator[Any]:
        batch, k = [], 0
        for sample in self.dataset:
            if self.batch_size is None:
                k += 1
                if k > skip:
                    self._yielded += 1
                    yield sample
                continue
            batch.append(sample)
            if len(batch) == self.batch_size:
                k += 1
                if k > skip:
                    self._yielded += 1
                    yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last and k + 1 > skip:
            self._yielded += 1
            yield self.collate_fn(batch)

    # -- position -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The position in the current epoch: batches already yielded and the epoch's seed."""
        sampler = self.sampler if isinstance(self.sampler, _SeededSampler) else None
        return {
            "batches_yielded": self._yielded if self._in_epoch else 0,
            "epoch_seed": None if sampler is None or not self._in_epoch else sampler.epoch_seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next iteration continue the saved epoch (same order, next batch)."""
        self._skip = int(state.get("batches_yielded", 0))
        seed = state.get("epoch_seed")
        if seed is not None:
            if not isinstance(self.sampler, _SeededSampler):
                raise ValueError("DataLoader.load_state_dict: the saved loader was shuffled")
            self.sampler.replay(seed)
