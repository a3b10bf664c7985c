"""BERT (Devlin et al., 2019) in Hugging Face's layout: the same module names, so a state dict
crosses over key for key (``bert.encoder.layer.0.attention.self.query.weight``, ...), and the
same ``config.json``.

    model = BertForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
    out = model(input_ids, attention_mask=mask, labels=labels)   # out.loss, out.logits
    model.save_pretrained("runs/bert")                            # transformers loads it

Shapes: B batch, T tokens, H hidden size, NH heads, D = H / NH head size, I intermediate size.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import io
from minigrad.autograd import derived, no_grad, untraceable
from minigrad.tensor import Tensor, arange
from minigrad.transformers import hub

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": lambda x: F.relu(x),
    "tanh": lambda x: x.tanh(),
}


class ModelOutput(dict):
    """What the models return: a dict whose entries are also attributes (``out.logits``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"this output has no {name!r}; it has {list(self)}") from None


class BertConfig:
    """BERT's hyper-parameters, with Hugging Face's names and defaults (bert-base). Keys this
    class does not use are kept and written back by ``save_pretrained``."""

    model_type = "bert"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 0,
        position_embedding_type: str = "absolute",
        classifier_dropout: float | None = None,
        num_labels: int | None = None,
        id2label: dict | None = None,
        label2id: dict | None = None,
        problem_type: str | None = None,
        **extra: Any,
    ) -> None:
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"BertConfig: hidden_size {hidden_size} is not a multiple of "
                f"num_attention_heads {num_attention_heads}"
            )
        if hidden_act not in _ACTIVATIONS:
            raise ValueError(
                f"BertConfig: hidden_act {hidden_act!r} is not supported; choose from "
                f"{', '.join(_ACTIVATIONS)}"
            )
        if position_embedding_type != "absolute":
            raise ValueError(
                f"BertConfig: position_embedding_type {position_embedding_type!r} is not "
                "supported (only 'absolute')"
            )
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.intermediate_size, self.hidden_act = intermediate_size, hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range, self.layer_norm_eps = initializer_range, layer_norm_eps
        self.pad_token_id, self.position_embedding_type = pad_token_id, position_embedding_type
        self.classifier_dropout, self.problem_type = classifier_dropout, problem_type
        if id2label is not None:
            id2label = {int(k): v for k, v in id2label.items()}
        if num_labels is None:
            num_labels = len(id2label) if id2label else 2
        if id2label is None or len(id2label) != num_labels:
            id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        self.id2label = id2label
        self.label2id = label2id or {v: k for k, v in id2label.items()}
        extra.pop("model_type", None)
        self.extra = extra

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    def to_dict(self) -> dict:
        d = {k: v for k, v in vars(self).items() if k != "extra"}
        d["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return {**self.extra, **d, "model_type": self.model_type}

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        io._atomic_write(directory / "config.json", lambda f: f.write(text.encode()))
        return directory

    @classmethod
    def from_dict(cls, d: dict, **overrides: Any) -> BertConfig:
        d = {**d, **overrides}
        if "num_labels" in overrides:
            d.pop("id2label", None)
            d.pop("label2id", None)
        return cls(**d)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **overrides: Any) -> BertConfig:
        """Read ``config.json`` from a directory or Hugging Face's cache (``hub.resolve``)."""
        folder = hub.resolve(name_or_path, "config.json")
        path = folder / "config.json"
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"from_pretrained: {path} is not valid JSON ({e})") from None
        kind = d.get("model_type", "bert")
        if kind != "bert":
            raise ValueError(f"from_pretrained: {path} describes a {kind!r} model, not 'bert'")
        return cls.from_dict(d, **overrides)

    def __repr__(self) -> str:
        return f"BertConfig({json.dumps(self.to_dict(), sort_keys=True)})"


# -- the layers ------------------------------------------------------------------------------
class BertEmbeddings(nn.Module):
    """word + position + token-type embeddings, LayerNorm, dropout: ids (B, T) -> (B, T, H)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions = config.max_position_embeddings

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        t = input_ids.shape[1]
        if t > self.max_positions:
            raise ValueError(
                f"BERT: {t} tokens exceed max_position_embeddings {self.max_positions}; "
                "truncate the input (tokenizer(..., truncation=True))"
            )
        h = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(arange(t))
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(h))


class BertSelfAttention(nn.Module):
    """Multi-head attention written out: softmax(Q K^T / sqrt(D) + mask) V, per head."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.num_heads, self.head_size = config.num_attention_heads, h // config.num_attention_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def _heads(self, x: Tensor) -> Tensor:  # (B, T, H) -> (B, NH, T, D)
        b, t, _ = x.shape
        return x.reshape(b, t, self.num_heads, self.head_size).permute(0, 2, 1, 3)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        b, t, h = hidden.shape
        q, k, v = (
            self._heads(self.query(hidden)),
            self._heads(self.key(hidden)),
            self._heads(self.value(hidden)),
        )
        scores = q.matmul(k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_size)) + mask
        probs = self.dropout(scores.softmax(-1))
        return probs.matmul(v).permute(0, 2, 1, 3).reshape(b, t, h)


