"""``minigrad.distributed``: several processes training one model, on MPI (extra
``minigrad[mpi]``: mpi4py and the MPICH wheel, whose ``mpiexec`` lands beside ``python``).

    mpiexec -n 2 python train.py        # or: mpiexec -n 2 minigrad train lenet5-mnist

Names follow ``torch.distributed``: ``init()`` (``init_process_group``), ``rank()`` and
``world_size()`` (also as ``get_rank()`` and ``get_world_size()``), ``barrier()``,
``all_reduce``, ``broadcast``, ``all_gather``, ``all_gather_object`` (JSON, never pickle),
``is_main()``; ``DistributedDataParallel`` and ``DistributedSampler`` as PyTorch's. The
collectives are MPI's, called by mpi4py on the NumPy buffers themselves (no copies, no
pickling).

A process that was not started by an MPI launcher is a world of one: ``world_size()`` is 1,
``rank()`` 0 and every collective returns its input, without importing mpi4py at all. Under
a launcher (mpiexec sets ``PMI_RANK``; Open MPI ``OMPI_COMM_WORLD_RANK``; ``srun --mpi=pmix``
``PMIX_RANK``) the first call of any of them initializes MPI. When a rank dies, MPICH's
mpiexec kills the others at once ("BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES");
for launchers that do not, the gradient waits of ``DistributedDataParallel`` give up after
``timeout`` seconds and abort the whole job with a message naming the rank.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np

from minigrad.autograd import is_grad_enabled
from minigrad.data.sampler import Sampler
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

# environment variables that MPI launchers set in each process they start: (rank, size)
_LAUNCHER_VARIABLES = (
    ("PMI_RANK", "PMI_SIZE"),  # MPICH's and Intel MPI's mpiexec (Hydra)
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI
    ("PMIX_RANK", "SLURM_NTASKS"),  # srun --mpi=pmix
)

_comm: Any = None  # mpi4py's COMM_WORLD once init() ran
_MPI: Any = None


class DistributedError(RuntimeError):
    """minigrad.distributed cannot do what was asked (no mpi4py, no launcher, a timeout)."""


def launched() -> bool:
    """Whether an MPI launcher (mpiexec, srun) started this process."""
    return any(rank in os.environ for rank, _ in _LAUNCHER_VARIABLES)


def _launched_size() -> int:
    for rank_var, size_var in _LAUNCHER_VARIABLES:
        if rank_var in os.environ:
            return int(os.environ.get(size_var, "1") or 1)
    return 1


def init() -> None:
    """Initialize MPI for this process (``torch.distributed.init_process_group``); calling
    it again does nothing. Raises DistributedError when mpi4py is missing or when no MPI
    launcher started the process. Each rank then uses the machine's cores divided by the
    ranks on this machine as threads, unless ``NUMBA_NUM_THREADS`` says otherwise."""
    global _comm, _MPI
    if _comm is not None:
        return
    if not launched():
        raise DistributedError(
            "minigrad.distributed.init: this process was not started by an MPI launcher (none "
            f"of {', '.join(r for r, _ in _LAUNCHER_VARIABLES)} is set); run it as "
            "`mpiexec -n 2 python SCRIPT.py`. Without a launcher world_size() is 1 and no "
            "init() is needed"
        )
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistributedError(
            f"minigrad.distributed needs mpi4py ({e}); install the extra: "
            "pip install 'minigrad[mpi]'"
        ) from None
    _MPI, _comm = MPI, MPI.COMM_WORLD
    if _comm.Get_size() > 1:
        # an error that ends one rank ends them all: the others would wait for it forever
        # (MPICH's mpiexec ends the job when a rank is killed, not when it exits cleanly)
        sys.excepthook = _abort_after(sys.excepthook)
    if "NUMBA_NUM_THREADS" not in os.environ:
        from minigrad.backend import set_num_threads

        node = _comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks on this machine
        local = node.Get_size()
        node.Free()
        set_num_threads(max(1, (os.cpu_count() or 1) // local))


def is_initialized() -> bool:
    return _comm is not None


def _world() -> Any:
    """COMM_WORLD, initializing MPI under a launcher; None in a world of one."""
    if _comm is None and launched() and _launched_size() > 1:
        init()
    return _comm


def world_size() -> int:
    """The number of processes (1 without an MPI launcher)."""
    comm = _world()
    return 1 if comm is None else comm.Get_size()


def rank() -> int:
    """This process's rank, 0 to world_size() - 1."""
    comm = _world()
    return 0 if comm is None else comm.Get_rank()


