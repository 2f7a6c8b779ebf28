"""Nearest-neighbour search over item embeddings, for serving.

Below ``exact_threshold`` items the search is exact (one matrix-vector product: about
0.5 ms per query at 20,000 x 64, 2.8 ms at 100,000). Above it an HNSW graph from
``hnswlib`` answers approximately. hnswlib was chosen by measurement (``bench/ann.py``,
``bench/results/ann.json``): on 100,000 clustered 64-d vectors, plus a harder 20,000 x 32
set whose queries come from other cluster centres, M=16 / ef_construction=100 / ef=128
kept recall@10 >= 0.98 on both at 0.11 ms p50 per query and a ~27 s build on 2 shared
cores. faiss-HNSW needed 0.19 ms for the same recall, usearch 0.34 ms with a slower
build, and faiss-IVF did not reach the recall target on the harder set.

Whatever the mode, candidates are re-scored exactly, so returned scores are true inner
products (or cosines) and ties break by lower id. Results are always 2-D (one row per
query), padded with id -1 and score -inf when fewer than ``k`` items are left after
exclusions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

log = logging.getLogger(__name__)

Metric = Literal["ip", "cosine"]

EXACT_MAX_ITEMS = 20_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF = 128
_SCORE_CELLS = 16_000_000  # queries x items per exact-search block
_INDEX_FILE = "hnsw.bin"
_VECTORS_FILE = "vectors.npy"
_META_FILE = "index.json"


class VectorIndex:
    """``build(vectors)`` then ``search(queries, k, exclude)``."""

    def __init__(
        self,
        *,
        exact_threshold: int = EXACT_MAX_ITEMS,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef: int = HNSW_EF,
        num_threads: int = 1,
        seed: int = 1,
    ) -> None:
        self.exact_threshold = exact_threshold
        self.m = m
        self.ef_construction = ef_construction
        self.ef = ef
        self.num_threads = num_threads
        self.seed = seed
        self.metric: Metric = "ip"
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self._hnsw: Any = None
        self.build_seconds = 0.0

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def exact(self) -> bool:
        return self._hnsw is None

    # ---- building -----------------------------------------------------------------
    def build(self, vectors: np.ndarray, metric: Metric = "ip") -> Self:
        if metric not in ("ip", "cosine"):
            raise ValueError(f"unknown metric {metric!r}; use 'ip' or 'cosine'")
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2:
            raise ValueError("vectors must be a 2-D array (items x dim)")
        if not np.all(np.isfinite(vecs)):
            raise ValueError("vectors contain NaN or infinite values")
        self.metric = metric
        self.vectors = _normalise(vecs) if metric == "cosine" else vecs
        self._hnsw = None
        started = time.perf_counter()
        if self.size > self.exact_threshold:
            self._hnsw = self._new_graph()
            self._hnsw.add_items(self.vectors, np.arange(self.size), num_threads=max(
                1, self.num_threads))
        self.build_seconds = time.perf_counter() - started
        log.info("vector index %s items=%d dim=%d metric=%s built in %.2fs",
                 "exact" if self.exact else "hnsw", self.size, self.vectors.shape[1], metric,
                 self.build_seconds)
        return self

    def _new_graph(self) -> Any:
        import hnswlib

        graph = hnswlib.Index(space="ip", dim=int(self.vectors.shape[1]))
        graph.init_index(max_elements=self.size, M=self.m,
                         ef_construction=self.ef_construction, random_seed=self.seed)
        graph.set_ef(self.ef)
        return graph

    # ---- searching ----------------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: Sequence[Sequence[int] | np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, scores float32), each n_queries x k, best first.

        ``exclude`` holds one collection of item ids per query (e.g. its history).
        """
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.vectors.shape[1]:
            raise ValueError(f"queries have dim {q.shape[1]}, index has {self.vectors.shape[1]}")
        if exclude is not None and len(exclude) != q.shape[0]:
            raise ValueError("exclude needs one entry per query")
        if self.metric == "cosine":
            q = _normalise(q)
        excl = [np.asarray(e, dtype=np.int64) for e in exclude] if exclude is not None else None
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        if k <= 0 or self.size == 0 or q.shape[0] == 0:
            return ids, scores
        if self.exact:
            self._search_exact(q, k, excl, ids, scores)
        else:
            self._search_graph(q, k, excl, ids, scores)
        return ids, scores

    def _search_exact(self, q: np.ndarray, k: int, excl: list[np.ndarray] | None,
                      ids: np.ndarray, scores: np.ndarray) -> None:
        step = max(1, _SCORE_CELLS // max(1, self.size))
        for start in range(0, q.shape[0], step):
            block = q[start:start + step] @ self.vectors.T
            for r in range(block.shape[0]):
                row = block[r]
                if excl is not None and excl[start + r].size:
                    row[excl[start + r]] = -np.inf
                _take_best(row, np.arange(self.size), k, ids[start + r], scores[start + r])

    def _search_graph(self, q: np.ndarray, k: int, excl: list[np.ndarray] | None,
                      ids: np.ndarray, scores: np.ndarray) -> None:
        longest = max((e.size for e in excl), default=0) if excl is not None else 0
        want = min(self.size, k + longest)
        labels, _ = self._graph_query(q, want)
        for r in range(q.shape[0]):
            cand = labels[r]
            banned = excl[r] if excl is not None else None
            if banned is not None and banned.size:
                cand = cand[~np.isin(cand, banned)]
            if cand.size < k and want < self.size:
                # Exclusions ate the candidates: this row alone searches wider, then exact.
                cand = self._widen(q[r], k, banned, want)
            cand = cand[cand >= 0]
            _take_best(self.vectors[cand] @ q[r], cand, k, ids[r], scores[r])

    def _widen(self, query: np.ndarray, k: int, banned: np.ndarray | None, want: int
               ) -> np.ndarray:
        while want < self.size:
            want = min(self.size, want * 2)
            labels, _ = self._graph_query(query[None, :], want)
            cand: np.ndarray = labels[0]
            if banned is not None and banned.size:
                cand = cand[~np.isin(cand, banned)]
            if cand.size >= k:
                return cand
        row = self.vectors @ query
        if banned is not None and banned.size:
            row[banned] = -np.inf
        return np.flatnonzero(np.isfinite(row))

    def _graph_query(self, q: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            labels, dist = self._hnsw.knn_query(q, k=want, num_threads=self.num_threads)
        except RuntimeError:
            # hnswlib refuses when the graph yields fewer than ``want`` results.
            block = q @ self.vectors.T
            labels = np.argsort(-block, axis=1, kind="stable")[:, :want]
            dist = 1.0 - np.take_along_axis(block, labels, axis=1)
        return np.asarray(labels, dtype=np.int64), np.asarray(dist)

    # ---- persistence --------------------------------------------------------------
    def save(self, directory: Path, *, with_vectors: bool = True) -> None:
        """The graph (``hnsw.bin``), the settings and, unless the caller keeps them
        elsewhere (``with_vectors=False``; pass them back to ``load``), the vectors."""
        directory.mkdir(parents=True, exist_ok=True)
        if with_vectors:
            np.save(directory / _VECTORS_FILE, self.vectors, allow_pickle=False)
        if self._hnsw is not None:
            self._hnsw.save_index(str(directory / _INDEX_FILE))
        meta = {"metric": self.metric, "exact": self.exact, "exact_threshold":
                self.exact_threshold, "m": self.m, "ef_construction": self.ef_construction,
                "ef": self.ef, "seed": self.seed, "size": self.size,
                "dim": int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0}
        (directory / _META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, *, num_threads: int = 1, vectors: np.ndarray | None = None,
             mmap: bool = False) -> VectorIndex:
        """An index ``save`` wrote. ``vectors``: the very vectors it was built over, when
        they were saved apart; ``mmap``: map the saved vectors read-only. The HNSW graph
        itself is always read into this process's memory (hnswlib cannot map it)."""
        meta = json.loads((directory / _META_FILE).read_text())
        index = cls(exact_threshold=int(meta["exact_threshold"]), m=int(meta["m"]),
                    ef_construction=int(meta["ef_construction"]), ef=int(meta["ef"]),
                    num_threads=num_threads, seed=int(meta["seed"]))
        index.metric = meta["metric"]
        if vectors is None:
            vectors = np.load(directory / _VECTORS_FILE, mmap_mode="r" if mmap else None,
                              allow_pickle=False)
        elif "size" in meta and vectors.shape != (int(meta["size"]), int(meta["dim"])):
            raise ValueError(f"{directory}: index of {meta['size']} x {meta['dim']} vectors, "
                             f"given {vectors.shape}")
        index.vectors = vectors
        if not meta["exact"]:
            import hnswlib

            graph = hnswlib.Index(space="ip", dim=int(index.vectors.shape[1]))
            graph.load_index(str(directory / _INDEX_FILE), max_elements=index.size)
            graph.set_ef(index.ef)
            index._hnsw = graph
        return index


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _take_best(row_scores: np.ndarray, cand: np.ndarray, k: int, out_ids: np.ndarray,
               out_scores: np.ndarray) -> None:
    """Write the best ``k`` finite (score, id) pairs, score descending then id ascending."""
    finite = np.isfinite(row_scores)
    row_scores, cand = row_scores[finite], cand[finite]
    n = min(k, row_scores.size)
    if n == 0:
        return
    if n < row_scores.size:
        part = np.argpartition(-row_scores, n - 1)[:n]
        # Items tied with the n-th best may sit just outside the partition: add them back.
        cutoff = row_scores[part].min()
        part = np.flatnonzero(row_scores >= cutoff)
    else:
        part = np.arange(row_scores.size)
    order = np.lexsort((cand[part], -row_scores[part]))[:n]
    out_ids[:n] = cand[part][order]
    out_scores[:n] = row_scores[part][order]
