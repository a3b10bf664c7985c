"""Sequence labelling: a BiLSTM tagger for WNUT-17's emerging entities, beside a dictionary
of the entities seen in training."""

from __future__ import annotations

import math

import numpy as np

import minigrad as mg
from minigrad.data import Subset
from minigrad.data.datasets import CoNLL
from minigrad.data.text import WordTokenizer
from minigrad.train.metrics import entity_f1, entity_spans
from models.recipes.base import Data, Recipe, Reference, need
from models.text import BiLSTMTagger


def wnut17(root, short, seed):
    folder = root / "wnut17"
    train = CoNLL(need(folder / "wnut17train.conll", "WNUT-17 train"))
    dev = CoNLL(need(folder / "emerging.dev.conll", "WNUT-17 dev"), train.tag_names)
    test = CoNLL(need(folder / "emerging.test.annotated", "WNUT-17 test"), train.tag_names)
    tokenizer = WordTokenizer.train([" ".join(t) for t, _ in train.sentences], lower=True)
    return Data(train, Subset(dev, range(100)) if short else dev, test, extra={"words": tokenizer})


def tagged_batches(d: Data):
    """(tokens, tags) sentences -> word ids (B, T), padded with 0, and tag ids with -100
    (ignored by the loss) on the padding."""
    tag_id = {t: i for i, t in enumerate(d.train.tag_names)}
    stoi = d.extra["words"].stoi

    def collate(batch):
        width = max(len(t) for t, _ in batch)
        ids = np.zeros((len(batch), width), np.int64)
        labels = np.full((len(batch), width), -100, np.int64)
        for k, (tokens, tags) in enumerate(batch):
            ids[k, : len(tokens)] = [stoi.get(t.lower(), 1) for t in tokens]
            labels[k, : len(tags)] = [tag_id[t] for t in tags]
        return {"input_ids": mg.tensor(ids), "labels": mg.tensor(labels)}

    return collate


def entity_f1_of(tag_names):
    """compute_metrics: entity F1 of the predicted tags against the gold ones."""

    def f1(p) -> dict:
        gold, pred = [], []
        for row_logits, row_labels in zip(p.predictions, p.label_ids):
            keep = row_labels != -100
            gold.append([tag_names[i] for i in row_labels[keep]])
            pred.append([tag_names[i] for i in row_logits[keep].argmax(-1)])
        return {"f1": entity_f1(gold, pred)}

    return f1


def dictionary_baseline(train, sentences) -> list[list[str]]:
    """Tag every occurrence of an entity string seen in training (longest match first)."""
    known: dict[tuple[str, ...], str] = {}
    for tokens, tags in train:
        for s, e, kind in entity_spans(tags):
            known[tuple(t.lower() for t in tokens[s:e])] = kind
    longest = max((len(k) for k in known), default=0)
    out = []
    for tokens in sentences:
        low, tags, i = [t.lower() for t in tokens], ["O"] * len(tokens), 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                kind = known.get(tuple(low[i : i + n]))
                if kind:
                    tags[i : i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        out.append(tags)
    return out


def baseline_figure(trainer, model, d, seed, out) -> dict:
    predicted = dictionary_baseline(d.train.sentences, [s for s, _ in d.final.sentences])
    return {"dictionary_baseline_f1": entity_f1([t for _, t in d.final.sentences], predicted)}


RECIPES = [
    Recipe(
        name="wnut17-bilstm",
        summary="a BiLSTM tagger for WNUT-17 emerging entities, against a dictionary baseline",
        data="wnut17/*.conll",
        reference=Reference(
            "about 40 % entity F1 with pretrained embeddings and character features",
            "Lin et al. 2017, a WNUT-17 shared-task BiLSTM-CRF",
        ),
        minutes=2.0,
        load=wnut17,
        model=lambda d: BiLSTMTagger(
            vocab_size=d.extra["words"].vocab_size, num_tags=len(d.train.tag_names)
        ),
        optimizer=lambda model, steps: (mg.optim.Adam(model.parameters(), lr=3e-3), None),
        steps=lambda d, epochs, short: (
            20 if short else (epochs or 30) * math.ceil(len(d.train) / 32)
        ),
        batch=32,
        metric="f1",
        report_as="test_entity_f1",
        evaluations=10,
        best=True,
        eval_batch=10_000,  # one padded batch per evaluation, so that the rows line up
        collate=tagged_batches,
        compute_metrics=lambda d: entity_f1_of(d.train.tag_names),
        finish=baseline_figure,
    ),
]
