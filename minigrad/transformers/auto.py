"""``AutoTokenizer``/``AutoModel...``: pick the class from a checkpoint's ``config.json``.
Only BERT is here; any other ``model_type`` is refused by name."""

from __future__ import annotations

import json
import os
from typing import Any

from minigrad.transformers import hub
from minigrad.transformers.bert import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from minigrad.transformers.tokenization import BertTokenizer


def _model_type(name_or_path: str | os.PathLike) -> str:
    folder = hub.resolve(name_or_path, "config.json")
    try:
        return json.loads((folder / "config.json").read_text()).get("model_type", "bert")
    except json.JSONDecodeError as e:
        path = folder / "config.json"
        raise ValueError(f"from_pretrained: {path} is not valid JSON ({e})") from None


def _only_bert(name_or_path: str | os.PathLike, what: str) -> None:
    kind = _model_type(name_or_path)
    if kind != "bert":
        raise ValueError(
            f"{what}.from_pretrained: {os.fspath(name_or_path)!r} is a {kind!r} model; "
            "minigrad.transformers has BERT only"
        )


class _Auto:
    bert: Any = None

    def __init__(self) -> None:
        name = type(self).__name__
        raise TypeError(f"{name} is used as {name}.from_pretrained(...), not instantiated")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        _only_bert(name_or_path, cls.__name__)
        return cls.bert.from_pretrained(name_or_path, **kwargs)


class AutoConfig(_Auto):
    bert = BertConfig


class AutoModel(_Auto):
    bert = BertModel


class AutoModelForSequenceClassification(_Auto):
    bert = BertForSequenceClassification


class AutoModelForTokenClassification(_Auto):
    bert = BertForTokenClassification


class AutoTokenizer(_Auto):
    """The tokenizer of a BERT checkpoint (``vocab.txt`` + ``tokenizer_config.json``); a
    directory holding only a vocabulary (no config.json) is read as BERT's too."""

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> BertTokenizer:
        try:
            _only_bert(name_or_path, cls.__name__)
        except hub.CheckpointNotFoundError:
            pass  # a tokenizer folder without config.json: vocab.txt decides below
        return BertTokenizer.from_pretrained(name_or_path, **kwargs)
