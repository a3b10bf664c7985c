"""A linear-chain conditional random field (Lafferty, McCallum and Pereira 2001), the output
layer of a BiLSTM-CRF tagger (Lample et al. 2016).

For emissions ``e`` (B, T, K) from a network and a tag sequence ``y`` of length n, the score
of ``y`` is

    s(y) = start[y_0] + sum_t e[t, y_t] + sum_{t>0} transitions[y_{t-1}, y_t] + end[y_{n-1}]

and p(y) = exp(s(y)) / Z, with Z the sum of exp(s(y')) over all K^n sequences. The loss is
the negative log-likelihood log Z - s(y). log Z comes from the forward algorithm, one
logsumexp per step in log space, so it never overflows; Viterbi decoding finds the best y by
the same recursion with max in place of logsumexp. Both are written with minigrad's ops (the
gradient of the loss is autograd's, checked against finite differences in the tests).

Padding: ``mask`` (B, T) is 1 on a sentence's tokens and 0 after them; a padded step leaves
the forward variables unchanged, so each row's log Z and score are those of its own length.

Constraints: ``allowed_transitions`` (as ``bio_constraints`` builds for BIO tags) forbids
some moves; a forbidden move scores ``FORBIDDEN`` (-10000) instead of its parameter, so it
gets probability exp(-10000) = 0 in floating point and Viterbi never takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.autograd import untraceable
from minigrad.nn import init
from minigrad.nn.layers import _empty
from minigrad.nn.module import Module
from minigrad.ops.indexing import where
from minigrad.tensor import Tensor

FORBIDDEN = -10000.0


def bio_constraints(tag_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The moves BIO tagging allows, as boolean arrays (start (K,), transitions (K, K) from
    row to column, end (K,)): ``I-X`` only after ``B-X`` or ``I-X``, and never first. Tags
    are ``O``, ``B-X`` or ``I-X``; anything else raises ValueError naming it."""
    for name in tag_names:
        if name != "O" and not (name[:2] in ("B-", "I-") and len(name) > 2):
            raise ValueError(f"bio_constraints: tag {name!r} is not O, B-TYPE or I-TYPE")
    k = len(tag_names)
    start, end = np.ones(k, bool), np.ones(k, bool)
    transitions = np.ones((k, k), bool)
    for j, to in enumerate(tag_names):
        if to.startswith("I-"):
            start[j] = False
            for i, frm in enumerate(tag_names):
                transitions[i, j] = frm in (f"B-{to[2:]}", to)
    return start, transitions, end


