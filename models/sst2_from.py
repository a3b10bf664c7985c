"""The SST-2 BERT recipe started from a Hugging Face BERT checkpoint (``minigrad train
sst2-bert --from PATH``): the checkpoint's WordPiece tokenizer and encoder, a new two-label
head, fine-tuned at BERT's learning rate (2e-5, Devlin et al. 2019, section A.3)."""

from __future__ import annotations

from typing import Any

import numpy as np

import minigrad as mg


def checkpoint_model(name_or_path: str) -> tuple[Any, Any, Any, float]:
    """(model, tokenizer, collate, learning rate) for fine-tuning ``name_or_path``."""
    import warnings

    from minigrad.transformers import BertForSequenceClassification, BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(name_or_path)
    with warnings.catch_warnings():  # the new head is expected to be missing
        warnings.filterwarnings("ignore", message=".*start from random values")
        model = BertForSequenceClassification.from_pretrained(
            name_or_path, num_labels=2, ignore_mismatched_sizes=True
        )
    model.train()

    def collate(batch):
        enc = tokenizer(
            [text for text, _ in batch],
            padding=True,
            truncation=True,
            max_length=64,
            return_tensors="mg",
        )
        labels = np.array([y for _, y in batch], np.int64)
        return {**enc, "labels": mg.tensor(labels)}

    return model, tokenizer, collate, 2e-5
