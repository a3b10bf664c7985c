"""Compiled training steps: minigrad eager and ``minigrad.compile`` against PyTorch eager and
``torch.compile``, same model, weights, batches and optimizer, one process.

    python -m benchmarks.compile [--threads 1] [--steps S] [--repeats R] [--only CASE ...]

A step is: zero the gradients, forward, cross-entropy, backward, optimizer step, written once
as a function and run four ways: minigrad eager, ``minigrad.compile(step)``, PyTorch eager
and ``torch.compile(step)`` (inductor, which compiles C++ for the CPU). Each figure is the
median over R repeats of S steps after a warm-up that excludes tracing and compilation; the
four alternate within each repeat. "first call" is the first call of each compiled step,
tracing and compiling included (with Numba's cache warm from earlier runs, minigrad's
kernels load from disk).

Cases:
  mnist1d-mlp   models.mnist1d.MNIST1DMLP (40-100-100-10, residual), batch 100, Adam(1e-3)
  makemore-mlp  models.text.MakemoreMLP (context 3, embedding 10, hidden 200), batch 32, SGD(0.1)
  mlp           784-256-10 ReLU, batch 32, SGD(0.01, momentum 0.9)
  lenet5        LeNet-5, batch 64, Adam(1e-3)
  gpt           models.text.GPT (4 layers, 4 heads, width 128), 12 x 64 tokens, AdamW(1e-3)
The inputs are random (timing does not depend on the values); the MLP and LeNet-5 read
MNIST as benchmarks.training does.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import minigrad as mg
from benchmarks.harness import describe, machine, table, torch_or_none, write_json
from benchmarks.training import mnist_batches
from benchmarks.training import models as training_models
from benchmarks.training import optimizers as training_optimizers

CASES = ("mnist1d-mlp", "makemore-mlp", "mlp", "lenet5", "gpt")


def _torch_mnist1d_mlp(torch):
    class MLP(torch.nn.Module):  # models.mnist1d.MNIST1DMLP, same parameter names
        def __init__(self):
            super().__init__()
            self.linear1 = torch.nn.Linear(40, 100)
            self.linear2 = torch.nn.Linear(100, 100)
            self.linear3 = torch.nn.Linear(100, 10)

        def forward(self, x):
            h = torch.relu(self.linear1(x))
            h = h + torch.relu(self.linear2(h))
            return self.linear3(h)

    return MLP()


def _torch_makemore(torch):
    class Makemore(torch.nn.Module):  # models.text.MakemoreMLP, same parameter names
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(27, 10)
            self.hidden = torch.nn.Linear(30, 200)
            self.out = torch.nn.Linear(200, 27)

        def forward(self, idx):
            e = self.embed(idx)
            return self.out(torch.tanh(self.hidden(e.reshape(e.shape[0], -1))))

    return Makemore()


def setup(name: str, torch, steps: int):
    """(ours, theirs, optimizer ours, optimizer theirs, minigrad batches, torch batches)."""
    rng = np.random.default_rng(0)
    if name == "mnist1d-mlp":
        from models.mnist1d import MNIST1DMLP

        ours, theirs = MNIST1DMLP(), _torch_mnist1d_mlp(torch)
        opts = mg.optim.Adam(ours.parameters(), 1e-3), torch.optim.Adam(theirs.parameters(), 1e-3)
        data = [
            (rng.standard_normal((100, 40), dtype=np.float32), rng.integers(0, 10, 100))
            for _ in range(steps)
        ]
    elif name == "makemore-mlp":
        from models.text import MakemoreMLP

        ours, theirs = MakemoreMLP(), _torch_makemore(torch)
        opts = mg.optim.SGD(ours.parameters(), 0.1), torch.optim.SGD(theirs.parameters(), 0.1)
        data = [(rng.integers(0, 27, (32, 3)), rng.integers(0, 27, 32)) for _ in range(steps)]
    else:
        ours, theirs, batch, shape = training_models(name, torch)
        opts = training_optimizers(name, ours, theirs, torch)
        if name == "gpt":
            data = [
                (rng.integers(0, 65, (batch, 64)), rng.integers(0, 65, (batch, 64)))
                for _ in range(steps)
            ]
        else:
            data = [(x.reshape((-1,) + shape), y) for x, y in mnist_batches(batch, steps)]
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours_batches = [(mg.tensor(x), mg.tensor(y)) for x, y in data]
    theirs_batches = [(torch.tensor(x), torch.tensor(y)) for x, y in data]
    return ours, theirs, opts[0], opts[1], ours_batches, theirs_batches


def step_function(model, opt, functional) -> Callable:
    """The training step both frameworks run, eager or compiled."""

    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    return step


def _one_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"


def _first_call(fn: Callable, batch: tuple) -> tuple[float, str | None]:
    start = time.perf_counter()
    try:
        fn(*batch)
    except Exception as e:  # torch.compile may fail on a machine without a compiler
        return float("nan"), _one_line(e)
    return time.perf_counter() - start, None


def run_case(name: str, torch, steps: int, repeats: int) -> dict:
    ours, theirs, opt_ours, opt_theirs, ours_batches, theirs_batches = setup(name, torch, steps)
    eager = step_function(ours, opt_ours, mg.nn.functional)
    compiled = mg.compile(step_function(ours, opt_ours, mg.nn.functional))
    torch_eager = step_function(theirs, opt_theirs, torch.nn.functional)
    first_ours, _ = _first_call(compiled, ours_batches[0])
    try:  # torch.compile refuses some Python versions when it is called, not at the first step
        torch_compiled = torch.compile(step_function(theirs, opt_theirs, torch.nn.functional))
    except Exception as e:
        torch_compiled, first_theirs, failure = None, float("nan"), _one_line(e)
    else:
        first_theirs, failure = _first_call(torch_compiled, theirs_batches[0])
    sides = {
        "minigrad eager": (eager, ours_batches),
        "minigrad compiled": (compiled, ours_batches),
        "torch eager": (torch_eager, theirs_batches),
    }
    if failure is None:
        sides["torch.compile"] = (torch_compiled, theirs_batches)
    else:
        print(f"{name}: torch.compile failed, its column is left empty: {failure}")

    def timed(fn, batches) -> float:
        start = time.perf_counter()
        for x, y in batches:
            fn(x, y)
        return (time.perf_counter() - start) / len(batches)

    for key, (fn, batches) in list(sides.items()):  # warm-up: kernels, caches, recompiles
        try:
            timed(fn, batches[:5])
        except Exception as e:
            if key != "torch.compile":
                raise
            print(f"{name}: torch.compile failed, its column is left empty: {_one_line(e)}")
            del sides[key]
    runs: dict[str, list[float]] = {key: [] for key in sides}
    for _ in range(repeats):
        for key, (fn, batches) in sides.items():
            runs[key].append(timed(fn, batches))
    med = {key: statistics.median(v) for key, v in runs.items()}
    row = {"case": name, "batch": len(ours_batches[0][0])}
    for key in ("minigrad eager", "minigrad compiled", "torch eager", "torch.compile"):
        row[f"{key} ms"] = med[key] * 1e3 if key in med else float("nan")
    compiled_s = med["minigrad compiled"]
    row["compiled / torch eager"] = compiled_s / med["torch eager"]
    row["compiled / torch.compile"] = (
        compiled_s / med["torch.compile"] if "torch.compile" in med else float("nan")
    )
    row["compiled / minigrad eager"] = compiled_s / med["minigrad eager"]
    row["first call s"] = first_ours
    row["torch.compile first call s"] = first_theirs
    row["traces"] = compiled.traces
    return row


COLUMNS = [
    "case",
    "batch",
    "minigrad eager ms",
    "minigrad compiled ms",
    "torch eager ms",
    "torch.compile ms",
    "compiled / torch eager",
    "compiled / torch.compile",
    "compiled / minigrad eager",
    "first call s",
    "torch.compile first call s",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", nargs="*", default=list(CASES), choices=CASES)
    args = parser.parse_args(argv)
    torch = torch_or_none(args.threads)
    if torch is None:
        raise SystemExit("benchmarks.compile compares against PyTorch: pip install torch==2.13.0")
    mg.set_num_threads(args.threads)
    mg.manual_seed(0)
    torch.manual_seed(0)
    info = machine()
    print(describe(info))
    rows = [run_case(name, torch, args.steps, args.repeats) for name in args.only]
    print(
        f"threads={args.threads}, float32, one training step, "
        f"median of {args.repeats} x {args.steps} steps"
    )
    print(table(rows, COLUMNS))
    path = write_json(f"compile-{args.threads}t", {"machine": info, "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
