"""Language models: makemore's MLP on names, and a character GPT and LSTM on tiny
shakespeare in nanoGPT's small CPU setting."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.data import Subset
from minigrad.data.datasets import CharCorpus, names_splits
from minigrad.optim import lr_scheduler
from models.recipes.base import Data, Recipe, Reference, loss_only, need
from models.text import GPT, CharLSTM, MakemoreMLP


def names(root, short, seed):
    train, dev, test, vocab = names_splits(need(root / "names" / "names.txt", "names.txt"))
    return Data(train, Subset(dev, range(2000)) if short else dev, dev, extra={"vocab": vocab})


def sgd_then_a_tenth(model, steps):
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    return opt, lr_scheduler.MultiStepLR(opt, [steps // 2], gamma=0.1)  # 0.1, then 0.01


def shakespeare(root, short, seed):
    """Tiny shakespeare in 64-character blocks, 90/10; evaluated on 480 random validation
    blocks (48 in the short version), drawn with the run's seed."""
    path = need(root / "tinyshakespeare" / "input.txt", "tiny shakespeare (input.txt)")
    train = CharCorpus(path, 64)
    val = CharCorpus(path, 64, split="val", tokenizer=train.tokenizer)
    rng = np.random.default_rng(seed)
    held_out = Subset(val, rng.integers(0, len(val), 48 if short else 480).tolist())
    return Data(train, held_out, held_out, tokenizer=train.tokenizer)


def warm_up_then_cosine(optimizer):
    """nanoGPT's schedule: a linear warm-up over a tenth of the run (at most 100 steps), then
    cosine decay to a tenth of the rate."""

    def make(model, steps):
        opt = optimizer(model)
        warm = min(100, steps // 10)

        def factor(s):
            if s < warm:
                return (s + 1) / (warm + 1)
            return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (s - warm) / (steps - warm))))

        return opt, lr_scheduler.LambdaLR(opt, factor)

    return make


def lm_loss(logits, labels):
    return mg.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def write_sample(trainer, model, d, seed, out) -> dict:
    """200 characters generated after a newline, saved as sample.txt beside the model."""
    sample = model.generate(
        [[d.tokenizer.stoi["\n"]]],
        200,
        temperature=0.8,
        top_k=20,
        generator=np.random.default_rng(seed),
    )
    if out is not None:
        (Path(out) / "sample.txt").write_text(d.tokenizer.decode(sample[0]))
    return {}


def char_lm(name, summary, reference, minutes, model, optimizer):
    return Recipe(
        name=name,
        summary=summary,
        data="tinyshakespeare/input.txt",
        reference=reference,
        minutes=minutes,
        load=shakespeare,
        model=model,
        optimizer=warm_up_then_cosine(optimizer),
        steps=lambda d, epochs, short: 20 if short else (epochs or 2000),
        batch=12,
        eval_batch=48,
        metric="loss",
        report_as="val_loss",
        training={"max_grad_norm": 1.0},
        compute_metrics=lambda d, model: loss_only,
        compute_loss=lm_loss,
        finish=write_sample,
    )


RECIPES = [
    Recipe(
        name="names-mlp",
        summary="makemore's MLP language model on names (context 3, embedding 10, hidden 200)",
        data="names/names.txt",
        reference=Reference("dev loss 2.17", "Karpathy's makemore part 2 notebook"),
        minutes=2.0,
        load=names,
        model=lambda d: MakemoreMLP(vocab_size=d.extra["vocab"]),
        optimizer=sgd_then_a_tenth,
        steps=lambda d, epochs, short: 300 if short else (epochs or 200) * 1000,
        batch=32,
        metric="loss",
        report_as="dev_loss",
        evaluations=4,
        compute_metrics=lambda d, model: loss_only,
    ),
    char_lm(
        "shakespeare-gpt",
        "a character GPT on tiny shakespeare (4 layers, 4 heads, width 128, context 64, "
        "batch 12, 2000 steps)",
        Reference("val loss about 1.88", "nanoGPT's README, its CPU run of shakespeare_char"),
        4.0,
        lambda d: GPT(vocab_size=d.tokenizer.vocab_size, context=64, width=128, layers=4, heads=4),
        lambda m: mg.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1),
    ),
    char_lm(
        "shakespeare-lstm",
        "a 2-layer character LSTM beside the GPT (batch 12, 2000 steps)",
        Reference("no published figure", "reported beside the GPT"),
        3.0,
        lambda d: CharLSTM(
            vocab_size=d.tokenizer.vocab_size, embedding=64, hidden=256, num_layers=2
        ),
        lambda m: mg.optim.Adam(m.parameters(), lr=2e-3),
    ),
]
