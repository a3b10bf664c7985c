"""nn.CRF: log Z against enumeration of every tag sequence, the score against a plain loop,
Viterbi against the brute-force argmax, gradients against finite differences (float64),
BIO constraints, float32 beside float64, and the errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.nn import CRF, bio_constraints
from minigrad.testing import gradcheck_module

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _crf(k: int, seed: int, constraints=None) -> CRF:
    mg.manual_seed(seed)
    crf = CRF(k, constraints).double()
    rng = np.random.default_rng(seed)
    for p in crf.parameters():  # scores of order one, so that the paths differ clearly
        p.data[...] = rng.normal(size=p.shape)
    return crf


def _reference_score(crf: CRF, e: np.ndarray, y: list[int]) -> float:
    """s(y) by the definition, one term at a time (forbidden moves at -10000)."""
    start, trans, end = (s.data for s in crf._scores())
    total = start[y[0]] + e[0, y[0]] + end[y[-1]]
    for t in range(1, len(y)):
        total += trans[y[t - 1], y[t]] + e[t, y[t]]
    return float(total)


def _random_case(seed: int, b: int, t: int, k: int):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(b, t, k))
    lengths = rng.integers(1, t + 1, size=b)
    lengths[0] = t  # one full row, so the padding is exercised beside a full one
    mask = np.arange(t)[None, :] < lengths[:, None]
    return e, mask, lengths


@given(
    seed=st.integers(0, 10_000),
    b=st.integers(1, 3),
    t=st.integers(1, 4),
    k=st.integers(1, 4),
)
def test_log_partition_equals_enumeration_of_every_sequence(seed, b, t, k):
    crf = _crf(k, seed)
    e, mask, lengths = _random_case(seed, b, t, k)
    z = crf.log_partition(mg.tensor(e), mask).detach().numpy()
    for row in range(b):
        n = lengths[row]
        scores = [
            _reference_score(crf, e[row], list(y)) for y in itertools.product(range(k), repeat=n)
        ]
        assert z[row] == pytest.approx(np.logaddexp.reduce(scores), rel=1e-10, abs=1e-10)


@given(seed=st.integers(0, 10_000), b=st.integers(1, 3), t=st.integers(1, 5), k=st.integers(1, 4))
def test_score_follows_the_definition_and_ignores_padding(seed, b, t, k):
    crf = _crf(k, seed)
    e, mask, lengths = _random_case(seed, b, t, k)
    rng = np.random.default_rng(seed + 1)
    tags = rng.integers(0, k, size=(b, t))
    tags[~mask] = -100  # what a collate function pads labels with
    got = crf.score(mg.tensor(e), tags, mask).detach().numpy()
    for row in range(b):
        want = _reference_score(crf, e[row], list(tags[row, : lengths[row]]))
        assert got[row] == pytest.approx(want, rel=1e-12, abs=1e-12)


@given(seed=st.integers(0, 10_000), b=st.integers(1, 3), t=st.integers(1, 5), k=st.integers(1, 3))
def test_viterbi_finds_the_best_sequence_of_each_row(seed, b, t, k):
    crf = _crf(k, seed)
    e, mask, lengths = _random_case(seed, b, t, k)
    paths = crf.decode(mg.tensor(e), mask)
    for row in range(b):
        n = lengths[row]
        best = max(
            itertools.product(range(k), repeat=n),
            key=lambda y: _reference_score(crf, e[row], list(y)),
        )
        assert len(paths[row]) == n
        assert _reference_score(crf, e[row], paths[row]) == pytest.approx(
            _reference_score(crf, e[row], list(best)), abs=1e-12
        )


def test_probabilities_of_all_sequences_sum_to_one():
    crf = _crf(3, 7)
    e, mask, _ = _random_case(7, 1, 4, 3)
    z = crf.log_partition(mg.tensor(e)).item()
    total = sum(
        np.exp(crf.score(mg.tensor(e), np.array([y])).item() - z)
        for y in itertools.product(range(3), repeat=4)
    )
    assert total == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("constrained", [False, True])
def test_negative_log_likelihood_gradchecks_in_float64(constrained):
    constraints = bio_constraints(TAGS) if constrained else None
    crf = _crf(len(TAGS), 3, constraints)
    e, _, _ = _random_case(3, 3, 4, len(TAGS))
    tags = np.array([[1, 2, 0, 3], [3, 4, 4, -100], [0, -100, -100, -100]])
    mask = tags != -100
    emissions = mg.tensor(e, requires_grad=True)
    assert gradcheck_module(_Loss(crf, tags, mask), [emissions], mode="full", atol=1e-6, rtol=1e-5)


class _Loss(mg.nn.Module):
    """The CRF's loss with fixed tags and mask, as a module of the emissions alone."""

    def __init__(self, crf, tags, mask):
        super().__init__()
        self.crf, self.tags, self.mask = crf, tags, mask

    def forward(self, emissions):
        return self.crf(emissions, self.tags, self.mask, reduction="sum")


