"""The embedding space of a model scored by inner products, as one typed object.

A model whose score for (user, item) is ``user_vector @ item_vector`` offers its
vectors through :meth:`~fastinsight.recsys.base.Recommender.embedding_space`. What
other layers need from them goes through this object: the retrieval index that
``recommend_many(..., index=...)`` searches, unit item vectors for "similar to X you
liked" and similar items, and the vectors exported with a model version. Query
vectors (a history folded into the space) stay inside the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastinsight.recsys.ann import EXACT_MAX_ITEMS, VectorIndex


@dataclass(frozen=True)
class EmbeddingSpace:
    """``users`` (trained users x dim) and ``items`` (items x dim), float32.

    ``model.score_users(u) == users[u] @ items.T`` up to float rounding.
    """

    users: np.ndarray
    items: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    def unit_items(self) -> np.ndarray:
        """Item vectors scaled to unit length (zero vectors stay zero): cosine by dot product."""
        norms = np.linalg.norm(self.items, axis=1, keepdims=True)
        unit: np.ndarray = (self.items / np.maximum(norms, 1e-9)).astype(np.float32)
        return unit

    def retrieval_index(
        self, *, exact_threshold: int = EXACT_MAX_ITEMS, num_threads: int = 1
    ) -> VectorIndex:
        """Inner-product index over the item vectors (exact below ``exact_threshold`` items,
        HNSW above), for ``recommend_many(..., index=...)``."""
        return VectorIndex(exact_threshold=exact_threshold, num_threads=num_threads).build(
            np.asarray(self.items, dtype=np.float32), metric="ip")
