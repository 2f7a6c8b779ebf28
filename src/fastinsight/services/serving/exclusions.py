"""A user's history as the served version sees it, and the items an answer must never hold.

:class:`NeverShow` is computed once per request and is the only test of whether an item
may appear in the answer. Every path that can add an item asks it: the walk of the
training-time lists and of the trending order, live ranking (and the pinned items, which
are drawn from what live ranking kept), and the items added after training that enter
by content. It covers

* items the user interacted with: the trained row and the events posted since, those on
  items the served version has no column for included (unless the caller asked for seen
  items back, ``exclude_seen=false``);
* items the user disliked, at training or since (always);
* items the caller excluded, or the session's own items (always);
* hidden and deleted items (always): through the view's visibility for the version's
  items; an item added after training is a candidate only while visible
  (:class:`~fastinsight.services.serving.view.ColdItems`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from fastinsight.config import Settings
from fastinsight.recsys.matrix import fresh_weights, row_of
from fastinsight.services.serving.bundle import ItemInfo, ModelBundle
from fastinsight.services.serving.realtime import Record
from fastinsight.services.serving.view import CatalogView

NO_ITEMS = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class UserHistory:
    """One user's history: the training row plus the events posted since."""

    row: sp.csr_matrix  # 1 x n_items weights on the version's items
    disliked: np.ndarray  # the version's items the user disliked, at training or since
    new_seen: frozenset[str] = frozenset()  # items outside the version, with a positive event
    new_disliked: frozenset[str] = frozenset()  # items outside the version, disliked


def user_history(
    bundle: ModelBundle, row: int | None, fresh: Sequence[Record], settings: Settings
) -> UserHistory:
    """Fold the events posted since training into trained row ``row`` (None: no row), by
    the same rules as training: weights summed per item, a dislike wins over an older
    positive signal. Events on items the version does not know are kept apart by id."""
    n_items = len(bundle.item_ids)
    trained = bundle.model.user_items
    base = (row_of(trained, row) if row is not None and trained is not None
            else sp.csr_matrix((1, n_items), dtype=np.float32))
    neg = bundle.negatives
    disliked = neg.indices[neg.indptr[row]:neg.indptr[row + 1]] if row is not None else NO_ITEMS
    if not fresh:
        return UserHistory(base, disliked)
    index = bundle.item_index
    positive, negative = fresh_weights(fresh, settings.interaction_weights,
                                       half_life_days=settings.time_decay_half_life_days,
                                       now=datetime.now(UTC))
    known = {i: w for i, w in positive.items() if i in index}
    extra_cols = np.fromiter((index[i] for i in known), dtype=np.int64, count=len(known))
    extra_neg = np.array([index[i] for i in negative if i in index], dtype=np.int64)
    cols, at = np.unique(np.concatenate([base.indices.astype(np.int64), extra_cols]),
                         return_inverse=True)
    summed = np.bincount(at, weights=np.concatenate(
        [base.data.astype(np.float64), np.fromiter(known.values(), dtype=np.float64)]),
        minlength=len(cols)).astype(np.float32)
    keep = ~np.isin(cols, extra_neg) if len(extra_neg) else np.ones(len(cols), dtype=bool)
    merged = sp.csr_matrix((summed[keep], cols[keep], np.array([0, int(keep.sum())])),
                           shape=(1, n_items), dtype=np.float32)
    return UserHistory(merged, np.union1d(disliked, extra_neg).astype(np.int64),
                       frozenset(i for i in positive if i not in index),
                       frozenset(i for i in negative if i not in index))


def member(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``np.isin`` for a short candidate list, without its sorting overhead."""
    if len(values) * len(of) > 4096:
        return np.isin(values, of)
    inside = set(of.tolist())
    return np.fromiter((v in inside for v in values.tolist()), dtype=bool, count=len(values))


class NeverShow:
    """The items one answer must not contain, whether the served version knows them or not.

    ``blocked``: arrays of the version's item indices; ``blocked_ids``: ids of items the
    version has no column for. Hidden and deleted items of the version are read from the
    view at the time of the check.
    """

    def __init__(self, view: CatalogView, blocked: Sequence[np.ndarray],
                 blocked_ids: Iterable[str] = ()) -> None:
        self._visible = view.visible
        self._parts = blocked
        self.ids = frozenset(blocked_ids)

    @classmethod
    def for_user(cls, view: CatalogView, history: UserHistory, exclude_seen: bool,
                 exclude: Sequence[str]) -> NeverShow:
        parts = [history.disliked]
        ids = set(history.new_disliked)
        if exclude:
            parts.append(view.indices(exclude))
            ids.update(i for i in exclude if i not in view.bundle.item_index)
        if exclude_seen:
            parts.append(history.row.indices)
            ids.update(history.new_seen)
        return cls(view, parts, ids)

    @classmethod
    def for_session(cls, view: CatalogView, items: Sequence[str], exclude: Sequence[str]) -> NeverShow:
        """An anonymous session: its own items and the caller's exclusions."""
        both = [*items, *exclude]
        return cls(view, [view.indices(both)], (i for i in both if i not in view.bundle.item_index))

    @cached_property
    def indices(self) -> np.ndarray:
        """The version's items blocked for this user (hidden ones aside), sorted."""
        parts = [p for p in self._parts if len(p)]
        return np.unique(np.concatenate(parts)).astype(np.int64) if parts else NO_ITEMS

    @cached_property
    def _index_set(self) -> frozenset[int]:
        return frozenset(self.indices.tolist())

    def allows(self, index: int) -> bool:
        """Whether the version's item ``index`` may be shown."""
        return bool(self._visible[index]) and index not in self._index_set

    def allows_new(self, info: ItemInfo) -> bool:
        """Whether an item added after training (a visible one) may be shown."""
        return info.item_id not in self.ids

    def keep(self, candidates: np.ndarray) -> np.ndarray:
        """Which of ``candidates`` (the version's item indices) may be shown."""
        keep = np.asarray(self._visible[candidates], dtype=bool)
        if len(self.indices):
            keep &= ~member(candidates, self.indices)
        return keep

    def mask(self, scores: np.ndarray) -> np.ndarray:
        """``scores`` over the whole item axis (float32, modified) with -inf where an item
        may not be shown."""
        scores[~self._visible] = -np.inf
        if len(self.indices):
            scores[self.indices] = -np.inf
        return scores
