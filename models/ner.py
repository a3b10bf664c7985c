"""Named-entity recognition pieces for the WNUT-17 recipes: the shared task's two metrics,
the inputs of a word + character tagger (word ids, character ids, word-shape features) and
the collate function that pads them.

The metrics follow the definitions of the shared task's evaluation script, wnuteval.py
(Derczynski et al. 2017, "Results of the WNUT2017 Shared Task on Novel and Emerging Entity
Recognition"):

- an entity is a run of tokens tagged ``B-X I-X ...``; an ``I-X`` that does not continue an
  entity of type X starts a new one (as conlleval does);
- **entity F1**: a predicted entity is correct when its sentence, first and last token and
  type all match a gold entity; precision = correct / predicted, recall = correct / gold;
- **surface F1**: the same, counted over *unique surface forms*: the gold set is the distinct
  (words, type) pairs of the gold entities, the predicted set those of the predicted ones, and
  the correct set those of the correct entities. A system that finds "Empire State Building"
  once gets the credit for it once, however often it occurs, so the metric rewards finding
  many different (novel) entities rather than one frequent one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

import minigrad as mg
from minigrad.train.metrics import entity_f1, entity_spans  # noqa: F401  (re-exported)

_URL = re.compile(r"^(https?://|www\.)|\.(com|org|net|ly|co)(/|$)", re.IGNORECASE)

SHAPES = ("capitalised", "all capitals", "has digits", "@user", "#hashtag", "URL")


def word_shape(token: str) -> list[float]:
    """The word-shape features of a token, one 0/1 per name in ``SHAPES``: the case and the
    markers of tweets that lower-cased word ids lose."""
    return [
        float(token[:1].isupper()),
        float(len(token) > 1 and token.isupper()),
        float(any(c.isdigit() for c in token)),
        float(token.startswith("@") and len(token) > 1),
        float(token.startswith("#") and len(token) > 1),
        float(bool(_URL.search(token))),
    ]


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


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def wnut_scores(
    sentences: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
) -> dict[str, float]:
    """Entity and surface-form precision, recall and F1 of predicted BIO tags against gold
    (see the module's docstring). Sentences are lists of tokens; tags lists of the same
    lengths."""
    gold_entities, guess_entities = set(), set()
    for k, (tokens, g, p) in enumerate(zip(sentences, gold, predicted)):
        if not len(tokens) == len(g) == len(p):
            raise ValueError(
                f"wnut_scores: sentence {k} has {len(tokens)} tokens, {len(g)} gold tags and "
                f"{len(p)} predicted tags"
            )
        for entities, tags in ((gold_entities, g), (guess_entities, p)):
            for start, stop, kind in entity_spans(tags):
                entities.add((k, start, stop, kind, tuple(tokens[start:stop])))
    correct = gold_entities & guess_entities
    scores = {}
    p, r, f = _prf(len(correct), len(guess_entities), len(gold_entities))
    scores.update(entity_precision=p, entity_recall=r, entity_f1=f)

    def surfaces(entities):
        return {(words, kind) for _, _, _, kind, words in entities}

    p, r, f = _prf(
        len(surfaces(correct)), len(surfaces(guess_entities)), len(surfaces(gold_entities))
    )
    scores.update(surface_precision=p, surface_recall=r, surface_f1=f)
    return scores


class TaggerInputs:
    """Turns tokenised sentences into a word + character tagger's inputs: lower-cased word
    ids (0 padding, 1 unknown; words seen at least ``min_count`` times in training), character
    ids of each word (0 padding, 1 unknown; case kept), and the ``word_shape`` features."""

    def __init__(
        self,
        sentences: Sequence[Sequence[str]],
        tag_names: Sequence[str],
        min_count: int = 1,
        max_word_length: int = 20,
    ) -> None:
        counts: dict[str, int] = {}
        chars: set[str] = set()
        for tokens in sentences:
            for t in tokens:
                counts[t.lower()] = counts.get(t.lower(), 0) + 1
                chars.update(t)
        words = sorted(w for w, n in counts.items() if n >= min_count)
        self.word_id = {w: i + 2 for i, w in enumerate(words)}
        self.char_id = {c: i + 2 for i, c in enumerate(sorted(chars))}
        self.tag_names = list(tag_names)
        self.tag_id = {t: i for i, t in enumerate(self.tag_names)}
        self.max_word_length = max_word_length

    @property
    def vocab_size(self) -> int:
        return len(self.word_id) + 2

    @property
    def num_chars(self) -> int:
        return len(self.char_id) + 2

    def collate(self, batch: Sequence[tuple[list[str], list[str]]]) -> dict:
        """(tokens, tags) pairs -> {"input_ids" (B, T), "char_ids" (B, T, L), "shapes"
        (B, T, len(SHAPES)), "labels" (B, T), -100 past each sentence's end}."""
        b = len(batch)
        t = max(len(tokens) for tokens, _ in batch)
        length = min(self.max_word_length, max(len(w) for tokens, _ in batch for w in tokens))
        ids = np.zeros((b, t), np.int64)
        chars = np.zeros((b, t, max(length, 1)), np.int64)
        shapes = np.zeros((b, t, len(SHAPES)), np.float32)
        labels = np.full((b, t), -100, np.int64)
        for k, (tokens, tags) in enumerate(batch):
            for i, token in enumerate(tokens):
                ids[k, i] = self.word_id.get(token.lower(), 1)
                chars[k, i, : min(len(token), length)] = [
                    self.char_id.get(c, 1) for c in token[:length]
                ]
                shapes[k, i] = word_shape(token)
            labels[k, : len(tags)] = [self.tag_id[x] for x in tags]
        return {
            "input_ids": mg.tensor(ids),
            "char_ids": mg.tensor(chars),
            "shapes": mg.tensor(shapes),
            "labels": mg.tensor(labels),
        }
