"""The programs the two-rank tests of minigrad.distributed start under ``mpiexec -n 2``
(tests/minigrad/test_distributed.py).

    python distributed_job.py collectives          (and a parameter that gets no gradient)
    python distributed_job.py timeout              rank 1 never sends its gradients
    python distributed_job.py error                rank 1 raises, rank 0 waits at a barrier
    python distributed_job.py ddp OUT DTYPE        the parameters after a few DDP steps
    python distributed_job.py trainer OUT [--resume] [--slow]
    python distributed_job.py keras OUT
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import minigrad as mg
import minigrad.nn as nn
from minigrad import distributed as dist
from minigrad.data import DataLoader, TensorDataset

STEPS, MICRO, PER_RANK = 3, 2, 4  # optimizer steps, micro-batches a step, samples a micro


def toy_data(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS * MICRO * PER_RANK * 2, 6)).astype(dtype)
    return x, rng.integers(0, 3, len(x))


def toy_model(dtype):
    mg.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)
    )
    return model.double() if dtype == np.float64 else model


def collectives() -> None:
    r, w = dist.rank(), dist.world_size()
    a = np.array([r + 1.0, 10.0 * r])
    assert dist.all_reduce(a).tolist() == [3.0, 10.0], a
    t = mg.tensor([float(r), 1.0])
    dist.all_reduce(t, op="max")
    assert t.tolist() == [1.0, 1.0], t
    b = mg.tensor([5.0 + r])
    dist.broadcast(b, src=1)
    assert b.tolist() == [6.0], b
    got = dist.all_gather([], mg.tensor([r, 2 * r]))
    assert [g.tolist() for g in got] == [[0, 0], [1, 2]], got
    objects = dist.all_gather_object(None, {"rank": r, "name": "x" * (r + 1)})
    assert objects == [{"rank": 0, "name": "x"}, {"rank": 1, "name": "xx"}], objects
    dist.barrier()
    assert w == 2 and dist.is_main() == (r == 0)
    # a parameter that gets no gradient: finish_gradient_synchronization counts it as zero
    used, unused = nn.Linear(2, 1), nn.Linear(2, 1)
    wrapped = dist.DistributedDataParallel(nn.ModuleList([used, unused]))
    used(mg.tensor([[1.0 + r, 2.0]])).sum().backward()
    assert unused.weight.grad is None
    wrapped.finish_gradient_synchronization()
    assert used.weight.grad.tolist() == [[1.5, 2.0]], used.weight.grad
    assert unused.weight.grad.tolist() == [[0.0, 0.0]], unused.weight.grad
    print(f"rank {r} ok", flush=True)


def timeout() -> None:
    """Rank 1 never joins the gradient allreduce: rank 0 gives up after 1 s."""
    model = nn.Linear(3, 1)
    wrapped = dist.DistributedDataParallel(model, timeout=1.0)
    if dist.rank() == 1:
        time.sleep(60)
    wrapped(mg.ones(2, 3)).sum().backward()
    print("rank 0 was not stopped", flush=True)


def ddp(out: str, dtype_name: str) -> None:
    dtype = np.dtype(dtype_name)
    x, y = toy_data(dtype)
    model = toy_model(dtype)
    # a tiny bucket cap: several buckets, so several allreduces are in flight at once
    wrapped = dist.DistributedDataParallel(model, bucket_cap_mb=0.0005)
    assert len(wrapped.buckets) > 1
    opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sampler = dist.DistributedSampler(TensorDataset(x, y), shuffle=False)
    loader = DataLoader(TensorDataset(x, y), batch_size=PER_RANK, sampler=sampler)
    batches = iter(loader)
    for _ in range(STEPS):
        for m in range(MICRO):
            xb, yb = next(batches)
            if m < MICRO - 1:
                with wrapped.no_sync():
                    nn.functional.cross_entropy(wrapped(xb), yb).backward()
            else:
                nn.functional.cross_entropy(wrapped(xb), yb).backward()
        opt.step()
        opt.zero_grad()
    if dist.is_main():
        mg.save(model.state_dict(), os.path.join(out, "ddp.safetensors"))


class Slow(mg.train.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(f"rank {dist.rank()} pid {os.getpid()} step {batch}", flush=True)
        time.sleep(0.1)


def trainer(out: str) -> None:
    from minigrad.train import Trainer, TrainingArguments

    x, y = toy_data(np.float32)
    x, y = np.concatenate([x] * 4), np.concatenate([y] * 4)
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    args = TrainingArguments(
        output_dir=out,
        num_train_epochs=3,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        warmup_steps=2,
        logging_steps=2,
        save_steps=3,
        save_total_limit=2,
        disable_tqdm=True,
        ddp_bucket_cap_mb=0.001,
        eval_strategy="steps",
        eval_steps=3,
        per_device_eval_batch_size=5,
    )
    callbacks = [Slow()] if "--slow" in sys.argv else []
    evaluation = TensorDataset(x[:37], y[:37])  # 19 and 18 samples on the two ranks

    def accuracy(p):
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    t = Trainer(
        model,
        args,
        train_dataset=TensorDataset(x, y),
        eval_dataset=evaluation,
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    t.train(resume_from_checkpoint=True if "--resume" in sys.argv else None)
    if dist.is_main():
        mg.save(model.state_dict(), os.path.join(out, "final.safetensors"))
    # the ranks' slices of the evaluation, gathered: the figures of one process on it all
    shared = t.evaluate()
    args.data_parallel = False
    alone = Trainer(model, args, eval_dataset=evaluation, compute_metrics=accuracy).evaluate()
    assert shared["eval_accuracy"] == alone["eval_accuracy"], (shared, alone)
    assert abs(shared["eval_loss"] - alone["eval_loss"]) < 1e-6, (shared, alone)
    assert t.predict(evaluation).predictions.shape == (37, 3)
    print(f"rank {dist.rank()} done at step {t.global_step}", flush=True)


def keras(out: str) -> None:
    import minigrad as tf

    x, y = toy_data(np.float32)
    mg.manual_seed(dist.rank())  # different initial weights: fit must broadcast rank 0's
    model = tf.keras.Sequential(
        [tf.keras.layers.Dense(8, activation="relu", input_shape=(6,)), tf.keras.layers.Dense(3)]
    )
    model.compile(
        optimizer="sgd",
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    weights = [w.copy() for w in model.get_weights()]
    gathered = dist.all_gather(None, np.concatenate([w.ravel() for w in weights]))
    assert np.array_equal(gathered[0], gathered[1]), "the ranks' weights differ after fit"
    print(f"rank {dist.rank()} keras ok loss {history.history['loss'][-1]:.6f}", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "collectives":
        collectives()
    elif mode == "timeout":
        timeout()
    elif mode == "error":
        if dist.rank() == 1:
            raise ValueError("rank 1 cannot go on")
        dist.barrier()
        print("rank 0 passed the barrier", flush=True)
    elif mode == "ddp":
        ddp(sys.argv[2], sys.argv[3])
    elif mode == "trainer":
        trainer(sys.argv[2])
    elif mode == "keras":
        keras(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
