"""Classification and language-model metrics, on arrays, lists or tensors.

Labels are integer class ids. ``y_pred`` may be labels, or scores / probabilities of shape
(N, C), whose argmax is taken (binary scores of shape (N,) or (N, 1) are thresholded at 0.5).
Conventions follow scikit-learn's: a confusion matrix has true classes as rows; precision of
a class never predicted is 0 (``zero_division``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.tensor import Tensor


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def _labels(y_pred: Any) -> np.ndarray:
    p = _array(y_pred)
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=1)
    if p.dtype.kind == "f":
        return (p.reshape(-1) > 0.5).astype(np.int64)
    return p.reshape(-1)


def _pair(name: str, y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _array(y_true).reshape(-1), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"{name}: {t.shape[0]} true labels but {p.shape[0]} predictions")
    if t.size == 0:
        raise ValueError(f"{name}: no samples")
    return t.astype(np.int64), p.astype(np.int64)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the true label."""
    t, p = _pair("accuracy", y_true, y_pred)
    return float(np.mean(t == p))


def top_k_accuracy(y_true: Any, scores: Any, k: int = 5) -> float:
    """Fraction of samples whose true label is among the k highest scores (N, C)."""
    s, t = _array(scores), _array(y_true).reshape(-1)
    if s.ndim != 2 or s.shape[0] != t.shape[0]:
        raise ValueError(
            f"top_k_accuracy: expected scores (N, C) for {t.shape[0]} labels, got {s.shape}"
        )
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"top_k_accuracy: k must be in [1, {s.shape[1]}], got {k}")
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == t[:, None], axis=1)))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """C[i, j] = number of samples of true class i predicted as class j."""
    t, p = _pair("confusion_matrix", y_true, y_pred)
    if min(t.min(), p.min()) < 0:
        raise ValueError("confusion_matrix: labels must be non-negative class ids")
    n = num_classes or int(max(t.max(), p.max())) + 1
    if max(t.max(), p.max()) >= n:
        raise ValueError(f"confusion_matrix: a label is >= num_classes {n}")
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (t, p), 1)
    return m


_AVERAGES = ("binary", "macro", "micro", "weighted")


def _prf(name: str, y_true, y_pred, average: str, pos_label: int, zero_division: float):
    if average not in _AVERAGES:
        raise ValueError(f"{name}: average must be one of {_AVERAGES}, got {average!r}")
    t, p = _pair(name, y_true, y_pred)
    classes = np.union1d(t, p)
    if average == "binary":
        if not set(classes.tolist()) <= {0, 1, pos_label}:
            raise ValueError(
                f"{name}: average='binary' needs two classes; got labels {classes.tolist()} "
                "(use 'macro', 'micro' or 'weighted')"
            )
        classes = np.array([pos_label])
    tp = np.array([np.sum((p == c) & (t == c)) for c in classes], np.float64)
    pred = np.array([np.sum(p == c) for c in classes], np.float64)
    true = np.array([np.sum(t == c) for c in classes], np.float64)
    if average == "micro":
        tp, pred, true = tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True)

    def ratio(a, b):
        return np.where(b > 0, a / np.where(b > 0, b, 1), zero_division)

    precision, recall = ratio(tp, pred), ratio(tp, true)
    f1 = np.where(
        precision + recall > 0,
        2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1),
        zero_division if np.all(pred + true == 0) else 0.0,
    )
    weights = true / true.sum() if average == "weighted" else np.full(len(tp), 1 / len(tp))
    return precision, recall, f1, weights


def precision(y_true, y_pred, average: str = "binary", pos_label: int = 1, zero_division=0.0):
    """tp / (tp + fp), per class then averaged ('binary': the pos_label class only)."""
    p, _, _, w = _prf("precision", y_true, y_pred, average, pos_label, zero_division)
    return float(np.sum(p * w))


def recall(y_true, y_pred, average: str = "binary", pos_label: int = 1, zero_division=0.0):
    """tp / (tp + fn), per class then averaged."""
    _, r, _, w = _prf("recall", y_true, y_pred, average, pos_label, zero_division)
    return float(np.sum(r * w))


def f1_score(y_true, y_pred, average: str = "binary", pos_label: int = 1, zero_division=0.0):
    """Harmonic mean of precision and recall, per class then averaged ('micro' pools the
    counts first, and equals accuracy for single-label classification)."""
    _, _, f, w = _prf("f1_score", y_true, y_pred, average, pos_label, zero_division)
    return float(np.sum(f * w))


def perplexity(mean_nll: Any) -> float:
    """exp of the mean negative log-likelihood per token (natural log)."""
    value = float(_array(mean_nll).mean())
    return math.exp(value) if value < 700 else math.inf


# -- sequence labelling ----------------------------------------------------------------------


def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) of every entity in a BIO tag sequence (``B-PER I-PER O ...``). An
    ``I-`` tag that follows no entity of its type starts one, as conlleval counts it."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == kind):
            spans.add((start, i, kind))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, kind = i, tag[2:]
    return spans


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Entity-level F1 over sentences of BIO tags: an entity counts when its span and its type
    both match exactly."""
    tp = n_pred = n_gold = 0
    for g, p in zip(gold, predicted):
        gs, ps = entity_spans(g), entity_spans(p)
        tp += len(gs & ps)
        n_pred += len(ps)
        n_gold += len(gs)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
