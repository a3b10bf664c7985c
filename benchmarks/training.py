"""End-to-end training steps: minigrad against PyTorch, same model, data and optimizer.

    python -m benchmarks.training [--threads N] [--steps S] [--repeats R]

A training step is: zero the gradients, forward, cross-entropy loss, backward, optimizer step.
Both frameworks start from the same weights (copied through the state dict) and see the same
MNIST batches (``../shared/data/mnist/mnist_5k.csv.gz``, or random images when the file is
absent; the timing does not depend on the pixel values). Each figure is the median over R
repeats of S steps, after a warm-up; the two frameworks alternate repeats in one process.
The optimizer column is the share of the step spent in ``optimizer.step()`` (timed alone over
the same steps).

Cases:
  mlp     784-256-10, ReLU, batch 32, SGD(lr=0.01, momentum=0.9)
  lenet5  conv 6@5x5 pad 2, ReLU, max-pool 2, conv 16@5x5, ReLU, max-pool 2, 120, 84, 10,
          batch 64, Adam(lr=1e-3); also reported as training samples per second
  gpt     models.text.GPT (4 layers, 4 heads, width 128, context 64, vocabulary 65), batch 12
          of 64 characters, AdamW(lr=1e-3); reported as training tokens per second
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

import numpy as np

import minigrad as mg
import minigrad.nn as nn
from benchmarks.harness import machine, table, torch_or_none, write_json

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist" / "mnist_5k.csv.gz"


def mnist_batches(batch: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if DATA.exists():
        with gzip.open(DATA, "rt") as f:
            raw = np.loadtxt(f, delimiter=",", dtype=np.float32)
        x, y = raw[:, :784] / 255.0, raw[:, 784].astype(np.int64)
    else:
        rng = np.random.default_rng(0)
        x, y = rng.random((5000, 784), dtype=np.float32), rng.integers(0, 10, 5000)
    order = np.random.default_rng(0).permutation(len(x))
    out = []
    for k in range(count):
        idx = order[(k * batch) % (len(x) - batch) :][:batch]
        out.append((np.ascontiguousarray(x[idx]), y[idx]))
    return out


def torch_gpt(torch, vocab=65, context=64, width=128, layers=4, heads=4):
    """The same architecture as models.text.GPT, with the same parameter names."""

    class GPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = torch.nn.Embedding(vocab, width)
            self.positions = torch.nn.Embedding(context, width)
            layer = torch.nn.TransformerEncoderLayer(
                width, heads, 4 * width, 0.0, activation="gelu", norm_first=True, batch_first=True
            )
            self.blocks = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = torch.nn.LayerNorm(width)
            self.head = torch.nn.Linear(width, vocab)

        def forward(self, idx):
            t = idx.shape[1]
            h = self.tokens(idx) + self.positions(torch.arange(t))
            mask = torch.nn.Transformer.generate_square_subsequent_mask(t)
            return self.head(self.norm(self.blocks(h, mask=mask, is_causal=True)))

    return GPT()


def models(name: str, torch):
    if name == "gpt":
        from models.text import GPT

        return GPT(), torch_gpt(torch), 12, (64,)
    if name == "mlp":
        ours = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        theirs = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
        )
        return ours, theirs, 32, (784,)

    def lenet(m):
        return m.Sequential(
            m.Conv2d(1, 6, 5, padding=2),
            m.ReLU(),
            m.MaxPool2d(2),
            m.Conv2d(6, 16, 5),
            m.ReLU(),
            m.MaxPool2d(2),
            m.Flatten(),
            m.Linear(400, 120),
            m.ReLU(),
            m.Linear(120, 84),
            m.ReLU(),
            m.Linear(84, 10),
        )

    return lenet(nn), lenet(torch.nn), 64, (1, 28, 28)


def optimizers(name: str, ours, theirs, torch):
    if name == "gpt":
        return (
            mg.optim.AdamW(ours.parameters(), lr=1e-3),
            torch.optim.AdamW(theirs.parameters(), lr=1e-3),
        )
    if name == "mlp":
        return (
            mg.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9),
            torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9),
        )
    return mg.optim.Adam(ours.parameters(), lr=1e-3), torch.optim.Adam(theirs.parameters(), lr=1e-3)


def run_case(name: str, torch, steps: int, repeats: int) -> dict:
    ours, theirs, batch, shape = models(name, torch)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    opt_ours, opt_theirs = optimizers(name, ours, theirs, torch)
    if name == "gpt":
        rng = np.random.default_rng(0)
        data = [
            (rng.integers(0, 65, (batch, 64)), rng.integers(0, 65, (batch * 64,)))
            for _ in range(steps)
        ]
        ours_batches = [(mg.tensor(x), mg.tensor(y)) for x, y in data]
        theirs_batches = [(torch.tensor(x), torch.tensor(y)) for x, y in data]
    else:
        data = mnist_batches(batch, steps)
        ours_batches = [(mg.tensor(x.reshape((-1,) + shape)), mg.tensor(y)) for x, y in data]
        theirs_batches = [
            (torch.tensor(x.reshape((-1,) + shape)), torch.tensor(y)) for x, y in data
        ]

    def timed(model, opt, batches, functional):
        step_total, opt_total = 0.0, 0.0
        for x, y in batches:
            start = time.perf_counter()
            opt.zero_grad()
            logits = model(x)
            functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y).backward()
            mid = time.perf_counter()
            opt.step()
            end = time.perf_counter()
            step_total += end - start
            opt_total += end - mid
        return step_total / len(batches), opt_total / len(batches)

    runs = {"minigrad": [], "torch": []}
    sides = {
        "minigrad": (ours, opt_ours, ours_batches, nn.functional),
        "torch": (theirs, opt_theirs, theirs_batches, torch.nn.functional),
    }
    for side in sides.values():  # warm-up: JIT compilation and caches
        timed(side[0], side[1], side[2][:5], side[3])
    for _ in range(repeats):
        for key, side in sides.items():
            runs[key].append(timed(*side))
    med = {
        k: (statistics.median(s for s, _ in v), statistics.median(o for _, o in v))
        for k, v in runs.items()
    }
    per_step = batch * (64 if name == "gpt" else 1)  # tokens for the GPT, samples otherwise
    return {
        "case": name,
        "batch": batch,
        "minigrad ms": med["minigrad"][0] * 1e3,
        "torch ms": med["torch"][0] * 1e3,
        "ratio": med["minigrad"][0] / med["torch"][0],
        "minigrad per s": per_step / med["minigrad"][0],
        "torch per s": per_step / med["torch"][0],
        "minigrad optimizer %": 100 * med["minigrad"][1] / med["minigrad"][0],
        "torch optimizer %": 100 * med["torch"][1] / med["torch"][0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", nargs="*", default=["mlp", "lenet5", "gpt"])
    args = parser.parse_args()
    torch = torch_or_none(args.threads)
    if torch is None:
        raise SystemExit("benchmarks.training compares against PyTorch: pip install torch==2.13.0")
    mg.set_num_threads(args.threads)
    mg.manual_seed(0)
    torch.manual_seed(0)
    rows = [run_case(name, torch, args.steps, args.repeats) for name in args.only]
    print(
        f"threads={args.threads}, float32, one training step, "
        f"median of {args.repeats} x {args.steps} steps"
    )
    print(
        table(
            rows,
            [
                "case",
                "batch",
                "minigrad ms",
                "torch ms",
                "ratio",
                "minigrad per s",
                "torch per s",
                "minigrad optimizer %",
                "torch optimizer %",
            ],
        )
    )
    path = write_json(f"training-{args.threads}t", {"machine": machine(), "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