class BertSelfOutput(nn.Module):
    def __init__(self, config: BertConfig, width_in: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return self.output(self.self(hidden, mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    """One post-norm transformer layer: attention, add & norm, feed-forward, add & norm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        attended = self.attention(hidden, mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        for layer in self.layer:
            hidden = layer(hidden, mask)
        return hidden


class BertPooler(nn.Module):
    """The first ([CLS]) token's state through Linear + tanh: (B, T, H) -> (B, H)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.dense(hidden[:, 0]).tanh()


# -- loading and saving ----------------------------------------------------------------------
def _as_ids(x: Any, name: str) -> Tensor:
    if isinstance(x, Tensor):
        a = x.data
    else:
        a = np.asarray(getattr(x, "numpy", lambda: x)())
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.dtype.kind not in "iub":
        raise ValueError(
            f"BERT: {name} must be integers of shape (batch, tokens), got {a.shape} {a.dtype}"
        )
    ids = np.ascontiguousarray(a, dtype=np.int64)
    if ids is not a:  # a copy made with NumPy: minigrad.compile would replay the traced ids
        untraceable(f"BERT's {name} converted with NumPy")
    return Tensor._from_array(ids)


def _hf_key(key: str) -> str:
    """Old TensorFlow-converted checkpoints (bert-base-uncased among them) name LayerNorm's
    weight and bias gamma and beta."""
    if key.endswith(".gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[: -len("beta")] + "bias"
    return key


class BertPreTrainedModel(nn.Module):
    """``from_pretrained``/``save_pretrained`` in Hugging Face's layout, and BERT's
    initialisation (normal(0, initializer_range) weights, zero biases, unit LayerNorms)."""

    config_class = BertConfig
    base_model_prefix = "bert"

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"{type(self).__name__}: expected a BertConfig, got {config!r}")
        self.config = config

    def _init_weights(self) -> None:
        std = self.config.initializer_range
        with no_grad():
            for name, p in self.named_parameters():
                if "LayerNorm" in name:
                    p.data[...] = 1.0 if name.endswith("weight") else 0.0
                elif name.endswith("bias"):
                    p.data[...] = 0.0
                else:
                    nn.init.normal_(p, 0.0, std)
            for module in self.modules():
                if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                    module.weight.data[module.padding_idx] = 0.0

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` as Hugging Face does (each file
        atomically), so ``transformers`` loads the directory."""
        directory = Path(directory)
        config = self.config.to_dict()
        config["architectures"] = [type(self).__name__]
        state = {k: v.data for k, v in self.state_dict().items()}
        io.save(state, directory / "model.safetensors", metadata={"format": "pt"})
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        io._atomic_write(directory / "config.json", lambda f: f.write(text.encode()))
        return directory

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        config: BertConfig | None = None,
        ignore_mismatched_sizes: bool = False,
        **overrides: Any,
    ) -> Any:
        """Load a checkpoint in Hugging Face's layout (a directory, or a model name in the local
        Hugging Face cache); ``overrides`` change the config (``num_labels=2``). Weights the
        checkpoint lacks (a new classification head), and with ``ignore_mismatched_sizes``
        those of another shape, start from BERT's initialisation, with a warning that names
        them; the checkpoint's weights the model has no place for (the pre-training heads
        ``cls.*``) are skipped."""
        if config is None:
            config = BertConfig.from_pretrained(name_or_path, **overrides)
        folder = hub.resolve(name_or_path, "config.json")
        path = hub.weights_file(folder)
        model = cls(config)
        own = model.state_dict()
        prefix = cls.base_model_prefix + "."
        state, mismatched = {}, []
        for key, value in io.load(path).items():
            key = _hf_key(key)
            if key not in own and prefix + key in own:  # a BertModel checkpoint
                key = prefix + key
            elif key not in own and key.startswith(prefix) and key[len(prefix) :] in own:
                key = key[len(prefix) :]  # a BertFor... checkpoint into a BertModel
            if key not in own:
                continue
            if tuple(value.shape) != tuple(own[key].shape):
                if not ignore_mismatched_sizes:
                    raise ValueError(
                        f"from_pretrained: {path}: {key!r} has shape {tuple(value.shape)}, the "
                        f"model built from the config expects {tuple(own[key].shape)}; pass "
                        "ignore_mismatched_sizes=True to start that weight afresh"
                    )
                mismatched.append(key)
                continue
            state[key] = value
        missing = model.load_state_dict(state, strict=False).missing_keys
        if missing:
            warnings.warn(
                f"{cls.__name__}.from_pretrained: {path} has no {', '.join(missing)}"
                + (f" of the right shape ({', '.join(mismatched)})" if mismatched else "")
                + "; these start from random values, so train the model before using it",
                stacklevel=2,
            )
        model.eval()  # as transformers: a loaded model starts in evaluation mode
        return model


class BertModel(BertPreTrainedModel):
    """The encoder: returns ``last_hidden_state`` (B, T, H) and ``pooler_output`` (B, H)."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self._init_weights()

    def forward(
        self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None
    ) -> ModelOutput:
        ids = _as_ids(input_ids, "input_ids")
        b, t = ids.shape
        types = (
            Tensor._from_array(np.zeros((b, t), np.int64))
            if token_type_ids is None
            else _as_ids(token_type_ids, "token_type_ids")
        )
        keep = (
            Tensor._from_array(np.ones((b, t), np.int64))
            if attention_mask is None
            else _as_ids(attention_mask, "mask")
        )
        if keep.shape != (b, t) or types.shape != (b, t):
            raise ValueError(
                f"BERT: attention_mask {keep.shape} and token_type_ids {types.shape} must have "
                f"the shape of input_ids {(b, t)}"
            )
        hidden = self.embeddings(ids, types)
        # padding gets the dtype's lowest value added to its scores, as transformers does
        low, dtype = np.finfo(hidden.dtype).min, hidden.dtype

        def additive(k: np.ndarray) -> np.ndarray:  # an op: a compiled step recomputes it
            return np.where(k[:, None, None, :] != 0, 0.0, low).astype(dtype)

        hidden = self.encoder(hidden, derived(additive, keep))
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return ModelOutput(last_hidden_state=hidden, pooler_output=pooled)


def _loss(config: BertConfig, logits: Tensor, labels: Any) -> Tensor:
    if config.problem_type == "regression" or config.num_labels == 1:
        untraceable("BERT's regression targets (converted with NumPy)")
        target = Tensor._from_array(np.asarray(getattr(labels, "data", labels), logits.dtype))
        return F.mse_loss(logits.reshape(-1), target.reshape(-1))
    target = _as_ids(labels, "labels").reshape(-1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target, ignore_index=-100)


class BertForSequenceClassification(BertPreTrainedModel):
    """BertModel, dropout and Linear(H, num_labels) on the pooled [CLS] state: ``logits``
    (B, num_labels), and ``loss`` (cross-entropy; MSE for one label) given ``labels`` (B,)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self._init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        pooled = self.bert(input_ids, attention_mask, token_type_ids).pooler_output
        logits = self.classifier(self.dropout(pooled))
        out = ModelOutput(logits=logits)
        if labels is not None:
            out = ModelOutput(loss=_loss(self.config, logits, labels), logits=logits)
        return out

    onnx_input_names = ["input_ids", "attention_mask", "token_type_ids"]
    onnx_dynamic_axes = {name: {1: "tokens"} for name in onnx_input_names}

    def onnx_forward(self, g, ids, attention_mask, token_type_ids):  # logits (B, labels)
        h = _onnx_bert(g, self.bert, ids, attention_mask, token_type_ids)
        first = g.node("Gather", [h, g.const(np.array(0, np.int64))], axis=1)
        pooled = g.node("Tanh", [g.module(self.bert.pooler.dense, first, 2)])
        return g.module(self.classifier, pooled, 2)


def _onnx_bert(g: Any, bert: BertModel, ids: str, attention_mask: str, token_type_ids: str) -> str:
    """BertModel's last hidden state as ONNX nodes (minigrad.onnx.export): (B, T, H)."""
    emb, config = bert.embeddings, bert.config
    h = g.node(
        "Add",
        [g.module(emb.word_embeddings, ids), g.positions(emb.position_embeddings.weight, ids)],
    )
    types = g.module(emb.token_type_embeddings, token_type_ids)
    h = g.module(emb.LayerNorm, g.node("Add", [h, types]))
    mask = g.padding_mask(attention_mask)
    for layer in bert.encoder.layer:
        sa = layer.attention.self
        q, k, v = (g.module(lin, h, 3) for lin in (sa.query, sa.key, sa.value))
        a = g.attention(q, k, v, sa.num_heads, config.hidden_size, mask)
        out = layer.attention.output
        a = g.module(out.LayerNorm, g.node("Add", [g.module(out.dense, a, 3), h]))
        act = {
            "gelu": g.gelu,
            "relu": lambda x: g.node("Relu", [x]),
            "tanh": lambda x: g.node("Tanh", [x]),
        }.get(config.hidden_act)
        if act is None:
            raise NotImplementedError(f"onnx export: hidden_act {config.hidden_act!r}")
        f = act(g.module(layer.intermediate.dense, a, 3))
        h = g.module(layer.output.LayerNorm, g.node("Add", [g.module(layer.output.dense, f, 3), a]))
    return h


class BertForTokenClassification(BertPreTrainedModel):
    """BertModel (no pooler), dropout and Linear(H, num_labels) at every token: ``logits``
    (B, T, num_labels); labels of -100 (padding, word-piece continuations) are ignored."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self._init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        out = ModelOutput(logits=logits)
        if labels is not None:
            out = ModelOutput(loss=_loss(self.config, logits, labels), logits=logits)
        return out

    onnx_input_names = ["input_ids", "attention_mask", "token_type_ids"]
    onnx_dynamic_axes = {
        **{name: {1: "tokens"} for name in onnx_input_names},
        "output": {1: "tokens"},
    }

    def onnx_forward(self, g, ids, attention_mask, token_type_ids):  # logits (B, T, labels)
        h = _onnx_bert(g, self.bert, ids, attention_mask, token_type_ids)
        return g.module(self.classifier, h, 3)
