"""Data loading throughput, and whether the loader holds training up.

    python -m benchmarks.data [--repeats R]

- images/s: 32x32 RGB uint8 images through a DataLoader (batch 64) with RandomResizedCrop(32),
  RandomHorizontalFlip, ToTensor and Normalize, per sample in this process;
- tokens/s: byte-pair encoding of tiny shakespeare (``../shared/data/tinyshakespeare``) with
  a 512-token BPE trained on its first 100,000 characters, from an empty cache;
- LeNet-5 on MNIST (``../shared/data/mnist``, the 10,000 test images as training data here):
  the share of each training step spent waiting for the next batch from the DataLoader
  (batch 64, shuffled), with minigrad's own LeNet training step, at 1 thread.

Figures are medians of R repeats after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import minigrad as mg
import minigrad.nn as nn
from benchmarks.harness import machine, table, write_json
from minigrad.data import DataLoader, Dataset
from minigrad.data import transforms as T

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class Images(Dataset):
    def __init__(self, n: int, transform) -> None:
        self.images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), i % 10


def images_per_second(repeats: int) -> float:
    aug = T.Compose(
        [
            T.RandomResizedCrop(32),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
        ]
    )
    loader = DataLoader(Images(2048, aug), batch_size=64, shuffle=True)
    rates = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        n = sum(len(batch[1]) for batch in loader)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def tokens_per_second(repeats: int) -> float | None:
    from minigrad.data.text import BPETokenizer

    path = SHARED / "tinyshakespeare" / "input.txt"
    if not path.exists():
        return None
    text = path.read_text()
    trained = BPETokenizer.train(text[:100_000], 512)
    rates = []
    for _ in range(repeats):
        tok = BPETokenizer(trained.itos, trained.merges)  # an empty cache every time
        start = time.perf_counter()
        n = len(tok.encode(text))
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def lenet_data_share(steps: int = 60) -> float | None:
    from minigrad.data.datasets import MNIST
    from models.vision import LeNet5

    root = SHARED / "mnist"
    if not root.exists():
        return None
    mg.set_num_threads(1)
    mg.manual_seed(0)
    model = LeNet5()
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(MNIST(root, train=False), batch_size=64, shuffle=True)
    waiting = total = 0.0
    it = iter(loader)
    for step in range(steps + 5):
        start = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        got = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        end = time.perf_counter()
        if step >= 5:  # after the warm-up
            waiting += got - start
            total += end - start
    return 100.0 * waiting / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    mg.manual_seed(0)
    rows = [
        {"measure": "augmented 32x32 RGB images / s", "value": images_per_second(args.repeats)},
        {"measure": "BPE tokens / s (tiny shakespeare)", "value": tokens_per_second(args.repeats)},
        {"measure": "LeNet-5 step share waiting for data (%)", "value": lenet_data_share()},
    ]
    print(table(rows, ["measure", "value"]))
    path = write_json("data", {"machine": machine(), "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
