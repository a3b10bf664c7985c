"""Training recipes: a model, its data, its optimizer and schedule, and the figure to reach.

Each recipe builds its data sets from files under a data directory (default
``../shared/data`` beside the repository, or ``$MINIGRAD_DATA``), trains with
``minigrad.train.Trainer`` (progress bar, JSON-lines log, checkpoints, PNG curves) and ends
with a report: the metric it reached beside the reference figure. ``minigrad train NAME``
runs one; ``short=True`` is the seeded few-step version the tests run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.data import DataLoader, Subset, TensorDataset
from minigrad.optim import lr_scheduler
from minigrad.train import Callback, Trainer, TrainingArguments, metrics
from models.ner import dictionary_baseline, entity_f1

ROOT = Path(__file__).resolve().parents[1]


def data_dir(given: str | None = None) -> Path:
    return Path(given or os.environ.get("MINIGRAD_DATA") or ROOT.parent / "shared" / "data")


class MissingData(FileNotFoundError):
    """A recipe's data files are not where it looked (the CLI prints this in one line)."""


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingData(f"{what} not found at {path}; pass --data DIR (the folder holding it)")
    return path


@dataclass
class Recipe:
    name: str
    summary: str
    data: str
    reference: str
    expected: str  # what minigrad reaches, as recorded in the README
    minutes: float  # expected full-run time on 2 cores
    run: Callable[..., dict]


RECIPES: dict[str, Recipe] = {}

# What the full runs reached here (seed 0, 2 cores), as the README records them.
EXPECTED = {
    "digits-cnn": "98.05 % test accuracy (2 s)",
    "mnist1d-linear": "31.5 % (3 s)",
    "mnist1d-mlp": "67.0 % (6 s)",
    "mnist1d-cnn": "94.2 % (15 s)",
    "mnist1d-gru": "89.8 % (16 s)",
    "lenet5-mnist": "97.35 % test accuracy (13 s)",
    "names-mlp": "dev loss 2.111 (98 s)",
    "shakespeare-gpt": "val loss 1.891 (100 s)",
    "shakespeare-lstm": "val loss 1.639 (98 s)",
    "sst2-kimcnn": "81.9 % test accuracy (70 s): short of the 82 % bar",
    "sst2-bert": "69.7 % test accuracy (69 s)",
    "wnut17-bilstm": "entity F1 5.5 % against the baseline's 3.0 % (56 s)",
    "wnut17-bilstm-crf": "not measured yet",
}


def recipe(name: str, summary: str, data: str, reference: str, expected: str, minutes: float):
    def register(fn: Callable[..., dict]) -> Callable[..., dict]:
        RECIPES[name] = Recipe(name, summary, data, reference, expected, minutes, fn)
        return fn

    return register


_evaluating = False  # set by evaluate_recipe: load the trained model instead of training


def _fit(trainer: Trainer, model: Any, out: str) -> None:
    """Train; or, under ``evaluate_recipe``, load the weights a finished run saved."""
    if not _evaluating:
        trainer.train()
        return
    path = Path(out) / "model" / "model.safetensors"
    if not path.exists():
        raise MissingData(
            f"no trained model at {path}; train first: minigrad train RECIPE --out {out}"
        )
    model.load_state_dict(mg.load(path))


def evaluate_recipe(name: str, out: str, data: str | None = None) -> dict:
    """Evaluate the model a finished ``train`` run saved in ``out`` on the recipe's
    evaluation data again (nothing is trained or written)."""
    global _evaluating
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; `minigrad recipes` lists them")
    _evaluating = True
    try:
        return RECIPES[name].run(out=out, data=data, verbose=False)
    finally:
        _evaluating = False


def _accuracy(p) -> dict:
    return {"accuracy": metrics.accuracy(p.label_ids, p.predictions)}


