"""Zoo models whose forward reads inputs with NumPy (a padding mask, a CRF's tags, words'
positions) make minigrad.compile run the step eagerly and say why, rather than replay the
traced batch's values for the next batch of the same shape."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from models.text import BertForSequenceClassification, BiLSTMCRFTagger


def _losses(model, batches, compiled):
    mg.manual_seed(0)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)

    def step(*batch):
        opt.zero_grad()
        loss = model(*batch)["loss"]
        loss.backward()
        opt.step()
        return loss

    step = mg.compile(step) if compiled else step
    return [float(step(*batch).data) for batch in batches]


def _same_shaped_batches(make):
    rng = np.random.default_rng(0)
    return [make(rng, k) for k in range(3)]


def _check(make_model, batches, reason):
    want = _losses(make_model(), batches, False)
    with pytest.warns(mg.CompileWarning, match=reason) as seen:
        got = _losses(make_model(), batches, True)
    assert len(seen) == 1
    assert got == want


def test_bert_with_an_attention_mask_runs_eagerly():
    def batch(rng, k):
        ids = rng.integers(1, 30, (4, 6))
        mask = (np.arange(6) < rng.integers(1, 7, (4, 1))).astype(np.int64)
        return mg.tensor(ids * mask), mg.tensor(mask), mg.tensor(rng.integers(0, 2, 4))

    def model():
        mg.manual_seed(0)
        return BertForSequenceClassification(
            num_labels=2, vocab_size=30, context=8, width=16, layers=1, heads=2
        )

    _check(model, _same_shaped_batches(batch), "a MultiheadAttention mask")


def test_the_bilstm_crf_tagger_runs_eagerly():
    def batch(rng, k):
        lengths = rng.integers(1, 6, (3, 1))
        words = np.arange(5) < lengths
        ids = rng.integers(1, 20, (3, 5)) * words
        chars = rng.integers(1, 10, (3, 5, 4)) * words[..., None]
        shapes = rng.random((3, 5, 6)).astype(np.float32)
        tags = np.where(words, 12, -100)  # "O" everywhere: allowed by the BIO constraints
        return mg.tensor(ids), mg.tensor(chars), mg.tensor(shapes), mg.tensor(tags)

    def model():
        mg.manual_seed(0)
        return BiLSTMCRFTagger(
            vocab_size=20, num_chars=10, embedding=8, char_dim=4, char_maps=5, hidden=6
        )

    _check(model, _same_shaped_batches(batch), "CharCNN's word positions")
