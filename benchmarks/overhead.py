"""Autograd overhead: one small op with its graph recorded, and a tiny graph forward + backward.

    python -m benchmarks.overhead [--size N] [--repeats R]

Shapes are tiny on purpose: what is measured is the framework's own cost per op (Python
calls, graph recording, the backward walk), not arithmetic. Columns are microseconds per
call (median of R repeats after warm-up) and ratios within this one run. "numpy" is the same
arithmetic written by hand with NumPy, no framework: the floor. PyTorch runs at 1 thread.
Every minigrad and PyTorch input requires grad, so each op records its node.
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from benchmarks.harness import machine, table, time_call, torch_or_none, write_json


def cases(size: int, matrix: int) -> dict[str, dict]:
    """For each case, the function per framework: "numpy", "minigrad" and, when PyTorch is
    installed, "torch". All three compute the same values from the same arrays."""
    rng = np.random.default_rng(0)
    xa, wa, ba = (rng.standard_normal(size).astype(np.float32) for _ in range(3))
    ma, mb = (rng.standard_normal((matrix, matrix)).astype(np.float32) for _ in range(2))

    def numpy_graph_forward():
        return np.tanh(xa * wa + ba).sum()

    def numpy_graph():  # forward and backward of sum(tanh(x * w + b)) by hand
        t = np.tanh(xa * wa + ba)
        dz = 1 - t * t
        return t.sum(), dz * wa, dz * xa, dz

    out = {
        "x * 2": {"numpy": lambda: xa * 2},
        "x + y": {"numpy": lambda: xa + wa},
        "x * w": {"numpy": lambda: xa * wa},
        "relu(x)": {"numpy": lambda: np.maximum(xa, 0)},
        "x.sum()": {"numpy": lambda: xa.sum()},
        f"a @ b ({matrix}x{matrix})": {"numpy": lambda: ma @ mb},
        "tanh(x*w + b).sum() forward": {"numpy": numpy_graph_forward},
        "tanh(x*w + b).sum() fwd+bwd": {"numpy": numpy_graph},
    }

    def add(lib, x, w, b, ma, mb, relu):
        def graph():
            x.grad = w.grad = b.grad = None
            (x * w + b).tanh().sum().backward()

        fns = [
            lambda: x * 2,
            lambda: x + w,
            lambda: x * w,
            lambda: relu(x),
            lambda: x.sum(),
            lambda: ma @ mb,
            lambda: (x * w + b).tanh().sum(),
            graph,
        ]
        for case, fn in zip(out.values(), fns):
            case[lib] = fn

    x, w, b, m1, m2 = (mg.tensor(a, requires_grad=True) for a in (xa, wa, ba, ma, mb))
    add("minigrad", x, w, b, m1, m2, mg.nn.functional.relu)

    torch = torch_or_none(threads=1)
    if torch is not None:
        tx, tw, tb, t1, t2 = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba, ma, mb))
        add("torch", tx, tw, tb, t1, t2, torch.relu)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="autograd overhead benchmark")
    parser.add_argument("--size", type=int, default=16, help="length of the vectors")
    parser.add_argument("--matrix", type=int, default=16, help="side of the matmul's matrices")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    rows = []
    for name, fns in cases(args.size, args.matrix).items():
        number = 500 if "tanh" in name else 2000
        t = {k: time_call(f, number, args.repeats) for k, f in fns.items()}
        torch_us = t["torch"] * 1e6 if "torch" in t else None
        rows.append(
            {
                "case": name,
                "numpy us": t["numpy"] * 1e6,
                "minigrad us": t["minigrad"] * 1e6,
                "torch us": torch_us,
                "minigrad/torch": t["minigrad"] / t["torch"] if "torch" in t else None,
                "minigrad/numpy": t["minigrad"] / t["numpy"],
            }
        )
    print(
        f"autograd overhead, float32 vectors of {args.size} (matmul {args.matrix}x{args.matrix}), "
        f"graph recorded, median of {args.repeats} repeats"
    )
    print(
        table(
            rows,
            ["case", "numpy us", "minigrad us", "torch us", "minigrad/torch", "minigrad/numpy"],
        )
    )
    payload = {"machine": machine(), "size": args.size, "matrix": args.matrix, "rows": rows}
    path = write_json("overhead", payload)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
