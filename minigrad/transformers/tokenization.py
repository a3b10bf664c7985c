"""BERT's tokenizer: Hugging Face's basic tokenization, then WordPiece.

Basic tokenization (as ``transformers``' ``BasicTokenizer``): drop control characters and turn
every kind of whitespace into a space, put spaces around CJK ideographs, NFC-normalise, split
on whitespace; then per word lower-case and strip accents (NFD, drop the combining marks) when
``do_lower_case``, and split off every punctuation character. WordPiece then cuts each word
into the longest vocabulary pieces from the left, continuations prefixed ``##``; a word with no
such cut, or longer than 100 characters, becomes ``[UNK]``.

    tok = BertTokenizer.from_pretrained("bert-base-uncased")
    batch = tok(["A sentence.", "Another, longer one!"], padding=True, truncation=True)
    batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import io
from minigrad.tensor import Tensor
from minigrad.transformers import hub
from minigrad.transformers.bert import ModelOutput

SPECIAL = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    # every ASCII non-letter non-digit counts (^, $, ` are symbols to Unicode), as in BERT
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def basic_tokenize(
    text: str,
    do_lower_case: bool = True,
    strip_accents_: bool | None = None,
    tokenize_chinese_chars: bool = True,
    never_split: frozenset = frozenset(),
) -> list[str]:
    """Words and punctuation marks of ``text``, before WordPiece."""
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            cleaned.append(" ")
        elif tokenize_chinese_chars and _is_cjk(cp):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    words = unicodedata.normalize("NFC", "".join(cleaned)).split()
    out: list[str] = []
    for word in words:
        if word in never_split:
            out.append(word)
            continue
        if do_lower_case:
            word = word.lower()
        if strip_accents_ or (strip_accents_ is None and do_lower_case):
            word = strip_accents(word)
        piece = ""
        for ch in word:
            if _is_punctuation(ch):
                if piece:
                    out.append(piece)
                out.append(ch)
                piece = ""
            else:
                piece += ch
        if piece:
            out.append(piece)
    return out


def wordpiece(word: str, vocab: dict[str, int], unk: str, max_chars: int = 100) -> list[str]:
    """The greedy longest-match-first split of one word into vocabulary pieces."""
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


def _truncate(a: list, b: list | None, room: int) -> tuple[list, list | None]:
    """Cut a (and pair b) to ``room`` ids in all, as the tokenizers library's longest_first:
    the shorter keeps its length if the longer can still have as much, else they split the
    room, the longer getting the odd one."""
    if b is None:
        return a[:room], None
    if len(a) + len(b) <= room:
        return a, b
    short, long_ = sorted((len(a), len(b)))
    keep_short = short if short <= room else room
    keep_long = max(keep_short, room - keep_short) if short <= room else keep_short
    if keep_short + keep_long > room:
        keep_short, keep_long = room // 2, room // 2 + room % 2
    if len(a) > len(b):
        return a[:keep_long], b[:keep_short]
    return a[:keep_short], b[:keep_long]


class BatchEncoding(ModelOutput):
    """The tokenizer's output: ``input_ids``, ``token_type_ids``, ``attention_mask``; entries
    are also attributes."""


def _from_tokenizer_json(path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """The WordPiece vocabulary and BERT normalizer settings of a ``tokenizer.json``."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        model, norm = spec["model"], spec.get("normalizer") or {}
        kind = model.get("type")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"BertTokenizer: {path} is not a tokenizers file ({e!r})") from None
    if kind != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(f"BertTokenizer: {path} holds a {kind} tokenizer, not BERT's WordPiece")
    settings: dict[str, Any] = {"unk_token": model.get("unk_token", "[UNK]")}
    if norm.get("type") == "BertNormalizer":
        settings["do_lower_case"] = norm.get("lowercase", True)
        settings["strip_accents"] = norm.get("strip_accents")
        settings["tokenize_chinese_chars"] = norm.get("handle_chinese_chars", True)
    return {str(k): int(v) for k, v in model["vocab"].items()}, settings


def read_vocab(path: Path) -> dict[str, int]:
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            token = line.rstrip("\n")
            if token in vocab:
                raise ValueError(f"BertTokenizer: {path} lists {token!r} twice")
            vocab[token] = len(vocab)
    return vocab


