"""Schedules by hand (no PyTorch needed): values, Hugging Face's warm-up schedules, state."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.optim import lr_scheduler as ls


def sgd(lr=1.0):
    return optim.SGD([mg.tensor(np.zeros(1), requires_grad=True)], lr=lr)


def lrs(scheduler, n):
    out = []
    for _ in range(n):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.step()
    return out


def test_step_and_cosine_by_hand():
    assert lrs(ls.StepLR(sgd(), 2, 0.5), 5) == [1.0, 1.0, 0.5, 0.5, 0.25]
    got = lrs(ls.CosineAnnealingLR(sgd(), T_max=4), 5)
    np.testing.assert_allclose(
        got,
        [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0],
        atol=1e-12,
    )


def test_hugging_face_warmup_schedules():
    lin = lrs(
        ls.get_linear_schedule_with_warmup(sgd(), num_warmup_steps=2, num_training_steps=6), 7
    )
    np.testing.assert_allclose(lin, [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0])
    cos = lrs(ls.get_cosine_schedule_with_warmup(sgd(), 1, 5), 6)
    np.testing.assert_allclose(
        cos,
        [0.0, 1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0],
        atol=1e-12,
    )


def test_one_cycle_refuses_to_step_past_the_end():
    s = ls.OneCycleLR(sgd(), max_lr=1.0, total_steps=3)
    s.step()
    s.step()
    s.step()
    with pytest.raises(ValueError, match="tried to step 4 times; total_steps is 3"):
        s.step()


def test_scheduler_state_dict_resumes():
    a = ls.StepLR(sgd(), 3, 0.1)
    lrs(a, 4)
    b = ls.StepLR(sgd(), 3, 0.1)
    b.load_state_dict(a.state_dict())
    assert b.last_epoch == a.last_epoch
    b.step()
    a.step()
    assert b.get_last_lr() == a.get_last_lr()
    assert "lr_lambdas" not in ls.LambdaLR(sgd(), lambda e: 1.0).state_dict()
