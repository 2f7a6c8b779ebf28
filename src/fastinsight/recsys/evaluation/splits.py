"""Seeded train / validation / test splits over an :class:`EvalDataset`.

All three parts share the dataset's user and item index, so a model fitted on
``train`` scores exactly the catalogue the metrics are computed over.

* ``random``: each user's positives are shuffled (seeded) and split by fraction.
* ``temporal``: each user's most recent positives go to test, the next most recent
  to validation (ties in time are broken by the seeded shuffle).
* ``cold-items``: two disjoint random sets of items are chosen; every positive of the
  first goes to validation, of the second to test. Those items stay in the
  catalogue (and keep their metadata) but have no training interactions.

Per user (random and temporal) the held-out counts are
``max(1, floor(n * fraction + 0.5))`` for each non-zero fraction, reduced when needed
so that at least one positive stays in training.

Context pairs (interactions that are never relevant, e.g. low ratings) are split the
same way and on their own, after the positives, so the positive parts do not depend on
whether a dataset has context. Training context is part of ``train`` (what a model is
fitted on, and what is excluded from its lists); validation context joins training for
the final fit; test context stays unseen, as the future is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fastinsight.errors import ValidationFailed
from fastinsight.recsys.evaluation.data import EvalDataset

log = logging.getLogger(__name__)

SPLIT_KINDS: tuple[str, ...] = ("random", "temporal", "cold-items")

_TRAIN, _VALID, _TEST = 0, 1, 2


@dataclass(frozen=True)
class Split:
    """``train`` is the fit matrix (positives and context); the others are positives only."""

    kind: str
    seed: int
    train: sp.csr_matrix
    validation: sp.csr_matrix
    test: sp.csr_matrix
    cold_items: np.ndarray  # test items without any training pair (cold-items split)
    validation_context: sp.csr_matrix  # joins the final fit (train_validation)
    context_counts: tuple[int, int, int]  # context pairs in train / validation / test

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.train.shape[0]), int(self.train.shape[1]))

    def train_validation(self) -> sp.csr_matrix:
        """The final fit matrix: train plus validation positives and context."""
        return sp.csr_matrix(self.train + self.validation + self.validation_context)

    def summary(self) -> dict[str, int | str]:
        c_train, c_val, c_test = self.context_counts
        return {
            "kind": self.kind, "seed": self.seed,
            "train": int(self.train.nnz) - c_train, "validation": int(self.validation.nnz),
            "test": int(self.test.nnz), "cold_items": int(self.cold_items.size),
            "train_context": c_train, "validation_context": c_val, "test_context": c_test,
        }


def _check_fractions(validation: float, test: float) -> None:
    if not (0 <= validation < 1 and 0 < test < 1 and validation + test < 1):
        raise ValidationFailed.field(
            "fractions", f"need 0 <= validation, 0 < test, validation + test < 1; got "
            f"{validation}, {test}",
        )


def _held_out_counts(
    n: np.ndarray, validation: float, test: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user numbers of test and validation pairs (at least one left to train)."""
    n_test = np.maximum(1, np.floor(n * test + 0.5)).astype(np.int64)
    n_val = np.floor(n * validation + 0.5).astype(np.int64)
    if validation > 0:
        n_val = np.maximum(1, n_val)
    n_test = np.minimum(n_test, np.maximum(n - 1, 0))
    n_val = np.minimum(n_val, np.maximum(n - 1 - n_test, 0))
    return n_test, n_val


def _assign_by_order(
    users: np.ndarray, n_users: int, order: np.ndarray, validation: float, test: float
) -> np.ndarray:
    """``order`` groups pairs by user, held-out first; returns the part of every pair."""
    counts = np.bincount(users, minlength=n_users)
    n_test, n_val = _held_out_counts(counts, validation, test)
    sorted_users = users[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(order.size) - starts[sorted_users]
    part_sorted = np.full(order.size, _TRAIN, dtype=np.int8)
    part_sorted[position < n_test[sorted_users] + n_val[sorted_users]] = _VALID
    part_sorted[position < n_test[sorted_users]] = _TEST
    part = np.empty_like(part_sorted)
    part[order] = part_sorted
    return part


def _build(
    data: EvalDataset, part: np.ndarray, context_part: np.ndarray, kind: str, seed: int,
    cold: np.ndarray,
) -> Split:
    context = [np.flatnonzero(context_part == p) for p in (_TRAIN, _VALID, _TEST)]
    split = Split(
        kind=kind, seed=seed,
        train=sp.csr_matrix(
            data.matrix(np.flatnonzero(part == _TRAIN)) + data.context_matrix(context[_TRAIN])
        ),
        validation=data.matrix(np.flatnonzero(part == _VALID)),
        test=data.matrix(np.flatnonzero(part == _TEST)),
        cold_items=np.sort(cold).astype(np.int64),
        validation_context=data.context_matrix(context[_VALID]),
        context_counts=(context[_TRAIN].size, context[_VALID].size, context[_TEST].size),
    )
    log.info("split %s seed=%d: %s", kind, seed, split.summary())
    return split


def _by_user(
    data: EvalDataset, rng: np.random.Generator, validation: float, test: float,
    recent_first: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Parts of the positives, then (with further draws) of the context pairs."""
    parts = []
    for table_users, times in ((data.users, data.timestamps),
                               (data.context.users, data.context.timestamps)):
        keys = [rng.random(table_users.size)]
        if recent_first:
            keys.append(-times)
        order = np.lexsort((*keys, table_users))
        parts.append(_assign_by_order(table_users, data.n_users, order, validation, test))
    return parts[0], parts[1]


def random_split(
    data: EvalDataset, validation: float = 0.1, test: float = 0.1, seed: int = 0
) -> Split:
    _check_fractions(validation, test)
    part, context_part = _by_user(data, np.random.default_rng(seed), validation, test, False)
    return _build(data, part, context_part, "random", seed, np.empty(0))


def temporal_split(
    data: EvalDataset, validation: float = 0.1, test: float = 0.1, seed: int = 0
) -> Split:
    _check_fractions(validation, test)
    part, context_part = _by_user(data, np.random.default_rng(seed), validation, test, True)
    return _build(data, part, context_part, "temporal", seed, np.empty(0))


def cold_item_split(
    data: EvalDataset, validation: float = 0.1, test: float = 0.1, seed: int = 0
) -> Split:
    """``validation``/``test`` are fractions of the items that have positives.

    Context pairs of the chosen items are held out with them, so the items have no
    training interaction at all.
    """
    _check_fractions(validation, test)
    rng = np.random.default_rng(seed)
    items = rng.permutation(np.unique(data.items))
    n_test = max(1, int(np.floor(items.size * test + 0.5)))
    n_val = int(np.floor(items.size * validation + 0.5)) if validation > 0 else 0
    if n_test + n_val >= items.size:
        raise ValidationFailed.field("fractions", "cold-item split would leave no training item")
    test_items, val_items = items[:n_test], items[n_test:n_test + n_val]
    parts = []
    for table_items in (data.items, data.context.items):
        part = np.full(table_items.size, _TRAIN, dtype=np.int8)
        part[np.isin(table_items, val_items)] = _VALID
        part[np.isin(table_items, test_items)] = _TEST
        parts.append(part)
    return _build(data, parts[0], parts[1], "cold-items", seed, test_items)


def make_split(
    data: EvalDataset, kind: str = "random", validation: float = 0.1, test: float = 0.1,
    seed: int = 0,
) -> Split:
    if kind == "random":
        return random_split(data, validation, test, seed)
    if kind == "temporal":
        return temporal_split(data, validation, test, seed)
    if kind == "cold-items":
        return cold_item_split(data, validation, test, seed)
    raise ValidationFailed.field("split", f"unknown split {kind!r}; choose from {SPLIT_KINDS}")


def holdout_matrix(
    matrix: sp.csr_matrix, fraction: float = 0.1, min_positives: int = 5, seed: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Random per-user holdout of a ready matrix (for model selection at train time).

    Users with fewer than ``min_positives`` positive entries stay whole in training
    and are not evaluated. Returns ``(train, held_out)`` with the input's shape.
    """
    coo = sp.coo_matrix(matrix)
    positive = coo.data > 0
    users = coo.row[positive].astype(np.int64)
    items = coo.col[positive].astype(np.int64)
    weights = coo.data[positive].astype(np.float32)
    n_users, n_items = matrix.shape
    counts = np.bincount(users, minlength=n_users)
    eligible = counts[users] >= min_positives
    data = EvalDataset(
        users=users[eligible], items=items[eligible], weights=weights[eligible],
        timestamps=np.zeros(int(eligible.sum())), user_ids=np.arange(n_users).astype(str),
        item_ids=np.arange(n_items).astype(str),
    )
    split = random_split(data, validation=0.0, test=fraction, seed=seed)
    rest = sp.csr_matrix(
        (weights[~eligible], (users[~eligible], items[~eligible])), shape=matrix.shape,
        dtype=np.float32,
    )
    return sp.csr_matrix(split.train + rest), split.test
