"""Live scoring from candidate pools: the exact best items without an index search.

Users with events since training (and anonymous sessions) are scored live. For a model
scored by an inner product whose version has item pools, the candidates are the user's
training-time list plus the pools of the items taken since, scored exactly; a bound then
names the few other items that could still beat the answer, and they are scored too
(:mod:`fastinsight.recsys.pools` explains the bound). The answer is the one scoring every
item would give, at the cost of a few hundred inner products instead of an HNSW search.
When the bound reaches more than ``MAX_SCAN`` items (a user whose new events moved their
vector far, with a short or no list), the caller goes the way versions without pools go:
the retrieval index, or every item below the index's exact threshold. ``PoolCache`` keeps
a live user's candidates and last answer until their history changes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastinsight.recsys.pools import scan_length
from fastinsight.services.serving.bundle import ModelBundle
from fastinsight.services.serving.exclusions import UserHistory
from fastinsight.storage.mongo.users import erasure_key

# Items the bound may add: about 100 µs of inner products at 64 dimensions on one core,
# still less than an HNSW search with its re-scoring (measured at 100k items).
MAX_SCAN = 32_768


@dataclass(frozen=True)
class Pooled:
    """Candidates best first (score descending, then index) with their exact scores;
    ``scanned``: items the bound reached beyond the pool."""

    scores: np.ndarray
    ids: np.ndarray
    scanned: int


HistoryKey = tuple[str, int, bool, bytes, bytes, bytes, bytes]


def history_key(version: str, history: UserHistory, include_seen: bool) -> HistoryKey:
    """Everything a live answer reads of the user: the version, the training row, the
    history's items and weights, the items taken since training, the disliked items (what
    may be shown) and ``include_seen``."""
    row = -1 if history.trained_row is None else history.trained_row
    return (version, row, include_seen, history.items.tobytes(), history.weights.tobytes(),
            history.fresh_items.tobytes(), history.disliked.tobytes())


@dataclass
class LiveEntry:
    """One live user's pooled candidates for ``key``, computed for ``need`` items, and the
    last answer walked from them with the stamp of what else it read (``answer``)."""

    key: HistoryKey
    need: int
    pool: Pooled
    answer: tuple[Hashable, list[dict[str, Any]]] | None = None


class PoolCache:
    """The pooled candidates of the live users who asked last, kept until their history
    changes (at most ``capacity`` users, least recently asked dropped first; 0: off).

    A user who just acted usually asks again before acting again (the next page, another
    widget): their candidates are the same, only what may be shown can differ. An entry is
    a pure function of its ``HistoryKey`` and of the eligibility at the time: as long as
    the key matches it holds every item scoring at least its need-th eligible score then.
    More eligible items since only raise that score (the entry still holds the answer);
    fewer can leave it short, and the walk over it then finds fewer than ``need`` items:
    the caller scores again (``RecommendService._from_pools``).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, LiveEntry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user_id: str, key: HistoryKey, need: int) -> LiveEntry | None:
        """The user's entry if it was computed for this key and at least ``need`` items."""
        with self._lock:
            found = self._entries.get(user_id)
            if found is None or found.key != key or found.need < need:
                return None
            self._entries.move_to_end(user_id)
            return found

    def put(self, user_id: str, entry: LiveEntry) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries[user_id] = entry
            self._entries.move_to_end(user_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def drop_erased(self, key: str) -> None:
        """Forget the users whose erasure key is ``key`` (an erased user's answers)."""
        with self._lock:
            for user_id in [u for u in self._entries if erasure_key(u) == key]:
                del self._entries[user_id]

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._entries


def pooled(
    bundle: ModelBundle, history: UserHistory, need: int, eligible: Callable[[int], bool],
    pinned: list[int], include_seen: bool,
) -> Pooled | None:
    """The candidates holding the ``need`` best ``eligible`` items, or None when the bound
    reaches more than ``MAX_SCAN`` items. ``include_seen``: seen items may be answered."""
    pools, order, vectors, model = (bundle.item_pools, bundle.norm_order, bundle.item_vectors,
                                    bundle.model)
    assert pools is not None and order is not None and vectors is not None
    q = model.query_vector_of(history.items, history.weights)
    if q is None:
        return None
    parts = [pools[history.fresh_items].ravel()]
    lists = bundle.candidates
    row = history.trained_row
    if row is not None and lists is not None and len(history.trained_items):
        listed = lists.ids[row]
        count = int(np.count_nonzero(listed >= 0))
        parts.append(listed[:count])
        # A shorter list holds every item that was eligible: nothing outside can score.
        base_score = float(lists.scores[row][count - 1]) if count == lists.size else -np.inf
        base = bundle.list_query(row, lambda: model.query_vector_of(history.trained_items,
                                                                    history.trained_weights))
        if base is None:
            return None
    else:
        base_score, base = 0.0, None
    if include_seen:  # left out of the lists: outside the bound's reach
        parts.append(history.items)
    if pinned:
        parts.append(np.asarray(pinned))
    ids = np.unique(np.concatenate(parts).astype(np.int64))
    if len(ids) and ids[0] < 0:
        ids = ids[ids >= 0]
    ids, scores = _best_first(ids, np.asarray(vectors[ids] @ q, dtype=np.float32))
    needed = _nth_eligible(ids, scores, need, eligible)
    distance = float(np.linalg.norm(q if base is None else q - base))
    scale = float(np.linalg.norm(q)) + (0.0 if base is None else float(np.linalg.norm(base)))
    scan = scan_length(order, needed, base_score, distance, scale)
    if scan > MAX_SCAN:
        return None
    if scan:
        # One product over a contiguous slice; only items reaching ``needed`` matter.
        more_scores = np.asarray(order.vectors[:scan] @ q, dtype=np.float32)
        reach = np.flatnonzero(more_scores >= needed)
        have = set(ids.tolist())
        new = [n for n, item in enumerate(order.order[reach].tolist()) if item not in have]
        if new:
            ids, scores = _best_first(
                np.concatenate([ids, np.asarray(order.order[reach[new]], dtype=np.int64)]),
                np.concatenate([scores, more_scores[reach[new]]]))
    # Every item of the answer scores at least ``needed`` (a lower bound of the need-th
    # best eligible score): the rest of the pool cannot be picked, pinned items aside.
    cut = int(np.searchsorted(-scores, -needed, side="right"))
    if pinned:
        keep = np.arange(len(ids)) < cut
        keep |= np.isin(ids, pinned)
        return Pooled(scores[keep], ids[keep], scan)
    return Pooled(scores[:cut], ids[:cut], scan)


def _best_first(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order]


def _nth_eligible(ids: np.ndarray, scores: np.ndarray, n: int, eligible: Callable[[int], bool]
                  ) -> float:
    """The score of the ``n``-th eligible item of a best-first list (-inf: fewer)."""
    found = 0
    for item, score in zip(ids.tolist(), scores.tolist(), strict=True):
        if eligible(item):
            found += 1
            if found == n:
                return float(score)
    return -np.inf
