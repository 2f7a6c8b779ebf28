"""What a serving process holds: a loaded model version and the item catalogue.

A version's arrays (model factors, id maps, candidate lists, unit item vectors) are mapped
read-only from this host's copy of its files (:mod:`~fastinsight.services.serving.artefacts`),
so the processes of a host share them; the HNSW graphs, which hnswlib cannot map, are built
once per host, saved beside them and read by each process into its own memory.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.ann import EXACT_MAX_ITEMS, HNSW_EF, HNSW_EF_CONSTRUCTION, HNSW_M, VectorIndex
from fastinsight.recsys.base import Recommender
from fastinsight.recsys.candidates import CandidateLists
from fastinsight.recsys.pools import NormOrder
from fastinsight.recsys.registry import load_model
from fastinsight.services.serving.artefacts import HostArtefacts, read_arrays
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)

SERVING_DIR = "serving"  # user_ids, item_ids, neg_data/indices/indptr, daily (.npy each)
CANDIDATES_DIR = "candidates"  # ids, scores, because (.npy each)
SERVING_FILE = "serving.npz"  # the same, in versions stored before the .npy layout
CANDIDATES_FILE = "candidates.npz"
TRENDING_DAYS = 30
LIST_QUERIES = 20_000  # remembered query vectors of trained rows (80 MB at most at 1,024 dims)


@dataclass
class ModelBundle:
    """A model version ready to serve: the model plus id maps and serving arrays."""

    version: str
    algorithm: str
    doc: Document
    model: Recommender[Any]
    user_ids: np.ndarray
    item_ids: np.ndarray
    negatives: sp.csr_matrix
    daily: np.ndarray  # items x TRENDING_DAYS, day 0 = most recent
    user_index: dict[str, int] = field(default_factory=dict)
    item_index: dict[str, int] = field(default_factory=dict)
    item_unit_vectors: np.ndarray | None = None
    ann: VectorIndex | None = None  # cosine between items: similar items
    retrieval: VectorIndex | None = None  # inner product with a user's query vector
    candidates: CandidateLists | None = None  # each trained user's best items (training time)
    item_pools: np.ndarray | None = None  # each item's pool (training time, recsys.pools)
    norm_order: NormOrder | None = None  # the item vectors by length, for the pools' bound
    item_vectors: np.ndarray | None = None  # what query vectors are scored against (with pools)
    _trending: dict[tuple[int, float | None], np.ndarray] = field(default_factory=dict)
    _cold_start: dict[int, np.ndarray] = field(default_factory=dict)
    _orders: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _list_queries: dict[int, np.ndarray | None] = field(default_factory=dict)

    @classmethod
    def load(
        cls, repo: ModelVersionRepository, version: str, workdir: Path, *, build_index: bool = True,
        exact_max_items: int = EXACT_MAX_ITEMS,
    ) -> ModelBundle:
        """Download a version into ``workdir`` and open it there (a private copy, as for a
        sanity check); ``build_index=False`` skips the ANN. Serving uses ``open`` on this
        host's shared copy instead."""
        doc = repo.get(version)
        if doc is None:
            raise KeyError(version)
        repo.download(version, workdir, doc=doc)
        return cls.open(workdir, doc, build_index=build_index, exact_max_items=exact_max_items)

    @classmethod
    def open(
        cls, directory: Path, doc: Document, *, host: HostArtefacts | None = None,
        build_index: bool = True, exact_max_items: int = EXACT_MAX_ITEMS,
    ) -> ModelBundle:
        """The version whose files are in ``directory``, its arrays mapped read-only. With
        ``host`` (the folder is that store's), what is derived from them is built once per
        host and kept beside them."""
        version = str(doc["version"])
        model = load_model(directory / "model", mmap=True)
        arrays = read_arrays(directory, SERVING_DIR, SERVING_FILE)
        if arrays is None:
            raise ValueError(f"model version {version} has no serving arrays")
        user_ids, item_ids = arrays["user_ids"], arrays["item_ids"]
        negatives = sp.csr_matrix(
            (arrays["neg_data"], arrays["neg_indices"], arrays["neg_indptr"]),
            shape=(len(user_ids), len(item_ids)),
        )
        bundle = cls(
            version=version, algorithm=str(doc["algorithm"]), doc=doc, model=model,
            user_ids=user_ids, item_ids=item_ids, negatives=negatives, daily=arrays["daily"],
            user_index={str(u): i for i, u in enumerate(user_ids.tolist())},
            item_index={str(i): n for n, i in enumerate(item_ids.tolist())},
        )
        found = read_arrays(directory, CANDIDATES_DIR, CANDIDATES_FILE)
        if found is not None:
            lists = CandidateLists.from_arrays(found)
            if lists.ids.shape[0] == len(user_ids):
                bundle.candidates = lists
        space = model.embedding_space()
        pools = found.get("pools") if found is not None else None
        if (space is not None and space.n_items == len(item_ids) and pools is not None
                and pools.ndim == 2 and pools.shape[0] == len(item_ids)):
            bundle.item_pools = pools
            items = bundle.item_vectors = np.asarray(space.items, dtype=np.float32)
            by_norm = cache(lambda: NormOrder.of(items))  # derived once, in three files
            bundle.norm_order = (NormOrder(
                order=host.derived_array(directory, "norm_order", lambda: by_norm().order),
                lengths=host.derived_array(directory, "lengths", lambda: by_norm().lengths),
                vectors=host.derived_array(directory, "items_by_norm", lambda: by_norm().vectors),
            ) if host is not None else by_norm())
        if space is not None and space.n_items == len(item_ids):
            bundle.item_unit_vectors = (
                host.derived_array(directory, "item_unit_vectors", space.unit_items)
                if host is not None else read_only(space.unit_items()))
            # Exact below 20,000 items, an HNSW graph above (see recsys.ann).
            if build_index:
                unit = bundle.item_unit_vectors
                bundle.ann = _index(host, directory, "similar", unit, exact_max_items, lambda: (
                    VectorIndex(exact_threshold=exact_max_items, num_threads=2).build(unit, metric="ip")))
                bundle.retrieval = _index(
                    host, directory, "retrieval", np.asarray(space.items, dtype=np.float32),
                    exact_max_items, lambda: space.retrieval_index(exact_threshold=exact_max_items,
                                                                   num_threads=2))
        return bundle

    def list_query(self, row: int, compute: Callable[[], np.ndarray | None]) -> np.ndarray | None:
        """The query vector trained row ``row``'s candidate list was ranked with (its
        training history folded in): ``compute()``, remembered for the users asking again
        (at most ``LIST_QUERIES`` rows, then forgotten all at once)."""
        found = self._list_queries.get(row)
        if found is None:
            if len(self._list_queries) >= LIST_QUERIES:
                self._list_queries.clear()
            found = self._list_queries[row] = compute()
        return found

    def similar_by_vector(self, index: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Nearest items by embedding cosine through the ANN index; None without vectors."""
        if self.ann is None or self.item_unit_vectors is None:
            return None
        ids, scores = self.ann.search(self.item_unit_vectors[index], n, exclude=[[index]])
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def sanity_problem(self) -> str | None:
        """Why this version must not be served, or None if it looks healthy."""
        if self.model.n_items != len(self.item_ids):
            return f"model has {self.model.n_items} items, id map has {len(self.item_ids)}"
        if len(self.user_ids) == 0:
            return "no users"
        lists = self.candidates
        if lists is not None and lists.ids.size and not (
                int(lists.ids.min()) >= -1 and int(lists.ids.max()) < len(self.item_ids)):
            return "candidate lists name items outside the catalogue"
        probe = np.linspace(0, len(self.user_ids) - 1, num=min(5, len(self.user_ids)), dtype=int)
        for user in probe:
            scores = self.model.score_users([int(user)])[0]
            if scores.shape != (len(self.item_ids),):
                return f"score vector has shape {scores.shape}"
            if np.isnan(scores).any():
                return "scores contain NaN"
        return None

    def ranked_by(self, scores: np.ndarray) -> np.ndarray:
        """Item indices best first for one of this version's cached score arrays."""
        cached = self._orders.get(id(scores))
        if cached is not None and cached[0] is scores:
            return cached[1]
        order = np.argsort(-scores, kind="stable")
        self._orders[id(scores)] = (scores, order)  # holds ``scores``: the id stays unique
        return order

    def cold_start_scores(self, window_days: int) -> np.ndarray:
        """Trending over ``window_days``, or over every kept day when that window is empty
        (cached per version, like ``trending_scores``)."""
        cached = self._cold_start.get(window_days)
        if cached is None:
            cached = self.trending_scores(window_days)
            if not cached.any():
                cached = self.trending_scores(self.daily.shape[1])
            self._cold_start[window_days] = cached
        return cached

    def trending_scores(self, window_days: int, half_life_days: float | None = None) -> np.ndarray:
        """Item scores over the last ``window_days`` (cached per version; do not modify)."""
        days = max(1, min(window_days, self.daily.shape[1]))
        key = (days, half_life_days or None)
        cached = self._trending.get(key)
        if cached is not None:
            return cached
        counts = self.daily[:, :days]
        if half_life_days:
            decay = 0.5 ** (np.arange(days) / half_life_days)
            scores = np.asarray(counts @ decay, dtype=np.float32)
        else:
            scores = np.asarray(counts.sum(axis=1), dtype=np.float32)
        scores.setflags(write=False)
        self._trending[key] = scores
        return scores


def read_only(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _index(host: HostArtefacts | None, directory: Path, name: str, vectors: np.ndarray,
           exact_max_items: int, build: Callable[[], VectorIndex]) -> VectorIndex:
    """``build()``, or with ``host`` above the exact threshold its HNSW graph built once per
    host, saved, and read back over the same (mapped) ``vectors``."""
    if host is None or len(vectors) <= exact_max_items:
        return build()
    folder = host.derived_folder(
        directory, f"{name}-hnsw-m{HNSW_M}-efc{HNSW_EF_CONSTRUCTION}-ef{HNSW_EF}",
        lambda into: build().save(into, with_vectors=False))
    return VectorIndex.load(folder, num_threads=2, vectors=vectors)


@dataclass
class ItemInfo:
    item_id: str
    title: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    hidden: bool
    created_at: datetime | None


class ItemCatalog:
    """Item metadata for filtering and explaining; refreshed from MongoDB in the background.

    Items this process writes are applied at once (``apply``), others on the next refresh.
    Every change moves ``revision`` on and is journalled, so a serving view built at an
    earlier revision updates just the items changed since (``changes_since``) instead of
    passing over the whole catalogue again. Changes mutate the item map in place, under a
    lock: a write costs the same at 100 items as at 100,000.
    """

    JOURNAL = 20_000  # changes remembered; a view further behind is rebuilt

    def __init__(self) -> None:
        self.items: dict[str, ItemInfo] = {}
        self.refreshed_at: datetime | None = None
        self.revision = 0
        self._base = 0  # revision of the last full reload: views from before it rebuild
        self._journal: deque[tuple[int, str]] = deque(maxlen=self.JOURNAL)
        self._lock = threading.Lock()

    def refresh(self, documents: list[Document]) -> bool:
        """Replace everything (start-up and version switches); True if anything changed."""
        items = {d["item_id"]: _info(d) for d in documents}
        with self._lock:
            changed = self.refreshed_at is None or items != self.items
            self.items = items
            self.refreshed_at = datetime.now(UTC)
            if changed:
                self.revision += 1
                self._base = self.revision
                self._journal.clear()
        return changed

    def merge(self, documents: list[Document]) -> bool:
        """Apply changed items; True if anything changed."""
        for d in documents:
            self._set(d["item_id"], _info(d))
        return bool(documents)

    def apply(self, document: Document | None, item_id: str) -> None:
        self._set(item_id, None if document is None else _info(document))

    def _set(self, item_id: str, info: ItemInfo | None) -> None:
        with self._lock:
            if info is None:
                self.items.pop(item_id, None)
            else:
                self.items[item_id] = info
            self.revision += 1
            self._journal.append((self.revision, item_id))

    def get(self, item_id: str) -> ItemInfo | None:
        return self.items.get(item_id)

    def gone(self, item_id: str) -> bool:
        """Known not to exist (deleted, or never created): the catalogue is loaded and
        lacks it. Before the first load nothing is known to be gone."""
        return self.refreshed_at is not None and item_id not in self.items

    def snapshot(self) -> tuple[int, dict[str, ItemInfo]]:
        """(revision, a copy of the item map at that revision): for a full view build."""
        with self._lock:
            return self.revision, dict(self.items)

    def changes_since(self, revision: int) -> tuple[int, list[tuple[str, ItemInfo | None]]] | None:
        """(current revision, [(item id, its entry now or None if deleted)]) for everything
        changed after ``revision``; None when the journal no longer reaches back that far
        or the whole catalogue was reloaded since (the caller rebuilds)."""
        with self._lock:
            if revision < self._base or revision > self.revision:
                return None
            # The journal holds consecutive revisions up to the current one.
            if revision < self.revision and self._journal[0][0] > revision + 1:
                return None
            changed: dict[str, None] = {}
            for at, item_id in reversed(self._journal):
                if at <= revision:
                    break
                changed[item_id] = None
            return self.revision, [(i, self.items.get(i)) for i in reversed(changed)]


def _info(d: Document) -> ItemInfo:
    return ItemInfo(
        item_id=d["item_id"], title=d.get("title") or d["item_id"],
        categories=tuple(d.get("categories") or ()), tags=tuple(d.get("tags") or ()),
        hidden=bool(d.get("hidden", False)), created_at=d.get("created_at"),
    )
