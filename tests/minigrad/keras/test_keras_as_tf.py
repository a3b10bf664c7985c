"""``import minigrad as tf``: the seed's Keras program runs with only its import line changed,
``tf.keras`` loads on first use, and callbacks that stop a fit leave evaluate and predict
untouched."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

sklearn_datasets = pytest.importorskip(
    "sklearn.datasets", reason="the breast-cancer data ships with scikit-learn"
)


def _breast_cancer():
    data = sklearn_datasets.load_breast_cancer()  # 569 tumours; the first 8 of 30 features
    x = data.data[:, :8]
    return (x - x.mean(0)) / x.std(0), data.target


def test_import_minigrad_stays_cheap_and_keras_loads_on_first_use():
    code = (
        "import sys, minigrad as tf\n"
        "assert 'minigrad.keras' not in sys.modules\n"
        "assert 'minigrad.transformers' not in sys.modules\n"
        "tf.keras.Sequential\n"
        "assert 'minigrad.keras' in sys.modules\n"
        "try:\n    tf.kerass\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "module 'minigrad' has no attribute 'kerass'" in out.stdout


def test_the_seed_program_with_import_minigrad_as_tf():
    x_train, y_train = _breast_cancer()
    import minigrad

    minigrad.manual_seed(0)
    # -- the seed's program; only its first line differs ("import tensorflow as tf") --------
    import minigrad as tf

    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(10, activation="relu", input_shape=(8,)),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)
    # ----------------------------------------------------------------------------------------
    acc = history.history["accuracy"]
    assert len(acc) == 10 and acc[-1] > 0.88, acc  # a linear model on these 8 reaches ~0.9
    loss, accuracy = model.evaluate(x_train, y_train, verbose=0)
    predicted = (model.predict(x_train, verbose=0)[:, 0] > 0.5).astype(int)
    assert accuracy == pytest.approx(np.mean(predicted == y_train), abs=1e-9)


def test_keras_namespaces_under_tf():
    import minigrad as tf

    assert isinstance(tf.keras.optimizers.Adam(learning_rate=1e-3), tf.keras.optimizers.Adam)
    assert tf.keras.losses.BinaryCrossentropy()
    assert tf.keras.callbacks.EarlyStopping(monitor="loss")
    assert tf.keras.models.Sequential is tf.keras.Sequential


def test_callbacks_round_trip_and_evaluate_after_early_stopping(tmp_path):
    import minigrad as tf

    x, y = _breast_cancer()
    tf.manual_seed(1)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(10, activation="relu", input_shape=(8,)),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=0.01),
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=["accuracy"],
    )
    path = tmp_path / "best.safetensors"
    stop = tf.keras.callbacks.EarlyStopping(monitor="loss", min_delta=1.0, patience=1)
    keep = tf.keras.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=False)
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0, callbacks=[stop, keep])
    assert len(history.epoch) == 2 and model.stop_training  # no epoch improves by 1.0
    # evaluate sees all 569 samples although stop_training is still set
    loss, accuracy = model.evaluate(x, y, batch_size=32, verbose=0)
    p = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    assert len(p) == len(x)
    eps = 1e-7  # Keras's clipping of probabilities
    q = np.clip(p, eps, 1 - eps)
    expected = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    assert loss == pytest.approx(expected, rel=1e-4)
    assert accuracy == pytest.approx(np.mean((p > 0.5) == y), abs=1e-9)
    # the checkpoint of the last epoch loads into a fresh model and predicts the same
    fresh = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(10, activation="relu", input_shape=(8,)),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    fresh.load_weights(str(path))
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