get_world_size, get_rank = world_size, rank  # torch.distributed's names for the same


def is_main() -> bool:
    """Whether this is rank 0, the process that writes files and prints."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank has reached this call."""
    comm = _world()
    if comm is not None:
        comm.Barrier()


def _buffer(x: Tensor | np.ndarray, what: str) -> np.ndarray:
    array = x.data if isinstance(x, Tensor) else x
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{what}: expected a Tensor or a NumPy array, got {type(x).__name__}")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError(
            f"{what}: the array must be C-contiguous and writeable (it is changed in place); "
            "pass np.ascontiguousarray(x)"
        )
    return array


class ReduceOp:
    """The reductions of ``all_reduce`` (``torch.distributed.ReduceOp``'s names)."""

    SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"


def all_reduce(x: Tensor | np.ndarray, op: str = ReduceOp.SUM) -> Tensor | np.ndarray:
    """Reduce ``x`` over all ranks in place (every rank ends with the result) and return
    it. ``op``: "sum", "product", "min", "max" or "avg" (the sum divided by the ranks)."""
    ops = ("sum", "product", "min", "max", "avg")
    if op not in ops:
        raise ValueError(f"all_reduce: op must be one of {ops}, got {op!r}")
    array = _buffer(x, "all_reduce")
    comm = _world()
    if comm is None:
        return x
    mpi_op = {"sum": _MPI.SUM, "avg": _MPI.SUM, "product": _MPI.PROD, "min": _MPI.MIN}.get(
        op, _MPI.MAX
    )
    comm.Allreduce(_MPI.IN_PLACE, array, op=mpi_op)
    if op == "avg":
        np.divide(array, comm.Get_size(), out=array, casting="unsafe")
    return x


def broadcast(x: Tensor | np.ndarray, src: int = 0) -> Tensor | np.ndarray:
    """Overwrite ``x`` in place with rank ``src``'s values (same shape and dtype on every
    rank) and return it."""
    array = _buffer(x, "broadcast")
    comm = _world()
    if comm is not None:
        comm.Bcast(array, root=src)
    return x


def all_gather(tensor_list: list | None, x: Tensor | np.ndarray) -> list:
    """Every rank's ``x`` (same shape and dtype on every rank), in rank order. Fills
    ``tensor_list`` (PyTorch's signature) when given one, and returns the list; the items
    are Tensors for a Tensor ``x``, arrays for an array."""
    array = x.data if isinstance(x, Tensor) else np.asarray(x)
    comm = _world()
    if comm is None:
        gathered = array[None].copy()
    else:
        gathered = np.empty((comm.Get_size(), *array.shape), dtype=array.dtype)
        comm.Allgather(np.ascontiguousarray(array), gathered)
    items = [Tensor._from_array(g) if isinstance(x, Tensor) else g for g in gathered]
    if tensor_list is None:
        return items
    tensor_list[:] = items
    return tensor_list


def all_gather_object(object_list: list | None, obj: Any) -> list:
    """Every rank's ``obj`` in rank order. Objects travel as JSON (numbers, strings, lists,
    dicts), never pickled; PyTorch's signature, and the list is returned too."""
    payload = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)
    lengths = all_gather(None, np.array([payload.size], dtype=np.int64))
    longest = int(max(int(n[0]) for n in lengths))
    padded = np.zeros(longest, dtype=np.uint8)
    padded[: payload.size] = payload
    items = [
        json.loads(bytes(row[: int(n[0])]).decode())
        for row, n in zip(all_gather(None, padded), lengths)
    ]
    if object_list is None:
        return items
    object_list[:] = items
    return object_list


ABORT_GRACE_SECONDS = 0.25


