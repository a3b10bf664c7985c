"""What a recipe is, and the one function that runs any of them.

A ``Recipe`` is a record: its name, the data it reads, how to build the model and the
optimizer, its training settings, the metric it is judged by, and the published figure it
is compared with (``Reference``, with its source). ``run`` trains any recipe with
``minigrad.train.Trainer`` (progress bar, JSON-lines log, checkpoints, PNG curves), or with
``evaluate_only`` loads the model a finished run saved, and ends with ``report.json``: the
figures reached beside the reference.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import minigrad as mg
from minigrad import distributed
from minigrad.optim import lr_scheduler
from minigrad.train import Callback, Trainer, TrainingArguments, metrics

ROOT = Path(__file__).resolve().parents[2]


def data_dir(given: str | None = None) -> Path:
    """Where the recipes read their data: ``--data``, else ``$MINIGRAD_DATA``, else
    ``../shared/data`` beside the repository."""
    return Path(given or os.environ.get("MINIGRAD_DATA") or ROOT.parent / "shared" / "data")


class MissingData(FileNotFoundError):
    """A recipe's data files are not where it looked (the command prints this in one line)."""


def need(path: Path, what: str) -> Path:
    """``path``, or a MissingData error that names it and says how to point elsewhere."""
    if not path.exists():
        raise MissingData(f"{what} not found at {path}; pass --data DIR (the folder holding it)")
    return path


@dataclass(frozen=True)
class Reference:
    """A published figure to compare with, and where it comes from."""

    figure: str  # "92.3 % test accuracy"
    source: str  # "the MNIST-1D paper's notebook (Greydanus 2020)"

    def __str__(self) -> str:
        return f"{self.figure} ({self.source})"


@dataclass
class Data:
    """A recipe's data sets: ``train``, ``evaluation`` (watched during training, chooses the
    best model) and ``final`` (the split the reported figure comes from), and whatever the
    model or the collate function needs (a tokenizer, the tag names)."""

    train: Any
    evaluation: Any
    final: Any
    tokenizer: Any = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A model, its data, its training and the figure to reach, as data.

    ``load(root, short, seed)`` gives the Data; ``model(data)`` the module; ``optimizer(model,
    steps)`` the optimizer and its schedule (None for a constant rate); ``steps(data, epochs,
    short)`` how long to train. ``metric`` names the figure reported on ``data.final``
    ("accuracy", "loss" or a key of ``compute_metrics``), as ``report_as``. The rest are the
    Trainer's settings (``training``: extra TrainingArguments); ``collate(data)`` and
    ``compute_metrics(data, model)``, which build those functions once the data and the
    model exist (default: stacking, and accuracy); ``callbacks(model)``; and
    ``finish(trainer, model, data, seed, out)``, which adds recipe-specific figures (and
    files, unless ``out`` is None). ``privacy`` trains with DP-SGD (``minigrad.privacy``):
    ``{"target_epsilon", "delta", "max_grad_norm"}``; the noise multiplier is the one that
    reaches target_epsilon at delta after the run's steps, and the report gives the epsilon
    the accountant counted.
    """

    name: str
    summary: str
    data: str  # what it reads, for `minigrad recipes`
    reference: Reference
    minutes: float  # the full run's time on 2 cores, about
    load: Callable[[Path, bool, int], Data]
    model: Callable[[Data], Any]
    optimizer: Callable[[Any, int], tuple]
    steps: Callable[[Data, int | None, bool], int]
    batch: int
    metric: str = "accuracy"
    report_as: str | None = "test_accuracy"  # None: ``finish`` reports every figure
    also_report: dict = field(default_factory=dict)  # more figures: report key -> metric
    evaluations: int = 5  # evaluations (and checkpoints) over the run
    eval_batch: int = 256
    best: bool = False  # load the best evaluated model at the end
    shuffle: bool = True
    training: dict = field(default_factory=dict)
    collate: Callable[[Data], Callable] | None = None
    compute_metrics: Callable[[Data, Any], Callable] | None = None
    compute_loss: Callable | None = None
    callbacks: Callable[[Any], list] | None = None
    finish: Callable[..., dict] | None = None
    # start_from(checkpoint) -> (model, tokenizer, collate, learning rate): train from a
    # Hugging Face checkpoint instead of from scratch (``minigrad train NAME --from PATH``)
    start_from: Callable[[str], tuple] | None = None
    privacy: dict | None = None


def accuracy(p) -> dict:
    return {"accuracy": metrics.accuracy(p.label_ids, p.predictions)}


def loss_only(p) -> dict:
    return {}


class InOrderTrainer(Trainer):
    """A Trainer whose batches come in the data set's order, epoch after epoch (the MNIST-1D
    paper's notebook trains that way)."""

    shuffle_train = False


