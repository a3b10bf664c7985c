"""Sequence labelling on WNUT-17's emerging entities: a BiLSTM tagger on word vectors, and a
BiLSTM-CRF on words, characters and word shapes, each beside a dictionary of the entities
seen in training; the CRF's figures are the shared task's entity and surface-form F1
(models/ner.py)."""

from __future__ import annotations

import math

import numpy as np

import minigrad as mg
from minigrad.data import Subset
from minigrad.data.datasets import CoNLL
from minigrad.data.text import WordTokenizer
from minigrad.optim import lr_scheduler
from minigrad.train.metrics import entity_f1
from models.ner import TaggerInputs, dictionary_baseline, wnut_scores
from models.recipes.base import Data, Recipe, Reference, need
from models.text import BiLSTMCRFTagger, BiLSTMTagger


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


def wnut17_for_the_crf(root, short, seed):
    """WNUT-17 with the tagger's inputs: words seen once are left out of the vocabulary, so
    that training meets unknown words (id 1) too and learns to read their characters and
    shapes."""
    d = wnut17(root, short, seed)
    inputs = TaggerInputs([t for t, _ in d.train.sentences], d.train.tag_names, min_count=2)
    held_out = [d.evaluation[i] for i in range(len(d.evaluation))]
    d.extra = {"inputs": inputs, "held_out": held_out}
    return d


def scores_on(sentences, tag_names, model):
    """The Trainer's evaluation: the Viterbi tags of the evaluated emissions, scored with the
    shared task's metrics (entity F1 chooses the best model)."""

    def scores(p) -> dict:
        paths = model.crf.decode(mg.tensor(p.predictions), p.label_ids != -100)
        tokens, gold = zip(*sentences)
        return wnut_scores(tokens, gold, [[tag_names[i] for i in path] for path in paths])

    return scores


def tag_all(model, inputs, sentences) -> list[list[str]]:
    """The Viterbi tags of ``sentences`` (in eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    batch = inputs.collate(sentences)
    tags = model.decode(batch["input_ids"], batch["char_ids"], batch["shapes"])
    model.train(was_training)
    return tags


def shared_task_figures(trainer, model, d, seed, out) -> dict:
    """The test set's entity and surface-form scores, the dev set's entity F1, and the
    dictionary baseline's two F1s."""
    inputs = d.extra["inputs"]
    tokens, gold = zip(*d.final.sentences)
    tagger = wnut_scores(tokens, gold, tag_all(model, inputs, d.final.sentences))
    dictionary = wnut_scores(tokens, gold, dictionary_baseline(d.train.sentences, tokens))
    dev_tokens, dev_gold = zip(*d.extra["held_out"])
    dev = wnut_scores(dev_tokens, dev_gold, tag_all(model, inputs, d.extra["held_out"]))
    return {
        "test_entity_f1": tagger["entity_f1"],
        "test_surface_f1": tagger["surface_f1"],
        "test_entity_precision": tagger["entity_precision"],
        "test_entity_recall": tagger["entity_recall"],
        "dev_entity_f1": dev["entity_f1"],
        "dictionary_entity_f1": dictionary["entity_f1"],
        "dictionary_surface_f1": dictionary["surface_f1"],
    }


def baseline_figure(trainer, model, d, seed, out) -> dict:
    predicted = dictionary_baseline(d.train.sentences, [s for s, _ in d.final.sentences])
    return {"dictionary_baseline_f1": entity_f1([t for _, t in d.final.sentences], predicted)}


def adam_decaying_to_zero(model, steps, lr=4e-3):
    """Adam at ``lr``, decaying linearly to 0 over the run."""
    opt = mg.optim.Adam(model.parameters(), lr=lr)
    return opt, lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=steps)


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
        compute_metrics=lambda d, model: entity_f1_of(d.train.tag_names),
        finish=baseline_figure,
    ),
    Recipe(
        name="wnut17-bilstm-crf",
        summary="a BiLSTM-CRF tagger over words, characters (CNN) and word shapes for WNUT-17, "
        "trained from scratch (no pretrained vectors)",
        data="wnut17/*.conll",
        reference=Reference(
            "about 40 % entity F1 for shared-task systems with pretrained embeddings and "
            "character features",
            "Lin et al. 2017, BiLSTM-CRF; Derczynski et al. 2017, Table 3",
        ),
        minutes=6.0,
        load=wnut17_for_the_crf,
        model=lambda d: BiLSTMCRFTagger(
            vocab_size=d.extra["inputs"].vocab_size,
            num_chars=d.extra["inputs"].num_chars,
            tag_names=d.train.tag_names,
            hidden=200,
            char_maps=100,
        ),
        optimizer=adam_decaying_to_zero,
        steps=lambda d, epochs, short: (
            20 if short else (epochs or 16) * math.ceil(len(d.train) / 32)
        ),
        batch=32,
        metric="entity_f1",
        report_as=None,  # shared_task_figures reports them all
        evaluations=30,
        best=True,  # the model of the best dev entity F1
        eval_batch=10_000,  # one padded batch per evaluation, so that the rows line up
        training={"max_grad_norm": 5.0},
        collate=lambda d: d.extra["inputs"].collate,
        compute_metrics=lambda d, model: scores_on(d.extra["held_out"], d.train.tag_names, model),
        finish=shared_task_figures,
    ),
]
