"""minigrad.keras: the seed's TensorFlow example runs with only its import changed, on real
data; the other layers train; fit, evaluate, predict and summary behave as in Keras."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def test_the_seed_tensorflow_example_on_real_data(capsys):
    data = sklearn_datasets.load_breast_cancer()  # 569 tumours, 8 of their features
    x = data.data[:, :8]
    x = (x - x.mean(0)) / x.std(0)
    y = data.target
    mg.manual_seed(0)
    # -- the example, with "tensorflow.keras" replaced by "minigrad.keras" ------------------
    from minigrad.keras.layers import Dense
    from minigrad.keras.models import Sequential

    model = Sequential(
        [Dense(10, activation="relu", input_shape=(8,)), Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=10, batch_size=32)
    # ----------------------------------------------------------------------------------------
    assert history.epoch == list(range(10))
    losses = history.history["loss"]
    assert losses[-1] < losses[0] * 0.7 and history.history["accuracy"][-1] > 0.85
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.85 and loss == pytest.approx(model.evaluate(x, y, return_dict=True)["loss"])
    assert model.predict(x[:5]).shape == (5, 1)
    model.summary()
    out = capsys.readouterr().out
    assert "dense (Dense)" in out and "(None, 10)" in out and "Total params: 101" in out


def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    model = mg.keras.Sequential([mg.keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(np.ones((8, 2)), np.ones(8), epochs=3, verbose=0, validation_split=0.25)
    path = history.plot(str(tmp_path / "curves.png"))
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_validation_split_holds_out_the_last_samples():
    x = np.arange(100, dtype=np.float32).reshape(50, 2)
    y = np.zeros(50, np.float32)
    model = mg.keras.Sequential([mg.keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    seen = []
    original = model._run_batches

    def spy(xs, ys, *args, **kwargs):
        seen.append(xs.data.copy())
        return original(xs, ys, *args, **kwargs)

    model._run_batches = spy
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
    np.testing.assert_array_equal(seen[1], x[40:])  # the validation pass sees the last 10
    assert "val_loss" in history.history


def test_cnn_on_digits_channels_last():
    d = sklearn_datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]  # (N, 8, 8, 1), as Keras wants
    y = d.target
    L = mg.keras.layers
    mg.manual_seed(0)
    model = mg.keras.Sequential(
        [
            L.Conv2D(8, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dropout(0.1),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=mg.keras.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x[:1500], y[:1500], epochs=8, batch_size=32, verbose=0, validation_data=(x[1500:], y[1500:])
    )
    assert history.history["val_accuracy"][-1] > 0.85
    assert model.layers[1].output_shape == (None, 4, 4, 8)
    onehot = np.eye(10, dtype=np.float32)[y[:200]]
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    assert model.evaluate(x[:200], onehot, verbose=0)[1] > 0.85


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_layers_learn_a_sequence_task(kind):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, (300, 6))
    y = (tokens[:, 0] > 10).astype(np.float32)  # depends on the first token: needs memory
    L = mg.keras.layers
    mg.manual_seed(0)
    model = mg.keras.Sequential(
        [
            L.Embedding(20, 8, input_length=6),
            getattr(L, kind)(16),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=mg.keras.optimizers.Adam(learning_rate=0.02),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(tokens, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.9, history.history["accuracy"]


def test_clear_errors():
    model = mg.keras.Sequential([mg.keras.layers.Dense(1, input_shape=(3,))])
    with pytest.raises(RuntimeError, match="call compile\\(\\) first"):
        model.fit(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="unknown loss 'hinge_of_doom'"):
        model.compile(optimizer="adam", loss="hinge_of_doom")
    with pytest.raises(ValueError, match="unknown optimizer 'adamax2'"):
        model.compile(optimizer="adamax2", loss="mse")
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"expected inputs of shape \(batch, 3\), got \(4, 5\)"):
        model.fit(np.zeros((4, 5)), np.zeros(4))
    with pytest.raises(ValueError, match="unknown activation 'sigmoidish'"):
        mg.keras.layers.Dense(2, activation="sigmoidish")
