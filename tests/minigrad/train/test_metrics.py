"""Metrics on hand-computed cases (and against scikit-learn where it is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minigrad.train import metrics as M


def test_hand_computed_binary_case():
    t = [1, 1, 1, 0, 0, 0, 0, 1]
    p = [1, 0, 1, 1, 0, 0, 0, 1]  # tp 3, fn 1, fp 1, tn 3
    assert M.accuracy(t, p) == 0.75
    assert M.precision(t, p) == 0.75 and M.recall(t, p) == 0.75 and M.f1_score(t, p) == 0.75
    assert M.precision(t, p, pos_label=0) == 0.75
    np.testing.assert_array_equal(M.confusion_matrix(t, p), [[3, 1], [1, 3]])


def test_hand_computed_multiclass_averages():
    t = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 0, 2]
    # class 0: tp 1, pred 2, true 2 -> P .5 R .5; class 1: tp 2, pred 3, true 2 -> P 2/3 R 1;
    # class 2: tp 1, pred 1, true 2 -> P 1 R .5
    assert M.precision(t, p, "macro") == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert M.recall(t, p, "macro") == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1 = [0.5, 0.8, 2 / 3]
    assert M.f1_score(t, p, "macro") == pytest.approx(sum(f1) / 3)
    assert M.f1_score(t, p, "weighted") == pytest.approx(sum(f1) / 3)  # equal supports
    assert M.f1_score(t, p, "micro") == pytest.approx(M.accuracy(t, p))
    with pytest.raises(ValueError, match="average='binary' needs two classes"):
        M.f1_score(t, p)


def test_scores_top_k_and_perplexity():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    assert M.accuracy([1, 1, 2], scores) == pytest.approx(2 / 3)
    assert M.top_k_accuracy([1, 1, 2], scores, k=2) == 1.0
    assert M.top_k_accuracy([0, 2, 0], scores, k=1) == 0.0
    assert M.perplexity(math.log(4.0)) == pytest.approx(4.0)
    assert M.accuracy([1, 0], np.array([[0.9], [0.2]])) == 1.0  # binary probabilities


def test_zero_division_and_errors():
    assert M.precision([0, 0, 1], [0, 0, 0]) == 0.0  # class 1 never predicted
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        M.accuracy([0, 1, 1], [0, 1])


def test_against_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    for avg in ("macro", "micro", "weighted"):
        assert M.f1_score(t, p, avg) == pytest.approx(sk.f1_score(t, p, average=avg))
        assert M.precision(t, p, avg) == pytest.approx(sk.precision_score(t, p, average=avg))
    np.testing.assert_array_equal(M.confusion_matrix(t, p), sk.confusion_matrix(t, p))


def test_entity_spans_and_f1_by_hand():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-LOC", "I-PER"]
    # an I- after no entity of its type starts one (conlleval's rule)
    assert M.entity_spans(tags) == {
        (0, 2, "PER"),
        (3, 4, "LOC"),
        (4, 5, "LOC"),
        (5, 6, "LOC"),
        (6, 7, "PER"),
    }
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O"]]
    predicted = [["B-PER", "O", "O"], ["B-LOC", "O"]]  # one of two entities right, one wrong span
    # precision 1/2, recall 1/2
    assert M.entity_f1(gold, predicted) == pytest.approx(0.5)
    assert M.entity_f1(gold, [["O"] * 3, ["O"] * 2]) == 0.0
