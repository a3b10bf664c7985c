"""Sentence classification on SST-2: Kim's CNN with random word vectors, and a small
BERT-style encoder trained from scratch."""

from __future__ import annotations

import math

import minigrad as mg
from minigrad.data import Subset
from minigrad.data.datasets import SST2
from minigrad.data.text import WordTokenizer, padded_batches
from minigrad.optim import lr_scheduler
from models.recipes.base import Data, KeepMaxNorm, Recipe, Reference, need
from models.text import BertForSequenceClassification, KimCNN


def sst2(root, short, seed):
    """SST-2's sentences as Kim split them; the word tokenizer learns the training split."""
    folder = root / "sst2"
    train, dev, test = (
        SST2(need(folder / f"stsa.binary.{s}", f"SST-2 {s} split"))
        for s in ("train", "dev", "test")
    )
    tokenizer = WordTokenizer.train([t for t, _ in train.samples])
    return Data(train, Subset(dev, range(200)) if short else dev, test, tokenizer=tokenizer)


def adamw_warm_up(model, steps, lr=5e-4):
    """AdamW (weight decay 0.01) with a linear warm-up over a tenth of the run, then linear
    decay; 5e-4 from scratch, the checkpoint's rate (2e-5) when fine-tuning one."""
    opt = mg.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    return opt, lr_scheduler.get_linear_schedule_with_warmup(opt, max(1, steps // 10), steps)


def from_checkpoint(name_or_path: str):
    from models.sst2_from import checkpoint_model

    return checkpoint_model(name_or_path)


RECIPES = [
    Recipe(
        name="sst2-kimcnn",
        summary="Kim's sentence CNN with random word vectors on SST-2",
        data="sst2/stsa.binary.*",
        reference=Reference(
            "83.5 % test accuracy",
            "Kim 2014, CNN-rand, trained on the treebank's phrases, not only its sentences",
        ),
        minutes=2.0,
        load=sst2,
        model=lambda d: KimCNN(
            vocab_size=d.tokenizer.vocab_size, num_classes=2, embed_dropout=0.25, maps=200
        ),
        optimizer=lambda model, steps: (mg.optim.Adam(model.parameters(), lr=1e-3), None),
        steps=lambda d, epochs, short: (
            60 if short else (epochs or 5) * math.ceil(len(d.train) / 50)
        ),
        batch=50,
        evaluations=10,
        best=True,
        collate=lambda d: padded_batches(d.tokenizer, minimum=5, maximum=64),
        callbacks=lambda model: [KeepMaxNorm(model, 3.0)],
    ),
    Recipe(
        name="sst2-bert",
        summary="a small BERT-style classifier trained from scratch on SST-2 (2 layers, width 128)",
        data="sst2/stsa.binary.*",
        reference=Reference("no published figure for this size", "reported"),
        minutes=3.0,
        load=sst2,
        model=lambda d: BertForSequenceClassification(
            num_labels=2,
            vocab_size=d.tokenizer.vocab_size,
            context=64,
            width=128,
            layers=2,
            heads=4,
        ),
        optimizer=adamw_warm_up,
        steps=lambda d, epochs, short: (
            80 if short else (epochs or 6) * math.ceil(len(d.train) / 32)
        ),
        batch=32,
        evaluations=6,
        best=True,
        training={"max_grad_norm": 1.0},
        collate=lambda d: padded_batches(d.tokenizer, minimum=1, maximum=64),
        start_from=from_checkpoint,
    ),
]
