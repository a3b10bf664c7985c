"""Multi-head attention and the transformer encoder, with PyTorch's names, masks and
parameter layout (so state dicts cross over by name).

Masks follow PyTorch's ``nn.MultiheadAttention`` convention, which is the opposite of
``F.scaled_dot_product_attention``'s: a boolean ``attn_mask`` or ``key_padding_mask`` is True
where attention is NOT allowed; a float mask is added to the scores.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import dtypes
from minigrad.autograd import untraceable
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.layers import Dropout, LayerNorm, Linear
from minigrad.nn.module import Module, ModuleList, Parameter
from minigrad.ops.common import as_tensor
from minigrad.ops.indexing import where
from minigrad.ops.matmul import matmul
from minigrad.ops.movement import chunk, reshape, squeeze, transpose, unsqueeze
from minigrad.ops.reduce import mean, softmax
from minigrad.tensor import Tensor


def _to_additive_or_allowed(mask: Any, dtype: np.dtype) -> np.ndarray | None:
    """A PyTorch-MHA mask (bool True = blocked, or additive float) as SDPA wants it:
    bool True = allowed, or additive float."""
    if mask is None:
        return None
    untraceable("a MultiheadAttention mask (combined with NumPy)")
    m = as_tensor(mask).data
    if m.dtype == np.bool_:
        return ~m
    if not dtypes.is_floating(m.dtype):
        raise TypeError(f"MultiheadAttention: masks must be bool or float, got {m.dtype}")
    return m.astype(dtype)


def _combine(a: np.ndarray | None, b: np.ndarray | None, dtype) -> np.ndarray | None:
    """Two SDPA-convention masks (either may be None) as one broadcastable mask."""
    if a is None or b is None:
        return a if b is None else b
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        return a & b
    as_float = [
        np.where(m, 0.0, -np.inf).astype(dtype) if m.dtype == np.bool_ else m for m in (a, b)
    ]
    return as_float[0] + as_float[1]


class MultiheadAttention(Module):
    """Attention with ``num_heads`` heads of size embed_dim / num_heads, as PyTorch's.

    Inputs (L, B, E) query and (S, B, E) key / value, or (B, L, E) / (B, S, E) with
    ``batch_first``, or unbatched (L, E). ``key_padding_mask`` (B, S) and ``attn_mask``
    (L, S) or (B * num_heads, L, S): bool True = blocked, or float added to the scores.
    Returns (output like query, weights): weights (B, L, S) averaged over heads (or
    (B, num_heads, L, S)), or None when ``need_weights=False``. With need_weights=False and no
    attention dropout the flash-attention kernel runs and no L x S matrix is kept.
    ``is_causal=True`` without an ``attn_mask`` applies the causal mask (PyTorch requires
    the mask as well and treats the flag as a hint). A query whose every key is masked gets
    zero weights and a zero output, never NaN (PyTorch returns NaN).

    Parameters: ``in_proj_weight`` (3E, E) (xavier uniform), ``in_proj_bias`` (3E,) (zeros),
    ``out_proj`` a Linear(E, E) whose bias starts at zero.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads "
                f"{num_heads}"
            )
        if (
            add_bias_kv
            or add_zero_attn
            or kdim not in (None, embed_dim)
            or vdim
            not in (
                None,
                embed_dim,
            )
        ):
            raise NotImplementedError(
                "MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim different from "
                "embed_dim are not supported yet"
            )
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        dt = dtypes.get_default_dtype()
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dt))
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * embed_dim, dt))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _name(self) -> str:
        return f"MultiheadAttention({self.embed_dim}, num_heads={self.num_heads})"

    def _project(self, query: Tensor, key: Tensor, value: Tensor):
        """q, k, v = the three input projections (one matmul when it is self-attention)."""
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:
            return chunk(F.linear(query, w, b), 3, dim=-1)
        ws = chunk(w, 3, dim=0)
        bs = (None, None, None) if b is None else chunk(b, 3, dim=0)
        return tuple(F.linear(x, wi, bi) for x, wi, bi in zip((query, key, value), ws, bs))

    def _heads(self, x: Tensor, batch: int) -> Tensor:
        """(B, L, E) -> (B, NH, L, D)."""
        return transpose(reshape(x, (batch, x.shape[1], self.num_heads, self.head_dim)), 1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        e = self.embed_dim
        if query.ndim not in (2, 3) or query.shape[-1] != e:
            layout = "(B, L, {e})" if self.batch_first else "(L, B, {e})"
            raise ValueError(
                f"{self._name()}: expected query {layout.format(e=e)} or (L, {e}), "
                f"got {query.shape}"
            )
        if key.ndim != query.ndim or value.ndim != query.ndim or key.shape != value.shape:
            raise ValueError(
                f"{self._name()}: key {key.shape} and value {value.shape} must have one shape, "
                f"of the same rank as query {query.shape}"
            )
        batched = query.ndim == 3
        same = query is key and key is value
        if not batched:
            query, key, value = (unsqueeze(t, 1) for t in (query, key, value))
        if not self.batch_first:  # to (B, L, E)
            query, key, value = (transpose(t, 0, 1) for t in (query, key, value))
        if same:
            key = value = query
        batch, length, source = query.shape[0], query.shape[1], key.shape[1]
        if key.shape[0] != batch:
            raise ValueError(f"{self._name()}: query and key have different batch sizes")
        q, k, v = (self._heads(t, batch) for t in self._project(query, key, value))

        causal = bool(is_causal) and attn_mask is None
        if causal and key_padding_mask is not None:  # the kernel's causal path takes no mask
            attn_mask, causal = ~np.tril(np.ones((length, source), bool)), False
        mask = self._mask(attn_mask, key_padding_mask, batch, length, source, batched, q.dtype)
        p = self.dropout if self.training else 0.0
        if need_weights or p > 0:
            out, weights = self._explicit(q, k, v, mask, causal, p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
            weights = None
        out = reshape(transpose(out, 1, 2), (batch, length, e))
        out = self.out_proj(out)
        if not self.batch_first:
            out = transpose(out, 0, 1)
        if not batched:
            out = squeeze(out, 1)
        if weights is not None and need_weights:
            if average_attn_weights:
                weights = mean(weights, 1)
            if not batched:
                weights = squeeze(weights, 0)
        else:
            weights = None
        return out, weights

    def _mask(self, attn_mask, key_padding_mask, batch, length, source, batched, dtype):
        """attn_mask and key_padding_mask as one SDPA mask broadcastable to (B, NH, L, S)."""
        a = _to_additive_or_allowed(attn_mask, dtype)
        if a is not None:
            if a.shape == (length, source):
                pass
            elif a.shape == (batch * self.num_heads, length, source):
                a = a.reshape(batch, self.num_heads, length, source)
            else:
                raise ValueError(
                    f"{self._name()}: attn_mask of shape {a.shape} should be "
                    f"({length}, {source}) or ({batch * self.num_heads}, {length}, {source})"
                )
        kp = _to_additive_or_allowed(key_padding_mask, dtype)
        if kp is not None:
            expected = (batch, source) if batched else (source,)
            if kp.shape != expected:
                raise ValueError(
                    f"{self._name()}: key_padding_mask of shape {kp.shape} should be {expected}"
                )
            kp = kp.reshape(batch, 1, 1, source)
        return _combine(a, kp, dtype)

    def _explicit(self, q, k, v, mask, causal, p):
        """Attention with the (B, NH, L, S) probabilities formed: for need_weights and for
        dropout on the attention probabilities."""
        scores = matmul(q, k.mT) * (1.0 / math.sqrt(self.head_dim))
        if causal:
            length, source = scores.shape[-2:]
            mask = np.tril(np.ones((length, source), bool))
        none_allowed = None
        if mask is not None:
            if mask.dtype == np.bool_:
                none_allowed = ~mask.any(-1, keepdims=True)
                scores = where(Tensor._from_array(mask), scores, -np.inf)
            else:
                none_allowed = np.isneginf(mask).all(-1, keepdims=True)
                scores = scores + Tensor._from_array(mask)
        if none_allowed is not None and none_allowed.any():
            # A query that may attend to no key gets zero weights and a zero output, as on
            # the flash kernel's path (PyTorch returns NaN there).
            rows = Tensor._from_array(np.broadcast_to(none_allowed, scores.shape))
            scores = where(rows, 0.0, scores)
            weights = where(rows, 0.0, softmax(scores, -1))
        else:
            weights = softmax(scores, -1)
        out = matmul(F.dropout(weights, p, True) if p > 0 else weights, v)
        return out, weights

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + (", batch_first=True" if self.batch_first else "")


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection, dropout
    and layer norm, as PyTorch's.

    Post-norm (default): x = norm1(x + sa(x)); x = norm2(x + ff(x)).
    Pre-norm (``norm_first=True``, GPT-2's): x = x + sa(norm1(x)); x = x + ff(norm2(x)).
    ff(x) = linear2(dropout(activation(linear1(x)))). With ``is_causal=True`` (or a causal
    ``src_mask``) each position attends to itself and earlier ones: a GPT block.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(
                    f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a callable, "
                    f"got {activation!r}"
                )
            activation = _ACTIVATIONS[activation]
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = activation

    def forward(
        self,
        src: Tensor,
        src_mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> Tensor:
        out = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (each with its own parameters, named
    ``layers.0``, ``layers.1``, ...), then an optional final ``norm``."""

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,  # accepted for PyTorch compatibility; no effect
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(
                x,
                src_mask=mask,
                src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )
        return x if self.norm is None else self.norm(x)
