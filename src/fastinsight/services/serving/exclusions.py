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
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp

from fastinsight.config import Settings
from fastinsight.recsys.matrix import fresh_weights, row_of
from fastinsight.services.serving.bundle import ItemInfo, ModelBundle
from fastinsight.services.serving.realtime import Record
from fastinsight.services.serving.view import CatalogView

NO_ITEMS = np.empty(0, dtype=np.int64)
NO_WEIGHTS = np.empty(0, dtype=np.float32)


class UserHistory:
    """One user's history: the training row plus the events posted since.

    ``items`` / ``weights``: the version's items with a positive signal (sorted) and their
    weights; ``seen`` is ``items``; ``row``: the same as a 1 x n_items matrix (built on
    first use: neither the training-time lists nor the live pools need it);
    ``trained_row`` / ``trained_items`` / ``trained_weights``: the training row (None /
    empty without one); ``fresh_items``: the
    version's items with a positive event since training; ``disliked``: the version's
    items the user disliked, at training or since; ``new_seen`` / ``new_disliked``: ids of
    items the version has no column for.
    """

    def __init__(self, bundle: ModelBundle, row: int | None, disliked: np.ndarray,
                 merged: tuple[np.ndarray, np.ndarray] | None = None,
                 fresh_items: np.ndarray = NO_ITEMS, new_seen: frozenset[str] = frozenset(),
                 new_disliked: frozenset[str] = frozenset()) -> None:
        self._bundle, self._row = bundle, row
        self.trained_row = row
        trained = bundle.model.user_items
        if row is not None and trained is not None:
            start, stop = trained.indptr[row], trained.indptr[row + 1]
            self.trained_items = np.asarray(trained.indices[start:stop])
            self.trained_weights = np.asarray(trained.data[start:stop])
        else:
            self.trained_items, self.trained_weights = NO_ITEMS, NO_WEIGHTS
        self.items, self.weights = merged or (self.trained_items, self.trained_weights)
        self.fresh_items = fresh_items
        self.disliked = disliked
        self.new_seen, self.new_disliked = new_seen, new_disliked
        self._row_matrix: sp.csr_matrix | None = None

    @property
    def seen(self) -> np.ndarray:
        return self.items

    @property
    def row(self) -> sp.csr_matrix:
        if self._row_matrix is None:
            trained = self._bundle.model.user_items
            if self.items is self.trained_items and self._row is not None and trained is not None:
                self._row_matrix = row_of(trained, self._row)
            else:
                self._row_matrix = sp.csr_matrix(
                    (self.weights, self.items, np.array([0, len(self.items)])),
                    shape=(1, len(self._bundle.item_ids)), dtype=np.float32)
        return self._row_matrix


def user_history(
    bundle: ModelBundle, row: int | None, fresh: Sequence[Record], settings: Settings
) -> UserHistory:
    """Fold the events posted since training into trained row ``row`` (None: no row), by
    the same rules as training: weights summed per item, a dislike wins over an older
    positive signal. Events on items the version does not know are kept apart by id."""
    neg = bundle.negatives
    disliked = neg.indices[neg.indptr[row]:neg.indptr[row + 1]] if row is not None else NO_ITEMS
    base = UserHistory(bundle, row, disliked)
    if not fresh:
        return base
    index = bundle.item_index
    positive, negative = fresh_weights(fresh, settings.interaction_weights,
                                       half_life_days=settings.time_decay_half_life_days,
                                       now=datetime.now(UTC))
    # A handful of items: dictionaries cost less than array set operations here.
    extra = {index[i]: w for i, w in positive.items() if i in index}
    extra_neg = {index[i] for i in negative if i in index}
    merged = dict(zip(base.trained_items.tolist(), base.trained_weights.tolist(), strict=True))
    for col, w in extra.items():
        merged[col] = merged.get(col, 0.0) + w
    for col in extra_neg:
        merged.pop(col, None)
    cols = sorted(merged)
    if extra_neg:
        disliked = np.union1d(disliked, np.fromiter(extra_neg, dtype=np.int64, count=len(extra_neg)))
    return UserHistory(bundle, row, disliked,
                       (np.array(cols, dtype=np.int64),
                        np.array([merged[c] for c in cols], dtype=np.float32)),
                       np.array(sorted(extra.keys() - extra_neg), dtype=np.int64),
                       frozenset(i for i in positive if i not in index),
                       frozenset(i for i in negative if i not in index))


class NeverShow:
    """The items one answer must not contain, whether the served version knows them or not.

    ``blocked``: arrays of the version's item indices; ``blocked_ids``: ids of items the
    version has no column for. Hidden and deleted items of the version are read from the
    view at the time of the check. (Derived sets are cached by hand: one object per
    request, and ``functools.cached_property`` takes a lock on every first access.)
    """

    def __init__(self, view: CatalogView, blocked: Sequence[np.ndarray],
                 blocked_ids: Iterable[str] = ()) -> None:
        self._visible = view.visible
        self._everything = view.everything
        self._parts = blocked
        self._indices: np.ndarray | None = None
        self._set: frozenset[int] | None = None
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
            parts.append(history.seen)
            ids.update(history.new_seen)
        return cls(view, parts, ids)

    @classmethod
    def for_session(cls, view: CatalogView, items: Sequence[str], exclude: Sequence[str]) -> NeverShow:
        """An anonymous session: its own items and the caller's exclusions."""
        both = [*items, *exclude]
        return cls(view, [view.indices(both)], (i for i in both if i not in view.bundle.item_index))

    @property
    def indices(self) -> np.ndarray:
        """The version's items blocked for this user (hidden ones aside; may repeat)."""
        if self._indices is None:
            parts = [p for p in self._parts if len(p)]
            self._indices = (np.concatenate(parts) if len(parts) > 1
                             else parts[0] if parts else NO_ITEMS)
        return self._indices

    @property
    def index_set(self) -> frozenset[int]:
        """``indices`` as a set, for checks one item at a time."""
        if self._set is None:
            self._set = frozenset().union(*(p.tolist() for p in self._parts))
        return self._set

    def __len__(self) -> int:
        """How many of the version's items are blocked (an upper bound: they may repeat)."""
        return len(self.indices)

    def allows(self, index: int) -> bool:
        """Whether the version's item ``index`` may be shown."""
        return self._visible[index] and index not in self.index_set

    def allows_new(self, info: ItemInfo) -> bool:
        """Whether an item added after training (a visible one) may be shown."""
        return info.item_id not in self.ids

    def keep(self, candidates: np.ndarray) -> np.ndarray:
        """Which of ``candidates`` (the version's item indices) may be shown."""
        keep = np.asarray(self._visible[candidates], dtype=bool)
        blocked = self.indices
        if not len(blocked):
            return keep
        if len(candidates) * len(blocked) > 4096:
            keep &= ~np.isin(candidates, blocked)
        else:
            inside = self.index_set  # a short candidate list: no sorting
            keep &= ~np.fromiter((c in inside for c in candidates.tolist()), dtype=bool,
                                 count=len(candidates))
        return keep

    def scores(self, scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Scores over the whole item axis as a new float32 array, -inf where an item may
        not be shown or ``allowed`` (the category filters) leaves it out."""
        shown = self._visible if allowed is self._everything else allowed & self._visible
        out = np.where(shown, scores, -np.inf).astype(np.float32, copy=False)
        if len(self.indices):
            out[self.indices] = -np.inf
        return out