def test_float32_agrees_with_float64():
    crf64 = _crf(4, 5)
    crf32 = _crf(4, 5).float()
    e, mask, _ = _random_case(5, 4, 6, 4)
    tags = np.where(mask, np.arange(6)[None, :] % 4, -100)
    nll64 = crf64(mg.tensor(e), tags, mask)
    nll32 = crf32(mg.tensor(e.astype(np.float32)), tags, mask)
    assert nll32.dtype == mg.float32 and nll64.dtype == mg.float64
    assert nll32.item() == pytest.approx(nll64.item(), rel=1e-5)
    assert crf32.decode(mg.tensor(e.astype(np.float32)), mask) == crf64.decode(mg.tensor(e), mask)


def test_bio_constraints_allow_inside_only_after_its_own_begin():
    start, trans, end = bio_constraints(TAGS)
    assert start.tolist() == [True, True, False, True, False] and end.all()
    i_per = TAGS.index("I-PER")
    assert [TAGS[i] for i in np.flatnonzero(trans[:, i_per])] == ["B-PER", "I-PER"]
    assert trans[:, TAGS.index("B-LOC")].all() and trans[:, 0].all()
    with pytest.raises(ValueError, match="tag 'X-PER' is not O, B-TYPE or I-TYPE"):
        bio_constraints(["O", "X-PER"])


def test_constrained_decoding_never_breaks_bio_even_when_emissions_push_for_it():
    crf = _crf(len(TAGS), 11, bio_constraints(TAGS))
    e = np.full((1, 3, len(TAGS)), -5.0)
    e[0, 0, TAGS.index("I-PER")] = 5.0  # the emissions want I-PER first, then I-LOC
    e[0, 1, TAGS.index("O")] = 5.0
    e[0, 2, TAGS.index("I-LOC")] = 5.0
    path = [TAGS[i] for i in crf.decode(mg.tensor(e))[0]]
    for prev, tag in zip(["O"] + path, path):
        assert not tag.startswith("I-") or prev[2:] == tag[2:], path
    unconstrained = _crf(len(TAGS), 11)
    assert [TAGS[i] for i in unconstrained.decode(mg.tensor(e))[0]][0] == "I-PER"


def test_constrained_log_partition_sums_only_the_allowed_sequences():
    crf = _crf(len(TAGS), 2, bio_constraints(TAGS))
    start, trans, _ = bio_constraints(TAGS)
    e, _, _ = _random_case(2, 1, 3, len(TAGS))
    allowed = [
        y
        for y in itertools.product(range(len(TAGS)), repeat=3)
        if start[y[0]] and all(trans[a, b] for a, b in zip(y, y[1:]))
    ]
    scores = [_reference_score(crf, e[0], list(y)) for y in allowed]
    z = crf.log_partition(mg.tensor(e)).item()
    assert z == pytest.approx(np.logaddexp.reduce(scores), rel=1e-12)


def test_errors_name_the_problem():
    crf = _crf(3, 0)
    e = mg.tensor(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"emissions must be \(B, T, 3\), got \(2, 3, 4\)"):
        crf.log_partition(mg.tensor(np.zeros((2, 3, 4))))
    with pytest.raises(
        TypeError, match="emissions are float32 but the CRF's parameters are float64"
    ):
        crf.log_partition(mg.tensor(np.zeros((2, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="mask row 1 starts with padding"):
        crf.log_partition(e, np.array([[1, 1, 1], [0, 1, 1]]))
    with pytest.raises(ValueError, match="mask row 0 has a token after padding"):
        crf.log_partition(e, np.array([[1, 0, 1], [1, 1, 1]]))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 2\), emissions need \(2, 3\)"):
        crf.log_partition(e, np.ones((2, 2)))
    with pytest.raises(ValueError, match="tag 3 is outside 0..2"):
        crf(e, np.array([[0, 1, 3], [0, 0, 0]]))
    with pytest.raises(ValueError, match="reduction must be"):
        crf(e, np.zeros((2, 3), np.int64), reduction="avg")
    bio = _crf(len(TAGS), 0, bio_constraints(TAGS))
    e5 = mg.tensor(np.zeros((1, 3, len(TAGS))))
    with pytest.raises(ValueError, match="row 0 move from tag 0 to 2 at position 1, a forbidden"):
        bio(e5, np.array([[0, 2, 0]]))
    with pytest.raises(ValueError, match="row 0 start with forbidden tag 4"):
        bio(e5, np.array([[4, 4, 0]]))
