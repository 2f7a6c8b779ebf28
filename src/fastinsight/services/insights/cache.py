"""What insight requests read: the current rollup snapshot and the active embeddings, cached.

A request costs one ``_id`` read of the small ``current`` document at most once per
``check_seconds``; the snapshot arrays are loaded (and decoded) only when a refresh
published a new snapshot. Embeddings are loaded once per model version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

import numpy as np
from pymongo.database import Database

from fastinsight.errors import Conflict, NotFoundError
from fastinsight.services.insights.rollup import Rollup, build_rollup
from fastinsight.services.writes import ensure_writable
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.insights import InsightScans, SnapshotStore, snapshot_id_for
from fastinsight.storage.mongo.models import Embeddings, ModelVersionRepository
from fastinsight.storage.mongo.users import UserRepository, erasure_key

log = logging.getLogger(__name__)

ROLLUP_PART = "rollup"
COVERAGE_K = 10
COVERAGE_USERS = 2000

T = TypeVar("T")


class SnapshotReader:
    def __init__(self, db: Database[Document], check_seconds: float = 1.0) -> None:
        self.store = SnapshotStore(db)
        self.check_seconds = check_seconds
        self._rollup: Rollup | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def put(self, rollup: Rollup) -> None:
        """Serve a rollup this process just built without reading it back."""
        with self._lock:
            self._rollup, self._checked = rollup, time.monotonic()

    def get(self) -> Rollup:
        """The current snapshot; raises NotFoundError before the first refresh."""
        now = time.monotonic()
        cached = self._rollup
        if cached is not None and now - self._checked < self.check_seconds:
            return cached
        with self._lock:
            for attempt in (1, 2):
                meta = self.store.current()
                if meta is None:
                    raise NotFoundError(
                        "no insights have been computed yet; an admin can start a refresh "
                        "with POST /v1/admin/insights/refresh"
                    )
                if self._rollup is not None and self._rollup.snapshot_id == meta["snapshot_id"]:
                    break
                try:
                    arrays = self.store.read_part(
                        meta["snapshot_id"], ROLLUP_PART, int(meta["parts"][ROLLUP_PART])
                    )
                except KeyError:  # replaced while we read it: read the new one
                    if attempt == 2:
                        raise
                    continue
                self._rollup = Rollup.from_arrays(meta, arrays)
                log.info("insights snapshot %s loaded", meta["snapshot_id"])
                break
            self._checked = time.monotonic()
            assert self._rollup is not None
            return self._rollup


@dataclass
class LoadedEmbeddings:
    emb: Embeddings
    user_index: dict[str, int]
    item_index: dict[str, int]
    # rollup index -> embedding index (-1 when the model does not know it), per snapshot
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    trained_on: datetime | None = None  # when the version's data snapshot was taken

    def is_erased(self, user_id: str, erased: frozenset[str]) -> bool:
        """Whether ``user_id`` is among ``erased`` (erasure keys, :meth:`EmbeddingCache.erased`)."""
        return bool(erased) and erasure_key(user_id) in erased

    def maps_for(self, rollup: Rollup) -> tuple[np.ndarray, np.ndarray]:
        """(users, items): embedding index of each rollup user / item, -1 if absent."""
        found = self.maps.get(rollup.snapshot_id)
        if found is None:
            users = np.fromiter((self.user_index.get(u, -1) for u in rollup.user_ids),
                                dtype=np.int64, count=rollup.n_users)
            items = np.fromiter((self.item_index.get(i, -1) for i in rollup.item_ids),
                                dtype=np.int64, count=rollup.n_items)
            self.maps = {rollup.snapshot_id: (users, items)}
            found = (users, items)
        return found


class EmbeddingCache:
    def __init__(self, db: Database[Document]) -> None:
        self.repo = ModelVersionRepository(db)
        self.users = UserRepository(db)
        self._loaded: LoadedEmbeddings | None = None
        self._lock = threading.Lock()

    def get(self, version: str | None = None) -> LoadedEmbeddings:
        """Embeddings of ``version`` (default: the active one)."""
        wanted = version or self.repo.active_version()
        if wanted is None:
            raise NotFoundError("no model version is active yet; train one first")
        loaded = self._loaded
        if loaded is not None and loaded.emb.version == wanted:
            return loaded
        with self._lock:
            if self._loaded is None or self._loaded.emb.version != wanted:
                self._loaded = self.load(wanted)
            return self._loaded

    def load(self, version: str) -> LoadedEmbeddings:
        """Read a version's embeddings without caching them."""
        emb = self.repo.load_embeddings(version)
        if emb is None:
            raise NotFoundError(f"model version {version!r} has no embeddings")
        doc = self.repo.get(version) or {}
        return LoadedEmbeddings(
            emb, {str(u): n for n, u in enumerate(emb.user_ids.tolist())},
            {str(i): n for n, i in enumerate(emb.item_ids.tolist())},
            trained_on=(doc.get("snapshot") or {}).get("taken_at"),
        )

    def erased(self, loaded: LoadedEmbeddings | str) -> frozenset[str]:
        """Erasure keys of the users erased since the version (loaded, or named) was
        trained: their rows are never shown (the id may have been created again, and
        starts cold), as serving does. One query of the small tombstone collection."""
        if isinstance(loaded, str):
            doc = self.repo.get(loaded) or {}
            trained_on = (doc.get("snapshot") or {}).get("taken_at")
        else:
            trained_on = loaded.trained_on
        return frozenset(str(d["_id"]) for d in self.users.erasures_since(trained_on))


