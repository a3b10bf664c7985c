"""The README's main job: a small classifier on scikit-learn's bundled 8x8 digits.

It uses nothing but minigrad's core (tensors, autograd, no_grad) so that every step of
training is visible: a two-layer MLP, cross-entropy written out as log_softmax and gather,
and plain SGD with momentum updating the parameters in place.

    python -m models.digits [--epochs N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import minigrad as mg


def load_digits_split(seed: int, test_fraction: float = 0.2):
    """scikit-learn's 1,797 digits (minigrad.data.datasets.Digits), scaled to [0, 1], as flat
    vectors, split into train and test by a permutation drawn with ``seed``."""
    try:
        from minigrad.data.datasets import Digits

        train = Digits(train=True, test_fraction=test_fraction, seed=seed)
        test = Digits(train=False, test_fraction=test_fraction, seed=seed)
    except ImportError:
        raise SystemExit(
            "models.digits needs scikit-learn for its bundled digits: pip install -e '.[datasets]'"
        ) from None
    flat = [d.images.reshape(len(d), -1) for d in (train, test)]
    return flat[0], train.targets, flat[1], test.targets


def cross_entropy(logits: mg.Tensor, targets: mg.Tensor) -> mg.Tensor:
    """Mean of -log p(target): log_softmax, then pick each row's target column."""
    log_p = logits.log_softmax(dim=1)
    return -log_p.gather(1, targets.unsqueeze(1)).mean()


def train(
    epochs: int = 30,
    seed: int = 0,
    hidden: int = 64,
    lr: float = 0.1,
    batch_size: int = 32,
    verbose: bool = True,
) -> dict:
    """Train the MLP and return the final train loss and test accuracy."""
    mg.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_digits_split(seed)
    n_in, n_out = x_train.shape[1], 10
    # He initialisation for the ReLU layer, small weights for the output layer.
    w1 = (mg.randn(n_in, hidden) * np.sqrt(2.0 / n_in)).requires_grad_()
    b1 = mg.zeros(hidden, requires_grad=True)
    w2 = (mg.randn(hidden, n_out) * np.sqrt(1.0 / hidden)).requires_grad_()
    b2 = mg.zeros(n_out, requires_grad=True)
    params = [w1, b1, w2, b2]
    velocity = [np.zeros_like(p.data) for p in params]

    def forward(x: mg.Tensor) -> mg.Tensor:
        return (x @ w1 + b1).relu() @ w2 + b2

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    loss_value = float("nan")
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        losses = []
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            loss = cross_entropy(forward(mg.tensor(x_train[batch])), mg.tensor(y_train[batch]))
            for p in params:
                p.grad = None
            loss.backward()
            with mg.no_grad():
                for p, v in zip(params, velocity):
                    v *= 0.9
                    v += p.grad.data
                    p.data -= lr * v
            losses.append(loss.item())
        loss_value = float(np.mean(losses))
        if verbose and (epoch % 5 == 4 or epoch == epochs - 1):
            print(f"epoch {epoch + 1:3d}/{epochs}  train loss {loss_value:.4f}")
    with mg.no_grad():
        predictions = forward(mg.tensor(x_test)).argmax(dim=1).numpy()
    accuracy = float(np.mean(predictions == y_test))
    seconds = time.perf_counter() - start
    if verbose:
        print(
            f"test accuracy {accuracy * 100:.2f}% on {len(y_test)} held-out digits "
            f"({seconds:.1f} s, {epochs} epochs)"
        )
    return {"train_loss": loss_value, "test_accuracy": accuracy, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    train(epochs=args.epochs, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
