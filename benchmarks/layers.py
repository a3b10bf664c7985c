"""Layers end to end: forward + backward of LSTM, GRU and a transformer encoder layer.

    python -m benchmarks.layers [--threads N] [--repeats R] [--only NAME ...]

Each case builds the same module in minigrad and in PyTorch (CPU, the same thread count),
copies PyTorch's weights into minigrad through the state dict, and times one training step's
worth of work: forward, a scalar loss, backward (gradients are reset each time). float32.
The figure is the median over R repeats after a warm-up, and the ratio minigrad / PyTorch is
taken within this one run (lower is better; the goal is <= 1.0).

Cases:
  lstm         nn.LSTM(128, 128), input (T=64, B=32, 128)
  gru          nn.GRU(128, 128), input (T=64, B=32, 128)
  transformer  nn.TransformerEncoderLayer(d_model=128, nhead=4, batch_first=True) with
               PyTorch's defaults (dim_feedforward=2048, dropout=0.1, relu, post-norm), in
               training mode, input (B=16, T=128, 128)
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
import minigrad.nn as nn
from benchmarks.harness import machine, table, time_call, torch_or_none, write_json


def _pair(name: str, torch):
    if name == "lstm":
        return nn.LSTM(128, 128), torch.nn.LSTM(128, 128), (64, 32, 128)
    if name == "gru":
        return nn.GRU(128, 128), torch.nn.GRU(128, 128), (64, 32, 128)
    kw = dict(d_model=128, nhead=4, batch_first=True)
    return nn.TransformerEncoderLayer(**kw), torch.nn.TransformerEncoderLayer(**kw), (16, 128, 128)


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def cases(names: list[str], torch):
    rng = np.random.default_rng(0)
    out = {}
    for name in names:
        ours, theirs, shape = _pair(name, torch)
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        ours.train()
        theirs.train()
        x = rng.standard_normal(shape).astype(np.float32)
        xo = mg.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)

        def mg_step(m=ours, x=xo):
            m.zero_grad()
            x.grad = None
            _first(m(x)).sum().backward()

        def torch_step(m=theirs, x=xt):
            m.zero_grad()
            x.grad = None
            _first(m(x)).sum().backward()

        out[name] = {"minigrad": mg_step, "torch": torch_step, "algorithm": _algorithm(name, x)}
    return out


def _algorithm(name: str, x: np.ndarray) -> str:
    """The path the layer's kernel takes on this input, at the threads set."""
    if name == "lstm":
        return "LSTM: " + mg.backend.rnn.rnn_algorithm(x, np.zeros((512, 128), x.dtype))
    if name == "gru":
        return "GRU: steps on BLAS"
    return "attention: blocked, causal strips"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", nargs="*", default=["lstm", "gru", "transformer"])
    args = parser.parse_args()
    torch = torch_or_none(args.threads)
    if torch is None:
        raise SystemExit("benchmarks.layers compares against PyTorch: pip install torch==2.13.0")
    mg.set_num_threads(args.threads)
    rows = []
    for name, fns in cases(args.only, torch).items():
        # interleave the two so that a slow spell of the machine hits both
        t_mg, t_torch = [], []
        for _ in range(3):
            t_mg.append(time_call(fns["minigrad"], 1, max(1, args.repeats // 3)))
            t_torch.append(time_call(fns["torch"], 1, max(1, args.repeats // 3)))
        ms, ts = float(np.median(t_mg)) * 1e3, float(np.median(t_torch)) * 1e3
        rows.append(
            {"case": name, "algorithm": fns["algorithm"], "minigrad ms": ms, "torch ms": ts,
             "ratio": ms / ts}
        )
    print(f"threads={args.threads}, float32, forward + backward, median of {args.repeats}")
    print(table(rows, ["case", "algorithm", "minigrad ms", "torch ms", "ratio"]))
    path = write_json(f"layers-{args.threads}t", {"machine": machine(), "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
