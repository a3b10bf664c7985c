"""The Keras-style callbacks, driven through keras.Sequential.fit on a small real problem."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.keras import Sequential, layers
from minigrad.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)


def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(np.float32)
    return x, y


def model(lr="adam"):
    mg.manual_seed(0)
    m = Sequential(
        [
            layers.Dense(8, activation="relu", input_shape=(4,)),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    m.compile(optimizer=lr, loss="binary_crossentropy", metrics=["accuracy"])
    return m


class Recorder(Callback):
    def on_train_begin(self, logs=None):
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(dict(logs))


def test_early_stopping_waits_patience_then_restores_the_best():
    x, y = problem()
    m = model()
    # val_loss cannot improve by 10.0, so training stops after patience + 1 epochs
    stop = EarlyStopping(monitor="val_loss", patience=2, min_delta=10.0, restore_best_weights=True)
    rec = Recorder()
    history = m.fit(x, y, epochs=20, validation_split=0.25, verbose=0, callbacks=[rec, stop])
    assert len(history.epoch) == 3 and stop.stopped_epoch == 2
    m2 = model()
    m2.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # weights of epoch 0, the best
    with pytest.raises(KeyError, match="metric 'val_auc' is not in the logs"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping(monitor="val_auc")])


def test_model_checkpoint_save_best_only(tmp_path):
    x, y = problem()
    path = str(tmp_path / "best-{epoch}.safetensors")
    m = model()
    m.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[ModelCheckpoint(path, monitor="loss", save_best_only=True)],
    )
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == [
        "best-1.safetensors",
        "best-2.safetensors",
        "best-3.safetensors",
        "best-4.safetensors",
    ]
    state = mg.load(tmp_path / "best-4.safetensors")
    np.testing.assert_array_equal(state["dense.weight"].data, m.state_dict()["dense.weight"].data)


def test_learning_rate_scheduler_and_csv_logger(tmp_path):
    x, y = problem()
    m = model()
    log = tmp_path / "log.csv"
    m.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1)), CSVLogger(log)],
    )
    rows = list(csv.DictReader(open(log)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert m.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 3)
    assert all(math.isfinite(float(r["loss"])) for r in rows)


def test_terminate_on_nan():
    x, y = problem()
    m = Sequential([layers.Dense(1, input_shape=(4,))])
    m.compile(optimizer=mg.keras.optimizers.SGD(learning_rate=1e3), loss="mse")  # diverges
    rec = Recorder()
    with np.errstate(over="ignore", invalid="ignore"):
        m.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[TerminateOnNaN(), rec])
    assert len(rec.values) == 1  # stopped within the first epoch


def test_only_rank_zero_writes_checkpoints_and_csv_logs(tmp_path, monkeypatch):
    """Under mpiexec every rank has the same logs and weights: the other ranks write
    nothing (faked here as rank 1 of a one-process run)."""
    from minigrad import distributed

    monkeypatch.setattr(distributed, "rank", lambda: 1)
    x, y = problem()
    model().fit(
        x, y, epochs=2, verbose=0,
        callbacks=[ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.safetensors")),
                   CSVLogger(tmp_path / "log.csv")],
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == []
