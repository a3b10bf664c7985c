"""Text models: a character LSTM, a small GPT, a small BERT-style encoder with sequence- and
token-classification heads, a BiLSTM tagger and Kim's sentence CNN.

Inputs are integer token ids (B, T); id 0 is padding wherever a tokenizer from
minigrad.data.text made them. The classification models take an optional ``attention_mask``
(B, T) (1 = real token) and ``labels``; given labels they return {"loss", "logits"}, which is
what ``minigrad.train.Trainer`` expects of a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from models.pretrained import Generator, Pretrained


def _with_loss(logits, labels, ignore_index: int = -100) -> Any:
    if labels is None:
        return logits
    flat = logits.reshape(-1, logits.shape[-1]) if logits.ndim == 3 else logits
    target = labels.reshape(-1) if logits.ndim == 3 else labels
    return {"loss": F.cross_entropy(flat, target, ignore_index=ignore_index), "logits": logits}


def _ids(x: Any) -> mg.Tensor:
    return x if isinstance(x, mg.Tensor) else mg.tensor(np.asarray(x, dtype=np.int64))


class CharLSTM(Generator, Pretrained, nn.Module):
    """Embedding(vocab, 64), a 2-layer LSTM of 256, Linear(256, vocab): next-character
    logits (B, T, vocab). With vocab 65: 876,929 parameters."""

    def __init__(
        self,
        vocab_size: int = 65,
        embedding: int = 64,
        hidden: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.embed = nn.Embedding(vocab_size, embedding)
        self.lstm = nn.LSTM(embedding, hidden, num_layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx, labels=None):
        out, _ = self.lstm(self.embed(_ids(idx)))
        return _with_loss(self.head(out), labels)

    onnx_input_names = ["input_ids"]
    onnx_dynamic_axes = {"input_ids": {1: "tokens"}, "output": {1: "tokens"}}

    def onnx_forward(self, g, ids):  # minigrad.onnx.export: logits (B, T, vocab)
        return g.module(self.head, g.module(self.lstm, g.module(self.embed, ids)), 3)


class GPT(Generator, Pretrained, nn.Module):
    """A decoder-only transformer (GPT-2's layout): token and position embeddings, pre-norm
    causal self-attention blocks with GELU feed-forward (4x width), a final LayerNorm and a
    linear head. Defaults (vocab 65, context 64, width 128, 4 layers, 4 heads): 818,241
    parameters."""

    def __init__(
        self,
        vocab_size: int = 65,
        context: int = 64,
        width: int = 128,
        layers: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.context = context
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(
            width,
            heads,
            4 * width,
            dropout,
            activation="gelu",
            norm_first=True,
            batch_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, layers)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)
        for name, p in self.named_parameters():  # GPT-2's initialisation
            if name.endswith("weight") and p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias") and "norm" not in name:
                nn.init.zeros_(p)

    def forward(self, idx, labels=None):
        idx = _ids(idx)
        t = idx.shape[-1]
        if t > self.context:
            raise ValueError(f"GPT: {t} tokens exceed the context of {self.context}")
        h = self.tokens(idx) + self.positions(mg.arange(t))
        h = self.blocks(self.drop(h), is_causal=True)
        return _with_loss(self.head(self.norm(h)), labels)

    onnx_input_names = ["input_ids"]
    onnx_dynamic_axes = {"input_ids": {1: "tokens"}, "output": {1: "tokens"}}

    def onnx_forward(self, g, ids):  # minigrad.onnx.export: logits (B, T, vocab)
        h = g.node("Add", [g.module(self.tokens, ids), g.positions(self.positions.weight, ids)])
        low = np.finfo(np.float32).min
        causal = np.triu(np.full((self.context, self.context), low, np.float32), 1)
        t = g.node("Shape", [ids], start=1, end=2)
        zero = g.const(np.array([0], np.int64))
        mask = g.node("Slice", [g.const(causal), zero, t, g.const(np.array([0], np.int64))])
        mask = g.node("Slice", [mask, zero, t, g.const(np.array([1], np.int64))])
        for block in self.blocks.layers:
            h = g.encoder_layer(block, h, mask)
        return g.module(self.head, g.module(self.norm, h), 3)


class BertEncoder(Pretrained, nn.Module):
    """A BERT-style encoder: token and position embeddings, LayerNorm, dropout, then post-norm
    GELU transformer layers attending in both directions (padding masked). Returns hidden
    states (B, T, width). Defaults (vocab 10000, context 128, width 128, 2 layers, 4 heads):
    1,693,184 parameters."""

    def __init__(
        self,
        vocab_size: int = 10000,
        context: int = 128,
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.context = context
        self.tokens = nn.Embedding(vocab_size, width, padding_idx=0)
        self.positions = nn.Embedding(context, width)
        self.norm = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout, activation="gelu", batch_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers)

    def forward(self, input_ids, attention_mask=None):
        ids = _ids(input_ids)
        t = ids.shape[-1]
        if t > self.context:
            raise ValueError(f"BertEncoder: {t} tokens exceed the context of {self.context}")
        h = self.drop(self.norm(self.tokens(ids) + self.positions(mg.arange(t))))
        padding = None
        if attention_mask is not None:
            mask = attention_mask.data if isinstance(attention_mask, mg.Tensor) else attention_mask
            padding = np.asarray(mask) == 0
        return self.layers(h, src_key_padding_mask=padding)

    def onnx_forward(self, g, ids, attention_mask):  # minigrad.onnx.export: (B, T, width)
        h = g.node("Add", [g.module(self.tokens, ids), g.positions(self.positions.weight, ids)])
        h = g.module(self.norm, h)
        mask = g.padding_mask(attention_mask)
        for layer in self.layers.layers:
            h = g.encoder_layer(layer, h, mask)
        return h


class BertForSequenceClassification(Pretrained, nn.Module):
    """BertEncoder, then BERT's pooler (the first token's state through Linear + tanh),
    dropout and Linear(width, num_labels). With the encoder's defaults and 2 labels:
    1,709,954 parameters."""

    def __init__(self, num_labels: int = 2, **encoder: Any) -> None:
        self._remember({"num_labels": num_labels, **encoder})
        nn.Module.__init__(self)
        self.bert = BertEncoder(**encoder)
        width = self.bert.config.get("width", 128)
        self.pooler = nn.Linear(width, width)
        self.drop = nn.Dropout(self.bert.config.get("dropout", 0.1))
        self.classifier = nn.Linear(width, num_labels)

    def forward(self, input_ids, attention_mask=None, labels=None):
        h = self.bert(input_ids, attention_mask)
        pooled = self.pooler(h[:, 0]).tanh()
        return _with_loss(self.classifier(self.drop(pooled)), labels)

    onnx_input_names = ["input_ids", "attention_mask"]
    onnx_dynamic_axes = {"input_ids": {1: "tokens"}, "attention_mask": {1: "tokens"}}

    def onnx_forward(self, g, ids, attention_mask):  # minigrad.onnx.export: logits (B, labels)
        h = self.bert.onnx_forward(g, ids, attention_mask)
        first = g.node("Gather", [h, g.const(np.array(0, np.int64))], axis=1)
        pooled = g.node("Tanh", [g.module(self.pooler, first, 2)])
        return g.module(self.classifier, pooled, 2)


class BertForTokenClassification(Pretrained, nn.Module):
    """BertEncoder, then dropout and Linear(width, num_labels) at every position; labels of
    -100 (padding, sub-word continuations) are ignored by the loss. With the encoder's defaults
    and 13 labels: 1,694,861 parameters."""

    def __init__(self, num_labels: int = 13, **encoder: Any) -> None:
        self._remember({"num_labels": num_labels, **encoder})
        nn.Module.__init__(self)
        self.bert = BertEncoder(**encoder)
        self.drop = nn.Dropout(self.bert.config.get("dropout", 0.1))
        self.classifier = nn.Linear(self.bert.config.get("width", 128), num_labels)

    def forward(self, input_ids, attention_mask=None, labels=None):
        return _with_loss(self.classifier(self.drop(self.bert(input_ids, attention_mask))), labels)


class BiLSTMTagger(Pretrained, nn.Module):
    """Embedding(vocab, 100), a bidirectional LSTM of 128 per direction, dropout and
    Linear(256, num_tags) at every position. With vocab 20000 and 13 tags: 2,238,861
    parameters."""

    def __init__(
        self,
        vocab_size: int = 20000,
        num_tags: int = 13,
        embedding: int = 100,
        hidden: int = 128,
        dropout: float = 0.3,
    ) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=0)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, num_tags)

    def forward(self, input_ids, attention_mask=None, labels=None):
        out, _ = self.lstm(self.drop(self.embed(_ids(input_ids))))
        return _with_loss(self.head(self.drop(out)), labels)


class KimCNN(Pretrained, nn.Module):
    """Kim (2014)'s sentence CNN, "rand" variant: random 300-d word vectors, convolutions of
    widths 3, 4 and 5 with 100 maps each, ReLU, max over time, dropout 0.5 and
    Linear(300, num_classes); word vectors start uniform in +-0.25, as Kim's. With vocab
    20000: 6,360,902 parameters. Kim also keeps each row of the last layer's weight at L2
    norm at most 3 (``max_norm_``), applied after every optimizer step by the recipe.
    ``embed_dropout`` (not Kim's; 0 by default) drops elements of the word vectors too."""

    def __init__(
        self,
        vocab_size: int = 20000,
        num_classes: int = 2,
        embedding: int = 300,
        widths: list[int] | None = None,
        maps: int = 100,
        dropout: float = 0.5,
        embed_dropout: float = 0.0,
    ) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        widths = list(widths or [3, 4, 5])
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=0)
        nn.init.uniform_(self.embed.weight, -0.25, 0.25)  # Kim's random vectors
        self.embed.weight.data[0] = 0.0
        self.convs = nn.ModuleList([nn.Conv1d(embedding, maps, w) for w in widths])
        self.drop = nn.Dropout(dropout)
        self.embed_drop = nn.Dropout(embed_dropout)
        self.fc = nn.Linear(maps * len(widths), num_classes)
        self.min_length = max(widths)

    def max_norm_(self, limit: float = 3.0) -> None:
        """Rescale each row of the classifier's weight to L2 norm at most ``limit``."""
        w = self.fc.weight.data
        norms = np.sqrt((w * w).sum(axis=1, keepdims=True))
        w *= np.minimum(1.0, limit / np.maximum(norms, 1e-12)).astype(w.dtype)

    def forward(self, input_ids, attention_mask=None, labels=None):
        ids = _ids(input_ids)
        if ids.shape[-1] < self.min_length:
            raise ValueError(
                f"KimCNN: sentences need at least {self.min_length} tokens (pad them), got "
                f"{ids.shape[-1]}"
            )
        x = self.embed_drop(self.embed(ids)).transpose(1, 2)  # (B, embedding, T)
        pooled = [conv(x).relu().amax(-1) for conv in self.convs]
        return _with_loss(self.fc(self.drop(mg.cat(pooled, dim=1))), labels)


