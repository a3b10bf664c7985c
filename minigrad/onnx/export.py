"""The ONNX exporter: a model's forward written again as ONNX nodes, module by module.

Leaf modules (Linear, Conv1d/2d, pooling, activations, Flatten, Dropout, LayerNorm, Embedding,
LSTM, GRU, TransformerEncoderLayer) and ``nn.Sequential`` have a mapping here. A model whose
forward does more than run its submodules in order says how to export it with a method
``onnx_forward(self, g, *inputs) -> output name`` that calls ``g.module(sub, x)`` and
``g.node(...)``; the zoo's models do. Anything else is refused by name.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

import minigrad.nn as nn
from minigrad import io
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor

OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError(
            "minigrad.onnx needs the onnx package: pip install 'minigrad[onnx]' "
            "(or pip install onnx)"
        ) from None
    return onnx, helper, numpy_helper


class GraphBuilder:
    """Collects ONNX nodes and constant tensors (the weights) with fresh names."""

    def __init__(self) -> None:
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array: Any, hint: str = "const") -> str:
        """A constant tensor (a weight, a shape) in the graph; returns its name."""
        a = array.data if isinstance(array, Tensor) else np.asarray(array)
        name = self.fresh(hint)
        a = a if a.flags.c_contiguous else a.copy()  # not ascontiguousarray: it makes 0-d 1-d
        self.initializers.append(self.numpy_helper.from_array(a, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> Any:
        """Add one ``op`` node; returns its output name (or names when outputs > 1)."""
        names = [self.fresh(op.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op, inputs, names, **attrs))
        return names[0] if outputs == 1 else names

    # -- building blocks -----------------------------------------------------------------
    def linear(self, m: nn.Linear, x: str, rank: int) -> str:
        """y = x W^T + b: Gemm on (B, in), MatMul + Add on (B, T, in)."""
        if rank == 2:
            ins = [x, self.const(m.weight, "weight")]
            if m.bias is not None:
                ins.append(self.const(m.bias, "bias"))
            return self.node("Gemm", ins, transB=1)
        y = self.node("MatMul", [x, self.const(m.weight.data.T, "weight_t")])
        return y if m.bias is None else self.node("Add", [y, self.const(m.bias, "bias")])

    def positions(self, table: Any, ids: str) -> str:
        """The first T rows of a position-embedding table, T = ids' second dimension."""
        t = self.node("Shape", [ids], start=1, end=2)
        zero = self.const(np.array([0], np.int64))
        return self.node("Slice", [self.const(table, "positions"), zero, t, zero])

    def padding_mask(self, attention_mask: str) -> str:
        """(B, T) attention mask (1 = token, 0 = padding) -> (B, 1, 1, T) scores to add:
        padding gets the lowest float32, as minigrad's and transformers' attention."""
        blocked = self.node("Equal", [attention_mask, self.const(np.array(0, np.int64))])
        low = self.const(np.array(np.finfo(np.float32).min, np.float32), "lowest")
        additive = self.node("Where", [blocked, low, self.const(np.array(0.0, np.float32))])
        return self.node("Unsqueeze", [additive, self.const(np.array([1, 2], np.int64))])

    def attention(self, q: str, k: str, v: str, heads: int, width: int, mask: str | None) -> str:
        """softmax(Q K^T / sqrt(D) + mask) V over ``heads`` heads; q, k, v are (B, T, E)."""
        d = width // heads
        split = self.const(np.array([0, 0, heads, d], np.int64), "heads_shape")
        qh, kh, vh = (
            self.node("Transpose", [self.node("Reshape", [t, split])], perm=[0, 2, 1, 3])
            for t in (q, k, v)
        )
        kt = self.node("Transpose", [kh], perm=[0, 1, 3, 2])
        scores = self.node(
            "Mul",
            [
                self.node("MatMul", [qh, kt]),
                self.const(np.array(1.0 / math.sqrt(d), np.float32), "scale"),
            ],
        )
        if mask is not None:
            scores = self.node("Add", [scores, mask])
        ctx = self.node("MatMul", [self.node("Softmax", [scores], axis=-1), vh])
        merged = self.const(np.array([0, 0, width], np.int64), "merged_shape")
        return self.node("Reshape", [self.node("Transpose", [ctx], perm=[0, 2, 1, 3]), merged])

    def _recurrent(self, m: Any, x: str, op: str, order: list[int]) -> str:
        """nn.LSTM / nn.GRU (batch_first or not) as stacked ONNX LSTM/GRU nodes."""
        h, gates = m.hidden_size, len(order)
        dirs = 2 if m.bidirectional else 1
        seq = self.node("Transpose", [x], perm=[1, 0, 2]) if m.batch_first else x  # (T, B, in)

        def reorder(w):  # PyTorch's gate blocks in ONNX's order
            return np.concatenate([w[i * h : (i + 1) * h] for i in order])

        for layer in range(m.num_layers):
            ws, rs, bs = [], [], []
            for suffix in ["", "_reverse"][:dirs]:
                ws.append(reorder(getattr(m, f"weight_ih_l{layer}{suffix}").data))
                rs.append(reorder(getattr(m, f"weight_hh_l{layer}{suffix}").data))
                if m.bias:
                    bi = reorder(getattr(m, f"bias_ih_l{layer}{suffix}").data)
                    bh = reorder(getattr(m, f"bias_hh_l{layer}{suffix}").data)
                else:
                    bi = bh = np.zeros(gates * h, m.weight_ih_l0.dtype)
                bs.append(np.concatenate([bi, bh]))
            attrs = {"hidden_size": h, "direction": "bidirectional" if dirs == 2 else "forward"}
            if op == "GRU":
                attrs["linear_before_reset"] = 1  # PyTorch's n gate: r * (W_hn h + b_hn)
            y = self.node(
                op,
                [
                    seq,
                    self.const(np.stack(ws), "W"),
                    self.const(np.stack(rs), "R"),
                    self.const(np.stack(bs), "B"),
                ],
                outputs=1,
                **attrs,
            )
            # Y is (T, dirs, B, H): to (T, B, dirs * H), the next layer's input
            y = self.node("Transpose", [y], perm=[0, 2, 1, 3])
            seq = self.node("Reshape", [y, self.const(np.array([0, 0, -1], np.int64), "shape")])
        return self.node("Transpose", [seq], perm=[1, 0, 2]) if m.batch_first else seq

    def encoder_layer(self, m: nn.TransformerEncoderLayer, x: str, mask: str | None) -> str:
        """PyTorch's TransformerEncoderLayer (post- or pre-norm), batch_first."""
        attn, e = m.self_attn, m.self_attn.embed_dim
        if not attn.batch_first:
            raise NotImplementedError("onnx export: TransformerEncoderLayer needs batch_first")

        def sa(h):
            w, b = attn.in_proj_weight.data, attn.in_proj_bias
            proj = []
            for i in range(3):
                y = self.node("MatMul", [h, self.const(w[i * e : (i + 1) * e].T, "in_proj")])
                if b is not None:
                    y = self.node("Add", [y, self.const(b.data[i * e : (i + 1) * e], "in_bias")])
                proj.append(y)
            out = self.attention(*proj, attn.num_heads, e, mask)
            return self.linear(attn.out_proj, out, 3)

        def ff(h):
            a = self.linear(m.linear1, h, 3)
            a = self.activation(m.activation, a)
            return self.linear(m.linear2, a, 3)

        if m.norm_first:
            x = self.node("Add", [x, sa(self.module(m.norm1, x))])
            return self.node("Add", [x, ff(self.module(m.norm2, x))])
        x = self.module(m.norm1, self.node("Add", [x, sa(x)]))
        return self.module(m.norm2, self.node("Add", [x, ff(x)]))

    def activation(self, fn: Any, x: str) -> str:
        """The TransformerEncoderLayer's activation (F.relu or F.gelu)."""
        name = getattr(fn, "__name__", "")
        if name == "relu":
            return self.node("Relu", [x])
        if name == "gelu":
            return self.gelu(x)
        raise NotImplementedError(f"onnx export: activation {fn!r} has no mapping")

    def gelu(self, x: str, approximate: str = "none") -> str:
        """x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (opset 17 has no Gelu node)."""
        if approximate != "none":
            raise NotImplementedError("onnx export: GELU(approximate='tanh') has no mapping yet")
        half = self.const(np.array(0.5, np.float32), "half")
        one = self.const(np.array(1.0, np.float32), "one")
        r2 = self.const(np.array(1.0 / math.sqrt(2.0), np.float32), "inv_sqrt2")
        phi = self.node("Add", [self.node("Erf", [self.node("Mul", [x, r2])]), one])
        return self.node("Mul", [self.node("Mul", [x, phi]), half])

    # -- modules ---------------------------------------------------------------------------
    def module(self, m: Any, x: str, rank: int | None = None) -> str:
        """The output of module ``m`` on the graph value ``x`` (``rank`` = x's rank when it
        matters: Linear picks Gemm for rank 2)."""
        if hasattr(m, "onnx_forward"):
            return m.onnx_forward(self, x)
        if isinstance(m, nn.Sequential):
            for sub in m:
                x = self.module(sub, x, rank)
                if isinstance(sub, nn.Flatten):
                    rank = 2
            return x
        if isinstance(m, nn.Linear):
            return self.linear(m, x, rank or 2)
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return self._conv(m, x)
        if isinstance(m, (nn.MaxPool2d, nn.MaxPool1d, nn.AvgPool2d)):
            return self._pool(m, x)
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise NotImplementedError("onnx export: Flatten other than (1, -1)")
            return self.node("Flatten", [x], axis=1)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return x  # evaluation mode
        simple = {nn.ReLU: "Relu", nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid"}
        for cls, op in simple.items():
            if isinstance(m, cls):
                return self.node(op, [x])
        if isinstance(m, nn.GELU):
            return self.gelu(x, m.approximate)
        if isinstance(m, nn.LayerNorm):
            scale = m.weight.data if m.weight is not None else np.ones(m.normalized_shape, "f4")
            ins = [x, self.const(scale, "ln_scale")]
            if m.bias is not None:
                ins.append(self.const(m.bias, "ln_bias"))
            return self.node("LayerNormalization", ins, axis=-1, epsilon=float(m.eps))
        if isinstance(m, nn.Embedding):
            return self.node("Gather", [self.const(m.weight, "embedding"), x], axis=0)
        if isinstance(m, nn.LSTM):
            return self._recurrent(m, x, "LSTM", [0, 3, 1, 2])  # i f g o -> i o f c
        if isinstance(m, nn.GRU):
            return self._recurrent(m, x, "GRU", [1, 0, 2])  # r z n -> z r h
        raise NotImplementedError(
            f"onnx export: {type(m).__name__} has no ONNX mapping; give it a method "
            "onnx_forward(self, g, *inputs) (see minigrad/onnx/export.py)"
        )

    def _conv(self, m: Any, x: str) -> str:
        n = m.weight.ndim - 2
        if isinstance(m.padding, str):
            raise NotImplementedError(f"onnx export: Conv padding={m.padding!r}")

        def tup(v):
            return list(v) if isinstance(v, (tuple, list)) else [int(v)] * n

        ins = [x, self.const(m.weight, "conv_w")]
        if m.bias is not None:
            ins.append(self.const(m.bias, "conv_b"))
        pad = tup(m.padding)
        return self.node(
            "Conv",
            ins,
            kernel_shape=list(m.weight.shape[2:]),
            strides=tup(m.stride),
            pads=pad + pad,
            dilations=tup(m.dilation),
            group=int(m.groups),
        )

    def _pool(self, m: Any, x: str) -> str:
        n = 1 if isinstance(m, nn.MaxPool1d) else 2

        def tup(v):
            return list(v) if isinstance(v, (tuple, list)) else [int(v)] * n

        kernel = tup(m.kernel_size)
        stride = tup(m.stride if m.stride is not None else m.kernel_size)
        pad = tup(m.padding)
        attrs = dict(
            kernel_shape=kernel,
            strides=stride,
            pads=pad + pad,
            ceil_mode=int(bool(getattr(m, "ceil_mode", False))),
        )
        if isinstance(m, nn.AvgPool2d):
            attrs["count_include_pad"] = int(bool(getattr(m, "count_include_pad", True)))
            return self.node("AveragePool", [x], **attrs)
        if tup(getattr(m, "dilation", 1)) != [1] * n:
            attrs["dilations"] = tup(m.dilation)
        return self.node("MaxPool", [x], **attrs)


def _value_info(helper, onnx, name: str, array: np.ndarray, dynamic: dict[int, str]):
    dims = [dynamic.get(i, d) for i, d in enumerate(array.shape)]
    elem = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    return helper.make_tensor_value_info(name, elem, dims)


def export(
    model: Any,
    example_inputs: Any,
    path: str | os.PathLike,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> Path:
    """Write ``model`` (in evaluation mode) as an ONNX file at ``path`` and return the path.

    ``example_inputs``: one array/tensor or a tuple of them, as the model's forward takes them
    (their shapes give the graph's shapes, except the batch dimension, which is dynamic).
    Input names default to the model's ``onnx_input_names`` (``input_ids``,
    ``attention_mask``, ...), else ``input`` (``input_0, input_1, ...`` for several); the output
    is ``output``. The model is checked
    with ``onnx.checker`` and written atomically.

    ``dynamic_axes`` (as ``torch.onnx.export``'s): {name: {axis: label}} of further dimensions
    left free, added to the batch dimension and to the model's own ``onnx_dynamic_axes``
    (the text models free their token dimension)."""
    onnx, helper, _ = _onnx()
    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    arrays = [np.asarray(a.data if isinstance(a, Tensor) else a) for a in inputs]
    names = list(
        input_names
        or getattr(model, "onnx_input_names", None)
        or (["input"] if len(arrays) == 1 else [f"input_{i}" for i in range(len(arrays))])
    )[: len(arrays)]
    if len(names) != len(arrays):
        raise ValueError(f"onnx export: {len(arrays)} example inputs but names {names}")
    out_name = (output_names or ["output"])[0]
    was_training = model.training
    model.eval()
    try:
        g = GraphBuilder()
        if hasattr(model, "onnx_forward"):
            y = model.onnx_forward(g, *names)
        elif len(arrays) == 1:
            y = g.module(model, names[0], arrays[0].ndim)
        else:
            raise NotImplementedError(
                f"onnx export: {type(model).__name__} takes {len(arrays)} inputs and has no "
                "onnx_forward method"
            )
        with no_grad():
            expected = model(*[Tensor._from_array(a) for a in arrays])
        expected = getattr(expected, "logits", expected)
        expected = expected["logits"] if isinstance(expected, dict) else expected
    finally:
        model.train(was_training)
    g.nodes.append(helper.make_node("Identity", [y], [out_name]))
    free: dict[str, dict[int, str]] = {n: {0: "batch"} for n in names + [out_name]}
    for extra in (getattr(model, "onnx_dynamic_axes", None) or {}, dynamic_axes or {}):
        for n, axes in extra.items():
            free.setdefault(n, {}).update(axes)
    graph = helper.make_graph(
        g.nodes,
        type(model).__name__,
        [_value_info(helper, onnx, n, a, free[n]) for n, a in zip(names, arrays)],
        [_value_info(helper, onnx, out_name, expected.data, free[out_name])],
        initializer=g.initializers,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="minigrad"
    )
    proto.ir_version = min(proto.ir_version, 9)  # readable by ONNX Runtime releases since 1.17
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    blob = proto.SerializeToString()
    io._atomic_write(path, lambda f: f.write(blob))
    return path
