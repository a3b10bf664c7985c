"""Training recipes: a zoo model, real data, its training, and the published figure it is
compared with, one file per family:

- ``vision``: a small CNN on scikit-learn's digits, LeNet-5 on MNIST;
- ``mnist1d``: the MNIST-1D paper's four baselines;
- ``language_models``: makemore's MLP on names, a character GPT and LSTM on tiny shakespeare;
- ``text_classification``: Kim's CNN and a small BERT on SST-2;
- ``tagging``: a BiLSTM tagger on WNUT-17.

Each recipe is a ``Recipe`` record (``models/recipes/base.py``), and one function,
``base.run``, trains any of them. ``RECIPES`` maps names to recipes; ``results.json``
records what the full runs reached, the one source of the README's table (a test checks it).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from models.recipes import language_models, mnist1d, tagging, text_classification, vision
from models.recipes.base import Data, MissingData, Recipe, Reference, data_dir, run

FAMILIES = (vision, mnist1d, language_models, text_classification, tagging)
RECIPES: dict[str, Recipe] = {r.name: r for family in FAMILIES for r in family.RECIPES}
assert len(RECIPES) == sum(len(f.RECIPES) for f in FAMILIES), "two recipes share a name"

RESULTS = json.loads((Path(__file__).parent / "results.json").read_text())


def recorded(name: str) -> str:
    """What the full runs of ``name`` reached, as the README shows it: the figure for one seed,
    or the mean +- the standard deviation over several; percentages for accuracies and F1."""
    entry = RESULTS["recipes"][name]
    values = list(entry["seeds"].values())
    percent = not entry["figure"].endswith("loss")
    scale, unit = (100, " %") if percent else (1, "")
    mean = f"{statistics.fmean(values) * scale:.{entry['decimals']}f}{unit}"
    if len(values) == 1:
        return mean
    spread = f"{statistics.stdev(values) * scale:.{entry['decimals']}f}"
    return f"{mean} +- {spread} ({len(values)} seeds)"


def run_recipe(name: str, **kwargs: Any) -> dict:
    """Train recipe ``name`` (see ``base.run`` for the arguments) and return its report."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; `minigrad recipes` lists them")
    return run(RECIPES[name], **kwargs)


def evaluate_recipe(name: str, out: str, data: str | None = None) -> dict:
    """Evaluate the model a finished ``train`` run saved in ``out`` on the recipe's evaluation
    data again (nothing is trained or written)."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; `minigrad recipes` lists them")
    return run(RECIPES[name], out=out, data=data, verbose=False, evaluate_only=True)


__all__ = [
    "Data",
    "MissingData",
    "RECIPES",
    "RESULTS",
    "Recipe",
    "Reference",
    "data_dir",
    "evaluate_recipe",
    "recorded",
    "run_recipe",
]
