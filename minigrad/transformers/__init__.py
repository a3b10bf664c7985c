"""``minigrad.transformers``: BERT in Hugging Face's layout and names, reading and writing
Hugging Face's files (``config.json``, ``vocab.txt``, ``tokenizer_config.json``,
``model.safetensors``) from a directory or the local Hugging Face cache, offline.

A Hugging Face program runs with ``from transformers import ...`` replaced by
``from minigrad.transformers import ...``: ``BertTokenizer``, ``BertForSequenceClassification``,
``Trainer``, ``TrainingArguments`` (the last two are ``minigrad.train``'s)."""

from minigrad.train import Trainer, TrainingArguments
from minigrad.transformers.auto import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)
from minigrad.transformers.bert import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertPreTrainedModel,
    ModelOutput,
)
from minigrad.transformers.hub import CheckpointNotFoundError, hub_cache
from minigrad.transformers.tokenization import BatchEncoding, BertTokenizer

__all__ = [
    "AutoConfig",
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "BatchEncoding",
    "BertConfig",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "BertPreTrainedModel",
    "BertTokenizer",
    "CheckpointNotFoundError",
    "ModelOutput",
    "Trainer",
    "TrainingArguments",
    "hub_cache",
]