class MakemoreMLP(Pretrained, nn.Module):
    """makemore's MLP language model (Bengio et al. 2003, as in Karpathy's makemore): the
    previous ``context`` characters' embeddings (10 each), concatenated, through
    Linear(30, 200) + tanh and Linear(200, vocab). With vocab 27: 11,897 parameters."""

    def __init__(
        self, vocab_size: int = 27, context: int = 3, embedding: int = 10, hidden: int = 200
    ) -> None:
        self._remember(locals())
        nn.Module.__init__(self)
        self.embed = nn.Embedding(vocab_size, embedding)
        self.hidden = nn.Linear(context * embedding, hidden)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, idx, labels=None):
        e = self.embed(_ids(idx))
        h = self.hidden(e.reshape(e.shape[0], -1)).tanh()
        return _with_loss(self.out(h), labels)


class CharCNN(nn.Module):
    """A word's characters -> one vector (Ma and Hovy 2016): character embeddings (B, T, L)
    -> (B, T, L, char_dim), a convolution of width 3 over the L characters with ``maps``
    filters, and the max over the characters: (B, T, maps). Catches prefixes, suffixes and
    spelling that an unknown word's id has lost.

    The padding positions of a batch (all character ids 0) go through the convolution as one
    row, gathered back to each of them: the same outputs and, summed over the positions, the
    same gradients as one convolution per position."""

    def __init__(self, num_chars: int, char_dim: int = 30, maps: int = 50, width: int = 3):
        super().__init__()
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, maps, width, padding=width // 2)

    def forward(self, char_ids) -> mg.Tensor:
        # the words' positions are found with NumPy and shape the convolution's input: a
        # compiled step cannot replay them, so minigrad.compile runs it eagerly
        mg.autograd.untraceable("CharCNN's word positions (found with NumPy)")
        ids = _ids(char_ids)
        b, t, length = ids.shape
        flat = ids.data.reshape(b * t, length)
        words = np.flatnonzero(flat.any(axis=1))
        where = np.full(b * t, len(words))  # padding: the extra blank row after the words
        where[words] = np.arange(len(words))
        rows = np.concatenate([flat[words], np.zeros((1, length), flat.dtype)])
        x = self.embed(mg.tensor(rows)).transpose(1, 2)  # (words + 1, char_dim, L)
        return self.conv(x).amax(-1)[where].reshape(b, t, -1)