def _train(
    model,
    train,
    evaluation,
    out: str,
    seed: int,
    steps: int,
    batch: int,
    optimizer,
    schedule=None,
    eval_steps: int | None = None,
    metric: str = "accuracy",
    compute_metrics=_accuracy,
    verbose: bool = True,
    max_grad_norm: float = 0.0,
    collate=None,
    shuffle: bool = True,
    best: bool = False,
    eval_batch: int = 256,
    callbacks: list | None = None,
) -> Trainer:
    args = TrainingArguments(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=eval_batch,
        max_grad_norm=max_grad_norm,
        lr_scheduler_type="constant",
        logging_steps=max(1, min(100, steps // 20)),
        eval_strategy="steps",
        eval_steps=eval_steps or max(1, steps // 5),
        save_strategy="steps",
        save_steps=eval_steps or max(1, steps // 5),
        save_total_limit=2,
        metric_for_best_model=metric,
        load_best_model_at_end=best,
        seed=seed,
        disable_tqdm=not verbose,
    )
    schedule = schedule or lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    trainer = Trainer(
        model,
        args,
        train,
        evaluation,
        data_collator=collate,
        compute_metrics=compute_metrics,
        optimizers=(optimizer, schedule),
        callbacks=callbacks,
    )
    if not shuffle:  # batches in the data set's order, epoch after epoch
        trainer.get_train_dataloader = lambda: DataLoader(train, batch, collate_fn=collate)
    _fit(trainer, model, out)
    return trainer


def _report(
    out: str,
    name: str,
    figures: dict,
    reference: str,
    start: float,
    model: Any = None,
    tokenizer: Any = None,
) -> dict:
    """Write report.json (and the trained model, in Hugging Face's layout, under model/)."""
    report = {
        "recipe": name,
        **figures,
        "reference": reference,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if _evaluating:
        report["evaluated_again"] = True
        return report
    Path(out).mkdir(parents=True, exist_ok=True)
    if model is not None and hasattr(model, "save_pretrained"):
        model.save_pretrained(Path(out) / "model")
    if tokenizer is not None:
        tokenizer.save(Path(out) / "tokenizer.json")
    tmp = Path(out) / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, Path(out) / "report.json")
    return report


# -- digits (bundled) ---------------------------------------------------------------------------


@recipe(
    "digits-cnn",
    "a small CNN on scikit-learn's 8x8 digits (the README's main job)",
    "bundled with scikit-learn",
    "about 97 % test accuracy for an SVM (scikit-learn's example "
    "'Recognizing hand-written digits')",
    EXPECTED["digits-cnn"],
    0.3,
)
def digits_cnn(
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
) -> dict:
    from minigrad.data.datasets import Digits
    from models.vision import DigitsCNN

    start = time.perf_counter()
    mg.manual_seed(seed)
    train, test = Digits(train=True), Digits(train=False)
    model = DigitsCNN()
    epochs = epochs or (3 if short else 15)
    steps = epochs * math.ceil(len(train) / 32)
    opt = mg.optim.Adam(model.parameters(), lr=3e-3)
    trainer = _train(
        model,
        train,
        test,
        out,
        seed,
        steps,
        32,
        opt,
        lr_scheduler.CosineAnnealingLR(opt, steps),
        verbose=verbose,
    )
    result = trainer.evaluate(test)
    return _report(
        out,
        "digits-cnn",
        {"test_accuracy": result["eval_accuracy"], "test_loss": result["eval_loss"]},
        RECIPES["digits-cnn"].reference,
        start,
        model,
    )


# -- MNIST-1D ----------------------------------------------------------------------------------

_MNIST1D_REFERENCE = {"linear": 31.5, "mlp": 65.1, "cnn": 92.3, "gru": 89.1}


def _mnist1d(kind: str):
    def run(
        out: str,
        seed: int = 0,
        epochs: int | None = None,
        data: str | None = None,
        short: bool = False,
        verbose: bool = True,
    ) -> dict:
        from minigrad.data.datasets import MNIST1D
        from models import mnist1d as zoo

        start = time.perf_counter()
        train, test = MNIST1D(train=True), MNIST1D(train=False)  # the published seed 42
        mg.manual_seed(seed)
        model = {
            "linear": zoo.MNIST1DLinear,
            "mlp": zoo.MNIST1DMLP,
            "cnn": zoo.MNIST1DCNN,
            "gru": zoo.MNIST1DGRU,
        }[kind]()
        steps = 60 if short else (epochs or 150) * 40  # the paper: 6000 steps of batch 100
        opt = mg.optim.Adam(model.parameters(), lr=1e-2)
        # as the paper's notebook: the training set in order, 40 batches of 100 an epoch
        trainer = _train(
            model,
            train,
            test,
            out,
            seed,
            steps,
            100,
            opt,
            eval_steps=max(1, steps // 6),
            verbose=verbose,
            shuffle=False,
        )
        result = trainer.evaluate(test)
        return _report(
            out,
            f"mnist1d-{kind}",
            {"test_accuracy": result["eval_accuracy"]},
            f"{_MNIST1D_REFERENCE[kind]} % (Greydanus 2020, the MNIST-1D paper's notebook)",
            start,
            model,
        )

    return run


for _kind in ("linear", "mlp", "cnn", "gru"):
    recipe(
        f"mnist1d-{_kind}",
        f"the MNIST-1D paper's {_kind} baseline (Adam 1e-2, batch 100, 6000 steps)",
        "generated (MNIST-1D, seed 42)",
        f"{_MNIST1D_REFERENCE[_kind]} % test accuracy (Greydanus 2020, the paper's notebook)",
        EXPECTED[f"mnist1d-{_kind}"],
        0.5,
    )(_mnist1d(_kind))


# -- MNIST: LeNet-5 -------------------------------------------------------------------------------


def load_mnist_5k(root: Path) -> TensorDataset:
    import gzip

    path = _need(root / "mnist" / "mnist_5k.csv.gz", "mnist_5k.csv.gz (5,000 MNIST images)")
    with gzip.open(path, "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = (raw[:, :784] / 255.0).reshape(-1, 1, 28, 28)
    return TensorDataset(x, raw[:, 784].astype(np.int64))


@recipe(
    "lenet5-mnist",
    "LeNet-5 on 5,000 MNIST training images, tested on the official 10,000",
    "mnist/mnist_5k.csv.gz, mnist/t10k-*",
    "0.95 % test error for LeNet-5 trained on all 60,000 images (LeCun et al. 1998, "
    "Fig. 9); here 5,000 only",
    EXPECTED["lenet5-mnist"],
    1.5,
)
def lenet5_mnist(
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
) -> dict:
    from minigrad.data.datasets import MNIST
    from models.vision import LeNet5

    start = time.perf_counter()
    root = data_dir(data)
    train = load_mnist_5k(root)
    _need(root / "mnist" / "t10k-images-idx3-ubyte.gz", "the MNIST test set")
    test = MNIST(root / "mnist", train=False)
    if short:
        test = Subset(test, range(500))
    mg.manual_seed(seed)
    model = LeNet5()
    epochs = epochs or (1 if short else 15)
    steps = 40 if short else epochs * math.ceil(len(train) / 64)
    opt = mg.optim.Adam(model.parameters(), lr=2e-3)
    trainer = _train(
        model,
        train,
        test,
        out,
        seed,
        steps,
        64,
        opt,
        lr_scheduler.CosineAnnealingLR(opt, steps),
        verbose=verbose,
    )
    result = trainer.evaluate(test)
    return _report(
        out,
        "lenet5-mnist",
        {"test_accuracy": result["eval_accuracy"]},
        RECIPES["lenet5-mnist"].reference,
        start,
        model,
    )


# -- names: makemore's MLP ------------------------------------------------------------------------


def names_datasets(root: Path, context: int = 3, seed: int = 42):
    """makemore's split of names.txt (shuffled with seed 42: 80 % train, 10 % dev, 10 %
    test) as (context characters, next character) pairs; '.' (id 0) marks both ends."""
    import random as pyrandom

    path = _need(root / "names" / "names.txt", "names.txt")
    words = path.read_text().split()
    pyrandom.Random(seed).shuffle(words)
    chars = sorted(set("".join(words)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    stoi["."] = 0

    def build(ws):
        xs, ys = [], []
        for w in ws:
            ctx = [0] * context
            for ch in w + ".":
                xs.append(ctx)
                ys.append(stoi[ch])
                ctx = ctx[1:] + [stoi[ch]]
        return TensorDataset(np.array(xs, np.int64), np.array(ys, np.int64))

    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return build(words[:n1]), build(words[n1:n2]), build(words[n2:]), len(stoi)


def _loss_only(p) -> dict:
    return {}


@recipe(
    "names-mlp",
    "makemore's MLP language model on names (context 3, embedding 10, hidden 200)",
    "names/names.txt",
    "dev loss 2.17 (Karpathy's makemore, the same MLP)",
    EXPECTED["names-mlp"],
    2.0,
)
def names_mlp(
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
) -> dict:
    from models.text import MakemoreMLP

    start = time.perf_counter()
    train, dev, test, vocab = names_datasets(data_dir(data))
    mg.manual_seed(seed)
    model = MakemoreMLP(vocab_size=vocab)
    steps = 300 if short else (epochs or 200) * 1000
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    schedule = lr_scheduler.MultiStepLR(opt, [steps // 2], gamma=0.1)  # 0.1, then 0.01
    trainer = _train(
        model,
        train,
        Subset(dev, range(2000)) if short else dev,
        out,
        seed,
        steps,
        32,
        opt,
        schedule,
        eval_steps=max(1, steps // 4),
        metric="loss",
        compute_metrics=_loss_only,
        verbose=verbose,
    )
    dev_loss = trainer.evaluate(dev)["eval_loss"]
    return _report(
        out, "names-mlp", {"dev_loss": dev_loss}, RECIPES["names-mlp"].reference, start, model
    )


# -- tiny shakespeare: character GPT and LSTM ----------------------------------------------------


def shakespeare(root: Path, block: int):
    from minigrad.data.datasets import CharCorpus

    path = _need(root / "tinyshakespeare" / "input.txt", "tiny shakespeare (input.txt)")
    train = CharCorpus(path, block)
    val = CharCorpus(path, block, split="val", tokenizer=train.tokenizer)
    return train, val


def _lm_loss(logits, labels):
    return mg.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def _char_lm(kind: str):
    def run(
        out: str,
        seed: int = 0,
        epochs: int | None = None,
        data: str | None = None,
        short: bool = False,
        verbose: bool = True,
    ) -> dict:
        from models.text import GPT, CharLSTM

        start = time.perf_counter()
        train, val = shakespeare(data_dir(data), 64)
        mg.manual_seed(seed)
        vocab = train.tokenizer.vocab_size
        if kind == "gpt":
            model = GPT(vocab_size=vocab, context=64, width=128, layers=4, heads=4)
            opt = mg.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
        else:
            model = CharLSTM(vocab_size=vocab, embedding=64, hidden=256, num_layers=2)
            opt = mg.optim.Adam(model.parameters(), lr=2e-3)
        steps = 20 if short else (epochs or 2000)
        warm = min(100, steps // 10)

        def factor(s):  # nanoGPT: linear warm-up, cosine decay to a tenth
            if s < warm:
                return (s + 1) / (warm + 1)
            return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (s - warm) / (steps - warm))))

        schedule = lr_scheduler.LambdaLR(opt, factor)
        rng = np.random.default_rng(seed)
        held_out = Subset(val, rng.integers(0, len(val), 48 if short else 480).tolist())
        trainer = Trainer(
            model,
            TrainingArguments(
                output_dir=out,
                max_steps=steps,
                per_device_train_batch_size=12,
                per_device_eval_batch_size=48,
                max_grad_norm=1.0,
                logging_steps=max(1, min(50, steps // 10)),
                eval_strategy="steps",
                eval_steps=max(1, steps // 5),
                save_strategy="steps",
                save_steps=max(1, steps // 5),
                save_total_limit=2,
                seed=seed,
                disable_tqdm=not verbose,
            ),
            train,
            held_out,
            optimizers=(opt, schedule),
            compute_loss_func=_lm_loss,
        )
        _fit(trainer, model, out)
        val_loss = trainer.evaluate(held_out)["eval_loss"]
        sample = model.generate(
            [[train.tokenizer.stoi["\n"]]],
            200,
            temperature=0.8,
            top_k=20,
            generator=np.random.default_rng(seed),
        )
        if not _evaluating:
            (Path(out) / "sample.txt").write_text(train.tokenizer.decode(sample[0]))
        return _report(
            out,
            f"shakespeare-{kind}",
            {"val_loss": val_loss},
            "val loss about 1.88 (nanoGPT's README, its CPU setting: the same model)"
            if kind == "gpt"
            else "a character LSTM beside the GPT",
            start,
            model,
            train.tokenizer,
        )

    return run


recipe(
    "shakespeare-gpt",
    "a character GPT on tiny shakespeare (4 layers, 4 heads, width 128, "
    "context 64, batch 12, 2000 steps)",
    "tinyshakespeare/input.txt",
    "val loss about 1.88 (nanoGPT's README, its CPU setting: the same model)",
    EXPECTED["shakespeare-gpt"],
    4.0,
)(_char_lm("gpt"))
recipe(
    "shakespeare-lstm",
    "a 2-layer character LSTM beside the GPT (batch 12, 2000 steps)",
    "tinyshakespeare/input.txt",
    "no published figure; reported beside the GPT",
    EXPECTED["shakespeare-lstm"],
    3.0,
)(_char_lm("lstm"))


# -- SST-2: Kim's CNN and a small BERT --------------------------------------------------------


def sst2_data(root: Path):
    from minigrad.data.datasets import SST2
    from minigrad.data.text import WordTokenizer

    folder = root / "sst2"
    splits = [
        SST2(_need(folder / f"stsa.binary.{s}", f"SST-2 {s} split"))
        for s in ("train", "dev", "test")
    ]
    tokenizer = WordTokenizer.train([t for t, _ in splits[0].samples])
    return splits, tokenizer


def padded_batches(tokenizer, minimum: int = 5, maximum: int = 64):
    """A collate function: (sentence, label) pairs -> (ids (B, T) padded with 0, labels)."""

    def collate(batch):
        ids = [tokenizer.encode(text)[:maximum] for text, _ in batch]
        width = max(minimum, max(len(i) for i in ids))
        out = np.zeros((len(ids), width), np.int64)
        for k, row in enumerate(ids):
            out[k, : len(row)] = row
        return mg.tensor(out), mg.tensor(np.array([y for _, y in batch], np.int64))

    return collate


class KeepMaxNorm(Callback):
    """Kim's constraint: after every step, the classifier's rows have L2 norm at most 3."""

    def __init__(self, model) -> None:
        self.cnn = model

    def on_train_batch_end(self, batch, logs=None):
        self.cnn.max_norm_(3.0)


@recipe(
    "sst2-kimcnn",
    "Kim's sentence CNN with random word vectors, trained on SST-2's sentences only, "
    "the model chosen on dev",
    "sst2/stsa.binary.* (6,920 training sentences, no phrases)",
    "context, not a like-for-like bar: 83.5 % (Kim 2014, Table 2, CNN-rand), trained on the "
    "treebank's ~77,000 labelled phrases",
    EXPECTED["sst2-kimcnn"],
    2.0,
)
def sst2_kimcnn(
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
) -> dict:
    from models.text import KimCNN

    start = time.perf_counter()
    (train, dev, test), tokenizer = sst2_data(data_dir(data))
    mg.manual_seed(seed)
    model = KimCNN(vocab_size=tokenizer.vocab_size, num_classes=2)
    steps = 60 if short else (epochs or 8) * math.ceil(len(train) / 50)
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    trainer = _train(
        model,
        train,
        Subset(dev, range(200)) if short else dev,
        out,
        seed,
        steps,
        50,
        opt,
        collate=padded_batches(tokenizer),
        verbose=verbose,
        eval_steps=max(1, steps // 8),
        best=True,
        callbacks=[KeepMaxNorm(model)],
    )
    result = trainer.evaluate(test)
    return _report(
        out,
        "sst2-kimcnn",
        {"test_accuracy": result["eval_accuracy"]},
        RECIPES["sst2-kimcnn"].reference,
        start,
        model,
        tokenizer,
    )


@recipe(
    "sst2-bert",
    "a small BERT-style classifier trained from scratch on SST-2 (2 layers, width 128)",
    "sst2/stsa.binary.*",
    "no published figure for this size; reported",
    EXPECTED["sst2-bert"],
    3.0,
)
def sst2_bert(
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
) -> dict:
    from models.text import BertForSequenceClassification

    start = time.perf_counter()
    (train, dev, test), tokenizer = sst2_data(data_dir(data))
    mg.manual_seed(seed)
    model = BertForSequenceClassification(
        num_labels=2, vocab_size=tokenizer.vocab_size, context=64, width=128, layers=2, heads=4
    )
    steps = 80 if short else (epochs or 6) * math.ceil(len(train) / 32)
    opt = mg.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    warm = max(1, steps // 10)
    schedule = lr_scheduler.get_linear_schedule_with_warmup(opt, warm, steps)
    trainer = _train(
        model,
        train,
        Subset(dev, range(200)) if short else dev,
        out,
        seed,
        steps,
        32,
        opt,
        schedule,
        collate=padded_batches(tokenizer, 1),
        verbose=verbose,
        eval_steps=max(1, steps // 6),
        best=True,
        max_grad_norm=1.0,
    )
    result = trainer.evaluate(test)
    return _report(
        out,
        "sst2-bert",
        {"test_accuracy": result["eval_accuracy"]},
        RECIPES["sst2-bert"].reference,
        start,
        model,
        tokenizer,
    )


# -- WNUT-17: BiLSTM tagger ------------------------------------------------------------------


def wnut17_data(root: Path):
    from minigrad.data.datasets import CoNLL

    folder = root / "wnut17"
    train = CoNLL(_need(folder / "wnut17train.conll", "WNUT-17 train"))
    dev = CoNLL(_need(folder / "emerging.dev.conll", "WNUT-17 dev"), train.tag_names)
    test = CoNLL(_need(folder / "emerging.test.annotated", "WNUT-17 test"), train.tag_names)
    return train, dev, test


@recipe(
    "wnut17-bilstm",
    "a BiLSTM tagger for WNUT-17 emerging entities, against a dictionary baseline",
    "wnut17/*.conll",
    "entity F1 above the dictionary baseline's",
    EXPECTED["wnut17-bilstm"],
    2.0,
)
def wnut17_bilstm(
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
) -> dict:
    from minigrad.data.text import WordTokenizer
    from models.text import BiLSTMTagger

    start = time.perf_counter()
    train, dev, test = wnut17_data(data_dir(data))
    tokenizer = WordTokenizer.train([" ".join(t) for t, _ in train.sentences], lower=True)
    tag_id = {t: i for i, t in enumerate(train.tag_names)}

    def collate(batch):
        width = max(len(t) for t, _ in batch)
        ids = np.zeros((len(batch), width), np.int64)
        labels = np.full((len(batch), width), -100, np.int64)
        for k, (tokens, tags) in enumerate(batch):
            ids[k, : len(tokens)] = [tokenizer.stoi.get(t.lower(), 1) for t in tokens]
            labels[k, : len(tags)] = [tag_id[t] for t in tags]
        return {"input_ids": mg.tensor(ids), "labels": mg.tensor(labels)}

    def f1_of(p) -> dict:
        logits, labels = p.predictions, p.label_ids
        gold, pred = [], []
        for row_logits, row_labels in zip(logits, labels):
            keep = row_labels != -100
            gold.append([train.tag_names[i] for i in row_labels[keep]])
            pred.append([train.tag_names[i] for i in row_logits[keep].argmax(-1)])
        return {"f1": entity_f1(gold, pred)}

    mg.manual_seed(seed)
    model = BiLSTMTagger(vocab_size=tokenizer.vocab_size, num_tags=len(train.tag_names))
    steps = 20 if short else (epochs or 30) * math.ceil(len(train) / 32)
    # lr 2e-3 for 10 epochs reached dev F1 6.3 % (test 2.1 %, below the dictionary)
    opt = mg.optim.Adam(model.parameters(), lr=3e-3)
    trainer = _train(
        model,
        train,
        Subset(dev, range(100)) if short else dev,
        out,
        seed,
        steps,
        32,
        opt,
        collate=collate,
        compute_metrics=f1_of,
        metric="f1",
        verbose=verbose,
        eval_steps=max(1, steps // 10),
        best=True,
        eval_batch=10_000,  # one padded batch per evaluation, so that the rows line up
    )
    result = trainer.evaluate(test)
    baseline = entity_f1(
        [t for _, t in test.sentences],
        dictionary_baseline(train.sentences, [s for s, _ in test.sentences]),
    )
    return _report(
        out,
        "wnut17-bilstm",
        {"test_entity_f1": result["eval_f1"], "dictionary_baseline_f1": baseline},
        RECIPES["wnut17-bilstm"].reference,
        start,
        model,
    )


@recipe(
    "wnut17-bilstm-crf",
    "a BiLSTM-CRF tagger over words, characters (CNN) and word shapes for WNUT-17, trained "
    "from scratch (no pretrained vectors)",
    "wnut17/*.conll",
    "about 40 % entity F1 for shared-task systems with pretrained embeddings and character "
    "features (Lin et al. 2017, BiLSTM-CRF; Derczynski et al. 2017, Table 3)",
    EXPECTED["wnut17-bilstm-crf"],
    8.0,
)
def wnut17_bilstm_crf(
    out: str,
    seed: int = 0,
    epochs: int | None = None,
    data: str | None = None,
    short: bool = False,
    verbose: bool = True,
) -> dict:
    from models.ner import TaggerInputs, wnut_scores
    from models.text import BiLSTMCRFTagger

    start = time.perf_counter()
    train, dev, test = wnut17_data(data_dir(data))
    # words seen once are left out of the vocabulary, so that training meets unknown words
    # (id 1) too and learns to read their characters and shapes
    inputs = TaggerInputs([t for t, _ in train.sentences], train.tag_names, min_count=2)
    held_out = Subset(dev, range(100)) if short else dev
    held_out_sentences = [held_out[i] for i in range(len(held_out))]
    mg.manual_seed(seed)
    model = BiLSTMCRFTagger(
        vocab_size=inputs.vocab_size, num_chars=inputs.num_chars, tag_names=train.tag_names
    )

    def tag_all(sentences) -> list[list[str]]:
        was_training = model.training
        model.eval()
        batch = inputs.collate(sentences)
        tags = model.decode(batch["input_ids"], batch["char_ids"], batch["shapes"])
        model.train(was_training)
        return tags

    def scores_on_dev(p) -> dict:  # the Trainer's evaluation: Viterbi tags, wnuteval's F1s
        gold_mask = p.label_ids != -100
        paths = model.crf.decode(mg.tensor(p.predictions), gold_mask)
        predicted = [[train.tag_names[i] for i in path] for path in paths]
        tokens, gold = zip(*held_out_sentences)
        return wnut_scores(tokens, gold, predicted)

    steps = 20 if short else (epochs or 12) * math.ceil(len(train) / 32)
    opt = mg.optim.Adam(model.parameters(), lr=2e-3)
    _train(
        model,
        train,
        held_out,
        out,
        seed,
        steps,
        32,
        opt,
        collate=inputs.collate,
        compute_metrics=scores_on_dev,
        metric="entity_f1",
        verbose=verbose,
        eval_steps=max(1, steps // 10),
        best=True,  # the model of the best dev entity F1
        max_grad_norm=5.0,
        eval_batch=10_000,  # one padded batch per evaluation, so that the rows line up
    )
    tokens, gold = zip(*test.sentences)
    tagger = wnut_scores(tokens, gold, tag_all(test.sentences))
    dictionary = wnut_scores(tokens, gold, dictionary_baseline(train.sentences, tokens))
    dev_tokens, dev_gold = zip(*held_out_sentences)
    dev_scores = wnut_scores(dev_tokens, dev_gold, tag_all(held_out_sentences))
    return _report(
        out,
        "wnut17-bilstm-crf",
        {
            "test_entity_f1": tagger["entity_f1"],
            "test_surface_f1": tagger["surface_f1"],
            "test_entity_precision": tagger["entity_precision"],
            "test_entity_recall": tagger["entity_recall"],
            "dev_entity_f1": dev_scores["entity_f1"],
            "dictionary_entity_f1": dictionary["entity_f1"],
            "dictionary_surface_f1": dictionary["surface_f1"],
        },
        RECIPES["wnut17-bilstm-crf"].reference,
        start,
        model,
    )


def run_recipe(name: str, **kwargs: Any) -> dict:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; `minigrad recipes` lists them")
    return RECIPES[name].run(**kwargs)
