"""Kernel benchmarks: minigrad against its NumPy twins and PyTorch, side by side.

    python -m benchmarks.kernels [--threads 1 2] [--repeats 7] [--only conv2d,attention] [--quick]

For every kernel and shape it times, after a warm-up that excludes JIT compilation:
  numba     the Numba kernel called directly (arrays in, arrays out)
  twin      its plain NumPy twin, same arguments
  minigrad  the public op through autograd (minigrad.nn.functional, with .backward())
  torch     torch.nn.functional, same inputs (when PyTorch is installed)
each forward only ("fwd") and forward + backward ("fwd+bwd"), in float32, at each thread
count (minigrad.set_num_threads sets Numba and BLAS; torch.set_num_threads the same number).
Figures are medians of --repeats loops; ratios compare times within this one run. GFLOP/s is
given where the work is counted in flops, with the percentage of the BLAS peak (sgemm
1024^3 measured in the same run at the same thread count). Results go to
kernels.json in the results folder (benchmarks/harness.py: results_dir). Each ratio is
printed beside its target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.harness import machine, table, time_call, torch_or_none, write_json
from minigrad.backend import implementation

# The kernels and their twins side by side, through the backend (the one door to kernels/).
attention, conv, matmul, pool, softmax = (
    implementation(f, "numba") for f in ("attention", "conv", "matmul", "pool", "softmax")
)
t_attention, t_conv, t_pool, t_softmax = (
    implementation(f, "numpy") for f in ("attention", "conv", "pool", "softmax")
)
conv_slivers = conv.conv_slivers  # the batch-sliver path's dispatch rule, forced in conv_dispatch

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


@dataclass
class Case:
    """One kernel at one shape: callables per implementation and mode, and its flop count."""

    kernel: str
    shape: str
    fns: dict[str, dict[str, Callable[[], Any]]] = field(default_factory=dict)
    flops: dict[str, float] = field(default_factory=dict)
    target: float | None = None  # the bound set for minigrad/torch, fwd+bwd
    algorithm: Callable[[], str] | None = None  # the path the kernel takes, asked at run time


def _mg_step(fn: Callable[..., mg.Tensor], arrays: list[np.ndarray], grads: list[bool]) -> dict:
    tensors = [mg.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]

    def fwd():
        with mg.no_grad():
            fn(*tensors)

    def fwdbwd():
        for t in tensors:
            t.grad = None
        out = fn(*tensors)
        out.backward(mg.ones_like(out))

    return {"fwd": fwd, "fwd+bwd": fwdbwd}


def _torch_step(torch, fn, arrays, grads) -> dict:
    tensors = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]

    def fwd():
        with torch.no_grad():
            fn(*tensors)

    def fwdbwd():
        for t in tensors:
            t.grad = None
        out = fn(*tensors)
        out.backward(torch.ones_like(out))

    return {"fwd": fwd, "fwd+bwd": fwdbwd}


def conv_cases(torch) -> list[Case]:
    return [
        _conv_case(torch, *shape) for shape in [(64, 1, 28, 32), (64, 32, 14, 64), (32, 64, 32, 64)]
    ]


def _conv_case(torch, b: int, c: int, h: int, o: int) -> Case:
    # One function per shape, so the closures below capture this shape's arrays.
    x, w, bias = rand(b, c, h, h), rand(o, c, 3, 3) * 0.1, rand(o)
    ones = np.ones((b, o, h, h), np.float32)
    case = Case("conv2d 3x3 pad 1", f"({b},{c},{h},{h})->{o}", target=1.0)
    flops = 2.0 * b * o * c * 9 * h * h
    case.flops = {"fwd": flops, "fwd+bwd": 3 * flops}
    case.algorithm = lambda: conv.conv2d_algorithm(x, w, 1, 1)

    def kernel_pair(module):
        return {
            "fwd": lambda: module.conv2d_forward(x, w, bias, 1, 1),
            "fwd+bwd": lambda: (
                module.conv2d_forward(x, w, bias, 1, 1),
                module.conv2d_backward(x, w, ones, 1, 1),
            ),
        }

    case.fns["numba"] = kernel_pair(conv)
    case.fns["twin"] = kernel_pair(t_conv)
    case.fns["minigrad"] = _mg_step(
        lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=1), [x, w, bias], [True] * 3
    )
    if torch:
        case.fns["torch"] = _torch_step(
            torch,
            lambda x_, w_, b_: torch.nn.functional.conv2d(x_, w_, b_, padding=1),
            [x, w, bias],
            [True] * 3,
        )
    return case


def pool_cases(torch) -> list[Case]:
    x = rand(64, 32, 28, 28)
    g = np.ones((64, 32, 14, 14), np.float32)
    case = Case("max_pool2d 2x2", "(64,32,28,28)", target=0.5)

    def kernel_pair(module):
        def fwdbwd():
            out, idx = module.max_pool2d_forward(x, 2)
            module.max_pool2d_backward(g, idx, x.shape, 2)

        return {"fwd": lambda: module.max_pool2d_forward(x, 2), "fwd+bwd": fwdbwd}

    case.fns["numba"] = kernel_pair(pool)
    case.fns["twin"] = kernel_pair(t_pool)
    case.fns["minigrad"] = _mg_step(lambda t: F.max_pool2d(t, 2), [x], [True])
    if torch:
        case.fns["torch"] = _torch_step(
            torch, lambda t: torch.nn.functional.max_pool2d(t, 2), [x], [True]
        )
    return [case]


def attention_cases(torch, quick: bool) -> list[Case]:
    shapes = [(8, 4, 128, 64), (4, 4, 512, 64)] + ([] if quick else [(1, 4, 2048, 64)])
    return [_attention_case(torch, shape) for shape in shapes]


def _attention_case(torch, shape: tuple) -> Case:
    q, k, v = rand(*shape), rand(*shape), rand(*shape)
    b, nh, t, d = shape
    case = Case("causal attention", str(shape), target=1.0)
    flops = 4.0 * b * nh * t * t * d / 2  # two T x T x D products, half of them masked
    case.flops = {"fwd": flops, "fwd+bwd": 3.5 * flops}  # backward: five products

    def kernel_pair(module):
        def fwdbwd():
            out, lse = module.attention_forward(q, k, v, None, True)
            module.attention_backward(q, k, v, out, lse, out, None, True)

        return {"fwd": lambda: module.attention_forward(q, k, v, None, True), "fwd+bwd": fwdbwd}

    case.fns["numba"] = kernel_pair(attention)
    if t <= 512:  # the twin holds T x T matrices: fine here, too slow to repeat beyond
        case.fns["twin"] = kernel_pair(t_attention)
    case.fns["minigrad"] = _mg_step(
        lambda a, b_, c: F.scaled_dot_product_attention(a, b_, c, is_causal=True),
        [q, k, v],
        [True] * 3,
    )
    if torch:
        case.fns["torch"] = _torch_step(
            torch,
            lambda a, b_, c: torch.nn.functional.scaled_dot_product_attention(
                a, b_, c, is_causal=True
            ),
            [q, k, v],
            [True] * 3,
        )
    return case


def cross_entropy_cases(torch) -> list[Case]:
    x = rand(4096, 1000)
    t = RNG.integers(0, 1000, 4096)
    g = np.full(4096, 1 / 4096, np.float32)
    case = Case("cross_entropy", "(4096,1000)", target=1.0)

    def kernel_pair(module):
        def fwdbwd():
            _, lse = module.cross_entropy_forward(x, t)
            module.cross_entropy_backward(x, t, None, lse, g)

        return {"fwd": lambda: module.cross_entropy_forward(x, t), "fwd+bwd": fwdbwd}

    case.fns["numba"] = kernel_pair(softmax)
    case.fns["twin"] = kernel_pair(t_softmax)
    target = mg.tensor(t)
    case.fns["minigrad"] = _mg_step(lambda a: F.cross_entropy(a, target), [x], [True])
    if torch:
        tt = torch.tensor(t)
        case.fns["torch"] = _torch_step(
            torch, lambda a: torch.nn.functional.cross_entropy(a, tt), [x], [True]
        )
    return [case]


def run_case(case: Case, repeats: int) -> list[dict]:
    rows = []
    for mode in ("fwd", "fwd+bwd"):
        times = {}
        for impl, fns in case.fns.items():
            if mode in fns:
                f = fns[mode]
                f()  # warm-up call: compilation and caches are not what we measure
                single = time_call(f, 1, 1, warmup=0)
                number = max(1, int(0.05 / max(single, 1e-6)))  # ~50 ms per repeat
                times[impl] = time_call(f, number, repeats, warmup=1)
        row = {"kernel": case.kernel, "shape": case.shape, "mode": mode}
        if case.algorithm is not None:
            row["algorithm"] = case.algorithm()
        row.update({f"{k} ms": v * 1e3 for k, v in times.items()})
        if "torch" in times:
            row["minigrad/torch"] = times["minigrad"] / times["torch"]
            row["numba/torch"] = times["numba"] / times["torch"]
        if "twin" in times:
            row["numba/twin"] = times["numba"] / times["twin"]
        if case.flops:
            row["GFLOP/s"] = case.flops[mode] / times["minigrad"] / 1e9
        if mode == "fwd+bwd" and case.target is not None:
            row["target"] = f"<= {case.target}"
        rows.append(row)
    return rows


def blas_peak(threads: int) -> float:
    a, b = rand(1024, 1024), rand(1024, 1024)
    seconds = time_call(lambda: a @ b, 3, 5)
    return 2 * 1024**3 / seconds / 1e9


def gemm_table(repeats: int) -> list[dict]:
    """The hand-written GEMM against BLAS per shape class: which one minigrad dispatches to."""
    rows = []
    for name, (m, k, n) in {
        "tiny 8x8x8": (8, 8, 8),
        "small 64x64x64": (64, 64, 64),
        "medium 256x256x256": (256, 256, 256),
        "target 512x512x512": (512, 512, 512),
        "tall 4096x64x64": (4096, 64, 64),
        "wide 64x64x4096": (64, 64, 4096),
    }.items():
        a, b = rand(m, k), rand(k, n)
        matmul.gemm(a, b)
        number = max(1, int(2e7 / (m * n * k)))
        ours = time_call(lambda a=a, b=b: matmul.gemm(a, b), number, repeats)
        blas = time_call(lambda a=a, b=b: a @ b, number, repeats)
        rows.append(
            {
                "shape class": name,
                "gemm GFLOP/s": 2 * m * n * k / ours / 1e9,
                "BLAS GFLOP/s": 2 * m * n * k / blas / 1e9,
                "gemm % of BLAS": 100 * blas / ours,
                "dispatch": "gemm" if ours < blas else "BLAS",
            }
        )
    return rows


def conv_dispatch_table(repeats: int) -> list[dict]:
    """conv2d fwd+bwd on batch slivers (kernels/conv_slivers.py) against the path it replaces
    (im2col, or Winograd on (B, C, H, W)), over batch sizes and layer shapes: the measurements
    behind conv_slivers.applies. float32, the threads as set."""
    rows = []
    layers = [  # (C, O, H, kernel, padding, batches)
        (16, 16, 16, 3, 1, (8, 12, 16, 24, 32)),
        (32, 64, 14, 3, 1, (8, 12, 16, 24, 32)),
        (64, 64, 32, 3, 1, (8, 12, 16, 24, 32)),
        (8, 16, 16, 3, 1, (8, 12, 16, 24, 32)),
        (32, 32, 14, 5, 2, (8, 12, 16, 24, 32)),
        (64, 64, 14, 1, 0, (8, 12, 16, 24, 32)),
        (1, 32, 28, 3, 1, (16, 64)),
        (3, 16, 28, 3, 1, (16, 64)),
        (3, 32, 32, 5, 2, (16, 64)),
        (8, 8, 16, 3, 1, (16, 64)),
        (16, 4, 16, 3, 1, (16, 64)),
    ]
    for c, o, h, k, p, batches in layers:
        for b in batches:
            x, w = rand(b, c, h, h), rand(o, c, k, k) * 0.1
            dout = np.ones((b, o, h, h), np.float32)

            def step(x=x, w=w, dout=dout, p=p):
                out, kept = conv.conv2d_forward_keeping_columns(x, w, None, 1, p)
                conv.conv2d_backward(x, w, dout, 1, p, cols=kept)

            times = {}
            for forced in (True, False):
                saved = conv_slivers.applies
                conv_slivers.applies = lambda *a, forced=forced: (
                    forced and conv_slivers.possible(*a[:5])  # whatever the measured rule says
                )
                try:
                    number = max(1, int(2e8 / (2 * b * o * c * k * k * h * h * 3)))
                    times[forced] = time_call(step, number, repeats)
                finally:
                    conv_slivers.applies = saved
            chosen = conv_slivers.applies((k, k), (1, 1), (1, 1), 1, (p,) * 4, b, c, o, np.float32)
            rows.append(
                {
                    "layer": f"{c}->{o} {h}x{h} k{k}",
                    "batch": b,
                    "slivers ms": 1e3 * times[True],
                    "other ms": 1e3 * times[False],
                    "slivers/other": times[True] / times[False],
                    "dispatch": "slivers" if chosen else "other",
                }
            )
    return rows


_MEMORY_PROBE = textwrap.dedent(
    """
    import os, sys, threading, time, numpy as np
    import minigrad as mg, minigrad.nn.functional as F

    def resident():  # current resident set size in bytes
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    mg.set_num_threads(int(sys.argv[1]))
    shape = (1, 4, 8192, 64)
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    q, k, v = (mg.tensor(data, requires_grad=True) for _ in range(3))
    small = [mg.tensor(np.ones((1, 4, 64, 64), np.float32), requires_grad=True) for _ in range(3)]
    F.scaled_dot_product_attention(*small, is_causal=True).sum().backward()  # load the kernels
    peak, done = [0], [False]

    def sample():  # the kernels release the GIL, so this thread keeps sampling during them
        while not done[0]:
            peak[0] = max(peak[0], resident())
            time.sleep(0.0005)

    before = resident()
    sampler = threading.Thread(target=sample)
    sampler.start()
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out.backward(mg.ones_like(out))
    done[0] = True
    sampler.join()
    print(peak[0] - before)
    """
)


def attention_memory(threads: int) -> dict:
    """Peak extra resident memory of causal attention fwd+bwd at (1, 4, 8192, 64), sampled every
    0.5 ms in a fresh process, against one T x T float32 score matrix per head."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(threads)], capture_output=True, text=True
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    extra = int(out.stdout.strip())
    naive = 1 * 4 * 8192 * 8192 * 4  # one float32 T x T score matrix per head
    return {
        "shape": "(1,4,8192,64)",
        "peak extra MB": extra / 1e6,
        "naive T^2 scores MB": naive / 1e6,
        "inputs+outputs+grads MB": 7 * 1 * 4 * 8192 * 64 * 4 / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kernel benchmarks vs NumPy twins and PyTorch")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated: conv2d,pool,attention,cross_entropy,gemm,memory,conv_dispatch "
        "(conv_dispatch runs only when named)",
    )
    parser.add_argument("--quick", action="store_true", help="skip the largest shapes")
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    results: dict[str, Any] = {"machine": machine(), "blas": mg.backend.blas_info(), "runs": []}
    for threads in args.threads:
        mg.set_num_threads(threads)
        torch = torch_or_none(threads)
        cases: list[Case] = []
        if not only or "conv2d" in only:
            cases += conv_cases(torch)
        if not only or "pool" in only:
            cases += pool_cases(torch)
        if not only or "attention" in only:
            cases += attention_cases(torch, args.quick)
        if not only or "cross_entropy" in only:
            cases += cross_entropy_cases(torch)
        peak = blas_peak(threads)
        rows = [row for case in cases for row in run_case(case, args.repeats)]
        for row in rows:
            if "GFLOP/s" in row:
                row["% BLAS peak"] = 100 * row["GFLOP/s"] / peak
        run: dict[str, Any] = {"threads": threads, "blas_peak_gflops": peak, "rows": rows}
        print(
            f"\n== {threads} thread(s); sgemm 1024^3 peak {peak:.1f} GFLOP/s; float32; "
            "times in ms =="
        )
        columns = [
            "kernel",
            "shape",
            "mode",
            "algorithm",
            "numba ms",
            "twin ms",
            "minigrad ms",
            "torch ms",
            "numba/twin",
            "minigrad/torch",
            "target",
            "GFLOP/s",
            "% BLAS peak",
        ]
        if rows:
            print(table(rows, columns))
        if not only or "gemm" in only:
            run["gemm"] = gemm_table(args.repeats)
            print(f"\nhand-written GEMM vs BLAS, {threads} thread(s)")
            print(
                table(
                    run["gemm"],
                    ["shape class", "gemm GFLOP/s", "BLAS GFLOP/s", "gemm % of BLAS", "dispatch"],
                )
            )
        if "conv_dispatch" in only:
            run["conv_dispatch"] = conv_dispatch_table(args.repeats)
            print(f"\nconv2d fwd+bwd on batch slivers vs the other paths, {threads} thread(s)")
            columns = ["layer", "batch", "slivers ms", "other ms", "slivers/other", "dispatch"]
            print(table(run["conv_dispatch"], columns))
        if (not only or "memory" in only) and not args.quick:
            run["attention_memory"] = attention_memory(threads)
            print("\ncausal attention memory:", json.dumps(run["attention_memory"]))
        results["runs"].append(run)
    path = write_json("kernels", results)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
