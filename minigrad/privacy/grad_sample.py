"""Per-sample gradients from one backward pass (Opacus's "grad sampler" idea).

A forward hook keeps each layer's input activation A (B, ...), a backward hook receives the
gradient G of the loss with respect to the layer's output (B, ...), and each sample's
parameter gradient is a contraction of A[b] with G[b] that keeps the batch dim b:

- Linear: dW[b] = sum over the middle dims of G[b]^T A[b]; db[b] = sum of G[b].
- Conv1d / Conv2d: the same on the unfolded input (im2col): A becomes (B, C/g * K, L_out)
  columns, one per output position, and dW[b] = G[b] (O, L_out) @ cols[b]^T, per group.
- Embedding: dW[b] is zero but for the rows sample b read, which get G[b] added in
  (scatter-add per sample; the ``padding_idx`` row gets none).
- LayerNorm: dweight[b] = sum of G[b] * xhat[b] with xhat the normalized input;
  dbias[b] = sum of G[b].
- RNN, LSTM, GRU, MultiheadAttention (their own parameters; MultiheadAttention's out_proj is
  a Linear and has the Linear rule): their recurrences run as fused kernels that keep the
  gates to themselves, so the layer keeps its inputs and the gradients reaching its
  outputs, and after the batch's backward pass runs again under
  ``minigrad.func.vmap(grad(...))`` with per-sample copies of its parameters: the
  recurrences as their equations (minigrad/ops/rnn.py), every op batched, one backward pass
  of that one layer for the whole batch. A per-sample attention mask (key_padding_mask, or a
  (B * heads, L, S) attn_mask) is read as an array, which vmap cannot batch: that layer then
  runs once per sample, still exact, and says so once on stderr.

With ``loss_reduction="mean"`` the gradient reaching each layer carries a factor 1/B, which
is multiplied back (by the batch size of the layer's input), as Opacus does, so that
``grad_sample[b]`` is the gradient of sample b's own loss term in either case.

Reference: Opacus (Yousefpour et al. 2021, "Opacus: User-Friendly Differential Privacy
Library in PyTorch"), ``opacus/grad_sample/``; the Linear rule is Goodfellow 2015,
"Efficient Per-Example Gradient Computations".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.autograd import enable_grad, is_grad_enabled
from minigrad.nn.attention import MultiheadAttention
from minigrad.nn.hooks import BackwardHookIdentity
from minigrad.nn.layers import Conv1d, Conv2d, Embedding, LayerNorm, Linear
from minigrad.nn.module import Module
from minigrad.nn.rnn import RNNBase
from minigrad.nn.utils import functional_call
from minigrad.tensor import Tensor

LOSS_REDUCTIONS = ("mean", "sum")


# -- the rules: (module, activation A, output gradient G) -> {param name: (B, *shape)} --------


def _linear_rule(module: Linear, a: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    b = a.shape[0]
    a3 = a.reshape(b, -1, a.shape[-1])  # (B, T, in): every middle dim is a "time" dim
    g3 = g.reshape(b, -1, g.shape[-1])  # (B, T, out)
    out = {"weight": np.matmul(g3.transpose(0, 2, 1), a3)}
    if module.bias is not None:
        out["bias"] = g3.sum(axis=1)
    return out


def _conv_padding(module: Any, kernel: tuple, dims: int) -> list[tuple[int, int]]:
    """(before, after) zero padding per spatial dim, as the layer's forward pads."""
    p, d = module.padding, module.dilation
    d = (d,) * dims if isinstance(d, int) else tuple(d)
    if p == "valid":
        return [(0, 0)] * dims
    if p == "same":  # PyTorch: the extra element of an odd total goes after
        totals = [d[i] * (kernel[i] - 1) for i in range(dims)]
        return [(t // 2, t - t // 2) for t in totals]
    p = (p,) * dims if isinstance(p, int) else tuple(p)
    return [(x, x) for x in p]


def _unfold(x: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, pads) -> np.ndarray:
    """im2col of a (B, C, H, W) input: (B, C, KH, KW, HO, WO), one column per output position."""
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    bsz, c, h, w = x.shape
    kh, kw = kernel
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cols = np.empty((bsz, c, kh, kw, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            r, s = i * dilation[0], j * dilation[1]
            cols[:, :, i, j] = x[
                :,
                :,
                r : r + stride[0] * (ho - 1) + 1 : stride[0],
                s : s + stride[1] * (wo - 1) + 1 : stride[1],
            ]
    return cols


def _conv_rule(module: Any, a: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    dims = module._dims
    if a.ndim == dims + 1:  # an unbatched input is one sample
        a, g = a[None], g[None]
    kernel = tuple(module.kernel_size)
    pads = _conv_padding(module, kernel, dims)

    def pair(v: Any) -> tuple:
        return (v,) * dims if isinstance(v, int) else tuple(v)

    stride, dilation = pair(module.stride), pair(module.dilation)
    if dims == 1:  # a (B, C, L) input is a (B, C, 1, L) image with a (1, K) kernel
        a, g = a[:, :, None, :], g[:, :, None, :]
        kernel, stride, dilation, pads = (1, *kernel), (1, *stride), (1, *dilation), [(0, 0), *pads]
    bsz, groups = a.shape[0], module.groups
    cols = _unfold(a, kernel, stride, dilation, pads)  # (B, C, KH, KW, HO, WO)
    c_in, c_out = a.shape[1] // groups, g.shape[1] // groups
    k = kernel[0] * kernel[1]
    cols = cols.reshape(bsz, groups, c_in * k, -1)  # (B, groups, C/g * K, L_out)
    gg = g.reshape(bsz, groups, c_out, -1)  # (B, groups, O/g, L_out)
    dw = np.matmul(gg, cols.transpose(0, 1, 3, 2))  # (B, groups, O/g, C/g * K)
    out = {"weight": dw.reshape(bsz, *module.weight.shape)}
    if module.bias is not None:
        out["bias"] = g.reshape(bsz, g.shape[1], -1).sum(axis=2)
    return out


def _embedding_rule(module: Embedding, idx: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    bsz = idx.shape[0]
    dw = np.zeros((bsz, *module.weight.shape), g.dtype)
    rows = idx.reshape(bsz, -1).astype(np.int64) % module.num_embeddings
    sample = np.broadcast_to(np.arange(bsz)[:, None], rows.shape)
    np.add.at(dw, (sample, rows), g.reshape(bsz, -1, g.shape[-1]))
    if module.padding_idx is not None:
        dw[:, module.padding_idx] = 0.0
    return {"weight": dw}


def _layer_norm_rule(module: LayerNorm, a: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    n = len(module.normalized_shape)
    axes = tuple(range(a.ndim - n, a.ndim))
    x = a.astype(np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    xhat = ((x - mean) / np.sqrt(var + module.eps)).astype(g.dtype)
    summed = tuple(range(1, a.ndim - n))  # the dims between the batch and normalized ones
    out = {}
    if module.weight is not None:
        out["weight"] = (g * xhat).sum(axis=summed)
    if module.bias is not None:
        out["bias"] = g.sum(axis=summed)
    return out


RULES: dict[type, Callable] = {
    Linear: _linear_rule,
    Conv1d: _conv_rule,
    Conv2d: _conv_rule,
    Embedding: _embedding_rule,
    LayerNorm: _layer_norm_rule,
}


def _rule_of(module: Module) -> Callable | None:
    for kind in type(module).__mro__:
        if kind in RULES:
            return RULES[kind]
    return None


# -- RNN / LSTM / GRU / MultiheadAttention: the layer again, per sample, batched ----------
#
# These layers' kernels keep no per-sample pieces to multiply, so their per-sample gradients
# come from the layer run again on the batch under minigrad.func.vmap(grad(...)): the layer's
# parameters become per-sample copies, the recurrent kernels give way to the layers'
# equations (minigrad/ops/rnn.py), and one backward pass over the batch gives every
# sample's gradient (minigrad/batching.py). The output gradients caught during the real
# backward pass drive it.


def _rnn_inputs(module: RNNBase, args: tuple, kwargs: dict):
    """(batch size, batched inputs, their batch dims, a function rebuilding the call from one
    sample of each, the outputs' batch dims)."""
    x = args[0]
    if x.ndim != 3:
        raise ValueError(
            f"{type(module).__name__}: per-sample gradients need a batched input (3 dims), "
            f"got {x.shape}"
        )
    xdim = 0 if module.batch_first else 1
    state = args[1] if len(args) > 1 else kwargs.get("hx")
    states = [] if state is None else list(state) if isinstance(state, tuple) else [state]

    def call(xs, *hs):  # one sample, as a batch of one
        xs = xs.unsqueeze(xdim)
        hs = [h.unsqueeze(1) for h in hs]
        if state is None:
            return (xs,), {}
        return (xs, tuple(hs) if isinstance(state, tuple) else hs[0]), {}

    # outputs: (output, h_n) or (output, (h_n, c_n)), flattened in that order
    return x.shape[xdim], [x, *states], [xdim] + [1] * len(states), call, [xdim, 1, 1]


def _mha_inputs(module: MultiheadAttention, args: tuple, kwargs: dict):
    names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask",
             "average_attn_weights", "is_causal")  # fmt: skip
    given = dict(zip(names, args))
    given.update(kwargs)
    query = given["query"]
    if query.ndim != 3:
        raise ValueError(
            f"MultiheadAttention: per-sample gradients need a batched query (3 dims), "
            f"got {query.shape}"
        )
    bdim = 0 if module.batch_first else 1
    bsz = query.shape[bdim]
    same = given["query"] is given["key"] and given["key"] is given["value"]
    inputs = [query] if same else [query, given["key"], given["value"]]
    dims = [bdim] * len(inputs)
    padding = given.get("key_padding_mask")
    if padding is not None:
        inputs.append(Tensor._from_array(_array(padding)))
        dims.append(0)
    mask = given.get("attn_mask")
    per_sample_mask = mask is not None and np.ndim(_array(mask)) == 3
    if per_sample_mask:  # (B * heads, L, S): one (heads, L, S) block a sample
        m = _array(mask)
        inputs.append(Tensor._from_array(m.reshape(bsz, -1, *m.shape[1:])))
        dims.append(0)

    def call(*tensors):
        one = dict(given)
        it = iter(tensors)
        q = next(it).unsqueeze(bdim)
        one["query"], one["key"], one["value"] = (
            (q, q, q) if same else (q, next(it).unsqueeze(bdim), next(it).unsqueeze(bdim))
        )
        if padding is not None:
            one["key_padding_mask"] = next(it).unsqueeze(0)
        if per_sample_mask:
            one["attn_mask"] = next(it)
        return (), one

    return bsz, inputs, dims, call, [bdim, 0]


def _array(v: Any) -> np.ndarray:
    return v.data if isinstance(v, Tensor) else np.asarray(v)


def _flat_outputs(output: Any) -> list:
    if isinstance(output, (tuple, list)):
        return [t for o in output for t in _flat_outputs(o)]
    return [output]


def _replay_rule(module: Module, call: tuple, grads: list, n_scale: float):
    """Per-sample gradients of the module's own parameters: vmap(grad) of the layer's
    output against the caught output gradients, one sample at a time in form, batched in
    fact."""
    from minigrad.func import grad, vmap

    args, kwargs = call
    if isinstance(module, RNNBase):
        if module.dropout and module.training:
            raise ValueError(
                f"{type(module).__name__}: per-sample gradients cannot replay dropout between "
                f"layers (dropout={module.dropout}); use dropout=0 or eval()"
            )
        bsz, inputs, dims, rebuild, out_dims = _rnn_inputs(module, args, kwargs)
    else:
        if module.dropout and module.training:
            raise ValueError(
                f"MultiheadAttention: per-sample gradients cannot replay attention dropout "
                f"(dropout={module.dropout}); use dropout=0 or eval()"
            )
        bsz, inputs, dims, rebuild, out_dims = _mha_inputs(module, args, kwargs)
    own = [(name, p) for name, p in module._parameters.items() if p is not None and p.requires_grad]
    caught = [(k, g) for k, g in enumerate(grads) if g is not None]
    if not own or not caught:
        return {name: np.zeros((bsz, *p.shape), p.data.dtype) for name, p in own}
    names = [name for name, _ in own]
    n_in = len(inputs)

    def weighted_output(*tensors):
        params = tensors[: len(own)]
        sample, gs = tensors[len(own) : len(own) + n_in], tensors[len(own) + n_in :]
        a, kw = rebuild(*sample)
        outputs = _flat_outputs(functional_call(module, dict(zip(names, params)), a, kw))
        total = None
        for (k, _), g in zip(caught, gs):
            term = (outputs[k] * g.unsqueeze(out_dims[k])).sum()
            total = term if total is None else total + term
        return total

    gs = [
        Tensor._from_array(np.ascontiguousarray(g * n_scale, dtype=own[0][1].data.dtype))
        for _, g in caught
    ]
    in_dims = (None,) * len(own) + tuple(dims) + tuple(out_dims[k] for k, _ in caught)
    with enable_grad(), _replaying():
        per_sample = vmap(grad(weighted_output, argnums=tuple(range(len(own)))), in_dims)(
            *[p for _, p in own], *inputs, *gs
        )
    return {name: g.numpy() for name, g in zip(names, per_sample)}


_REPLAYING = [False]


class _replaying:
    """While a layer replays one sample, the hooks of its sublayers stay quiet."""

    def __enter__(self):
        self.before = _REPLAYING[0]
        _REPLAYING[0] = True

    def __exit__(self, *exc):
        _REPLAYING[0] = self.before


def _has_replay(module: Module) -> bool:
    return isinstance(module, (RNNBase, MultiheadAttention))


# -- the wrapper -----------------------------------------------------------------------------


def _accumulate(p: Tensor, gs: np.ndarray) -> None:
    """Sum into ``p.grad_sample`` (a layer called twice in one forward adds both)."""
    gs = np.ascontiguousarray(gs, dtype=p.data.dtype)
    previous = getattr(p, "grad_sample", None)
    if previous is None or previous.shape != gs.shape:
        p.grad_sample = gs
    else:
        p.grad_sample = previous + gs


class GradSampleModule(Module):
    """Wraps ``module`` so that every backward pass also stores, on each trainable parameter,
    ``param.grad_sample``: a (B, *param.shape) array of per-sample gradients, as Opacus's
    ``GradSampleModule``. The forward pass and ``param.grad`` are unchanged.

    ``loss_reduction`` says how the loss combines the samples: ``"mean"`` (the default, as
    ``cross_entropy``) or ``"sum"``; either way ``grad_sample[b]`` is the gradient of sample
    b's own loss term. ``batch_first`` (the default, as Opacus) says the batch is the first dim
    of the inputs of the Linear, Conv, Embedding and LayerNorm layers; False: the second, as
    in time-major (T, B, ...) models. RNNs and attention read it from their own
    ``batch_first``. A model with a trainable
    parameter in a layer without a rule (BatchNorm mixes samples, for instance) is refused,
    naming the layer. ``del_grad_sample()``/``zero_grad()`` forget the stored arrays;
    ``remove_hooks()`` returns the model to its plain self.
    """

    def __init__(
        self, module: Module, batch_first: bool = True, loss_reduction: str = "mean"
    ) -> None:
        super().__init__()
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(
                f"GradSampleModule: loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}"
            )
        self._module = module
        self.loss_reduction, self.batch_first = loss_reduction, batch_first
        self._handles: list = []
        self._patched: list = []
        unsupported = []
        # MultiheadAttention runs its out_proj on (B, L, E) whatever its batch_first
        inside_attention = {
            id(sub)
            for layer in module.modules()
            if isinstance(layer, MultiheadAttention)
            for sub in layer.modules()
            if sub is not layer
        }
        self._batch_dim = {}
        for name, layer in module.named_modules():
            own = [p for p in layer._parameters.values() if p is not None and p.requires_grad]
            if not own:
                continue
            if _rule_of(layer) is not None:
                self._batch_dim[id(layer)] = (
                    0 if batch_first or id(layer) in inside_attention else 1
                )
                self._handles.append(layer.register_forward_hook(self._keep_activation))
                self._handles.append(layer.register_full_backward_hook(self._apply_rule))
            elif _has_replay(layer):
                self._patch_for_replay(layer)
            else:
                unsupported.append(f"{name or '(root)'} ({type(layer).__name__})")
        if unsupported:
            self.remove_hooks()
            raise NotImplementedError(
                "GradSampleModule: no per-sample gradient rule for the trainable parameters of "
                + ", ".join(unsupported)
                + "; supported: Linear, Conv1d, Conv2d, Embedding, LayerNorm, RNN, LSTM, GRU, "
                "MultiheadAttention"
            )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._module(*args, **kwargs)

    # the wrapped module's names, unprefixed: a checkpoint loads into the plain model
    def named_parameters(self, prefix: str = "", recurse: bool = True):
        return self._module.named_parameters(prefix=prefix, recurse=recurse)

    def state_dict(self):
        return self._module.state_dict()

    def load_state_dict(self, state_dict: dict, strict: bool = True):
        return self._module.load_state_dict(state_dict, strict)

    def _scale(self, batch: int) -> float:
        return float(batch) if self.loss_reduction == "mean" else 1.0

    # -- rule layers: a forward hook keeps A, the backward hook gets G --------------------
    def _keep_activation(self, layer: Module, args: tuple, output: Any) -> None:
        if _REPLAYING[0] or not is_grad_enabled():
            return
        stack = layer.__dict__.setdefault("_activations", [])
        stack.append(np.array(args[0].data, copy=True))

    def _apply_rule(self, layer: Module, grad_input: tuple, grad_output: tuple) -> None:
        if _REPLAYING[0]:
            return
        stack = layer.__dict__.get("_activations")
        if not stack:
            raise RuntimeError(
                f"GradSampleModule: {type(layer).__name__} got an output gradient without a "
                "saved input (a second backward through the same forward?)"
            )
        a = stack.pop()  # backward runs the calls in reverse order
        g = grad_output[0].data
        if self._batch_dim[id(layer)] == 1 and a.ndim > 1:
            a, g = np.moveaxis(a, 1, 0), np.moveaxis(g, 1, 0)
        g = g * g.dtype.type(self._scale(a.shape[0] if a.ndim else 1))
        if a.ndim and a.shape[0] == 0:  # an empty (Poisson) batch: no samples, no rows
            found = {n: np.zeros((0, *p.shape), p.data.dtype)
                     for n, p in layer._parameters.items() if p is not None}  # fmt: skip
        else:
            found = _rule_of(layer)(layer, a, g)
        for name, gs in found.items():
            p = layer._parameters[name]
            if p is not None and p.requires_grad:
                _accumulate(p, gs)

    # -- replay layers: keep the call, catch the output gradients, replay per sample ------
    def _patch_for_replay(self, layer: Module) -> None:
        original = type(layer).forward.__get__(layer)

        def forward(*args: Any, **kwargs: Any) -> Any:
            if _REPLAYING[0] or not is_grad_enabled():
                return original(*args, **kwargs)
            first = args[0] if args else kwargs.get("query", kwargs.get("input"))
            call = (args, dict(kwargs))
            # a sentinel on the first input: its gradient is complete only after every
            # output's gradient has gone through the layer, so its hook sees them all
            if first.requires_grad:
                sentinel = BackwardHookIdentity.apply(first)
            else:
                sentinel = Tensor(first.data, requires_grad=True)
            # self-attention passes one tensor as query, key and value: keep it one tensor
            args = tuple(sentinel if a is first else a for a in args)
            kwargs = {k: (sentinel if v is first else v) for k, v in kwargs.items()}
            output = original(*args, **kwargs)
            outputs = _flat_outputs(output)
            grads: list = [None] * len(outputs)
            for k, out in enumerate(outputs):
                if isinstance(out, Tensor) and out.requires_grad:
                    out.register_hook(_store(grads, k))

            def done(_grad: Tensor) -> None:
                bsz = _replay_batch(layer, call)
                found = _replay_rule(layer, call, grads, self._scale(bsz))
                for name, gs in found.items():
                    _accumulate(layer._parameters[name], gs)

            sentinel.register_hook(done)
            return output

        object.__setattr__(layer, "forward", forward)
        self._patched.append(layer)

    # -- housekeeping -------------------------------------------------------------------
    def del_grad_sample(self) -> None:
        for p in self._module.parameters():
            if getattr(p, "grad_sample", None) is not None:
                p.grad_sample = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._module.zero_grad(set_to_none)
        self.del_grad_sample()

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for layer in self._patched:
            layer.__dict__.pop("forward", None)
            layer.__dict__.pop("_activations", None)
        self._patched = []
        for layer in self._module.modules():
            layer.__dict__.pop("_activations", None)


def _store(grads: list, k: int) -> Callable:
    def hook(grad: Tensor) -> None:
        grads[k] = grad.data

    return hook


def _replay_batch(layer: Module, call: tuple) -> int:
    args, kwargs = call
    first = args[0] if args else kwargs.get("query", kwargs.get("input"))
    if isinstance(layer, MultiheadAttention):
        return first.shape[0 if layer.batch_first else 1]
    return first.shape[0 if layer.batch_first else 1]


def per_sample_grads(
    model: Module,
    loss_fn: Callable[[Any, Any], Tensor],
    batch: tuple,
    loss_reduction: str = "mean",
    batch_first: bool = True,
) -> dict[str, np.ndarray]:
    """The gradient of each sample's loss with respect to every trainable parameter.

    ``batch`` is ``(inputs, targets)`` (or ``(*inputs, targets)``): the model runs on
    ``inputs`` and ``loss_fn(output, targets)`` gives the scalar loss, reduced over the batch
    as ``loss_reduction`` says (``"mean"``, as ``F.cross_entropy``'s default, or ``"sum"``).
    Returns ``{name: array (B, *param.shape)}`` keyed like ``model.named_parameters()``,
    where row b is the gradient of sample b's own loss term, from one forward and one
    backward pass. The model's ``.grad`` is left as it was. ``batch_first=False``: the batch
    is the second dim of the layers' inputs (time-major models), as in ``GradSampleModule``.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(
            f"per_sample_grads: batch must be (inputs, targets) or (*inputs, targets), got "
            f"{type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    saved = {n: p.grad for n, p in named}
    for _, p in named:
        p.grad, p.grad_sample = None, None
    wrapped = GradSampleModule(model, batch_first=batch_first, loss_reduction=loss_reduction)
    try:
        with enable_grad():
            loss = loss_fn(wrapped(*batch[:-1]), batch[-1])
            loss.backward()
        out = {}
        for n, p in named:
            gs = getattr(p, "grad_sample", None)
            out[n] = (
                gs
                if gs is not None
                else np.zeros((_batch_of(batch[0], batch_first), *p.shape), p.data.dtype)
            )
    finally:
        wrapped.remove_hooks()
        for n, p in named:
            p.grad, p.grad_sample = saved[n], None
    return out


def _batch_of(x: Any, batch_first: bool) -> int:
    return int(x.shape[0 if batch_first else 1]) if hasattr(x, "shape") else len(x)