class CRF(Module):
    """A linear-chain CRF over ``num_tags`` tags with learned start (K,), end (K,) and
    transition (K, K) scores; ``transitions[i, j]`` scores tag i followed by tag j.

    ``forward(emissions, tags, mask)`` is the negative log-likelihood of the gold tags
    (emissions (B, T, K), tags (B, T) integers, mask (B, T) with the sentence's tokens first);
    ``decode(emissions, mask)`` the Viterbi tag sequences. ``constraints`` is a triple of
    boolean arrays (start, transitions, end) of allowed moves, e.g. ``bio_constraints``.
    """

    def __init__(
        self,
        num_tags: int,
        constraints: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"CRF: num_tags must be positive, got {num_tags}")
        self.num_tags = num_tags
        k = num_tags
        self.start_transitions, self.end_transitions = _empty(k), _empty(k)
        self.transitions = _empty(k, k)
        for p in (self.start_transitions, self.end_transitions, self.transitions):
            init.uniform_(p, -0.1, 0.1)
        if constraints is None:
            constraints = (np.ones(k, bool), np.ones((k, k), bool), np.ones(k, bool))
        shapes = ((k,), (k, k), (k,))
        for name, c, shape in zip(("start", "transitions", "end"), constraints, shapes):
            if np.shape(c) != shape:
                raise ValueError(f"CRF: {name} constraints have shape {np.shape(c)}, need {shape}")
        self.allowed = tuple(np.asarray(c, bool) for c in constraints)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def _scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """start, transitions, end with the forbidden moves set to FORBIDDEN."""
        return tuple(
            p if ok.all() else where(ok, p, FORBIDDEN)
            for p, ok in zip(
                (self.start_transitions, self.transitions, self.end_transitions), self.allowed
            )
        )

    def _check(self, emissions: Tensor, mask: Any) -> np.ndarray:
        # the mask and the tags become NumPy arrays that index the scores: a compiled step
        # (minigrad.compile) would replay the traced batch's, so it runs eagerly
        untraceable("the CRF's mask and tags (read with NumPy)")
        """Validate shapes and dtypes; return the mask as a (B, T) bool array."""
        if emissions.ndim != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(
                f"CRF(num_tags={self.num_tags}): emissions must be (B, T, {self.num_tags}), "
                f"got {emissions.shape}"
            )
        if emissions.dtype != self.transitions.dtype:
            raise TypeError(
                f"CRF: emissions are {emissions.dtype} but the CRF's parameters are "
                f"{self.transitions.dtype} (call .double() or .float() on one of them)"
            )
        b, t, _ = emissions.shape
        if t == 0:
            raise ValueError(f"CRF: emissions of shape {emissions.shape} hold no time step")
        if mask is None:
            return np.ones((b, t), bool)
        m = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        if m.shape != (b, t):
            raise ValueError(f"CRF: mask has shape {m.shape}, emissions need ({b}, {t})")
        if not m[:, 0].all():
            row = int(np.flatnonzero(~m[:, 0])[0])
            raise ValueError(f"CRF: mask row {row} starts with padding (each needs a first token)")
        if (m[:, 1:] & ~m[:, :-1]).any():
            row = int(np.flatnonzero((m[:, 1:] & ~m[:, :-1]).any(1))[0])
            raise ValueError(f"CRF: mask row {row} has a token after padding (pad at the end)")
        return m

    def log_partition(self, emissions: Tensor, mask: Any = None) -> Tensor:
        """log Z for each sequence (B,), by the forward algorithm in log space."""
        m = self._check(emissions, mask)
        start, transitions, end = self._scores()
        alpha = start + emissions[:, 0]  # (B, K): log-sum of every path ending in each tag
        for t in range(1, emissions.shape[1]):
            # (B, K, 1) + (K, K) -> (B, K, K), summed over the previous tag
            step = (alpha.unsqueeze(2) + transitions).logsumexp(dim=1) + emissions[:, t]
            alpha = where(m[:, t : t + 1], step, alpha)
        return (alpha + end).logsumexp(dim=1)

    def score(self, emissions: Tensor, tags: Any, mask: Any = None) -> Tensor:
        """s(y) of the given tag sequences (B,)."""
        m = self._check(emissions, mask)
        y = np.asarray(tags.data if isinstance(tags, Tensor) else tags)
        b, t, k = emissions.shape
        if y.shape != (b, t) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"CRF: tags must be integers of shape ({b}, {t}), got {y.shape}")
        y = np.where(m, y, 0)  # padded positions may hold anything (-100, say)
        if y.min() < 0 or y.max() >= k:
            bad = int(y[(y < 0) | (y >= k)][0])
            raise ValueError(f"CRF: tag {bad} is outside 0..{k - 1}")
        start, transitions, end = self._scores()
        w = m.astype(emissions.dtype)
        rows = np.arange(b)[:, None]
        emitted = (emissions[rows, np.arange(t)[None, :], y] * w).sum(dim=1)
        moved = (transitions[y[:, :-1], y[:, 1:]] * w[:, 1:]).sum(dim=1) if t > 1 else 0.0
        last = y[np.arange(b), m.sum(1) - 1]
        return start[y[:, 0]] + emitted + moved + end[last]

    def forward(
        self, emissions: Tensor, tags: Any, mask: Any = None, reduction: str = "mean"
    ) -> Tensor:
        """Negative log-likelihood log Z - s(y): per sequence (``reduction='none'``), summed,
        or averaged over the batch (the default)."""
        self._check_allowed(tags, mask, emissions.shape)
        nll = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll.mean()
        raise ValueError(f"CRF: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    def _check_allowed(self, tags: Any, mask: Any, shape: tuple) -> None:
        """Gold tags that make a forbidden move would cost about 10000: say so instead."""
        start, transitions, end = self.allowed
        if start.all() and transitions.all() and end.all():
            return
        y = np.asarray(tags.data if isinstance(tags, Tensor) else tags)
        m = (
            np.ones(shape[:2], bool)
            if mask is None
            else np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        )
        if y.shape != m.shape:
            return  # score() names the shape problem
        y = np.where(m, y, 0).clip(0, self.num_tags - 1)
        bad = ~start[y[:, 0]]
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"CRF: gold tags of row {row} start with forbidden tag {y[row, 0]}")
        moves = ~transitions[y[:, :-1], y[:, 1:]] & m[:, 1:]
        if moves.any():
            row, t = (int(i) for i in np.argwhere(moves)[0])
            raise ValueError(
                f"CRF: gold tags of row {row} move from tag {y[row, t]} to {y[row, t + 1]} at "
                f"position {t + 1}, a forbidden transition"
            )
        last = y[np.arange(len(y)), m.sum(1) - 1]
        if (~end[last]).any():
            row = int(np.flatnonzero(~end[last])[0])
            raise ValueError(f"CRF: gold tags of row {row} end with forbidden tag {last[row]}")

    def decode(self, emissions: Tensor, mask: Any = None) -> list[list[int]]:
        """The highest-scoring tag sequence of each row (Viterbi), as lists of tag ids of
        each row's length. Batched: one max over (B, K, K) per time step."""
        m = self._check(emissions, mask)
        start, transitions, end = (s.data for s in self._scores())
        e = emissions.data
        b, t, k = e.shape
        best = start + e[:, 0]  # (B, K): the best path's score ending in each tag
        back = np.empty((t, b, k), np.int64)  # the best previous tag, per step
        for i in range(1, t):
            candidates = best[:, :, None] + transitions  # (B, K previous, K next)
            back[i] = candidates.argmax(axis=1)
            step = candidates.max(axis=1) + e[:, i]
            keep = m[:, i : i + 1]
            best = np.where(keep, step, best)
            back[i] = np.where(keep, back[i], np.arange(k))  # padding: stay on the same tag
        tag = (best + end).argmax(axis=1)
        path = np.empty((b, t), np.int64)
        path[:, t - 1] = tag
        for i in range(t - 1, 0, -1):
            tag = back[i, np.arange(b), tag]
            path[:, i - 1] = tag
        lengths = m.sum(1)
        return [path[r, : lengths[r]].tolist() for r in range(b)]
