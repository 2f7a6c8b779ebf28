"""Per-user candidate lists computed once per model version (the recommendation cache).

Serving a known user whose history has not changed since training asks the same
question every time: the model's best items for the training row, without the items
in it and without the user's dislikes. ``precompute`` answers it for every trained user
in batches, so a request only filters a short list (hidden items, caller exclusions,
category caps) instead of folding the user in and searching the item index.

The lists are the model's own ranking, ``Recommender.recommend_many`` on the training
rows, as serving computes it live: through the retrieval index of the model's
embedding space (exact below its threshold, HNSW above, candidates re-scored exactly)
for models scored by an inner product, by exact scores for the others when users x
items stays under ``max_cells``. ``because`` is, for each candidate, the history item
whose embedding is closest by cosine (what "similar to X you liked" names), or -1
without embeddings.

``item_pools`` answers the same question for every item: the model's best items for a
history of that one item. Serving scores a live user from their list plus the pools of
the items they took since (:mod:`fastinsight.recsys.pools`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.ann import EXACT_MAX_ITEMS, VectorIndex
from fastinsight.recsys.base import Recommender
from fastinsight.recsys.embedding import EmbeddingSpace

log = logging.getLogger(__name__)

MAX_SCORE_CELLS = 4_000_000_000  # users x items scored without embeddings
_BATCH = 2048


@dataclass
class CandidateLists:
    """users x size arrays, best first; rows padded with id -1 (score -inf)."""

    ids: np.ndarray  # int32
    scores: np.ndarray  # float32
    because: np.ndarray  # int32 item index, -1 when unknown
    seconds: float = 0.0

    @property
    def size(self) -> int:
        return int(self.ids.shape[1])

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CandidateLists:
        return cls(ids=np.ascontiguousarray(arrays["ids"], dtype=np.int32),
                   scores=np.ascontiguousarray(arrays["scores"], dtype=np.float32),
                   because=np.ascontiguousarray(arrays["because"], dtype=np.int32))


def precompute(
    model: Recommender[Any], matrix: sp.csr_matrix, negatives: sp.csr_matrix, size: int, *,
    exact_threshold: int = EXACT_MAX_ITEMS, num_threads: int = 2,
    max_cells: int = MAX_SCORE_CELLS, index: VectorIndex | None = None,
) -> CandidateLists | None:
    """The best ``size`` unseen, not-disliked items of every user of ``matrix``.

    None when the model can be scored neither by embeddings nor within ``max_cells``.
    ``index``: the embedding space's retrieval index, when the caller has built it.
    """
    started = time.perf_counter()
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    negatives = sp.csr_matrix(negatives)
    n_users, n_items = matrix.shape
    size = max(0, min(size, n_items))
    space = model.embedding_space()
    if space is not None and space.n_items != n_items:
        space = None
    if space is None and n_users * n_items > max_cells:
        log.info("candidates: %d users x %d items is too many to score without embeddings; "
                 "skipped", n_users, n_items)
        return None
    ids = np.full((n_users, size), -1, dtype=np.int32)
    scores = np.full((n_users, size), -np.inf, dtype=np.float32)
    if space is None:
        index = None
    elif index is None:
        index = space.retrieval_index(exact_threshold=exact_threshold, num_threads=num_threads)
    # Users sorted by how many items they block: a batch asks the index for
    # ``size`` plus its longest block, so similar lengths keep batches cheap.
    blocked_counts = np.diff(matrix.indptr) + np.diff(negatives.indptr)
    order = np.argsort(blocked_counts, kind="stable")
    for start in range(0, n_users, _BATCH):
        users = order[start:start + _BATCH]
        found, found_scores = model.recommend_many(matrix[users], size, negatives[users],
                                                   index=index)
        ids[users] = found.astype(np.int32)
        scores[users] = found_scores
    because = _because(space, matrix, ids)
    lists = CandidateLists(ids=ids, scores=scores, because=because,
                           seconds=time.perf_counter() - started)
    log.info("candidates: %d users x %d in %.1fs (%s)", n_users, size, lists.seconds,
             "embeddings" if space is not None else "full scores")
    return lists


def item_pools(model: Recommender[Any], size: int, index: VectorIndex) -> np.ndarray:
    """items x ``size`` (int32, -1 padded): for each item, the model's best other items for
    a history of that one item (weight 1), ranked through ``index`` as serving ranks."""
    started = time.perf_counter()
    n_items = model.n_items
    size = max(0, min(size, n_items - 1))
    pools = np.full((n_items, size), -1, dtype=np.int32)
    for start in range(0, n_items, _BATCH):
        items = np.arange(start, min(n_items, start + _BATCH))
        rows = sp.csr_matrix((np.ones(len(items), dtype=np.float32), items,
                              np.arange(len(items) + 1)), shape=(len(items), n_items))
        found, _ = model.recommend_many(rows, size, index=index)
        pools[items] = found
    log.info("item pools: %d items x %d in %.1fs", n_items, size, time.perf_counter() - started)
    return pools


def _because(space: EmbeddingSpace | None, matrix: sp.csr_matrix, ids: np.ndarray) -> np.ndarray:
    """For each candidate, the user's history item closest to it by embedding cosine."""
    because = np.full(ids.shape, -1, dtype=np.int32)
    if space is None or ids.shape[1] == 0:
        return because
    unit = space.unit_items()
    for u in range(matrix.shape[0]):
        seen = matrix.indices[matrix.indptr[u]:matrix.indptr[u + 1]]
        valid = ids[u] >= 0
        if len(seen) == 0 or not valid.any():
            continue
        picks = ids[u][valid]
        closest = seen[np.argmax(unit[picks] @ unit[seen].T, axis=1)]
        because[u, : len(picks)] = closest
    return because
