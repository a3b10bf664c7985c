"""Autograd overhead: a small elementwise op, and a tiny graph forward + backward.

    python -m benchmarks.overhead [--size N] [--repeats R]

Shapes are tiny on purpose: what is measured is the framework's own cost per op (Python
calls, graph recording, the backward walk), not arithmetic. Columns are microseconds per
call (median of R repeats after warm-up) and ratios within this one run. "numpy" is the same
arithmetic written by hand with NumPy, no framework: the floor. PyTorch runs at 1 thread.
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from benchmarks.harness import machine, table, time_call, torch_or_none, write_json


def cases(size: int):
    rng = np.random.default_rng(0)
    xa, wa, ba = (rng.standard_normal(size).astype(np.float32) for _ in range(3))

    def numpy_op():
        return xa * wa

    def numpy_graph():  # forward and backward of sum(tanh(x * w + b)) by hand
        t = np.tanh(xa * wa + ba)
        dz = 1 - t * t
        return t.sum(), dz * wa, dz * xa, dz

    x, w, b = (mg.tensor(a, requires_grad=True) for a in (xa, wa, ba))

    def mg_op():
        return x * w

    def mg_graph():
        x.grad = w.grad = b.grad = None
        (x * w + b).tanh().sum().backward()

    out = {
        "elementwise op (x * w)": {"numpy": numpy_op, "minigrad": mg_op},
        "tiny graph fwd+bwd (4 ops)": {"numpy": numpy_graph, "minigrad": mg_graph},
    }

    torch = torch_or_none(threads=1)
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))

        def torch_op():
            return tx * tw

        def torch_graph():
            tx.grad = tw.grad = tb.grad = None
            (tx * tw + tb).tanh().sum().backward()

        out["elementwise op (x * w)"]["torch"] = torch_op
        out["tiny graph fwd+bwd (4 ops)"]["torch"] = torch_graph
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="autograd overhead benchmark")
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    rows = []
    for name, fns in cases(args.size).items():
        number = 2000 if "op" in name else 500
        t = {k: time_call(f, number, args.repeats) for k, f in fns.items()}
        row = {
            "case": name,
            "numpy us": t["numpy"] * 1e6,
            "minigrad us": t["minigrad"] * 1e6,
            "torch us": t["torch"] * 1e6 if "torch" in t else None,
            "minigrad/numpy": t["minigrad"] / t["numpy"],
            "minigrad/torch": t["minigrad"] / t["torch"] if "torch" in t else None,
        }
        rows.append(row)
    print(f"autograd overhead, float32 vectors of {args.size}, median of {args.repeats} repeats")
    print(
        table(
            rows,
            ["case", "numpy us", "minigrad us", "torch us", "minigrad/numpy", "minigrad/torch"],
        )
    )
    path = write_json("overhead", {"machine": machine(), "size": args.size, "rows": rows})
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
