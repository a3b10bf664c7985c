"""The MNIST-1D paper's four baselines (Greydanus 2020), in the paper's setup: Adam 1e-2,
batch 100, 6,000 steps, the training set in order."""

from __future__ import annotations

import minigrad as mg
from minigrad.data.datasets import MNIST1D
from models import mnist1d as zoo
from models.recipes.base import Data, Recipe, Reference

# test accuracy of each baseline in the paper's notebook
PUBLISHED = {"linear": 31.5, "mlp": 65.1, "cnn": 92.3, "gru": 89.1}
MODELS = {
    "linear": zoo.MNIST1DLinear,
    "mlp": zoo.MNIST1DMLP,
    "cnn": zoo.MNIST1DCNN,
    "gru": zoo.MNIST1DGRU,
}


def mnist1d(root, short, seed):
    train, test = MNIST1D(train=True), MNIST1D(train=False)  # the published seed 42
    return Data(train, test, test)


def adam(model, steps):
    return mg.optim.Adam(model.parameters(), lr=1e-2), None


RECIPES = [
    Recipe(
        name=f"mnist1d-{kind}",
        summary=f"the MNIST-1D paper's {kind} baseline (Adam 1e-2, batch 100, 6000 steps)",
        data="generated (MNIST-1D, seed 42)",
        reference=Reference(
            f"{PUBLISHED[kind]} % test accuracy", "the MNIST-1D paper's notebook, Greydanus 2020"
        ),
        minutes=0.5,
        load=mnist1d,
        model=lambda d, kind=kind: MODELS[kind](),
        optimizer=adam,
        # 40 batches of 100 an epoch, 150 epochs: the paper's 6000 steps
        steps=lambda d, epochs, short: 60 if short else (epochs or 150) * 40,
        batch=100,
        evaluations=6,
        shuffle=False,  # as the paper's notebook: the training set in order
    )
    for kind in ("linear", "mlp", "cnn", "gru")
]
