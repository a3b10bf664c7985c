"""Per-sample gradients: minigrad's GradSampleModule against Opacus's, at batch 256.

    python -m benchmarks.privacy [--threads N] [--repeats R] [--batch B]

Each case builds the same model in minigrad and in PyTorch (CPU, the same thread count, 1 by
default), copies PyTorch's weights into minigrad, wraps each in its library's
GradSampleModule (loss_reduction="mean") and times one step's worth of work: forward, cross
entropy, backward, which fills ``p.grad`` and ``p.grad_sample`` of every parameter. float32.
For scale, the plain forward and backward (no per-sample gradients) of each library is timed
too. Figures are medians over R repeats after a warm-up, in one run, interleaved; the ratio
minigrad / Opacus is taken within that run (lower is better).

Cases:
  mlp     Linear(784, 256), ReLU, Linear(256, 10) on (B, 784)
  lenet5  models.vision.LeNet5 on (B, 1, 28, 28)
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from benchmarks.harness import machine, table, time_call, torch_or_none, write_json
from minigrad.privacy import GradSampleModule
from models.vision import LeNet5


def _pair(name: str, torch):
    if name == "mlp":
        ours = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        theirs = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
        )
        return ours, theirs, (784,)
    t = torch.nn
    theirs = t.Sequential(
        t.Conv2d(1, 6, 5, padding=2), t.ReLU(), t.MaxPool2d(2), t.Conv2d(6, 16, 5), t.ReLU(),
        t.MaxPool2d(2), t.Flatten(), t.Linear(400, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(),
        t.Linear(84, 10),
    )  # fmt: skip
    ours = LeNet5()
    # LeNet5's layers in order, under its own names
    names = [n for n, _ in ours.named_parameters()]
    state = dict(zip(names, [v.detach().numpy() for v in theirs.state_dict().values()]))
    return ours, theirs, (1, 28, 28), state


def _median_ms(fns: dict, per: int) -> dict:
    """Median ms of each function, the functions interleaved over three rounds."""
    times: dict = {k: [] for k in fns}
    for _ in range(3):  # a slow spell of the machine hits every function alike
        for k, fn in fns.items():
            times[k].append(time_call(fn, 1, per))
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


def measure(name: str, batch: int, per: int, torch, opacus) -> dict:
    pair = _pair(name, torch)
    ours, theirs, shape = pair[:3]
    state = (
        pair[3]
        if len(pair) == 4
        else {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    )
    ours.load_state_dict(state)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    xo, yo, xt, yt = mg.tensor(x), mg.tensor(y), torch.tensor(x), torch.tensor(y)

    def mg_step(m):
        m.zero_grad()
        F.cross_entropy(m(xo), yo).backward()

    def torch_step(m):
        m.zero_grad()
        torch.nn.functional.cross_entropy(m(xt), yt).backward()

    # plain steps first: the wrappers add hooks to these same layers
    plain = _median_ms({"mg": lambda: mg_step(ours), "torch": lambda: torch_step(theirs)}, per)
    ours_dp, theirs_dp = GradSampleModule(ours), opacus.GradSampleModule(theirs)
    mg_step(ours_dp)
    torch_step(theirs_dp)
    for p, q in zip(ours.parameters(), theirs.parameters()):  # the same numbers, first
        np.testing.assert_allclose(p.grad_sample, q.grad_sample.numpy(), rtol=2e-3, atol=1e-5)
    dp = _median_ms({"mg": lambda: mg_step(ours_dp), "torch": lambda: torch_step(theirs_dp)}, per)
    return {
        "case": name,
        "minigrad ms": dp["mg"],
        "opacus ms": dp["torch"],
        "ratio": dp["mg"] / dp["torch"],
        "plain minigrad ms": plain["mg"],
        "plain torch ms": plain["torch"],
        "plain ratio": plain["mg"] / plain["torch"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--only", nargs="*", default=["mlp", "lenet5"])
    args = parser.parse_args()
    torch = torch_or_none(args.threads)
    try:
        import opacus
    except ImportError:
        torch = None
    if torch is None:
        raise SystemExit("benchmarks.privacy compares against Opacus: pip install -e '.[privacy]'")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    mg.set_num_threads(args.threads)
    per = max(1, args.repeats // 3)
    rows = [measure(name, args.batch, per, torch, opacus) for name in args.only]
    print(
        f"threads={args.threads}, batch {args.batch}, float32, forward + backward with "
        f"per-sample gradients, median of {args.repeats}"
    )
    columns = ["case", "minigrad ms", "opacus ms", "ratio", "plain minigrad ms",
               "plain torch ms", "plain ratio"]  # fmt: skip
    print(table(rows, columns))
    info = {**machine(), "opacus": opacus.__version__}
    path = write_json(f"privacy-{args.threads}t", {"machine": info, "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
