"""The model zoo: every model's docstring states its true parameter count, runs forward and
backward on a small batch, and survives save_pretrained / from_pretrained unchanged; text
models generate; the classifiers plug into the Trainer."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minigrad as mg
from models.mnist1d import MNIST1DCNN, MNIST1DGRU, MNIST1DMLP, MNIST1DLinear
from models.text import (
    GPT,
    BertEncoder,
    BertForSequenceClassification,
    BertForTokenClassification,
    BiLSTMTagger,
    CharLSTM,
    KimCNN,
    MakemoreMLP,
)
from models.vision import MLP, DigitsCNN, LeNet5

rng = np.random.default_rng(0)


def images(*shape):
    return mg.tensor(rng.random(shape).astype(np.float32))


def tokens(b, t, vocab):
    return mg.tensor(rng.integers(1, vocab, (b, t)))


CASES = [
    (MLP, lambda: images(4, 1, 28, 28), (4, 10)),
    (LeNet5, lambda: images(4, 1, 28, 28), (4, 10)),
    (DigitsCNN, lambda: images(4, 1, 8, 8), (4, 10)),
    (MNIST1DLinear, lambda: images(4, 40), (4, 10)),
    (MNIST1DMLP, lambda: images(4, 40), (4, 10)),
    (MNIST1DCNN, lambda: images(4, 40), (4, 10)),
    (MNIST1DGRU, lambda: images(4, 40), (4, 10)),
    (CharLSTM, lambda: tokens(2, 7, 65), (2, 7, 65)),
    (GPT, lambda: tokens(2, 9, 65), (2, 9, 65)),
    (BertEncoder, lambda: tokens(2, 6, 10000), (2, 6, 128)),
    (BertForSequenceClassification, lambda: tokens(2, 6, 10000), (2, 2)),
    (BertForTokenClassification, lambda: tokens(2, 6, 10000), (2, 6, 13)),
    (BiLSTMTagger, lambda: tokens(2, 6, 20000), (2, 6, 13)),
    (KimCNN, lambda: tokens(2, 8, 20000), (2, 2)),
    (MakemoreMLP, lambda: tokens(5, 3, 27), (5, 27)),
]


@pytest.mark.parametrize("cls, make_input, out_shape", CASES, ids=[c[0].__name__ for c in CASES])
def test_docstring_count_forward_backward_and_pretrained_round_trip(
    tmp_path, cls, make_input, out_shape
):
    mg.manual_seed(0)
    model = cls()
    stated = re.findall(r"([\d,]+) parameters", " ".join(cls.__doc__.split()))
    assert stated, f"{cls.__name__}'s docstring states no parameter count"
    assert int(stated[-1].replace(",", "")) == sum(p.data.size for p in model.parameters())
    x = make_input()
    out = model(x)
    assert out.shape == out_shape
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())  # every parameter is used
    model.eval()
    model.save_pretrained(tmp_path / "m")
    again = cls.from_pretrained(tmp_path / "m")
    again.eval()
    np.testing.assert_array_equal(again(x).data, model(x).data)


def test_from_pretrained_refuses_another_model(tmp_path):
    MLP(hidden=[8]).save_pretrained(tmp_path / "mlp")
    with pytest.raises(ValueError, match="holds a MLP, not a LeNet5"):
        LeNet5.from_pretrained(tmp_path / "mlp")
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        MLP.from_pretrained(tmp_path / "nothing")


def test_generate_samples_with_temperature_and_top_k():
    mg.manual_seed(0)
    gpt = GPT(vocab_size=11, context=8, width=16, layers=1, heads=2)
    start = np.array([[1, 2, 3]])
    greedy = gpt.generate(start, 12, temperature=0)
    assert greedy.shape == (1, 15) and np.array_equal(greedy[:, :3], start)
    np.testing.assert_array_equal(gpt.generate(start, 12, temperature=0), greedy)  # deterministic
    sampled = gpt.generate(start, 20, top_k=1)  # top-1 sampling is greedy
    np.testing.assert_array_equal(sampled[:, :15], greedy)
    varied = gpt.generate(np.zeros((4, 1), np.int64), 10, temperature=5.0)
    assert len({tuple(r) for r in varied}) > 1 and varied.max() < 11
    lstm = CharLSTM(vocab_size=11, embedding=4, hidden=8)
    assert lstm.generate([[1]], 5).shape == (1, 6)
    with pytest.raises(ValueError, match="exceed the context of 8"):
        gpt(np.zeros((1, 9), np.int64))


def test_classifiers_return_loss_and_logits_for_the_trainer():
    mg.manual_seed(0)
    model = BertForSequenceClassification(vocab_size=50, context=16, width=16, layers=1, heads=2)
    ids = tokens(3, 5, 50)
    out = model(ids, attention_mask=np.array([[1, 1, 1, 0, 0]] * 3), labels=mg.tensor([0, 1, 1]))
    assert set(out) == {"loss", "logits"} and out["logits"].shape == (3, 2)
    tagger = BiLSTMTagger(vocab_size=50, num_tags=4, embedding=8, hidden=8)
    labels = mg.tensor(np.array([[1, 2, -100], [0, -100, -100]]))
    assert np.isfinite(tagger(tokens(2, 3, 50), labels=labels)["loss"].item())