def abort(code: int = 1) -> None:
    """End every rank now with exit status ``code`` (``MPI_Abort``); in a world of one,
    exit with ``code``."""
    sys.stdout.flush()
    sys.stderr.flush()
    if _comm is None:
        raise SystemExit(code)
    # MPI_Abort tears the job down at once, and mpiexec may then drop what this rank wrote
    # just before, even when flushed (measured: 2 runs in 12 lost rank 0's last lines); a
    # moment lets it forward them.
    time.sleep(ABORT_GRACE_SECONDS)
    _comm.Abort(code)


def _abort_after(hook: Any) -> Any:
    def excepthook(kind, value, tb) -> None:
        line = f"minigrad.distributed: rank {rank()}: {kind.__name__} ends every rank (MPI_Abort)\n"
        if hook is sys.__excepthook__:  # the traceback and the line in one write: mpiexec
            # may tear the job down before it forwards a later one
            sys.stderr.write("".join(traceback.format_exception(kind, value, tb)) + line)
        else:
            hook(kind, value, tb)
            sys.stderr.write(line)
        abort(1)

    return excepthook


def _abort(message: str) -> None:
    """Print ``message`` and end every rank (a rank waiting on a dead one would wait
    forever)."""
    print(f"minigrad.distributed: rank {rank()}: {message}", file=sys.stderr, flush=True)
    abort(1)


# --------------------------------------------------------------------------------------
# Data parallel training
# --------------------------------------------------------------------------------------