class BertTokenizer:
    """WordPiece with BERT's basic tokenization, reading and writing Hugging Face's files
    (``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``)."""

    def __init__(
        self,
        vocab_file: str | os.PathLike | dict[str, int],
        do_lower_case: bool = True,
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        **_ignored: Any,
    ) -> None:
        # a path to vocab.txt, or the token -> id map itself (read from tokenizer.json)
        if isinstance(vocab_file, dict):
            self.vocab = dict(vocab_file)
        else:
            self.vocab = read_vocab(Path(vocab_file))
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        for name in SPECIAL:
            if getattr(self, name) not in self.vocab:
                where = "the vocabulary" if isinstance(vocab_file, dict) else vocab_file
                raise ValueError(f"BertTokenizer: {name} {getattr(self, name)!r} is not in {where}")
        self.model_max_length = int(model_max_length)
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.all_special_tokens = [getattr(self, n) for n in SPECIAL]

    # -- ids of the special tokens ------------------------------------------------------------
    @property
    def pad_token_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        return self.vocab[self.cls_token]

    @property
    def sep_token_id(self) -> int:
        return self.vocab[self.sep_token]

    @property
    def unk_token_id(self) -> int:
        return self.vocab[self.unk_token]

    @property
    def mask_token_id(self) -> int:
        return self.vocab[self.mask_token]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    # -- text -> tokens -> ids ---------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of ``text`` (special tokens written in it are kept whole)."""
        if not isinstance(text, str):
            raise TypeError(f"BertTokenizer.tokenize: expected a str, got {type(text).__name__}")
        specials = frozenset(self.all_special_tokens)
        out = []
        for word in basic_tokenize(
            text, self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars, specials
        ):
            out.extend([word] if word in specials else wordpiece(word, self.vocab, self.unk_token))
        return out

    def convert_tokens_to_ids(self, tokens: Any) -> Any:
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: Any) -> Any:
        if isinstance(ids, (int, np.integer)):
            return self.ids_to_tokens.get(int(ids), self.unk_token)
        return [self.ids_to_tokens.get(int(i), self.unk_token) for i in ids]

    def build_inputs_with_special_tokens(self, a: list[int], b: list[int] | None = None):
        """[CLS] a [SEP] (b [SEP]) and the matching token type ids."""
        ids = [self.cls_token_id] + a + [self.sep_token_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [self.sep_token_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        **kwargs: Any,
    ) -> list[int]:
        """The ids of one text (or pair), with [CLS]/[SEP] by default."""
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)
        return enc["input_ids"]

    def __call__(
        self,
        text: str | list[str],
        text_pair: str | list[str] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
        return_token_type_ids: bool = True,
    ) -> BatchEncoding:
        """Encode a text or a batch of texts (and optional pairs): ``padding`` True/'longest'
        pads to the longest, 'max_length' to ``max_length``; ``truncation`` cuts to
        ``max_length`` (default ``model_max_length``), from the longer text of a pair first.
        ``return_tensors`` 'np' gives NumPy arrays, 'pt' or 'mg' minigrad tensors."""
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        if text_pair is None:
            pairs: list = [None] * len(texts)
        else:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(pairs) != len(texts):
                raise ValueError(f"BertTokenizer: {len(texts)} texts but {len(pairs)} text pairs")
        if padding not in (False, True, "longest", "max_length", "do_not_pad"):
            raise ValueError(f"BertTokenizer: unknown padding {padding!r}")
        limit = max_length if max_length is not None else self.model_max_length
        rows = []
        for a_text, b_text in zip(texts, pairs):
            a = self.convert_tokens_to_ids(self.tokenize(a_text))
            b = None if b_text is None else self.convert_tokens_to_ids(self.tokenize(b_text))
            if truncation and truncation != "do_not_truncate":
                room = limit - ((2 + (b is not None)) if add_special_tokens else 0)
                a, b = _truncate(a, b, max(room, 0))
            if add_special_tokens:
                ids, types = self.build_inputs_with_special_tokens(a, b)
            else:
                ids, types = a + (b or []), [0] * len(a) + [1] * len(b or [])
            rows.append((ids, types))
        if padding in (True, "longest", "max_length"):
            width = limit if padding == "max_length" else max(len(r[0]) for r in rows)
        else:
            width = None
        enc: dict[str, list] = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
        for ids, types in rows:
            fill = 0 if width is None else max(0, width - len(ids))
            enc["input_ids"].append(ids + [self.pad_token_id] * fill)
            enc["token_type_ids"].append(types + [0] * fill)
            enc["attention_mask"].append([1] * len(ids) + [0] * fill)
        if not return_attention_mask:
            del enc["attention_mask"]
        if not return_token_type_ids:
            del enc["token_type_ids"]
        if return_tensors is not None:
            if return_tensors not in ("np", "pt", "mg"):
                raise ValueError(
                    f"BertTokenizer: return_tensors must be 'np', 'pt' or 'mg', got "
                    f"{return_tensors!r}"
                )
            if width is None and len({len(r[0]) for r in rows}) > 1:
                raise ValueError(
                    "BertTokenizer: texts of different lengths need padding=True to make tensors"
                )
            arrays = {k: np.array(v, dtype=np.int64) for k, v in enc.items()}
            if return_tensors != "np":
                arrays = {k: Tensor._from_array(v) for k, v in arrays.items()}
            return BatchEncoding(arrays)
        if single:
            return BatchEncoding({k: v[0] for k, v in enc.items()})
        return BatchEncoding(enc)

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        """The text of ``ids``: pieces joined, ``##`` continuations glued back."""
        ids = ids.data if isinstance(ids, Tensor) else ids
        tokens = self.convert_ids_to_tokens(list(np.asarray(ids).reshape(-1)))
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in self.all_special_tokens]
        text = " ".join(tokens).replace(" ##", "").strip()
        if self.clean_up_tokenization_spaces:
            for before, after in (
                (" .", "."),
                (" ?", "?"),
                (" !", "!"),
                (" ,", ","),
                (" ' ", "'"),
                (" n't", "n't"),
                (" 'm", "'m"),
                (" 's", "'s"),
                (" 've", "'ve"),
                (" 're", "'re"),
            ):
                text = text.replace(before, after)
        return text

    # -- files -------------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **{name: getattr(self, name) for name in SPECIAL},
        }

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``vocab.txt``, ``tokenizer_config.json`` and ``special_tokens_map.json``."""
        directory = Path(directory)
        vocab = "".join(t + "\n" for t, _ in sorted(self.vocab.items(), key=lambda kv: kv[1]))
        io._atomic_write(directory / "vocab.txt", lambda f: f.write(vocab.encode("utf-8")))
        config = {"tokenizer_class": "BertTokenizer", **self._settings()}
        special = {name: getattr(self, name) for name in SPECIAL}
        for name, payload in (
            ("tokenizer_config.json", config),
            ("special_tokens_map.json", special),
        ):
            text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
            io._atomic_write(directory / name, lambda f, t=text: f.write(t.encode()))
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **overrides: Any) -> BertTokenizer:
        """Read ``vocab.txt`` and ``tokenizer_config.json`` (when there) from a directory or
        from Hugging Face's cache. Only WordPiece vocabularies (BERT's) are read."""
        try:
            folder = hub.resolve(name_or_path, "vocab.txt")
            vocab: Any = folder / "vocab.txt"
            settings: dict[str, Any] = {}
        except hub.CheckpointNotFoundError as missing:
            # newer downloads may hold tokenizer.json instead of vocab.txt
            try:
                folder = hub.resolve(name_or_path, "tokenizer.json")
            except hub.CheckpointNotFoundError:
                raise missing from None
            vocab, settings = _from_tokenizer_json(folder / "tokenizer.json")
        path = folder / "tokenizer_config.json"
        if path.is_file():
            try:
                settings = {**settings, **json.loads(path.read_text())}
            except json.JSONDecodeError as e:
                raise ValueError(f"BertTokenizer: {path} is not valid JSON ({e})") from None
            # special tokens may be written as {"content": "[CLS]", ...} (AddedToken)
            for name in SPECIAL:
                if isinstance(settings.get(name), dict):
                    settings[name] = settings[name]["content"]
            if "model_max_length" in settings and settings["model_max_length"] > 10**9:
                settings.pop("model_max_length")  # transformers' "no limit" marker
        settings.update(overrides)
        return cls(vocab, **settings)
