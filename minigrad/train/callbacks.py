"""Callbacks with Keras's names and hooks, used by ``keras.Sequential.fit`` and by ``Trainer``.

A callback sees ``self.model``: the object being trained, which has ``stop_training``,
``optimizer``, ``state_dict()`` and ``load_state_dict()`` (a keras ``Sequential`` or a
``Trainer``). Hooks receive ``logs``, a dict of the latest numbers (``loss``, ``val_loss``,
``accuracy``, ...).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class Callback:
    model: Any = None

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class CallbackList:
    """Calls every callback's hook in order."""

    def __init__(self, callbacks: list[Callback] | None, model: Any) -> None:
        self.callbacks = list(callbacks or [])
        for c in self.callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks: {c!r} is not a minigrad Callback")
            c.set_model(model)

    def __getattr__(self, hook: str) -> Callable:
        def call(*args: Any) -> None:
            for c in self.callbacks:
                getattr(c, hook)(*args)

        return call


def _better(mode: str, monitor: str) -> Callable[[float, float, float], bool]:
    if mode == "auto":
        mode = "max" if any(k in monitor for k in ("acc", "f1", "precision", "recall")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "min":
        return lambda new, best, delta: new < best - delta
    return lambda new, best, delta: new > best + delta


def _monitored(logs: dict | None, monitor: str, who: str) -> float | None:
    value = (logs or {}).get(monitor)
    if value is None:
        available = ", ".join(sorted(logs or {})) or "none"
        raise KeyError(f"{who}: metric {monitor!r} is not in the logs (available: {available})")
    return float(value)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best_weights``, put back the weights of the best epoch."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
    ) -> None:
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.improved = _better(mode, monitor)
        self.baseline, self.restore_best_weights = baseline, restore_best_weights

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0
        self.best = self.baseline
        if self.best is None:
            self.best = math.inf if self.improved(0.0, 1.0, 0.0) else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self.improved(value, self.best, self.min_delta):
            self.best, self.wait, self.best_epoch = value, 0, epoch
            if self.restore_best_weights:
                self.best_weights = {k: v.data.copy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.load_state_dict(self.best_weights)


def _writes() -> bool:
    """Whether this process writes files: always, but for the ranks other than 0 under
    mpiexec (their logs are the same means, their weights the same)."""
    from minigrad import distributed

    return distributed.is_main()


class ModelCheckpoint(Callback):
    """Save the model's state dict (safetensors, atomically) after each epoch, or only when
    ``monitor`` improved (``save_best_only``). ``filepath`` may hold ``{epoch}`` and metric
    names, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.safetensors"``."""

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
        self.improved = _better(mode, monitor)
        self.best = math.inf if self.improved(0.0, 1.0, 0.0) else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        from minigrad.io import save

        logs = logs or {}
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self.improved(value, self.best, 0.0):
                return
            self.best = value
        if not _writes():
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save(self.model.state_dict(), path)


class LearningRateScheduler(Callback):
    """At the start of each epoch set the learning rate to ``schedule(epoch, lr)``."""

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        groups = self.model.optimizer.param_groups
        lr = float(self.schedule(epoch, groups[0]["lr"]))
        for g in groups:
            g["lr"] = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr:g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.param_groups[0]["lr"]


class CSVLogger(Callback):
    """One row per epoch (epoch and every logged number) in a CSV file, rewritten atomically
    after each epoch so the file is never half written."""

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = Path(filename), separator, append

    def on_train_begin(self, logs=None):
        self.rows: list[dict] = []
        if self.append and self.filename.exists():
            with open(self.filename, newline="") as f:
                self.rows = list(csv.DictReader(f, delimiter=self.separator))

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{k: v for k, v in (logs or {}).items()}})
        if not _writes():
            return
        keys = ["epoch"] + sorted({k for r in self.rows for k in r} - {"epoch"})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, keys, delimiter=self.separator, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        tmp = self.filename.with_name(self.filename.name + ".tmp")
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.filename)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True