class BiLSTMCRFTagger(Pretrained, nn.Module):
    """A BiLSTM-CRF tagger over words and characters (Lample et al. 2016; Ma and Hovy 2016):
    each token is its lower-cased word's embedding (100), its characters through a
    ``CharCNN`` (50 maps) and its word-shape features (``n_shapes``, as models/ner.py makes
    them) side by side; dropout, a bidirectional LSTM of ``hidden`` per direction, dropout,
    Linear(2 * hidden, tags) emission scores and an ``nn.CRF`` with BIO constraints on top.
    Given labels (B, T) (-100 past each sentence) it returns {"loss": the CRF's mean negative
    log-likelihood, "logits": the emissions (B, T, tags)}; ``decode`` gives the Viterbi tags.
    With vocab 20000, 100 characters, 13 WNUT-17 tags and 6 shapes: 2,216,758 parameters."""

    def __init__(
        self,
        vocab_size: int = 20000,
        num_chars: int = 100,
        tag_names: list[str] | None = None,
        n_shapes: int = 6,
        embedding: int = 100,
        char_dim: int = 30,
        char_maps: int = 50,
        hidden: int = 100,
        dropout: float = 0.5,
    ) -> None:
        if tag_names is None:  # WNUT-17's tags
            kinds = ["corporation", "creative-work", "group", "location", "person", "product"]
            tag_names = [f"B-{k}" for k in kinds] + [f"I-{k}" for k in kinds] + ["O"]
        self._remember(locals())
        nn.Module.__init__(self)
        self.tag_names = list(tag_names)
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=0)
        self.chars = CharCNN(num_chars, char_dim, char_maps)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            embedding + char_maps + n_shapes, hidden, batch_first=True, bidirectional=True
        )
        self.emit = nn.Linear(2 * hidden, len(self.tag_names))
        self.crf = nn.CRF(len(self.tag_names), nn.bio_constraints(self.tag_names))

    def emissions(self, input_ids, char_ids, shapes) -> mg.Tensor:
        """The emission scores (B, T, tags)."""
        ids = _ids(input_ids)
        x = mg.cat([self.embed(ids), self.chars(char_ids), shapes], dim=-1)
        out, _ = self.lstm(self.drop(x))
        return self.emit(self.drop(out))

    def forward(self, input_ids, char_ids, shapes, labels=None):
        scores = self.emissions(input_ids, char_ids, shapes)
        if labels is None:
            return scores
        y = labels.data if isinstance(labels, mg.Tensor) else np.asarray(labels)
        return {"loss": self.crf(scores, y, y != -100), "logits": scores}

    def decode(self, input_ids, char_ids, shapes) -> list[list[str]]:
        """The Viterbi tag names of each sentence (padding, word id 0, excluded)."""
        ids = _ids(input_ids)
        with mg.no_grad():
            scores = self.emissions(ids, char_ids, shapes)
        paths = self.crf.decode(scores, ids.data != 0)
        return [[self.tag_names[i] for i in path] for path in paths]
