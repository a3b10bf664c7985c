"""Keras's ``Sequential`` with ``compile``, ``fit``, ``evaluate``, ``predict`` and ``summary``,
on minigrad. A Keras program runs with only its imports changed:

    from minigrad.keras.models import Sequential
    from minigrad.keras.layers import Dense

    model = Sequential([Dense(10, activation="relu", input_shape=(8,)),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=10, batch_size=32)

Keras semantics are kept where they differ from PyTorch's: losses take probabilities (the
output of a sigmoid or softmax layer) unless a loss object says ``from_logits=True``;
``validation_split`` holds out the *last* fraction of the data, before shuffling; the
optimizers' defaults are Keras's (Adam eps 1e-7, SGD lr 0.01, ...).

Under ``mpiexec -n N``, ``fit`` trains one model on all the ranks, as Keras's multi-worker
strategy: ``batch_size`` is the global batch, each rank takes its 1/N of every batch from an
epoch order that rank 0 draws, the gradients are averaged (``DistributedDataParallel``), the
logged figures are means over all the samples of all the ranks, and rank 0 alone prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

import minigrad.nn as nn
from minigrad import distributed, dtypes, random
from minigrad.autograd import no_grad
from minigrad.compiler import CompileWarning
from minigrad.compiler import compile as compile_step
from minigrad.io import load, save
from minigrad.keras import losses as keras_losses
from minigrad.keras import optimizers as keras_optimizers
from minigrad.keras.layers import Embedding, Layer
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor
from minigrad.train.callbacks import Callback, CallbackList
from minigrad.train.progress import Progress, enabled, save_curves


class History(Callback):
    """What ``fit`` returns: ``history[name]`` is the list of per-epoch values."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, path: str) -> Any:
        """Save the curves (one line per logged number, by epoch) as a PNG at ``path``;
        returns the path, or None when matplotlib is not installed."""
        series = {k: list(zip(self.epoch, v)) for k, v in self.history.items()}
        return save_curves(series, path, xlabel="epoch")


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class Sequential:
    """A stack of Keras layers, built when the input shape is known."""

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None) -> None:
        self.name = name or "sequential"
        self.layers: list[Layer] = []
        self.optimizer: Optimizer | None = None
        self.loss = None
        self.metrics: list[tuple[str, Any]] = []
        self.stop_training = False
        self._net = nn.ModuleDict()
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Layer) -> None:
        """Append a layer; its weights are created as soon as its input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a keras layer, got {type(layer).__name__}")
        names = {other.name for other in self.layers}
        base, k = layer.name, 1
        while layer.name in names:
            layer.name = f"{base}_{k}"
            k += 1
        self.layers.append(layer)
        if len(self.layers) == 1 and layer.input_shape is not None:
            self._shape = (None,) + layer.input_shape
        if self._shape is not None:
            self._build_layer(layer)

    _shape: tuple | None = None  # the output shape of the layers built so far
    _pending_optimizer = None
    _train_step = None  # set by compile(): _step, or _step through minigrad.compile
    jit_compile = False

    def _build_layer(self, layer: Layer) -> None:
        out = layer.build(self._shape)
        layer.input_shape_built, layer.output_shape = self._shape, tuple(out)
        self._shape = (None,) + tuple(out[1:])
        if layer.module is not None:
            self._net[layer.name] = layer.module

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(
            hasattr(layer, "input_shape_built") for layer in self.layers
        )

    def build(self, input_shape: tuple) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch dim None)."""
        if not self.layers:
            raise ValueError("Sequential.build: the model has no layers")
        if self._shape is None:
            self._shape = tuple(input_shape)
        for layer in self.layers:
            if not hasattr(layer, "input_shape_built"):
                self._build_layer(layer)
        if self.optimizer is None and self._pending_optimizer is not None:
            self.optimizer = self._pending_optimizer.build(self._net.parameters())

    # -- running ----------------------------------------------------------------------------
    def _inputs(self, x: Any) -> Tensor:
        a = _array(x)
        integer_input = self.layers and isinstance(self.layers[0], Embedding)
        if integer_input:
            a = a.astype(np.int64)
        elif a.dtype != dtypes.get_default_dtype():
            a = a.astype(dtypes.get_default_dtype())
        if not self.built:
            self.build((None,) + a.shape[1:])
        expected = self.layers[0].input_shape_built[1:]
        if tuple(a.shape[1:]) != tuple(expected):
            raise ValueError(
                f"{self.name}: expected inputs of shape (batch, {', '.join(map(str, expected))}), "
                f"got {a.shape}"
            )
        return Tensor._from_array(np.ascontiguousarray(a))

    def __call__(self, x: Any, training: bool = False) -> Tensor:
        h = x if isinstance(x, Tensor) else self._inputs(x)
        self._net.train(training)
        for layer in self.layers:
            h = layer.call(h, training)
        return h

    # -- compile, fit, evaluate, predict -----------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        jit_compile: bool = False,
    ) -> None:
        """Choose the optimizer (a Keras name, a keras.optimizers object or a minigrad
        optimizer), the loss (a name or a callable (y_true, y_pred) -> scalar tensor) and the
        metrics (names). ``jit_compile=True`` (Keras's name) runs fit's training step
        (forward, loss, backward, the optimizer's step) through minigrad.compile: traced on
        the first batch of each shape, replayed after; a fit with a privacy_engine or under
        mpiexec runs eagerly (with a CompileWarning), as their hooks cannot be compiled."""
        if loss is None:
            raise ValueError("compile: a loss is required")
        if not isinstance(jit_compile, bool):
            raise TypeError(f"compile: jit_compile must be True or False, got {jit_compile!r}")
        self.jit_compile = jit_compile
        self._train_step = compile_step(self._step) if jit_compile else self._step
        self.loss = keras_losses.get(loss)
        self.metrics = [
            (keras_losses.metric_name(m, loss), keras_losses.get_metric(m, loss))
            for m in (metrics or [])
        ]
        if isinstance(optimizer, Optimizer):
            self.optimizer, self._pending_optimizer = optimizer, None
        else:
            self._pending_optimizer = keras_optimizers.get(optimizer)
            self.optimizer = None
            if self.built:
                self.optimizer = self._pending_optimizer.build(self._net.parameters())

    def _check_compiled(self, what: str) -> None:
        if self.loss is None:
            raise RuntimeError(f"{what}: call compile() first")

    def _targets(self, y: Any, out_shape: tuple) -> Tensor:
        a = _array(y)
        if a.dtype.kind in "iub" and self.loss.sparse:
            return Tensor._from_array(a.astype(np.int64))
        return Tensor._from_array(a.astype(dtypes.get_default_dtype()))

    def _step(self, xb: Tensor, yb: Tensor, optimizer: Optimizer) -> tuple[Tensor, Tensor]:
        """One training step on a batch: (loss, predictions), tensors that fit reads after
        the step (with ``jit_compile=True`` this runs through minigrad.compile, which a
        ``.item()`` inside would send back to eager mode). The optimizer is an argument so
        that a compiled step retraces if it is replaced."""
        pred = self(xb, training=True)
        loss = self.loss(yb, pred)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss, pred

    def _run_batches(
        self,
        x,
        y,
        batch_size,
        train,
        order=None,
        progress=None,
        callbacks=None,
        ranks=1,
        batches=None,
        step=None,
    ):
        step = step or self._step  # the training step (fit passes the compiled one)
        order = np.arange(len(x)) if order is None else order
        n = len(order)
        totals: dict[str, float] = {}
        seen = 0
        if batches is None:  # slices of the order; a private fit passes its Poisson batches
            batches = (
                (Tensor._from_array(x.data[order[i : i + batch_size]]),
                 Tensor._from_array(y.data[order[i : i + batch_size]]))
                for i in range(0, n, batch_size)
            )  # fmt: skip
        for batch, (xb, yb) in enumerate(batches):
            idx = range(len(xb))
            if not idx and train:  # an empty Poisson batch: a noise-only step, nothing to log
                self.optimizer.step()
                self.optimizer.zero_grad()
                continue
            if train:
                if not self.built:  # build eagerly: a compiled step traces a built model
                    self.build((None,) + tuple(xb.shape[1:]))
                self._net.train(True)  # before the step, so that its guard sees the mode
                loss, pred = step(xb, yb, self.optimizer)
            else:
                with no_grad():
                    pred = self(xb, training=False)
                    loss = self.loss(yb, pred)
            values = {"loss": float(loss.data)}
            for name, metric in self.metrics:
                values[name] = metric(yb.data, pred.data)
            seen += len(idx)
            for k, v in values.items():
                totals[k] = totals.get(k, 0.0) + v * len(idx)
            if callbacks is not None:
                callbacks.on_train_batch_end(batch, dict(values))
            if progress is not None:
                running = {k: totals[k] / seen for k in totals}
                progress.update(1, len(idx), **running)
            # a callback may stop training mid-epoch; evaluation always sees every sample
            if train and self.stop_training:
                break
        if ranks > 1 and totals:  # means over every rank's samples
            both = distributed.all_reduce(np.array([seen, *totals.values()], dtype=np.float64))
            seen, totals = both[0], dict(zip(totals, both[1:]))
        return {k: v / seen for k, v in totals.items()} if seen else {}

    def fit(
        self,
        x: Any,
        y: Any,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: list[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        initial_epoch: int = 0,
        privacy_engine: Any = None,
        privacy_kwargs: dict | None = None,
    ) -> History:
        """Train for ``epochs`` passes over (x, y); returns the History.

        With ``privacy_engine`` (a ``minigrad.privacy.PrivacyEngine``) training is DP-SGD:
        the network, the optimizer and a loader of (x, y) in batches of ``batch_size`` go
        through ``privacy_engine.make_private(**privacy_kwargs)`` (noise_multiplier,
        max_grad_norm, ...), and each epoch takes its Poisson-sampled batches."""
        self._check_compiled("fit")
        batch_size = batch_size or 32
        xt = self._inputs(x)
        if self.optimizer is None:
            self.optimizer = self._pending_optimizer.build(self._net.parameters())
        if privacy_engine is not None and not privacy_kwargs:
            raise ValueError(
                "fit: privacy_engine needs privacy_kwargs, e.g. "
                "{'noise_multiplier': 1.1, 'max_grad_norm': 1.0}"
            )
        yt = self._targets(y, None)
        if len(xt) != len(yt):
            raise ValueError(f"fit: x has {len(xt)} samples but y has {len(yt)}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        val = None
        if validation_data is not None:
            val = (self._inputs(validation_data[0]), self._targets(validation_data[1], None))
        elif validation_split:
            cut = int(len(xt) * (1.0 - validation_split))
            val = (Tensor._from_array(xt.data[cut:]), Tensor._from_array(yt.data[cut:]))
            xt, yt = Tensor._from_array(xt.data[:cut]), Tensor._from_array(yt.data[:cut])
        if privacy_engine is not None and distributed.world_size() > 1:
            raise ValueError(
                "fit: DP-SGD (privacy_engine) under mpiexec is not supported; train it in one "
                "process"
            )
        private_loader = plain = wrapped = None
        if privacy_engine is not None:
            from minigrad.data import DataLoader, TensorDataset

            plain = self.optimizer
            wrapped, self.optimizer, private_loader = privacy_engine.make_private(
                module=self._net, optimizer=plain, data_loader=DataLoader(
                    TensorDataset(xt, yt), batch_size=batch_size, shuffle=True
                ), **privacy_kwargs,
            )  # fmt: skip
        ranks = distributed.world_size()
        ddp = distributed.DistributedDataParallel(self._net) if ranks > 1 else None
        try:
            return self._fit_epochs(
                xt,
                yt,
                val,
                batch_size,
                epochs,
                verbose,
                callbacks,
                shuffle,
                initial_epoch,
                ddp,
                private_loader,
            )
        finally:
            if ddp is not None:
                ddp.remove_hooks()
            if private_loader is not None:  # the plain model and optimizer again
                self.optimizer = plain
                wrapped.remove_hooks()

    def _fit_epochs(
        self,
        xt,
        yt,
        val,
        batch_size,
        epochs,
        verbose,
        callbacks,
        shuffle,
        initial_epoch,
        ddp,
        private_loader=None,
    ) -> History:
        ranks, rank = (ddp.world, distributed.rank()) if ddp is not None else (1, 0)
        verbose = verbose if rank == 0 else 0
        share = -(-len(xt) // ranks)  # this rank's samples an epoch (padded to equal shares)
        local_batch = -(-batch_size // ranks)
        history = History()
        history.params = {"epochs": epochs, "steps": -(-share // local_batch), "verbose": verbose}
        cbs = CallbackList([history] + list(callbacks or []), self)
        step = self._train_step
        if self.jit_compile and (ddp is not None or private_loader is not None):
            warnings.warn(
                "fit: jit_compile=True runs eagerly "
                f"{'under mpiexec' if ddp is not None else 'with a privacy_engine'}: its hooks "
                "cannot be compiled",
                CompileWarning,
                stacklevel=3,
            )
            step = self._step
        self.stop_training = False
        cbs.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch, {})
            order = random.rng().permutation(len(xt)) if shuffle else None
            if ddp is not None:  # rank 0's order, padded, every ranks-th sample
                order = np.arange(len(xt)) if order is None else order
                distributed.broadcast(order, 0)
                order = np.resize(order, share * ranks)[rank::ranks]
            progress = Progress(
                history.params["steps"], f"Epoch {epoch + 1}/{epochs}", enabled(verbose)
            )
            logs = self._run_batches(
                xt, yt, local_batch, True, order, progress, cbs, ranks, private_loader, step
            )
            progress.close()
            if ddp is not None:
                for b in self._net.buffers():  # batch-norm statistics: rank 0's
                    distributed.broadcast(b, 0)
            if val is not None:
                for k, v in self._run_batches(val[0], val[1], batch_size, False).items():
                    logs[f"val_{k}"] = v
            if verbose == 2:
                print(
                    f"Epoch {epoch + 1}/{epochs} - "
                    + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
                )
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end({})
        return history

    def evaluate(
        self,
        x: Any,
        y: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        return_dict: bool = False,
    ) -> Any:
        """The loss (and metrics) on (x, y): a float, a list [loss, metrics...], or a dict."""
        self._check_compiled("evaluate")
        xt, yt = self._inputs(x), self._targets(y, None)
        logs = self._run_batches(xt, yt, batch_size or 32, False)
        if return_dict:
            return logs
        return (
            logs["loss"]
            if not self.metrics
            else [logs["loss"]] + [logs[name] for name, _ in self.metrics]
        )

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto") -> np.ndarray:
        """The model's outputs for x, as a NumPy array."""
        xt = self._inputs(x)
        size = batch_size or 32
        with no_grad():
            outs = [
                self(Tensor._from_array(xt.data[i : i + size])).data
                for i in range(0, len(xt), size)
            ]
        return np.concatenate(outs) if outs else np.zeros((0,))

    # -- weights and summary ----------------------------------------------------------------
    def count_params(self) -> int:
        return sum(p.data.size for p in self._net.parameters())

    def state_dict(self) -> dict:
        return self._net.state_dict()

    def load_state_dict(self, state: dict) -> Any:
        return self._net.load_state_dict(state)

    def get_weights(self) -> list[np.ndarray]:
        return [p.data.copy() for p in self._net.parameters()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        params = list(self._net.parameters())
        if len(weights) != len(params):
            raise ValueError(f"set_weights: {len(weights)} arrays for {len(params)} weights")
        for p, w in zip(params, weights):
            if tuple(np.shape(w)) != p.shape:
                raise ValueError(f"set_weights: shape {np.shape(w)} for a weight of {p.shape}")
        for p, w in zip(params, weights):
            p.data[...] = w

    def save_weights(self, path: str) -> None:
        save(self.state_dict(), path)

    def load_weights(self, path: str) -> None:
        self.load_state_dict(load(path))

    def summary(self, print_fn: Any = print) -> None:
        """Print each layer's type, output shape and parameter count, and the totals."""
        if not self.built:
            raise ValueError(
                "summary: the model is not built yet; give the first layer input_shape, or call "
                "fit() or build()"
            )
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self.layers:
            count = sum(p.data.size for p in layer.module.parameters()) if layer.module else 0
            shape = (
                "(" + ", ".join("None" if d is None else str(d) for d in layer.output_shape) + ")"
            )
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{count:,}"))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "=" * sum(widths)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        for i, r in enumerate(rows):
            print_fn("".join(c.ljust(w) for c, w in zip(r, widths)))
            print_fn(line if i == 0 else "-" * sum(widths))
        total = self.count_params()
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {total:,}")
        print_fn("Non-trainable params: 0")