class BackgroundTask(Generic[T]):
    """At most one run at a time in this process, either inline or on a thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.running = False
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.last_error: str | None = None

    def run(self, fn: Callable[[], T], wait: bool) -> T | None:
        with self._lock:
            if self.running:
                raise Conflict(f"a {self.name} is already running (since {self.started_at})")
            self.running, self.started_at = True, datetime.now(UTC)
        if wait:
            return self._body(fn)
        threading.Thread(target=self._body, args=(fn,), name=self.name, daemon=True).start()
        return None

    def _body(self, fn: Callable[[], T]) -> T:
        try:
            result = fn()
            self.last_error = None
            return result
        except Exception as exc:
            self.last_error = f"{exc.__class__.__name__}: {exc}"
            log.exception("%s failed", self.name)
            raise
        finally:
            self.finished_at = datetime.now(UTC)
            with self._lock:
                self.running = False


def refresh_snapshot(db: Database[Document], now: datetime | None = None) -> Rollup:
    """Scan, aggregate, store a new snapshot, publish it, drop the previous one."""
    now = now or datetime.now(UTC)
    store = SnapshotStore(db)
    rollup = build_rollup(InsightScans(db), snapshot_id_for(now), now)
    ensure_writable(db, "storing the insights snapshot")  # the scan takes a while
    chunks = store.write_part(rollup.snapshot_id, ROLLUP_PART, rollup.to_arrays())
    previous = store.current()
    store.publish({**rollup.meta(), "parts": {ROLLUP_PART: chunks}})
    if previous is not None and previous["snapshot_id"] != rollup.snapshot_id:
        store.delete_snapshot(str(previous["snapshot_id"]), dict(previous.get("parts", {})))
    return rollup


def compute_coverage(rollup: Rollup, loaded: LoadedEmbeddings, seed: int = 0) -> Document:
    """Top-k (seen and hidden items excluded) for a sample of users: how much of the
    catalogue the model reaches, and how many active users it has a vector for."""
    emb = loaded.emb
    user_map, item_map = loaded.maps_for(rollup)
    known = np.flatnonzero(user_map >= 0)
    rng = np.random.default_rng(seed)
    sample = known if known.size <= COVERAGE_USERS else rng.choice(known, COVERAGE_USERS, replace=False)
    blocked = np.zeros(len(emb.item_ids), dtype=bool)
    hidden_items = item_map[(item_map >= 0) & rollup.hidden[: len(item_map)]]
    blocked[hidden_items] = True
    visible = int((rollup.in_catalogue & ~rollup.hidden & (item_map >= 0)).sum())
    row_of_user = np.full(rollup.n_users, -1, dtype=np.int64)
    row_of_user[sample] = np.arange(sample.size)
    seen_items = item_map[np.repeat(np.arange(rollup.n_items), np.diff(rollup.seen_indptr))]
    seen_rows = row_of_user[rollup.seen_users]
    keep = (seen_rows >= 0) & (seen_items >= 0)
    seen_rows, seen_items = seen_rows[keep], seen_items[keep]
    recommended = np.zeros(len(emb.item_ids), dtype=bool)
    k = min(COVERAGE_K, len(emb.item_ids))
    for start in range(0, sample.size if k else 0, 256):
        block = sample[start:start + 256]
        scores = emb.user_vectors[user_map[block]] @ emb.item_vectors.T
        scores[:, blocked] = -np.inf
        in_block = (seen_rows >= start) & (seen_rows < start + len(block))
        scores[seen_rows[in_block] - start, seen_items[in_block]] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        finite = np.take_along_axis(np.isfinite(scores), top, axis=1)
        recommended[top[finite]] = True
    return {
        "computed_at": rollup.computed_at, "snapshot_id": rollup.snapshot_id, "k": k,
        "users_sampled": int(sample.size),
        "catalogue_coverage": round(float(recommended.sum()) / max(visible, 1), 5),
        "items_recommended": int(recommended.sum()),
        "user_coverage": round(float(known.size) / max(rollup.n_users, 1), 5),
    }
