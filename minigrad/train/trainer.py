"""A Hugging Face-style ``Trainer``: the training loop with AdamW, a warm-up schedule,
gradient accumulation and clipping, evaluation, JSON-lines logs, checkpoints that resume
exactly, and the best model at the end.

    args = TrainingArguments(output_dir="runs/mlp", num_train_epochs=3,
                             per_device_train_batch_size=32, eval_strategy="epoch")
    trainer = Trainer(model, args, train_dataset=train, eval_dataset=val,
                      compute_metrics=lambda p: {"accuracy": accuracy(p.label_ids, p.predictions)})
    trainer.train()                              # or train(resume_from_checkpoint=True)

Batches: a dict is passed to the model as keyword arguments, and its "labels" entry (if the
model's output has no "loss") goes with the output to ``compute_loss_func``; a tuple or list
``(inputs..., labels)`` calls ``model(*inputs)``. The default loss is cross-entropy on logits
(a model that returns a dict with "loss" needs none).
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from minigrad import distributed, random
from minigrad.autograd import no_grad
from minigrad.compiler import CompileWarning
from minigrad.compiler import compile as compile_step
from minigrad.data import DataLoader, Subset
from minigrad.nn import functional as F
from minigrad.nn.utils import clip_grad_norm_
from minigrad.optim import AdamW
from minigrad.optim import lr_scheduler as schedules
from minigrad.tensor import Tensor
from minigrad.train.callbacks import Callback, CallbackList
from minigrad.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rotate_checkpoints,
    save_checkpoint,
)
from minigrad.train.progress import Progress, save_curves

_STRATEGIES = ("no", "steps", "epoch")


@dataclass
class TrainingArguments:
    """The run's settings, with Hugging Face's names and defaults."""

    output_dir: str
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    logging_dir: str | None = None
    logging_steps: int = 500
    eval_strategy: str = "no"
    eval_steps: int | None = None
    save_strategy: str = "steps"
    save_steps: int = 500
    save_total_limit: int | None = None
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    seed: int = 42
    dataloader_drop_last: bool = False
    disable_tqdm: bool = False
    # Under mpiexec with more than one rank: None (the default) trains one model on all the
    # ranks (DistributedDataParallel, each rank a DistributedSampler's share of every
    # epoch); False keeps each process on its own (a sweep runs one seed per rank so).
    data_parallel: bool | None = None
    ddp_bucket_cap_mb: float = 25.0
    ddp_timeout: float = 1800.0  # seconds a rank waits for the others' gradients
    # Run the training step (forward, loss, backward, clipping, the optimizer's and the
    # schedule's steps) through minigrad.compile: traced on the first batch of each shape,
    # replayed after (Hugging Face's name for torch.compile).
    torch_compile: bool = False
    extra: dict = field(default_factory=dict)  # anything else, kept for the record

    def __post_init__(self) -> None:
        for name in ("eval_strategy", "save_strategy"):
            if getattr(self, name) not in _STRATEGIES:
                raise ValueError(f"TrainingArguments: {name} must be one of {_STRATEGIES}")
        if self.lr_scheduler_type not in _SCHEDULES:
            raise ValueError(
                f"TrainingArguments: lr_scheduler_type must be one of {sorted(_SCHEDULES)}, "
                f"got {self.lr_scheduler_type!r}"
            )
        if self.load_best_model_at_end and self.save_strategy != self.eval_strategy:
            raise ValueError(
                "TrainingArguments: load_best_model_at_end needs save_strategy equal to "
                f"eval_strategy (got {self.save_strategy!r} and {self.eval_strategy!r})"
            )
        if self.gradient_accumulation_steps < 1:
            raise ValueError("TrainingArguments: gradient_accumulation_steps must be >= 1")
        if not isinstance(self.torch_compile, bool):
            raise TypeError(
                "TrainingArguments: torch_compile must be True or False, got "
                f"{self.torch_compile!r}"
            )
        if self.logging_dir is None:
            self.logging_dir = str(Path(self.output_dir) / "logs")
        if self.eval_steps is None:
            self.eval_steps = self.logging_steps
        if self.metric_for_best_model is None:
            self.metric_for_best_model = "loss"
        if self.greater_is_better is None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")


def _constant(step: int) -> float:
    return 1.0


_SCHEDULES = {
    "linear": lambda opt, warm, total: schedules.get_linear_schedule_with_warmup(opt, warm, total),
    "cosine": lambda opt, warm, total: schedules.get_cosine_schedule_with_warmup(opt, warm, total),
    "constant": lambda opt, warm, total: schedules.LambdaLR(opt, _constant),
    "constant_with_warmup": lambda opt, warm, total: schedules.LambdaLR(
        opt, lambda s: min(1.0, s / max(1, warm))
    ),
}


class EvalPrediction(NamedTuple):
    predictions: np.ndarray
    label_ids: np.ndarray | None


class PredictionOutput(NamedTuple):
    predictions: np.ndarray
    label_ids: np.ndarray | None
    metrics: dict


class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: dict


def _split(batch: Any) -> tuple[tuple, dict, Any]:
    """(positional inputs, keyword inputs, labels) of a batch."""
    if isinstance(batch, dict):
        kwargs = dict(batch)
        return (), kwargs, kwargs.get("labels")
    if isinstance(batch, (tuple, list)):
        if len(batch) < 2:
            return tuple(batch), {}, None
        return tuple(batch[:-1]), {}, batch[-1]
    return (batch,), {}, None


def _loss_of(output: Any) -> Tensor | None:
    if isinstance(output, dict):
        return output.get("loss")
    return getattr(output, "loss", None)


def _logits_of(output: Any) -> Tensor:
    if isinstance(output, dict):
        return output["logits"]
    return getattr(output, "logits", output)


class Trainer:
    """Trains ``model`` (a minigrad.nn.Module) on ``train_dataset`` as ``args`` say."""

    def __init__(
        self,
        model: Any,
        args: TrainingArguments,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        data_collator: Callable | None = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = None,
        callbacks: list[Callback] | None = None,
        optimizers: tuple = (None, None),
        compute_loss_func: Callable | None = None,
        privacy_engine: Any = None,
        privacy_kwargs: dict | None = None,
    ) -> None:
        self.model, self.args = model, args
        # DP-SGD (minigrad.privacy, docs/privacy.md): train() passes the model, the optimizer
        # and the train loader through privacy_engine.make_private(**privacy_kwargs)
        if privacy_engine is not None and not privacy_kwargs:
            raise ValueError(
                "Trainer: privacy_engine needs privacy_kwargs, e.g. "
                "{'noise_multiplier': 1.1, 'max_grad_norm': 1.0}"
            )
        self.privacy_engine, self.privacy_kwargs = privacy_engine, dict(privacy_kwargs or {})
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.data_collator, self.compute_metrics = data_collator, compute_metrics
        self.optimizer, self.lr_scheduler = optimizers
        self.compute_loss_func = compute_loss_func or (
            lambda logits, labels: F.cross_entropy(logits, labels)
        )
        self.stop_training = False
        self.log_history: list[dict] = []
        self.global_step, self.epoch = 0, 0.0
        self.best_metric: float | None = None
        self.best_model_checkpoint: str | None = None
        self.callbacks = CallbackList(callbacks, self)
        random.manual_seed(args.seed)  # as transformers' set_seed: init and data order
        # Data parallel under mpiexec (as Hugging Face's Trainer under torchrun): every rank
        # trains on its share of each batch (per_device_train_batch_size samples), the
        # gradients are averaged, rank 0 alone prints and writes (logs, checkpoints), all
        # ranks read a checkpoint to resume. ``model_wrapped`` is what training calls.
        self.data_parallel = args.data_parallel is not False and distributed.world_size() > 1
        self.model_wrapped = model
        self.is_world_process_zero = not self.data_parallel or distributed.is_main()

    # -- what callbacks see ---------------------------------------------------------------
    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> Any:
        return self.model.load_state_dict(state)

    # -- pieces ------------------------------------------------------------------------------
    shuffle_train = True  # False: batches in the data set's order

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("Trainer: train() needs a train_dataset")
        if self.data_parallel:  # this rank's share, reshuffled by set_epoch each epoch
            sampler = distributed.DistributedSampler(
                self.train_dataset,
                shuffle=self.shuffle_train,
                seed=self.args.seed,
                drop_last=self.args.dataloader_drop_last,
            )
            return DataLoader(
                self.train_dataset,
                batch_size=self.args.per_device_train_batch_size,
                sampler=sampler,
                collate_fn=self.data_collator,
                drop_last=self.args.dataloader_drop_last,
            )
        return DataLoader(
            self.train_dataset,
            batch_size=self.args.per_device_train_batch_size,
            shuffle=self.shuffle_train,
            collate_fn=self.data_collator,
            drop_last=self.args.dataloader_drop_last,
        )

    def _eval_dataloader(self, dataset: Any) -> DataLoader:
        return DataLoader(
            dataset, batch_size=self.args.per_device_eval_batch_size, collate_fn=self.data_collator
        )

    def create_optimizer_and_scheduler(self, num_training_steps: int) -> None:
        args = self.args
        if self.optimizer is None:
            decay, no_decay = [], []
            for name, p in self.model.named_parameters():
                # as transformers: no weight decay on biases and normalization weights
                (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
            groups = [{"params": decay, "weight_decay": args.weight_decay}]
            if no_decay:
                groups.append({"params": no_decay, "weight_decay": 0.0})
            self.optimizer = AdamW(
                [g for g in groups if g["params"]],
                lr=args.learning_rate,
                betas=(args.adam_beta1, args.adam_beta2),
                eps=args.adam_epsilon,
            )
        if self.lr_scheduler is None:
            warmup = args.warmup_steps or math.ceil(args.warmup_ratio * num_training_steps)
            self.lr_scheduler = _SCHEDULES[args.lr_scheduler_type](
                self.optimizer, warmup, num_training_steps
            )

    def compute_loss(self, batch: Any, return_outputs: bool = False) -> Any:
        inputs, kwargs, labels = _split(batch)
        model = self.model_wrapped if self.model.training else self.model
        output = model(*inputs, **kwargs) if kwargs else model(*inputs)
        loss = _loss_of(output)
        if loss is None:
            if labels is None:
                raise ValueError(
                    "Trainer: the model returned no 'loss' and the batch has no labels"
                )
            loss = self.compute_loss_func(_logits_of(output), labels)
        return (loss, output) if return_outputs else loss

    def _forward_backward(self, batch: Any, accumulation: int) -> Tensor:
        """A micro-batch before the last of an optimizer step: the loss, and its gradient
        (divided by ``accumulation``) added to the parameters' ``.grad``."""
        loss = self.compute_loss(batch)
        (loss / accumulation).backward()
        return loss

    def _training_step(
        self, batch: Any, accumulation: int, optimizer: Any, scheduler: Any, max_norm: float
    ) -> tuple[Tensor, Tensor | None]:
        """The last micro-batch of an optimizer step: its forward and backward, the gradients
        clipped to ``max_norm`` (0: not clipped), the optimizer's and the schedule's steps,
        the gradients zeroed. Returns (the loss, the norm before clipping or None), tensors
        the loop reads after the step: with ``torch_compile=True`` this runs through
        minigrad.compile, which a ``.item()`` inside would send back to eager mode. The
        optimizer and the schedule are arguments so that a compiled step retraces if
        either is replaced."""
        loss = self._forward_backward(batch, accumulation)
        if hasattr(self.model_wrapped, "no_sync"):  # data parallel: the last buckets'
            self.model_wrapped.finish_gradient_synchronization()  # averages, before the norm
        grad_norm = clip_grad_norm_(self.model.parameters(), max_norm) if max_norm > 0 else None
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        return loss, grad_norm

    def _steps(self, private: bool) -> tuple[Callable, Callable]:
        """The functions the loop calls for a micro-batch before the last of a step and for
        the last one: through minigrad.compile with ``torch_compile=True``, except for DP-SGD
        and data-parallel training, whose hooks a program cannot replay."""
        micro, last = self._forward_backward, self._training_step
        if not self.args.torch_compile:
            return micro, last
        if private or self.data_parallel:
            warnings.warn(
                "Trainer: torch_compile=True runs eagerly under "
                f"{'DP-SGD (privacy_engine)' if private else 'data-parallel training'}: its "
                "hooks cannot be compiled",
                CompileWarning,
                stacklevel=3,
            )
            return micro, last
        self.compiled_micro_step = compile_step(micro)
        self.compiled_step = compile_step(last)
        return self.compiled_micro_step, self.compiled_step

    # -- training ------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: bool | str | None = None) -> TrainOutput:
        """Run the training loop; ``resume_from_checkpoint`` (True: the newest good one in
        output_dir, or a path) continues an interrupted run exactly where it stopped."""
        args = self.args
        loader = self.get_train_dataloader()
        if len(loader) == 0:
            raise ValueError(
                f"Trainer: the train_dataset gives no batch ({len(self.train_dataset)} samples, "
                f"batch size {args.per_device_train_batch_size}"
                f"{', drop_last' if args.dataloader_drop_last else ''}): nothing to train on"
            )
        per_epoch = max(1, len(loader) // args.gradient_accumulation_steps)
        if args.max_steps > 0:
            total_steps = args.max_steps
            epochs = math.ceil(total_steps / per_epoch)
        else:
            epochs = math.ceil(args.num_train_epochs)
            total_steps = math.ceil(args.num_train_epochs * per_epoch)
        self.create_optimizer_and_scheduler(total_steps)
        private = self.privacy_engine is not None
        if private:
            if resume_from_checkpoint:
                raise ValueError(
                    "Trainer: resume_from_checkpoint with a privacy_engine is not supported (the "
                    "accountant's history is not in the checkpoint)"
                )
            if args.gradient_accumulation_steps != 1:
                raise ValueError(
                    "Trainer: a privacy_engine takes one batch per step; got "
                    f"gradient_accumulation_steps={args.gradient_accumulation_steps}"
                )
            if self.data_parallel:
                raise ValueError(
                    "Trainer: DP-SGD (privacy_engine) under mpiexec is not supported; train it "
                    "in one process (or set TrainingArguments(data_parallel=False))"
                )
            # the hooks sit on the model's own layers: self.model stays the plain model
            _, self.optimizer, loader = self.privacy_engine.make_private(
                module=self.model, optimizer=self.optimizer, data_loader=loader,
                **self.privacy_kwargs,
            )  # fmt: skip
        self.model.train()
        if self.data_parallel and self.model_wrapped is self.model:
            self.model_wrapped = distributed.DistributedDataParallel(
                self.model, bucket_cap_mb=args.ddp_bucket_cap_mb, timeout=args.ddp_timeout
            )
        sync = getattr(self.model_wrapped, "no_sync", None)

        start_epoch, steps_done_in_epoch = 0, 0
        if resume_from_checkpoint:
            state = self._resume(resume_from_checkpoint, loader)
            start_epoch = state["epoch_index"]
            steps_done_in_epoch = state["loader"]["batches_yielded"]

        log_path = Path(args.logging_dir) / "log.jsonl"
        if self.is_world_process_zero:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        progress = Progress(
            total_steps, "train", enabled=not args.disable_tqdm and self.is_world_process_zero
        )
        progress.update(self.global_step, 0)
        running, running_count = 0.0, 0  # since the last log line
        total, total_count = 0.0, 0  # over this call, for TrainOutput.training_loss
        micro_step, training_step = self._steps(private)
        # DP-SGD clips each sample's gradient itself
        max_norm = float(args.max_grad_norm or 0.0) if not private else 0.0
        self.callbacks.on_train_begin({})
        for epoch in range(start_epoch, epochs):
            if self.global_step >= total_steps or self.stop_training:
                break
            self.callbacks.on_epoch_begin(epoch, {})
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            micro = 0  # micro-batches since the last optimizer step (checkpoints are taken
            # at optimizer steps, so a resumed epoch starts at 0 too)
            for batch_index, batch in enumerate(loader, start=steps_done_in_epoch):
                micro += 1
                at_end = batch_index + 1 >= len(loader)
                last_micro = micro >= args.gradient_accumulation_steps or at_end
                if last_micro:
                    loss, norm = training_step(
                        batch,
                        args.gradient_accumulation_steps,
                        self.optimizer,
                        self.lr_scheduler,
                        max_norm,
                    )
                else:  # accumulate; under data parallel without averaging yet
                    with sync() if sync is not None else contextlib.nullcontext():
                        loss = micro_step(batch, args.gradient_accumulation_steps)
                # the step's tensors are read here, outside what minigrad.compile replays
                loss_value = float(loss.data)
                if not private or batch_size_of(batch) > 0:  # a Poisson batch may be empty
                    running += loss_value
                    running_count += 1
                    total += loss_value
                    total_count += 1
                if not last_micro:
                    continue
                micro = 0
                grad_norm = None if norm is None else float(norm.data)
                self.global_step += 1
                self.epoch = epoch + (batch_index + 1) / len(loader)
                logs = {"loss": loss_value}
                self.callbacks.on_train_batch_end(self.global_step, logs)
                progress.update(1, batch_size_of(batch), loss=logs["loss"])
                if self.global_step % args.logging_steps == 0:
                    if self.data_parallel:  # the mean over all ranks, as Hugging Face's
                        both = distributed.all_reduce(np.array([running, running_count]))
                        running, running_count = float(both[0]), int(both[1])
                    self._log(
                        {
                            "loss": running / max(running_count, 1),
                            "grad_norm": grad_norm,
                            "learning_rate": self.lr_scheduler.get_last_lr()[0],
                        },
                        log_path,
                    )
                    running, running_count = 0.0, 0
                self._maybe_evaluate_and_save("steps", loader, epoch, log_path)
                if self.global_step >= total_steps or self.stop_training:
                    break
            steps_done_in_epoch = 0
            self._maybe_evaluate_and_save("epoch", loader, epoch, log_path)
            last = dict(self.log_history[-1]) if self.log_history else {}
            self.callbacks.on_epoch_end(epoch, last)
        progress.close()
        self.callbacks.on_train_end({})
        if args.load_best_model_at_end and self.best_model_checkpoint:
            self.model.load_state_dict(load_checkpoint(self.best_model_checkpoint)["model"])
        self._plot()
        # the mean over every batch trained in this call, logged or not (fewer steps than
        # logging_steps still give a number); NaN only when no batch was trained
        train_loss = total / total_count if total_count else math.nan
        return TrainOutput(self.global_step, train_loss, {"train_loss": train_loss})

    def _maybe_evaluate_and_save(self, when: str, loader, epoch: int, log_path: Path) -> None:
        args = self.args
        if when == "steps":
            do_eval = args.eval_strategy == "steps" and self.global_step % args.eval_steps == 0
            do_save = args.save_strategy == "steps" and self.global_step % args.save_steps == 0
        else:
            do_eval = args.eval_strategy == "epoch"
            do_save = args.save_strategy == "epoch"
        metrics = None
        if do_eval and self.eval_dataset is not None:
            metrics = self.evaluate()
            self._log(metrics, log_path)
            self.model.train()
        if do_save:
            path = self._save(loader, epoch)
            if metrics is not None:
                self._track_best(metrics, path)
            if self.is_world_process_zero:
                rotate_checkpoints(
                    args.output_dir, args.save_total_limit, keep=self.best_model_checkpoint
                )

    def _track_best(self, metrics: dict, path: Path) -> None:
        key = self.args.metric_for_best_model
        key = key if key.startswith("eval_") else f"eval_{key}"
        if key not in metrics:
            raise KeyError(f"Trainer: metric_for_best_model {key!r} is not in {sorted(metrics)}")
        value = metrics[key]
        better = self.best_metric is None or (
            value > self.best_metric if self.args.greater_is_better else value < self.best_metric
        )
        if better:
            self.best_metric, self.best_model_checkpoint = value, str(path)

    def _log(self, entry: dict, log_path: Path) -> None:
        """Append to log_history and, as one JSON line, to logging_dir/log.jsonl."""
        entry = {k: v for k, v in entry.items() if v is not None}
        entry.update(step=self.global_step, epoch=round(self.epoch, 4))
        self.log_history.append(entry)
        if not self.is_world_process_zero:
            return
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()

    # -- checkpoints ----------------------------------------------------------------------------
    def _save(self, loader: DataLoader, epoch: int) -> Path:
        in_epoch = loader._in_epoch and loader._yielded < len(loader)
        state = {
            "epoch": self.epoch,
            "epoch_index": epoch if in_epoch else epoch + 1,
            "loader": loader.state_dict()
            if in_epoch
            else {"batches_yielded": 0, "epoch_seed": None},
            "scheduler": self.lr_scheduler.state_dict(),
            "rng": random.get_rng_state(),
            "log_history": self.log_history,
            "best_metric": self.best_metric,
            "best_model_checkpoint": self.best_model_checkpoint,
            "args": {k: v for k, v in asdict(self.args).items() if k != "extra"},
        }
        if not self.is_world_process_zero:  # rank 0 writes; the others wait until it has
            distributed.barrier()
            return Path(self.args.output_dir) / f"checkpoint-{self.global_step}"
        path = save_checkpoint(
            self.args.output_dir,
            self.global_step,
            self.model.state_dict(),
            self.optimizer.state_dict(),
            state,
        )
        if self.data_parallel:
            distributed.barrier()
        return path

    def _resume(self, where: bool | str, loader: DataLoader) -> dict:
        if where is True:
            found = latest_checkpoint(self.args.output_dir)
            if found is None:
                raise FileNotFoundError(
                    f"Trainer: resume_from_checkpoint=True but {self.args.output_dir} holds no "
                    "usable checkpoint"
                )
            _, checkpoint = found
        else:
            checkpoint = load_checkpoint(where)
        state = checkpoint["trainer_state"]
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.lr_scheduler.load_state_dict(state["scheduler"])
        random.set_rng_state(state["rng"])
        loader.load_state_dict(state["loader"])
        self.global_step, self.epoch = state["step"], state["epoch"]
        self.log_history = list(state["log_history"])
        self.best_metric = state["best_metric"]
        self.best_model_checkpoint = state["best_model_checkpoint"]
        return state

    # -- evaluation and prediction ----------------------------------------------------------------
    def _predict_loop(self, dataset: Any) -> tuple[np.ndarray, np.ndarray | None, float]:
        """Predictions, labels and mean loss over ``dataset``. Data parallel, each rank
        predicts one contiguous slice of it and the slices are gathered in order, so every
        rank gets the whole set's figures (as Hugging Face's Trainer under torchrun)."""
        self.model.eval()
        predictions, labels, losses, counts = [], [], [], []
        ranks = distributed.world_size() if self.data_parallel else 1
        if ranks > 1:
            share = -(-len(dataset) // ranks)
            start = min(len(dataset), distributed.rank() * share)
            dataset = Subset(dataset, range(start, min(len(dataset), start + share)))
        with no_grad():
            for batch in self._eval_dataloader(dataset) if len(dataset) else []:
                loss, output = self.compute_loss(batch, return_outputs=True)
                predictions.append(_logits_of(output).data)
                _, _, y = _split(batch)
                if y is not None:
                    labels.append(y.data if isinstance(y, Tensor) else np.asarray(y))
                n = batch_size_of(batch)
                losses.append(float(loss.data) * n)
                counts.append(n)
        preds = np.concatenate(predictions) if predictions else np.zeros(0)
        label_ids = np.concatenate(labels) if labels else None
        if ranks == 1:
            return preds, label_ids, sum(losses) / max(sum(counts), 1)
        total = distributed.all_reduce(np.array([sum(losses), sum(counts)], dtype=np.float64))
        preds = _gather_rows(preds if predictions else None, "predictions")
        label_ids = _gather_rows(label_ids, "labels")
        return preds, label_ids, float(total[0] / max(total[1], 1))

    def evaluate(self, eval_dataset: Any = None) -> dict:
        """{'eval_loss': mean loss, and compute_metrics' results prefixed 'eval_'}."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("Trainer: evaluate() needs an eval_dataset")
        preds, label_ids, loss = self._predict_loop(dataset)
        metrics = {"eval_loss": loss}
        if self.compute_metrics is not None:
            for k, v in self.compute_metrics(EvalPrediction(preds, label_ids)).items():
                metrics[k if k.startswith("eval_") else f"eval_{k}"] = float(v)
        return metrics

    def predict(self, test_dataset: Any) -> PredictionOutput:
        """Predictions (the model's logits) for a data set, with its labels and metrics."""
        preds, label_ids, loss = self._predict_loop(test_dataset)
        metrics = {"test_loss": loss}
        if self.compute_metrics is not None and label_ids is not None:
            for k, v in self.compute_metrics(EvalPrediction(preds, label_ids)).items():
                metrics[f"test_{k}"] = float(v)
        return PredictionOutput(preds, label_ids, metrics)

    def _plot(self) -> None:
        if not self.is_world_process_zero:
            return
        train = [(h["step"], h["loss"]) for h in self.log_history if "loss" in h]
        evals = [(h["step"], h["eval_loss"]) for h in self.log_history if "eval_loss" in h]
        save_curves(
            {"train loss": train, "eval loss": evals}, Path(self.args.output_dir) / "curves.png"
        )


def _gather_rows(array: np.ndarray | None, what: str) -> np.ndarray | None:
    """Every rank's ``array`` concatenated in rank order (first dimensions may differ, the
    rest must agree; a rank with no rows sends None)."""
    meta = None if array is None else [array.shape[0], list(array.shape[1:]), array.dtype.str]
    metas = distributed.all_gather_object(None, meta)
    shapes = {(tuple(m[1]), m[2]) for m in metas if m is not None}
    if not shapes:
        return None
    if len(shapes) > 1:
        raise ValueError(
            f"Trainer: the ranks' {what} have different shapes after the first dimension "
            f"({sorted(shapes)}); data-parallel evaluation needs the same on every rank"
        )
    ((trailing, dtype),) = shapes
    longest = max(m[0] for m in metas if m is not None)
    padded = np.zeros((longest, *trailing), dtype=np.dtype(dtype))
    if array is not None:
        padded[: array.shape[0]] = array
    parts = distributed.all_gather(None, padded)
    return np.concatenate([p[: m[0]] for p, m in zip(parts, metas) if m is not None])


def batch_size_of(batch: Any) -> int:
    """The number of samples in a collated batch."""
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    return int(batch.shape[0]) if hasattr(batch, "shape") and len(batch.shape) else 1
