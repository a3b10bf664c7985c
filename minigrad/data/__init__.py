"""``minigrad.data``: data sets and the DataLoader, with PyTorch's names and semantics;
``minigrad.data.transforms`` (Pillow augmentation), ``minigrad.data.datasets`` (MNIST, digits,
image folders, CSV tables, text corpora) and ``minigrad.data.text`` (tokenizers)."""

from minigrad.data import datasets, text, transforms
from minigrad.data.dataloader import DataLoader, default_collate
from minigrad.data.dataset import (
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from minigrad.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "TensorDataset",
    "WeightedRandomSampler",
    "datasets",
    "default_collate",
    "random_split",
    "text",
    "transforms",
]
