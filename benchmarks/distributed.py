"""Data-parallel training: 2 ranks x 1 thread against 1 rank x 1 thread, for minigrad on MPI
(``mpiexec -n 2``, DistributedDataParallel) and for PyTorch's DDP on the gloo backend (two
processes started by ``torch.multiprocessing.spawn``), on the same machine.

    python -m benchmarks.distributed [--steps S] [--repeats R] [--only lenet5 gpt]

Weak scaling, as per-device batches: every rank takes the case's batch each step (LeNet-5:
64 MNIST-sized images, Adam; GPT: 12 sequences of 64 characters, AdamW; the models of
``benchmarks.training``), so two ranks train on twice the samples a step. Throughput is
global: samples (tokens for the GPT) per second over all ranks. Each figure is the median
over R repeats of S steps after a warm-up.

Communication: ``allreduce ms`` is one blocking allreduce of a float32 buffer of the
model's parameter bytes (what a step averages), timed alone; ``allreduce %`` is its share
of the 2-rank step. ``waiting %`` (minigrad) is the share of the step its DDP spent waiting
for allreduces at the end of backward, that is the part of the communication that the
overlap with backward did not hide.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEPS, REPEATS = 30, 3


def _batches(name: str, batch: int, count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    if name == "gpt":
        return [
            (rng.integers(0, 65, (batch, 64)), rng.integers(0, 65, (batch * 64,)))
            for _ in range(count)
        ]
    return [
        (rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch))
        for _ in range(count)
    ]


def _median_step(step, batches, steps: int, repeats: int, barrier) -> float:
    for x, y in batches[:3]:  # warm-up: compilation, caches
        step(x, y)
    times = []
    for _ in range(repeats):
        barrier()
        start = time.perf_counter()
        for x, y in batches[:steps]:
            step(x, y)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def minigrad_worker(name: str, steps: int, repeats: int) -> None:
    """One rank of the minigrad side (under mpiexec, or alone); rank 0 prints the result."""
    import minigrad as mg
    from benchmarks.training import models, optimizers, torch_or_none
    from minigrad import distributed as dist

    torch = torch_or_none(1)
    mg.set_num_threads(1)
    ours, theirs, batch, _ = models(name, torch)
    opt, _ = optimizers(name, ours, theirs, torch)
    world, rank = dist.world_size(), dist.rank()
    model = dist.DistributedDataParallel(ours) if world > 1 else ours
    data = [(mg.tensor(x), mg.tensor(y)) for x, y in _batches(name, batch, steps, rank)]

    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        mg.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y).backward()
        opt.step()

    seconds = _median_step(step, data, steps, repeats, dist.barrier)
    waiting = 0.0
    if world > 1:
        model.communication_seconds = 0.0
        _median_step(step, data, steps, 1, dist.barrier)
        waiting = model.communication_seconds / (steps + 3) / seconds
    buffer = np.zeros(sum(p.data.size for p in ours.parameters()), dtype=np.float32)
    allreduce = _time_allreduce(lambda: dist.all_reduce(buffer), dist.barrier) if world > 1 else 0
    if rank == 0:
        result = {"seconds": seconds, "batch": batch, "allreduce": allreduce, "waiting": waiting}
        result["bytes"] = int(buffer.nbytes)
        print("RESULT " + json.dumps(result), flush=True)


def _time_allreduce(call, barrier, count: int = 20) -> float:
    for _ in range(3):
        call()
    barrier()
    start = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - start) / count


def _torch_rank(rank: int, world: int, name: str, steps: int, repeats: int, port: int, out):
    import torch
    import torch.distributed as tdist

    from benchmarks.training import models, optimizers

    torch.set_num_threads(1)
    torch.manual_seed(0)
    import minigrad as mg

    mg.set_num_threads(1)
    ours, theirs, batch, _ = models(name, torch)
    if world > 1:
        tdist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
        model = torch.nn.parallel.DistributedDataParallel(theirs)
        barrier = tdist.barrier
    else:
        model, barrier = theirs, lambda: None
    _, opt = optimizers(name, ours, model.module if world > 1 else model, torch)
    data = [(torch.tensor(x), torch.tensor(y)) for x, y in _batches(name, batch, steps, rank)]

    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y).backward()
        opt.step()

    seconds = _median_step(step, data, steps, repeats, barrier)
    buffer = torch.zeros(sum(p.numel() for p in theirs.parameters()))
    allreduce = _time_allreduce(lambda: tdist.all_reduce(buffer), barrier) if world > 1 else 0.0
    if rank == 0:
        Path(out).write_text(
            json.dumps({"seconds": seconds, "batch": batch, "allreduce": allreduce})
        )
    if world > 1:
        tdist.destroy_process_group()


def torch_run(name: str, world: int, steps: int, repeats: int) -> dict:
    import socket

    import torch.multiprocessing as tmp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "result.json")
        tmp.spawn(_torch_rank, args=(world, name, steps, repeats, port, out), nprocs=world)
        return json.loads(Path(out).read_text())


def minigrad_run(name: str, world: int, steps: int, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_RANK", "PMI_SIZE", "PMI_FD")}
    env["NUMBA_NUM_THREADS"] = "1"  # one thread a rank, as the PyTorch side
    command = [sys.executable, "-m", "benchmarks.distributed", "--worker", name]
    command += ["--steps", str(steps), "--repeats", str(repeats)]
    if world > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        command = [str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(world), *command]
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"benchmarks.distributed: {' '.join(command)} failed:\n{done.stderr}")
    return json.loads(lines[0][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--only", nargs="*", default=["lenet5", "gpt"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        minigrad_worker(args.worker, args.steps, args.repeats)
        return
    from benchmarks.harness import machine, table, torch_or_none, write_json

    if torch_or_none(1) is None:
        raise SystemExit("benchmarks.distributed compares against PyTorch: pip install torch")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print("benchmarks.distributed: skipped, it needs mpi4py: pip install 'minigrad[mpi]'")
        return
    rows = []
    for name in args.only:
        for framework, run in (("minigrad", minigrad_run), ("torch", torch_run)):
            one = run(name, 1, args.steps, args.repeats)
            two = run(name, 2, args.steps, args.repeats)
            per = one["batch"] * (64 if name == "gpt" else 1)
            rows.append(
                {
                    "case": name,
                    "framework": framework,
                    "1 rank ms": 1e3 * one["seconds"],
                    "2 ranks ms": 1e3 * two["seconds"],
                    "1 rank per s": per / one["seconds"],
                    "2 ranks per s": 2 * per / two["seconds"],
                    "speed-up": 2 * one["seconds"] / two["seconds"],
                    "allreduce ms": 1e3 * two["allreduce"],
                    "allreduce %": 100 * two["allreduce"] / two["seconds"],
                    "waiting %": 100 * two["waiting"] if "waiting" in two else None,
                    "MB a step": two.get("bytes", 0) / 1e6 or None,
                }
            )
            print(rows[-1], flush=True)
    print(
        f"float32, 1 thread a rank, per-rank batch (weak scaling), "
        f"median of {args.repeats} x {args.steps} steps; 'per s': samples (GPT: tokens)"
    )
    columns = list(rows[0])
    print(table(rows, columns))
    path = write_json("distributed", {"machine": machine(), "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
