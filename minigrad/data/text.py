"""Tokenizers: character, word-level and byte-pair encoding, trained on a corpus, saved and
loaded as JSON, with batch encoding (padding, truncation, attention masks).

Every tokenizer maps text to integer ids and back. Ids 0 and 1 are always ``<pad>`` and
``<unk>``; text the tokenizer has not seen (an unknown character, a rare word) becomes
``<unk>`` rather than an error. For text a tokenizer covers, ``decode(encode(s)) == s``.
"""

from __future__ import annotations

import collections
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PAD, UNK = "<pad>", "<unk>"
SPECIALS = [PAD, UNK]


class Tokenizer:
    """Shared machinery: the vocabulary, ids, batches, JSON."""

    kind = "base"

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tokens[:2] != SPECIALS:
            tokens = SPECIALS + [t for t in tokens if t not in SPECIALS]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"{type(self).__name__}: the vocabulary has duplicate tokens")
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (unknown pieces become <unk>)."""
        get = self.stoi.get
        return [get(t, 1) for t in self.tokenize(text)]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        pieces = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"decode: id {i} is out of range for {len(self.itos)} tokens")
            if skip_special and i == 0:
                continue
            pieces.append(self.itos[i])
        return self._join(pieces)

    def _join(self, pieces: list[str]) -> str:
        return "".join(pieces)

    def encode_batch(
        self,
        texts: Sequence[str],
        padding: bool | str = True,
        truncation: bool = False,
        max_length: int | None = None,
    ) -> dict[str, np.ndarray]:
        """{'input_ids': (N, L) int64, 'attention_mask': (N, L) int64 (1 = real token)}.

        ``padding=True`` pads to the longest text, ``'max_length'`` to ``max_length``;
        ``truncation`` cuts texts to ``max_length``. Unequal lengths without padding are an
        error, since the result is a rectangular array."""
        if truncation and max_length is None:
            raise ValueError("encode_batch: truncation needs max_length")
        if padding not in (True, False, "longest", "max_length"):
            raise ValueError("encode_batch: padding must be True, False, 'longest' or 'max_length'")
        rows = [self.encode(t) for t in texts]
        if truncation:
            rows = [r[:max_length] for r in rows]
        if padding == "max_length":
            if max_length is None:
                raise ValueError("encode_batch: padding='max_length' needs max_length")
            width = max_length
            too_long = [len(r) for r in rows if len(r) > width]
            if too_long:
                raise ValueError(
                    f"encode_batch: a text has {too_long[0]} tokens, more than max_length "
                    f"{width}; pass truncation=True"
                )
        elif padding:
            width = max((len(r) for r in rows), default=0)
        else:
            lengths = {len(r) for r in rows}
            if len(lengths) > 1:
                raise ValueError(
                    f"encode_batch: texts have {sorted(lengths)} tokens; pass padding=True"
                )
            width = lengths.pop() if lengths else 0
        ids = np.zeros((len(rows), width), np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for k, r in enumerate(rows):
            ids[k, : len(r)] = r
            mask[k, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    # -- JSON ---------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as JSON, atomically (temporary file, then rename)."""
        path = Path(path)
        payload = {"kind": self.kind, "vocab": self.itos, **self._config()}
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @staticmethod
    def load(path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer saved by ``save`` (any of the three kinds)."""
        try:
            with open(path, encoding="utf-8") as f:
                payload = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"Tokenizer.load: {path} is not valid JSON ({e})") from None
        kinds = {c.kind: c for c in (CharTokenizer, WordTokenizer, BPETokenizer)}
        if not isinstance(payload, dict) or payload.get("kind") not in kinds:
            raise ValueError(f"Tokenizer.load: {path} does not hold a minigrad tokenizer")
        _check_payload(payload, path)
        try:
            return kinds[payload["kind"]]._from_config(payload)
        except ValueError as e:
            raise ValueError(f"Tokenizer.load: {path}: {e}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _check_payload(payload: dict, path: Any) -> None:
    """The fields of a saved tokenizer, each of the right type, before any is used."""

    def bad(what: str) -> ValueError:
        return ValueError(f"Tokenizer.load: {path}: {what}")

    vocab = payload.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(t, str) and t for t in vocab):
        raise bad("'vocab' must be a list of non-empty strings")
    if payload["kind"] == "char" and any(len(t) != 1 for t in vocab if t not in SPECIALS):
        raise bad("a character tokenizer's vocabulary holds single characters")
    if not isinstance(payload.get("lower", False), bool):
        raise bad("'lower' must be true or false")
    if payload["kind"] == "bpe":
        merges = payload.get("merges")
        if not isinstance(merges, list) or not all(
            isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) and x for x in m)
            for m in merges
        ):
            raise bad("'merges' must be a list of pairs of non-empty strings")
        known = set(vocab)
        missing = next((m for m in merges if m[0] + m[1] not in known), None)
        if missing is not None:
            raise bad(
                f"the merge {missing} makes {missing[0] + missing[1]!r}, not in the vocabulary"
            )


class CharTokenizer(Tokenizer):
    """One token per character."""

    kind = "char"

    @classmethod
    def train(cls, corpus: str) -> CharTokenizer:
        return cls(sorted(set(corpus)))

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    @classmethod
    def _from_config(cls, payload: dict) -> CharTokenizer:
        return cls(payload["vocab"])


_WORDS = re.compile(r"\w+|[^\w\s]")


class WordTokenizer(Tokenizer):
    """Words and punctuation marks (``\\w+`` and single non-space symbols), optionally
    lower-cased; words seen fewer than ``min_freq`` times in training become <unk>. Decoding
    joins tokens with single spaces, so the text it covers is tokens separated by one space."""

    kind = "word"

    def __init__(self, tokens: Sequence[str], lower: bool = False) -> None:
        super().__init__(tokens)
        self.lower = lower

    @classmethod
    def train(
        cls,
        corpus: str | Iterable[str],
        min_freq: int = 1,
        lower: bool = False,
        max_size: int | None = None,
    ) -> WordTokenizer:
        texts = [corpus] if isinstance(corpus, str) else corpus
        counts: collections.Counter = collections.Counter()
        for t in texts:
            counts.update(_WORDS.findall(t.lower() if lower else t))
        kept = [w for w, c in counts.most_common() if c >= min_freq]
        if max_size is not None:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        return cls(kept, lower)

    def tokenize(self, text: str) -> list[str]:
        return _WORDS.findall(text.lower() if self.lower else text)

    def _join(self, pieces: list[str]) -> str:
        return " ".join(pieces)

    def _config(self) -> dict[str, Any]:
        return {"lower": self.lower}

    @classmethod
    def _from_config(cls, payload: dict) -> WordTokenizer:
        return cls(payload["vocab"], payload.get("lower", False))


_PRETOKEN = re.compile(r" ?\w+| ?[^\w\s]+|\s+")


class BPETokenizer(Tokenizer):
    """Byte-pair encoding over characters (Sennrich et al.; GPT-2's pre-tokenization, where a
    word keeps its leading space). Training starts from the corpus's characters and merges
    the most frequent adjacent pair until ``vocab_size`` is reached; encoding applies the
    merges in the order they were learned. Characters never seen in training become <unk>."""

    kind = "bpe"

    def __init__(self, tokens: Sequence[str], merges: Sequence[tuple[str, str]]) -> None:
        super().__init__(tokens)
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def train(cls, corpus: str, vocab_size: int) -> BPETokenizer:
        words = collections.Counter(_PRETOKEN.findall(corpus))
        alphabet = sorted({ch for w in words for ch in w})
        if vocab_size < len(SPECIALS) + len(alphabet):
            raise ValueError(
                f"BPETokenizer.train: vocab_size {vocab_size} is smaller than the "
                f"{len(SPECIALS) + len(alphabet)} special tokens and characters"
            )
        split = {w: list(w) for w in words}
        vocab, merges = list(alphabet), []
        pairs: collections.Counter = collections.Counter()
        where: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        for w, n in words.items():
            s = split[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
                where[(a, b)].add(w)
        while len(SPECIALS) + len(vocab) < vocab_size and pairs:
            best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
            if pairs[best] < 1:
                break
            merged = best[0] + best[1]
            merges.append(best)
            vocab.append(merged)
            for w in list(where.pop(best, ())):
                s, n = split[w], words[w]
                for a, b in zip(s, s[1:]):  # forget this word's old pairs
                    pairs[(a, b)] -= n
                    if pairs[(a, b)] <= 0:
                        del pairs[(a, b)]
                out, i = [], 0
                while i < len(s):
                    if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                        out.append(merged)
                        i += 2
                    else:
                        out.append(s[i])
                        i += 1
                split[w] = out
                for a, b in zip(out, out[1:]):
                    pairs[(a, b)] += n
                    where[(a, b)].add(w)
        return cls(vocab, merges)

    def _bpe(self, word: str) -> list[str]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        while len(parts) > 1:
            ranked = [(self.ranks.get(p, None), i) for i, p in enumerate(zip(parts, parts[1:]))]
            ranked = [(r, i) for r, i in ranked if r is not None]
            if not ranked:
                break
            _, i = min(ranked)
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2 :]
        if len(self._cache) < 200_000:
            self._cache[word] = parts
        return parts

    def tokenize(self, text: str) -> list[str]:
        out: list[str] = []
        for word in _PRETOKEN.findall(text):
            out.extend(self._bpe(word))
        return out

    def _config(self) -> dict[str, Any]:
        return {"merges": [list(m) for m in self.merges]}

    @classmethod
    def _from_config(cls, payload: dict) -> BPETokenizer:
        return cls(payload["vocab"], [tuple(m) for m in payload["merges"]])


def padded_batches(tokenizer: Tokenizer, minimum: int = 1, maximum: int | None = None):
    """A collate function for (text, label) samples: the texts encoded with ``tokenizer``,
    cut to ``maximum`` tokens, and padded with 0 (``<pad>``) to the longest in the batch (at
    least ``minimum``, e.g. a CNN's widest filter); returns (ids (B, T), labels (B,)) as
    int64 tensors."""
    from minigrad.tensor import tensor

    def collate(batch):
        ids = [tokenizer.encode(text)[:maximum] for text, _ in batch]
        width = max(minimum, max(len(i) for i in ids))
        out = np.zeros((len(ids), width), np.int64)
        for k, row in enumerate(ids):
            out[k, : len(row)] = row
        return tensor(out), tensor(np.array([y for _, y in batch], np.int64))

    return collate
