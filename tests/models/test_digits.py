"""The README's main job, in a short seeded version."""

import pytest

pytest.importorskip(
    "sklearn", reason="the digits data set ships with scikit-learn (the test extra installs it)"
)

from models import digits  # noqa: E402


def test_short_training_run_learns_the_digits():
    result = digits.train(epochs=3, seed=0, verbose=False)
    assert result["test_accuracy"] >= 0.90
    assert result["train_loss"] < 0.35


@pytest.mark.slow
def test_full_training_run_reaches_97_percent():
    assert digits.train(epochs=30, seed=0, verbose=False)["test_accuracy"] >= 0.97
