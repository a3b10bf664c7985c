"""minigrad.distributed: a world of one without MPI, DistributedSampler's shares, and, under
``mpiexec -n 2`` on this machine, the collectives, data-parallel training equal to one
process, a killed rank ending the job, exact resume, Keras fit and the seed sweep.

The two-rank tests start ``mpiexec -n 2`` (the MPICH wheel's, from the extra
``minigrad[mpi]``) as a subprocess with a timeout, running ``distributed_job.py``; they skip,
saying so, when mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.data import DataLoader, TensorDataset
from minigrad.distributed import DistributedSampler

HERE = Path(__file__).resolve().parent
JOB = HERE / "distributed_job.py"
ROOT = HERE.parents[1]
# the launcher's variables, removed so that a test's own subprocesses are a world of one
LAUNCHER = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
# one thread per rank, the same in every run compared bit for bit
ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def mpiexec() -> str:
    """The mpiexec beside this Python (the mpich wheel's), else one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else (shutil.which("mpiexec") or "")


def _mpi_missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'minigrad[mpi]')"
    if not mpiexec():
        return "no mpiexec beside Python or on PATH (pip install 'minigrad[mpi]')"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


def launch(*args: str, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [mpiexec(), "-n", "2", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(**ONE_THREAD),
        cwd=cwd,
    )


def check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# -- a world of one -------------------------------------------------------------------------


def test_without_a_launcher_the_world_is_one_process_and_mpi4py_is_not_imported():
    code = (
        "import sys, numpy as np, minigrad as mg\n"
        "from minigrad import distributed as d\n"
        "a = np.array([1.5, 2.0]); d.all_reduce(a); d.broadcast(a); d.barrier()\n"
        "assert (d.world_size(), d.rank(), d.is_main()) == (1, 0, True)\n"
        "assert a.tolist() == [1.5, 2.0] and [g.tolist() for g in d.all_gather(None, a)] "
        "== [[1.5, 2.0]]\n"
        "assert d.all_gather_object(None, {'a': 1}) == [{'a': 1}]\n"
        "assert 'mpi4py' not in sys.modules\n"
        "try:\n    d.init()\nexcept d.DistributedError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "not started by an MPI launcher" in out.stdout and "mpiexec -n 2" in out.stdout


def test_under_a_launcher_without_mpi4py_the_error_names_the_extra():
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "from minigrad import distributed as d\n"
        "try:\n    d.world_size()\nexcept d.DistributedError as e:\n    print(e)\n"
    )
    env = clean_env(PMI_RANK="0", PMI_SIZE="2")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "needs mpi4py" in out.stdout and "pip install 'minigrad[mpi]'" in out.stdout


# -- DistributedSampler ---------------------------------------------------------------------


@pytest.mark.parametrize("n, ranks", [(10, 2), (11, 2), (10, 3), (2, 3), (7, 1)])
def test_distributed_sampler_covers_every_index_exactly_once_per_epoch(n, ranks):
    data = list(range(n))
    for epoch in (0, 1):
        shares = []
        for r in range(ranks):
            s = DistributedSampler(data, num_replicas=ranks, rank=r, seed=3)
            s.set_epoch(epoch)
            shares.append(list(s))
        assert len({len(share) for share in shares}) == 1  # equal lengths: padded
        assert len(shares[0]) == len(DistributedSampler(data, ranks, 0)) == -(-n // ranks)
        seen = sorted(i for share in shares for i in share)
        padding = ranks * len(shares[0]) - n
        assert sorted(set(seen)) == data  # every index ...
        assert len(seen) == n + padding  # ... once, plus the padding that evens the shares
        if n >= padding:  # the padding repeats the epoch's first indices
            order = [shares[k % ranks][k // ranks] for k in range(len(seen))]
            assert order[n:] == order[:padding]


def test_distributed_sampler_shuffles_by_seed_and_epoch_and_drop_last_cuts():
    data = list(range(20))
    s = DistributedSampler(data, num_replicas=2, rank=1, seed=5)
    first = list(s)
    assert list(s) == first  # no set_epoch: the same order again (as PyTorch)
    s.set_epoch(1)
    assert list(s) != first and sorted(list(s) + list(DistributedSampler(data, 2, 0, seed=5)))
    again = DistributedSampler(data, num_replicas=2, rank=1, seed=5)
    again.set_epoch(1)
    assert list(again) == list(s)
    cut = [list(DistributedSampler(list(range(11)), 3, r, drop_last=True)) for r in range(3)]
    assert all(len(c) == 3 for c in cut) and len({i for c in cut for i in c}) == 9
    unshuffled = DistributedSampler(list(range(5)), 2, 1, shuffle=False)
    assert list(unshuffled) == [1, 3, 0]  # 0 1 2 3 4 + padding 0; rank 1 takes 1, 3, 0
    with pytest.raises(ValueError, match=r"rank must be in \[0, 1\], got 2"):
        DistributedSampler(data, num_replicas=2, rank=2)


def test_distributed_sampler_gives_pytorchs_shares_without_shuffling():
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for n, ranks, drop in [(10, 3, False), (11, 4, False), (11, 3, True)]:
        for r in range(ranks):
            ours = DistributedSampler(list(range(n)), ranks, r, shuffle=False, drop_last=drop)
            theirs = TorchSampler(list(range(n)), ranks, r, shuffle=False, drop_last=drop)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
    assert torch


# -- two ranks ------------------------------------------------------------------------------


@needs_mpi
def test_collectives_on_two_ranks():
    out = check(launch(sys.executable, str(JOB), "collectives"))
    assert "rank 0 ok" in out and "rank 1 ok" in out


def job_module():
    sys.path.insert(0, str(HERE))
    try:
        import distributed_job
    finally:
        sys.path.remove(str(HERE))
    return distributed_job


def initial(dtype):
    return job_module().toy_model(dtype).state_dict()


@needs_mpi
def test_a_rank_that_never_sends_its_gradients_makes_the_other_abort_the_job_after_timeout():
    # the 30 s bound is launch's timeout: a job still running then fails the test
    result = launch(sys.executable, str(JOB), "timeout", timeout=30)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "rank 0: a gradient allreduce did not complete within 1 s" in text
    assert "was not stopped" not in text


@needs_mpi
def test_an_error_on_one_rank_ends_the_others_instead_of_leaving_them_waiting():
    result = launch(sys.executable, str(JOB), "error", timeout=30)  # bounded by the timeout
    text = result.stdout + result.stderr
    assert result.returncode != 0
    # the rank's own line, printed and flushed before MPI_Abort (MPICH's own report of the
    # abort may be cut off when the job is torn down)
    assert "ValueError: rank 1 cannot go on" in text
    assert "rank 1: ValueError ends every rank (MPI_Abort)" in text
    assert "passed the barrier" not in text


def one_process_reference(dtype, split: bool):
    """The DDP job of distributed_job.py in one process: each step's global batch (the two
    ranks' micro-batches) either computed rank by rank and averaged in the job's order
    (``split``), or as one batch of twice the size with the micro-batches accumulated."""
    job = job_module()
    x, y = job.toy_data(dtype)
    model = job.toy_model(dtype)
    params = list(model.parameters())
    opt = mg.optim.SGD(params, lr=0.1, momentum=0.9)
    shares = [
        iter(
            DataLoader(
                TensorDataset(x, y),
                job.PER_RANK,
                sampler=DistributedSampler(TensorDataset(x, y), 2, r, shuffle=False),
            )
        )
        for r in range(2)
    ]
    full = iter(DataLoader(TensorDataset(x, y), 2 * job.PER_RANK))
    for _ in range(job.STEPS):
        if split:
            grads = []
            for r in range(2):
                model.zero_grad()
                for _ in range(job.MICRO):
                    xb, yb = next(shares[r])
                    nn.functional.cross_entropy(model(xb), yb).backward()
                grads.append([p.grad.data.copy() for p in params])
            for p, g0, g1 in zip(params, *grads):
                p.grad = mg.from_numpy((g0 + g1) / 2)
        else:
            model.zero_grad()
            for _ in range(job.MICRO):
                xb, yb = next(full)
                nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    return model.state_dict()


@needs_mpi
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_ranks_train_to_the_parameters_of_one_process(tmp_path, dtype):
    """Two ranks, each half of every global batch, with no_sync accumulation and several
    buckets in flight: the same parameters as one process. Bit for bit against one process
    that averages the two halves' gradients (a + b is the same on both ranks; halving is
    exact), in float64 and float32; against one process on the whole batch within rounding
    (float64: 1e-12 relative; float32: 1e-5), since a batch summed in two halves rounds
    differently."""
    check(launch(sys.executable, str(JOB), "ddp", str(tmp_path), np.dtype(dtype).name))
    ddp = mg.load(tmp_path / "ddp.safetensors")
    threads = mg.get_num_threads()
    mg.set_num_threads(1)  # as the ranks
    try:
        split = one_process_reference(dtype, split=True)
        whole = one_process_reference(dtype, split=False)
    finally:
        mg.set_num_threads(threads)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name in split:
        assert ddp[name].numpy().dtype == dtype
        assert np.array_equal(ddp[name].numpy(), split[name].numpy()), name
        np.testing.assert_allclose(ddp[name].numpy(), whole[name].numpy(), rtol=tol, atol=tol)
    assert not np.array_equal(ddp["4.weight"].numpy(), initial(dtype)["4.weight"].numpy())


def params_of(path):
    return {k: v.numpy() for k, v in mg.load(path).items()}


@needs_mpi
def test_a_killed_rank_ends_the_job_and_the_run_resumes_exactly_on_two_ranks(tmp_path):
    """SIGKILL one rank mid-run: MPICH's mpiexec ends the other at once (within the 20 s
    allowed here) with 'BAD TERMINATION'; the run then resumes from its last checkpoint on
    two ranks and ends with the parameters of a run never interrupted."""
    whole = tmp_path / "whole"
    check(launch(sys.executable, str(JOB), "trainer", str(whole)))
    log = [json.loads(line) for line in (whole / "logs" / "log.jsonl").read_text().splitlines()]
    train = [e["step"] for e in log if "loss" in e]
    evals = [e["step"] for e in log if "eval_loss" in e]
    assert train == list(range(2, train[-1] + 1, 2))  # rank 0 alone wrote each entry, once
    assert evals == list(range(3, evals[-1] + 1, 3)) and len(train) > 3

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [mpiexec(), "-n", "2", sys.executable, str(JOB), "trainer", str(killed), "--slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(**ONE_THREAD),
    )
    victim = None
    for line in proc.stdout:
        if line.startswith("rank 1 pid") and int(line.split()[-1]) >= 7:
            victim = int(line.split()[3])
            break
    assert victim is not None, "the job never reached step 7"
    os.kill(victim, signal.SIGKILL)
    try:
        rest = proc.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the surviving rank was still running 20 s after the other was killed")
    assert proc.returncode != 0
    assert "BAD TERMINATION" in rest and "done" not in rest
    assert not (killed / "final.safetensors").exists()
    assert sorted(p.name for p in killed.glob("checkpoint-*"))  # something to resume from

    out = check(launch(sys.executable, str(JOB), "trainer", str(killed), "--resume"))
    assert "rank 0 done" in out and "rank 1 done" in out
    resumed, reference = (
        params_of(killed / "final.safetensors"),
        params_of(whole / "final.safetensors"),
    )
    for name in reference:
        assert np.array_equal(resumed[name], reference[name]), name


@needs_mpi
def test_keras_fit_on_two_ranks_keeps_one_model():
    out = check(launch(sys.executable, str(JOB), "keras", "unused"))
    assert "rank 0 keras ok" in out and "rank 1 keras ok" in out
    losses = {line.split()[-1] for line in out.splitlines() if "keras ok" in line}
    assert len(losses) == 1  # the logged loss is the mean over the ranks, the same on both


@needs_mpi
def test_seed_sweep_runs_one_seed_per_rank_and_reports_the_sequential_figures(tmp_path):
    pytest.importorskip("sklearn", reason="digits-cnn reads scikit-learn's bundled digits")
    command = ["-m", "models", "train", "digits-cnn", "--epochs", "1", "--seeds", "0,1", "--quiet"]
    ranks = tmp_path / "ranks"
    out = check(launch(sys.executable, *command, "--out", str(ranks), cwd=tmp_path))
    assert out.count("over seeds 0, 1") == 1  # rank 0 alone reports
    sequential = tmp_path / "sequential"
    alone = subprocess.run(
        [sys.executable, *command, "--out", str(sequential)],
        capture_output=True,
        text=True,
        env=clean_env(**ONE_THREAD),
        timeout=120,
        cwd=tmp_path,
    )
    assert alone.returncode == 0, alone.stderr
    a = json.loads((ranks / "report.json").read_text())
    b = json.loads((sequential / "report.json").read_text())
    assert a["seeds"] == b["seeds"] == [0, 1]
    assert a["figures"] == b["figures"]
    for seed in (0, 1):
        assert (ranks / f"seed-{seed}" / "report.json").exists()