class _Bucket:
    """Parameters whose gradients are averaged by one allreduce on one flat buffer."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.sizes = [p.data.size for p in params]
        self.dtype = params[0].data.dtype
        self.buffer = np.empty(sum(self.sizes), dtype=self.dtype)
        self.waiting = len(params)  # gradients still to arrive in this backward
        self.request: Any = None


class DistributedDataParallel(Module):
    """``module`` trained by every rank on its own share of each batch, the gradients
    averaged over the ranks so that each rank takes the same optimizer step.

    At construction the parameters and buffers are broadcast from rank 0. The parameters
    are grouped in buckets of about ``bucket_cap_mb`` megabytes, in reverse order (the order
    in which backward reaches them); a hook on each parameter
    (``register_post_accumulate_grad_hook``) notes its gradient as final, and a full bucket
    starts a non-blocking allreduce (MPI's ``Iallreduce``) while backward goes on with the
    rest of the model. When the last bucket has started, the hook waits for all of them and
    writes each gradient back as the sum over the ranks divided by their number. A
    parameter that received no gradient in this backward counts as zero: call
    ``finish_gradient_synchronization()`` before the optimizer step when some may not (the
    Trainer does).

    With two ranks the sum a + b is the same number on both (addition is commutative in
    floating point), and the division by 2 is exact: the averaged gradient is exactly what
    one process gets by computing the two halves' gradients and averaging them.

    ``no_sync()`` skips the averaging, for gradient accumulation: the gradients of the
    micro-batches inside it accumulate locally and the next backward outside it averages
    the total. ``timeout`` (seconds) bounds each wait; past it the job is aborted.
    """

    def __init__(
        self,
        module: Module,
        bucket_cap_mb: float = 25.0,
        broadcast_buffers: bool = True,
        timeout: float = 1800.0,
    ) -> None:
        super().__init__()
        self.module = module
        self.broadcast_buffers, self.timeout = broadcast_buffers, float(timeout)
        self.world = world_size()
        self._sync = True
        params = [p for p in module.parameters() if p.requires_grad]
        with _no_grad_data():
            for t in list(module.parameters()) + list(module.buffers()):
                broadcast(t, 0)
        self.buckets: list[_Bucket] = []
        cap = bucket_cap_mb * 2**20
        current: list[Tensor] = []
        for p in reversed(params):
            if current and (
                sum(q.data.nbytes for q in current) + p.data.nbytes > cap
                or p.data.dtype != current[0].data.dtype
            ):
                self.buckets.append(_Bucket(current))
                current = []
            current.append(p)
        if current:
            self.buckets.append(_Bucket(current))
        self._where = {}
        for b, bucket in enumerate(self.buckets):
            for i, p in enumerate(bucket.params):
                self._where[id(p)] = (b, i)
        self._next = 0  # the next bucket to start (buckets start in order on every rank)
        self._handles = [p.register_post_accumulate_grad_hook(self._ready) for p in params]
        self.communication_seconds = 0.0  # time spent waiting for allreduces (benchmarks)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self.training and self.world > 1 and is_grad_enabled():
            for b in self.module.buffers():  # as PyTorch: rank 0's buffers each forward
                broadcast(b, 0)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within this block backward accumulates gradients without averaging them."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def _ready(self, p: Tensor) -> None:
        if not self._sync or self.world == 1:
            return
        b, _ = self._where[id(p)]
        self.buckets[b].waiting -= 1
        self._start_ready_buckets()
        if self._next == len(self.buckets):
            self._finish()
        else:
            self._poke()

    def _start_ready_buckets(self) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].waiting <= 0:
            self._start(self.buckets[self._next])
            self._next += 1

    def _start(self, bucket: _Bucket) -> None:
        offset = 0
        for p, n in zip(bucket.params, bucket.sizes):
            if p.grad is None:
                bucket.buffer[offset : offset + n] = 0
            else:
                bucket.buffer[offset : offset + n] = p.grad.data.reshape(-1)
            offset += n
        bucket.request = _comm.Iallreduce(_MPI.IN_PLACE, bucket.buffer, op=_MPI.SUM)

    def _poke(self) -> None:
        """Let MPI progress the allreduces in flight (MPICH moves them on inside MPI calls)."""
        for bucket in self.buckets[: self._next]:
            if bucket.request is not None and bucket.request.Test():
                bucket.request = None

    def _wait(self, bucket: _Bucket) -> None:
        start = time.perf_counter()
        if bucket.request is not None:
            while not bucket.request.Test():
                if time.perf_counter() - start > self.timeout:
                    _abort(
                        f"a gradient allreduce did not complete within {self.timeout:g} s "
                        "(another rank has probably died or stopped); aborting the job"
                    )
                time.sleep(0.0002)
            bucket.request = None
        self.communication_seconds += time.perf_counter() - start
        offset = 0
        for p, n in zip(bucket.params, bucket.sizes):
            averaged = (bucket.buffer[offset : offset + n] / self.world).reshape(p.data.shape)
            p.grad = Tensor._from_array(averaged.astype(p.data.dtype, copy=False))
            offset += n

    def _finish(self) -> None:
        for bucket in self.buckets:
            self._wait(bucket)
            bucket.waiting = len(bucket.params)
        self._next = 0

    def finish_gradient_synchronization(self) -> None:
        """Average now whatever a backward left unaveraged (parameters that got no gradient
        count as zero); nothing to do after a backward that reached every parameter."""
        if self.world == 1 or not any(b.waiting < len(b.params) for b in self.buckets):
            return
        for bucket in self.buckets[self._next :]:
            bucket.waiting = 0
        self._start_ready_buckets()
        self._finish()

    def remove_hooks(self) -> None:
        """Stop averaging: remove the gradient hooks from the module's parameters."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


@contextlib.contextmanager
def _no_grad_data() -> Iterator[None]:
    from minigrad.autograd import no_grad

    with no_grad():
        yield


class DistributedSampler(Sampler):
    """Each rank's share of a map-style data set, as PyTorch's DistributedSampler.

    Every epoch the indices are shuffled with seed ``seed + epoch`` (call ``set_epoch`` at
    the start of each epoch, or every epoch has the same order), padded by repeating the
    first ones until they divide evenly among the ranks (or, with ``drop_last``, cut to the
    largest multiple), and rank r takes every ``num_replicas``-th index starting at r. Over
    the ranks, each index appears exactly once per epoch, plus the padding.
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        num_replicas = world_size() if num_replicas is None else num_replicas
        rank = get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"DistributedSampler: rank must be in [0, {num_replicas - 1}], got {rank} "
                f"(num_replicas {num_replicas})"
            )
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, int(seed), drop_last, 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = n // num_replicas  # PyTorch's ceil((n - replicas) / replicas)
        else:
            self.num_samples = -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """The epoch about to start: its order is shuffled with ``seed + epoch``."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0 and n:
                indices = np.concatenate([indices, np.resize(indices, pad)])
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


__all__ = [
    "DistributedDataParallel",
    "DistributedError",
    "DistributedSampler",
    "ReduceOp",
    "abort",
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "get_rank",
    "get_world_size",
    "init",
    "is_initialized",
    "is_main",
    "launched",
    "rank",
    "world_size",
]