def run(
    recipe: Recipe,
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
    evaluate_only: bool = False,
    start_from: str | None = None,
    data_parallel: bool | None = None,
    compiled: bool = False,
) -> dict:
    """Train ``recipe`` (``short``: the seeded few-step version the tests run) and write
    ``report.json`` and the model under ``out``; with ``evaluate_only``, load the model a
    finished run saved there and evaluate it again, writing nothing. ``start_from``: a
    Hugging Face checkpoint to fine-tune, for recipes that can (``Recipe.start_from``).
    ``compiled``: the Trainer's steps through minigrad.compile
    (``TrainingArguments(torch_compile=True)``).

    Under ``mpiexec -n N`` the run is data parallel (``data_parallel=False``: each process
    alone): each rank takes ``recipe.batch`` samples a step, so a step sees N times as many,
    and the run takes 1/N of the steps to cover the same epochs (the learning rate is the
    recipe's); rank 0 alone prints and writes the files."""
    start = time.perf_counter()
    ranks = distributed.world_size() if data_parallel is not False else 1
    writer = ranks == 1 or distributed.is_main()
    verbose = verbose and writer
    d = recipe.load(data_dir(data), short, seed)
    if evaluate_only and recipe.start_from and (Path(out) / "model" / "vocab.txt").exists():
        start_from = str(Path(out) / "model")  # a run that started from a checkpoint
    if start_from is not None and recipe.start_from is None:
        raise ValueError(f"{recipe.name} cannot start from a checkpoint (--from)")
    mg.manual_seed(seed)
    collate = recipe.collate(d) if recipe.collate else None
    if start_from is None:
        model = recipe.model(d)
        steps = -(-recipe.steps(d, epochs, short) // ranks)
        optimizer, schedule = recipe.optimizer(model, steps)
    else:
        model, d.tokenizer, collate, lr = recipe.start_from(start_from)
        steps = -(-recipe.steps(d, epochs, short) // ranks)
        optimizer, schedule = recipe.optimizer(model, steps, lr)
    every = max(1, steps // recipe.evaluations)
    settings = dict(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=recipe.batch,
        per_device_eval_batch_size=recipe.eval_batch,
        max_grad_norm=0.0,  # no clipping unless the recipe asks
        lr_scheduler_type="constant",
        logging_steps=max(1, min(100, steps // 20)),
        eval_strategy="steps",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=2,
        metric_for_best_model=recipe.metric,
        load_best_model_at_end=recipe.best,
        seed=seed,
        disable_tqdm=not verbose,
        data_parallel=data_parallel,
        torch_compile=compiled,
    )
    args = TrainingArguments(**{**settings, **recipe.training})
    private = _private(recipe, d, steps) if recipe.privacy and not evaluate_only else {}
    trainer = (Trainer if recipe.shuffle else InOrderTrainer)(
        model,
        args,
        d.train,
        d.evaluation,
        data_collator=collate,
        compute_metrics=recipe.compute_metrics(d, model) if recipe.compute_metrics else accuracy,
        compute_loss_func=recipe.compute_loss,
        optimizers=(optimizer, schedule or lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)),
        callbacks=recipe.callbacks(model) if recipe.callbacks else None,
        **{k: v for k, v in private.items() if k.startswith("privacy_")},
    )
    if evaluate_only:
        _load_trained(model, out)
    else:
        trainer.train()
    figures = {}
    if recipe.report_as is not None:
        result = trainer.evaluate(d.final)
        figures[recipe.report_as] = result[f"eval_{recipe.metric}"]
        figures.update({key: result[f"eval_{m}"] for key, m in recipe.also_report.items()})
    if private:
        delta = recipe.privacy["delta"]
        figures.update(
            epsilon=round(private["privacy_engine"].get_epsilon(delta), 4),
            delta=delta,
            noise_multiplier=round(private["privacy_kwargs"]["noise_multiplier"], 4),
        )
    if recipe.finish:
        figures.update(
            recipe.finish(trainer, model, d, seed, None if evaluate_only or not writer else out)
        )
    report = {
        "recipe": recipe.name,
        **figures,
        "reference": str(recipe.reference),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if evaluate_only:
        return {**report, "evaluated_again": True}
    if not writer:
        return report
    _write(out, report, model, d.tokenizer if start_from is None else None)
    if start_from is not None:  # the checkpoint's tokenizer files go beside the model
        d.tokenizer.save_pretrained(Path(out) / "model")
    return report


def _private(recipe: Recipe, d: Data, steps: int) -> dict:
    """The Trainer's privacy_engine and privacy_kwargs for a DP-SGD recipe: the noise that
    reaches the target epsilon after ``steps`` steps at the loader's sample rate (one over its
    number of batches, as make_private sets it)."""
    from minigrad.privacy import PrivacyEngine, get_noise_multiplier

    p = recipe.privacy
    batches = -(-len(d.train) // recipe.batch)
    sigma = get_noise_multiplier(
        target_epsilon=p["target_epsilon"],
        target_delta=p["delta"],
        sample_rate=1 / batches,
        steps=steps,
    )
    return {
        "privacy_engine": PrivacyEngine(),
        "privacy_kwargs": {"noise_multiplier": sigma, "max_grad_norm": p["max_grad_norm"]},
    }


def _load_trained(model: Any, out: str) -> None:
    path = Path(out) / "model" / "model.safetensors"
    if not path.exists():
        raise MissingData(
            f"no trained model at {path}; train first: minigrad train RECIPE --out {out}"
        )
    model.load_state_dict(mg.load(path))


def _write(out: str, report: dict, model: Any, tokenizer: Any) -> None:
    """report.json (written whole: a temporary file, then renamed), the trained model in
    Hugging Face's layout under model/, and the tokenizer if the recipe has one."""
    Path(out).mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(Path(out) / "model")
    if tokenizer is not None:
        tokenizer.save(Path(out) / "tokenizer.json")
    tmp = Path(out) / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, Path(out) / "report.json")


class KeepMaxNorm(Callback):
    """After every step, rescale the model's constrained rows to L2 norm at most ``norm``
    (Kim's constraint on his CNN's classifier; the model provides ``max_norm_``)."""

    def __init__(self, model: Any, norm: float = 3.0) -> None:
        # not ``self.model``: the Trainer sets that attribute on its callbacks
        self.constrained, self.norm = model, norm

    def on_train_batch_end(self, batch, logs=None):
        self.constrained.max_norm_(self.norm)
