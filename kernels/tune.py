"""``minigrad tune``: measure the dispatch thresholds of kernels/tuned.py on this machine and
write them to its tuning file.

For each setting, the two algorithms (or the candidate sizes) on each side of the threshold
are timed on the same inputs, float32, at each thread count asked for: median of repeats
after a warm-up call that includes Numba's compilation. The setting chosen is the one the
measurements support; the shipped default is always among the candidates, so on the measured
cases a tuned machine is never slower than an untuned one, up to timing noise.

- ``conv_sliver_fill``: a 3x3 layer of 16 -> 32 channels on 12 x 12 images, forward and
  backward, at batches that fill 1/2 to all of two slivers: batch slivers against the other
  path. The threshold is the lowest fill from which the slivers win at every measured fill.
- ``lstm_sliver_fill``: an LSTM layer (H 128, 32 steps), forward and backward, at batches that
  fill 1/2 to all of the columns the threads would compute: by slivers against by steps.
- ``attention_block_short`` / ``attention_block_long``: causal attention (1, 4, T, 64),
  forward and backward, at T = 128 and T = 512: each candidate block size.

Not measured: the serial / parallel cut-off of the parallel kernels (kernels/_config.py). One
cut-off serves every kernel, and measured on isolated kernels (softmax, layer norm, GELU, an
Adam update) it came out at 2^18 elements on a 2-core Zen 4, which made the GPT training step
of benchmarks/training.py 4-5 % slower at 2 threads than the shipped 2^16. It needs a cut-off
per kernel, measured on each kernel's own work, before it can be tuned.

Only this file's ``measure`` touches kernels/tuned.py's table, and only for the time of a
measurement: it is restored afterwards, even on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from kernels import attention, conv, rnn, tuned
from kernels.microkernels import sliver_tile

FILLS = (0.5, 0.625, 0.75, 0.875, 1.0)
NEVER = 1.01  # a fill no batch reaches: the threshold that turns a path off
BLOCKS = {
    "attention_block_short": (128, (32, 64, 128)),
    "attention_block_long": (512, (128, 256, 512)),
}


def seconds(fn, budget: float = 0.25, repeats: int = 7) -> float:
    """Median seconds per call of ``fn`` (one warm-up call first; each repeat runs enough
    calls to take about ``budget`` / ``repeats`` seconds)."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(budget / repeats / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


@contextlib.contextmanager
def setting(threads: int, **values):
    """kernels/tuned.py's table with ``values`` for ``threads``, for the time of the block."""
    saved = {k: dict(v) for k, v in tuned._loaded.items()}
    tuned._loaded.setdefault(str(threads), {}).update(values)
    try:
        yield
    finally:
        tuned._loaded = saved


def lowest_winning(ratios: dict[float, float]) -> float:
    """The lowest key from which every ratio (first path's time / second's) is below 1, or
    NEVER if the first path loses at the largest key."""
    chosen = NEVER
    for key in sorted(ratios, reverse=True):
        if ratios[key] >= 1.0:
            break
        chosen = key
    return chosen


def _conv_case(rng, batch):
    x = rng.standard_normal((batch, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32) * 0.1
    dout = rng.standard_normal((batch, 32, 12, 12)).astype(np.float32)

    def step():
        conv.conv2d_forward(x, w, None, 1, 1)
        conv.conv2d_backward(x, w, dout, 1, 1)

    return step


def sliver_fill(name: str, case, columns: int, threads: int, rng) -> tuple[float, dict]:
    """The fill threshold ``name``: ``case(rng, batch)`` timed by slivers (fill 0) and by the
    other path (a fill no batch reaches) at batches filling each of FILLS of ``columns``."""
    ratios = {}
    for f in FILLS:
        step = case(rng, math.ceil(f * columns))
        with setting(threads, **{name: 0.0}):
            slivers = seconds(step)
        with setting(threads, **{name: NEVER}):
            other = seconds(step)
        ratios[f] = slivers / other
    return lowest_winning(ratios), {"slivers / other, by fill": ratios}


def _lstm_case(rng, batch):
    t, i, h = 32, 64, 128
    x = rng.standard_normal((t, batch, i)).astype(np.float32)
    h0 = np.zeros((batch, h), np.float32)
    c0 = np.zeros((batch, h), np.float32)
    w_ih = (rng.standard_normal((4 * h, i)) * 0.1).astype(np.float32)
    w_hh = (rng.standard_normal((4 * h, h)) * 0.1).astype(np.float32)

    def step():
        hc, gates, cells = rnn.lstm_forward(x, h0, c0, w_ih, w_hh)
        rnn.lstm_backward(x, h0, c0, w_ih, w_hh, hc, gates, cells, np.ones_like(hc))

    return step


def attention_block(name: str, threads: int, rng) -> tuple[float, dict]:
    t, candidates = BLOCKS[name]
    q, k, v, dout = (rng.standard_normal((1, 4, t, 64)).astype(np.float32) for _ in range(4))
    times = {}
    for size in candidates:

        def step():
            out, lse = attention.attention_forward(q, k, v, is_causal=True)
            attention.attention_backward(q, k, v, out, lse, dout, is_causal=True)

        with setting(threads, **{name: size}):
            times[size] = seconds(step)
    return min(times, key=times.get), {f"seconds at T {t}, by block": times}


def plan(thread_counts) -> list[tuple[int, str]]:
    """(threads, setting) pairs in the order they are measured."""
    names = ["conv_sliver_fill", "lstm_sliver_fill", *BLOCKS]
    return [(t, n) for t in thread_counts for n in names]


def measure(thread_counts, progress=None) -> dict:
    """Every setting at every thread count in ``thread_counts``: {"threads": {"1": {...}},
    "measured": {...}} as the tuning file holds them. ``progress(done, total, label)``, if
    given, is called before each measurement."""
    rng = np.random.default_rng(0)
    steps = plan(thread_counts)
    before = numba.get_num_threads()
    out: dict = {"threads": {}, "measured": {}}
    try:
        for done, (threads, name) in enumerate(steps):
            if progress is not None:
                progress(done, len(steps), f"{name} at {threads} thread(s)")
            numba.set_num_threads(threads)
            with _blas_threads(threads):
                nr = sliver_tile(np.float32)[1]
                if name == "conv_sliver_fill":  # two slivers of images
                    value, evidence = sliver_fill(name, _conv_case, 2 * nr, threads, rng)
                elif name == "lstm_sliver_fill":  # the columns the threads would compute
                    value, evidence = sliver_fill(name, _lstm_case, nr * threads, threads, rng)
                else:
                    value, evidence = attention_block(name, threads, rng)
            out["threads"].setdefault(str(threads), {})[name] = value
            out["measured"].setdefault(str(threads), {})[name] = {
                "chosen": value,
                "default": tuned.default(name, threads),
                **{k: {str(a): round(b, 6) for a, b in v.items()} for k, v in evidence.items()},
            }
        if progress is not None:
            progress(len(steps), len(steps), "done")
    finally:
        numba.set_num_threads(before)
    return out


@contextlib.contextmanager
def _blas_threads(n: int):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def write(results: dict, where: Path) -> Path:
    """The tuning file at ``where``, written whole or not at all (a temporary file in the
    same folder, then renamed over it)."""
    data = {"format": tuned.FORMAT, "machine": tuned.machine(), **results}
    where.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=where.name + ".", suffix=".tmp", dir=where.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, where)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return where
