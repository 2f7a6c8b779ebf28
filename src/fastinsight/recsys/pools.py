"""Exact best items from a short candidate pool: live scoring without an index search.

A user with events since training is scored live. Their history is folded into a query
vector ``q``, and their best items are those with the largest ``y_i · q``. Searching an
index for them cost more than everything else on that path. Serving instead scores a
short pool exactly, and proves that no item outside it can beat the answer:

* **The pool** is the user's training-time candidate list (the best items for the
  vector ``b`` of their training history, :mod:`fastinsight.recsys.candidates`) plus,
  for each item taken since, that item's *pool*: the model's own best items for a
  history of that one item (``item_pools``, computed at training time with the lists).
  For ALS these are exactly the items whose score a new event on that item raises most
  (the fold-in moves along ``(YᵀY + λI)⁻¹ y``).
* **The bound.** An item outside the list has ``y_i · b ≤ s``, where ``s`` is the list's
  last score. So ``y_i · q ≤ s + ‖y_i‖ ‖q - b‖`` (Cauchy-Schwarz). If ``t`` is the score
  the answer needs (the ``n``-th best eligible score in the pool), an item can only reach
  it if ``‖y_i‖ ≥ (t - s) / ‖q - b‖``. Those items are scored too: they are a prefix of
  the items sorted by vector length (:class:`NormOrder`). A user without a list (unknown
  at training) has ``b = 0`` and ``s = 0``.

The answer is therefore the exact one (the same as scoring every item) whenever the list
is the exact best of ``b``. Lists are exact below the retrieval index's exact threshold.
Above it they come from the HNSW graph, so they miss what it misses. The bound still
makes the live answer exact relative to that list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Float32 inner products of unit-scale vectors are off by up to ~4e-6 of ‖y‖‖q‖ (64 terms
# of 6e-8 rounding each): the bound is widened by that much, times 2.5 for safety.
RELATIVE_ROUNDING = 1e-5


@dataclass(frozen=True)
class NormOrder:
    """The item vectors sorted by length, longest first: the items a bound reaches."""

    order: np.ndarray  # item indices, longest vector first (int64)
    lengths: np.ndarray  # the same vectors' lengths, shortest first (float32, for searching)
    vectors: np.ndarray  # the item vectors, longest first (float32)

    @classmethod
    def of(cls, items: np.ndarray) -> NormOrder:
        norms = np.linalg.norm(items, axis=1).astype(np.float32)
        order = np.argsort(-norms, kind="stable")
        return cls(order=order, lengths=np.ascontiguousarray(norms[order][::-1]),
                   vectors=np.ascontiguousarray(items[order], dtype=np.float32))

    @property
    def longest(self) -> float:
        return float(self.lengths[-1]) if len(self.lengths) else 0.0

    def reaching(self, length: float) -> int:
        """How many items are at least ``length`` long (a prefix of ``order``)."""
        if length != length or length <= 0:  # NaN or nothing excluded
            return len(self.lengths)
        # Searched as float32 (a float64 key would convert the whole array on every call),
        # rounded down so that no item of exactly that length is left out.
        key = np.float32(length)
        if key > length:
            key = np.nextafter(key, np.float32(-np.inf))
        return len(self.lengths) - int(np.searchsorted(self.lengths, key, side="left"))


def scan_length(order: NormOrder, needed: float, base_score: float, distance: float,
                scale: float) -> int:
    """How many of the longest items may still score ``needed`` or more, given that each
    scores at most ``base_score + ‖y‖ · distance`` (see the module docstring); ``scale``:
    ‖q‖ + ‖b‖, for the rounding allowance."""
    if needed == -np.inf:
        return len(order.lengths)
    if base_score == -np.inf:  # nothing outside the list was eligible at training
        return 0
    gap = needed - base_score - RELATIVE_ROUNDING * order.longest * scale
    if gap <= 0:
        return len(order.lengths)
    if distance <= 0:
        return 0
    return order.reaching(gap / distance)
