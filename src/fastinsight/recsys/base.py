"""The one contract every recommender implements.

Models see only integer indices and SciPy sparse matrices; mapping to string ids is
the job of :mod:`fastinsight.recsys.matrix` and the services. A fitted model is a
directory of ``meta.json`` (algorithm, params, extra state, the array manifest) and one
``.npy`` file per array under ``arrays/`` (loaded with ``allow_pickle=False``). Serving
loads them with ``mmap=True``: every array is mapped read-only from its file, so the
worker processes of one host share one copy in the page cache, and any write to a
model array raises instead of diverging between processes. Models saved before
(format 1: one ``arrays.npz``) still load, into memory, and are marked read-only the
same way. Subclasses declare their typed parameters as a
Pydantic model and implement ``_fit``, ``score_history`` and ``similar_items``; they
return the arrays worth saving from ``_state_arrays`` and restore them in
``_restore``. Ranking is one rule for all of them: ``recommend_many`` ranks many
users at once (``recommend`` is its one-row case), by exact scores in blocks or,
for models with an ``embedding_space``, through its retrieval index.
"""

from __future__ import annotations

import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from fastinsight.errors import ModelError
from fastinsight.recsys.ann import VectorIndex
from fastinsight.recsys.content import ItemContent
from fastinsight.recsys.embedding import EmbeddingSpace
from fastinsight.recsys.ranking import (
    IdsScores,
    append_items,
    csr_rows,
    items_in_order,
    left_out,
    missing_items,
    row_items,
    top_n,
)

log = logging.getLogger(__name__)

META_FILE = "meta.json"
ARRAYS_DIR = "arrays"  # one .npy per array (format 2)
ARRAYS_FILE = "arrays.npz"  # format 1: every array in one archive (still loaded)
FORMAT_VERSION = 2
_RANK_CELLS = 8_000_000  # rows x items scored per block by recommend_many without an index


class ModelParams(BaseModel):
    """Base for typed hyper-parameters; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=ModelParams)

class Recommender(ABC, Generic[P]):
    """fit / recommend(_many) / similar_items / save / load, on integer indices."""

    algorithm: ClassVar[str]
    params_class: ClassVar[type[ModelParams]]

    def __init__(self, params: P | None = None) -> None:
        self.params: P = params if params is not None else self.params_class()  # type: ignore[assignment]
        self.n_users = 0
        self.n_items = 0
        self.user_items: sp.csr_matrix | None = None
        self.fit_seconds = 0.0

    # ---- training -----------------------------------------------------------------
    def fit(self, matrix: sp.csr_matrix) -> Self:
        """Fit on a users x items matrix of non-negative confidence weights."""
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        if matrix.nnz and not np.all(np.isfinite(matrix.data)):
            raise ModelError("fit() got NaN or infinite weights")
        if matrix.nnz and float(matrix.data.min()) < 0:
            raise ModelError("fit() takes non-negative weights; drop dislikes before fitting")
        self.n_users, self.n_items = matrix.shape
        self.user_items = matrix
        started = time.perf_counter()
        self._fit(matrix)
        self.fit_seconds = time.perf_counter() - started
        self._check_finite()
        log.info(
            "fit %s users=%d items=%d nnz=%d in %.2fs",
            self.algorithm, self.n_users, self.n_items, matrix.nnz, self.fit_seconds,
        )
        return self

    @abstractmethod
    def _fit(self, matrix: sp.csr_matrix) -> None: ...

    #: Parameters a fitted model can change without refitting (:meth:`derive_from`); a
    #: hyper-parameter search varies them innermost, so consecutive trials share a fit.
    derived_params: ClassVar[tuple[str, ...]] = ()

    def derive_from(self, previous: Recommender[Any], matrix: sp.csr_matrix) -> bool:
        """Become fitted on ``matrix`` by adapting ``previous`` instead of fitting.

        ``previous`` must have been fitted on ``matrix`` with the same side data; its
        parameters may differ from this model's in :attr:`derived_params` only. On
        success (True) ``previous`` is consumed: its fitted state moves here (no copy of
        a large array) and it is left unfitted. False: nothing changed, call :meth:`fit`.
        """
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        if (not self.derived_params or type(previous) is not type(self)
                or previous.user_items is None or not same_entries(previous.user_items, matrix)
                or not differ_only_in(self.params, previous.params, self.derived_params)):
            return False
        started = time.perf_counter()
        if not self._derive(previous):
            return False
        self.n_users, self.n_items = matrix.shape
        self.user_items = matrix
        previous.user_items = None
        self.fit_seconds = time.perf_counter() - started
        self._check_finite()
        log.info("derived %s from a fit with %s in %.2fs", self.algorithm,
                 {k: getattr(previous.params, k) for k in self.derived_params}, self.fit_seconds)
        return True

    def _derive(self, previous: Recommender[Any]) -> bool:
        """Take ``previous``'s fitted state, adapted to this model's parameters."""
        return False

    @classmethod
    def data_limits(cls, n_users: int, n_items: int) -> dict[str, int]:
        """The largest value of an integer parameter that still changes the model on a
        matrix of this shape (item-kNN: ``k`` up to ``n_items - 1``, every other item);
        a search widens no further than that."""
        return {}

    # ---- scoring ------------------------------------------------------------------
    @abstractmethod
    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores (rows x n_items) for users described only by their interaction rows.

        This is the fold-in path: it serves users unseen at training time and users
        whose history changed since, without retraining.
        """

    def score_users(self, user_idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Scores for users known at training time. Default: fold in their training rows."""
        if self.user_items is None:
            raise ModelError("model is not fitted")
        return self.score_history(self.user_items[np.asarray(user_idx, dtype=np.int64)])

    def recommend(
        self,
        user_idx: int | None,
        n: int,
        exclude: Sequence[int] | np.ndarray | None = None,
        history: sp.csr_matrix | None = None,
        exclude_history: bool = True,
    ) -> IdsScores:
        """Top ``n`` items for one user, best first: ``recommend_many`` for one row.

        With ``history`` (1 x n_items), the user is scored from that history (fold-in);
        otherwise from the training data of ``user_idx``. Items in the history (or
        the training row) are left out when ``exclude_history``.
        """
        users: list[int] | None = None
        if history is not None:
            rows = history
        elif user_idx is not None:
            if self.user_items is None:
                raise ModelError("model is not fitted")
            rows, users = self.user_items[[user_idx]], [user_idx]
        else:
            raise ValueError("recommend() needs user_idx or history")
        extra = None
        if exclude is not None and len(exclude):
            cols = np.asarray(exclude, dtype=np.int64)
            extra = sp.csr_matrix((np.ones(cols.size, dtype=np.float32), cols, [0, cols.size]),
                                  shape=(1, self.n_items))
        ids, scores = self.recommend_many(rows, n, extra, users=users,
                                          exclude_history=exclude_history)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def recommend_many(
        self,
        histories: sp.csr_matrix,
        n: int,
        exclude: sp.csr_matrix | None = None,
        *,
        users: Sequence[int] | np.ndarray | None = None,
        index: VectorIndex | None = None,
        exclude_history: bool = True,
        include: Sequence[int] | np.ndarray | None = None,
    ) -> IdsScores:
        """The best ``n`` items of every row of ``histories`` (rows x n_items), best first.

        Returns (ids int64, scores float32), each rows x ``n``, padded with id -1 and
        score -inf where fewer than ``n`` items are left. Row ``r`` leaves out the items
        of ``exclude[r]`` and, when ``exclude_history``, those of ``histories[r]``.

        A row is scored from its history (fold-in), or, with ``users`` (one trained
        user index per row), from that user's training state (``score_users``). With
        ``index`` (``embedding_space().retrieval_index()``), the rows' vectors are
        searched in it: exact below its threshold, HNSW above, candidates re-scored
        exactly. Without, every item is scored, in blocks. Ties go to the lower index.

        ``include``: items a caller must see whatever their rank (pinned ones). Each
        row lists those not among its best ``n`` and not left out right after them,
        with their scores; rows are then ``n + len(include)`` wide.
        """
        rows = csr_rows(histories, self.n_items, "histories")
        n = max(0, int(n))
        user_idx = None if users is None else np.asarray(users, dtype=np.int64).reshape(-1)
        if user_idx is not None and user_idx.size != rows.shape[0]:
            raise ValueError(f"{user_idx.size} users for {rows.shape[0]} history rows")
        extra = None if exclude is None else csr_rows(exclude, self.n_items, "exclude")
        if extra is not None and extra.shape[0] != rows.shape[0]:
            raise ValueError(f"exclude has {extra.shape[0]} rows, histories {rows.shape[0]}")
        also = items_in_order(include, self.n_items)
        seen = rows if exclude_history else None
        if index is not None:
            return self._search(index, rows, n, user_idx, left_out(seen, extra), also)
        ids = np.full((rows.shape[0], n + also.size), -1, dtype=np.int64)
        scores = np.full((rows.shape[0], n + also.size), -np.inf, dtype=np.float32)
        step = max(1, _RANK_CELLS // max(1, self.n_items))
        for start in range(0, rows.shape[0], step):
            stop = min(rows.shape[0], start + step)
            block = (self.score_users(user_idx[start:stop]) if user_idx is not None
                     else self.score_history(rows[start:stop]))
            for r in range(start, stop):
                parts = [row_items(m, r) for m in (seen, extra) if m is not None]
                banned = (parts[0] if len(parts) == 1 else np.concatenate(parts)) if parts else None
                best, best_scores = top_n(block[r - start], n, banned)
                ids[r, : best.size], scores[r, : best.size] = best, best_scores
                if also.size:
                    cols = missing_items(also, best, banned)
                    append_items(ids[r], scores[r], best.size, cols, block[r - start][cols])
        return ids, scores

    def _search(
        self, index: VectorIndex, rows: sp.csr_matrix, n: int, user_idx: np.ndarray | None,
        blocked: list[np.ndarray] | None, also: np.ndarray,
    ) -> IdsScores:
        if index.metric != "ip" or index.size != self.n_items:
            raise ValueError("index is not an inner-product index over this model's items")
        if user_idx is not None:
            space = self.embedding_space()
            queries = None if space is None else space.users[user_idx]
        else:
            queries = self.query_vectors(rows)
        if queries is None:
            raise ModelError(f"{self.algorithm} has no embedding space to search; rank it "
                             "without an index")
        found, found_scores = index.search(queries, n, exclude=blocked)
        if not also.size:
            return found, found_scores
        ids = np.full((found.shape[0], n + also.size), -1, dtype=np.int64)
        scores = np.full((found.shape[0], n + also.size), -np.inf, dtype=np.float32)
        ids[:, :n], scores[:, :n] = found, found_scores
        for r in range(found.shape[0]):
            filled = int(np.count_nonzero(found[r] >= 0))
            cols = missing_items(also, found[r][:filled], blocked[r] if blocked is not None else None)
            append_items(ids[r], scores[r], filled, cols, index.vectors[cols] @ queries[r])
        return ids, scores

    @abstractmethod
    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        """The ``n`` items most similar to ``item_idx`` (never the item itself)."""

    # ---- embeddings (None where the model has none) ---------------------------------
    def embedding_space(self) -> EmbeddingSpace | None:
        """Users and items as vectors whose inner product is the score, or None.

        Built from ``user_factors``/``item_factors``: a model returns those only when
        ``score_users(u) == user_factors()[u] @ item_factors().T`` and
        ``score_history(h) == query_vectors(h) @ item_factors().T``.
        """
        users, items = self.user_factors(), self.item_factors()
        if users is None or items is None:
            return None
        return EmbeddingSpace(users=users, items=items)

    # ---- optional capabilities (None where the model has none) -------------------------
    def cold_item_vectors(self, items: Sequence[ItemContent]) -> np.ndarray | None:
        """Vectors (len(items) x dim) for items unseen at training, from their content alone.

        Serving scores them against ``cold_query_vector`` so items added after training can
        be recommended by a model that reads content; None for models that cannot.
        """
        return None

    def cold_query_vector(self, history: sp.csr_matrix) -> np.ndarray | None:
        """The vector a 1 x n_items history scores ``cold_item_vectors`` with, or None."""
        return None

    def item_neighbours(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Each item's kept neighbours (indices, scores; n_items x k, -1 padded), or None."""
        return None

    def query_vector(self, history: sp.csr_matrix) -> np.ndarray | None:
        """A vector ``q`` with ``score_history(history)[0] == q @ item_factors().T``.

        Models scored by an inner product with their item factors return it, so their
        best items can be found through a nearest-neighbour index instead of scoring
        the whole catalogue (``recommend_many(..., index=...)``); the others return None.
        """
        return None

    def query_vector_of(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
        """``query_vector`` of one history given as item indices (sorted, unique) and their
        weights, without building a sparse matrix (the per-request path)."""
        row = sp.csr_matrix((np.asarray(weights, dtype=np.float32), np.asarray(items),
                             np.array([0, len(items)])), shape=(1, self.n_items))
        return self.query_vector(row)

    def query_vectors(self, history: sp.csr_matrix) -> np.ndarray | None:
        """``query_vector`` for each row of ``history`` (rows x dim), or None."""
        rows = sp.csr_matrix(history, dtype=np.float32)
        vectors = []
        for r in range(rows.shape[0]):
            vector = self.query_vector(rows[r])
            if vector is None:
                return None
            vectors.append(vector)
        return np.vstack(vectors).astype(np.float32) if vectors else None

    def user_factors(self) -> np.ndarray | None:
        return None

    def item_factors(self) -> np.ndarray | None:
        return None

    # ---- persistence --------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _state_meta(self) -> dict[str, Any]:
        return {}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Rebuild in-memory state from what ``_state_arrays``/``_state_meta`` saved."""

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = dict(self._state_arrays())
        if self.user_items is not None:
            ui = self.user_items.tocsr()
            arrays.update(
                _ui_data=ui.data, _ui_indices=ui.indices, _ui_indptr=ui.indptr,
            )
        for name, arr in arrays.items():
            if arr.dtype == object:
                raise ModelError(f"array {name!r} has dtype object; it cannot be saved safely")
        files = save_arrays(directory / ARRAYS_DIR, arrays)
        meta = {
            "format_version": FORMAT_VERSION,
            "algorithm": self.algorithm,
            "params": self.params.model_dump(mode="json"),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "fit_seconds": self.fit_seconds,
            "state": self._state_meta(),
            "arrays": files,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False) -> Self:
        """The model saved in ``directory``. ``mmap``: map its arrays read-only (serving)."""
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("algorithm") != cls.algorithm:
            raise ModelError(f"{directory} holds {meta.get('algorithm')!r}, not {cls.algorithm!r}")
        model = cls(cls.params_class.model_validate(meta["params"]))  # type: ignore[arg-type]
        model.n_users = int(meta["n_users"])
        model.n_items = int(meta["n_items"])
        model.fit_seconds = float(meta.get("fit_seconds", 0.0))
        if "arrays" in meta:
            arrays = load_arrays(directory / ARRAYS_DIR, meta["arrays"], mmap=mmap)
        else:
            with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            if mmap:
                for arr in arrays.values():
                    arr.setflags(write=False)
        if "_ui_data" in arrays:
            model.user_items = sp.csr_matrix(
                (arrays.pop("_ui_data"), arrays.pop("_ui_indices"), arrays.pop("_ui_indptr")),
                shape=(model.n_users, model.n_items),
            )
        model._restore(arrays, meta.get("state", {}))
        return model

    # ---- checks -------------------------------------------------------------------
    def _check_finite(self) -> None:
        for name, arr in self._state_arrays().items():
            if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
                raise ModelError(f"{self.algorithm}: fit produced non-finite values in {name}")



# ---- array files ------------------------------------------------------------------------
def save_arrays(directory: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Each array as a C-ordered ``.npy`` file (mappable as it is); returns name -> file."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for n, (name, arr) in enumerate(arrays.items()):
        # Array names may hold "/" (layer weights): the file name only keeps them readable.
        file = f"{n:03d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:80]}.npy"
        np.save(directory / file, np.ascontiguousarray(arr), allow_pickle=False)
        files[name] = file
    return files


def load_arrays(directory: Path, files: dict[str, str], *, mmap: bool) -> dict[str, np.ndarray]:
    """What ``save_arrays`` wrote; ``mmap``: mapped read-only instead of read into memory."""
    arrays: dict[str, np.ndarray] = {}
    for name, file in files.items():
        if Path(file).name != file or not file.endswith(".npy"):
            raise ModelError(f"{directory}: array file {file!r} is not a plain .npy name")
        arrays[name] = load_npy(directory / file, mmap=mmap)
    return arrays


def load_npy(path: Path, *, mmap: bool) -> np.ndarray:
    """One ``.npy`` file: mapped read-only with ``mmap``, else read into memory.

    A mapped array is returned as a plain ``ndarray`` view of the ``np.memmap`` (its
    ``base``): the same pages, but indexing skips ``memmap.__getitem__``, which costs
    microseconds per call in Python on the serving path."""
    if not mmap:
        loaded: np.ndarray = np.load(path, allow_pickle=False)
        return loaded
    return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))


def same_entries(a: sp.spmatrix | None, b: sp.spmatrix | None) -> bool:
    """Equal shape and stored entries, or both None (an O(nnz) check: cheap against the
    fit a derivation saves)."""
    if a is None or b is None:
        return a is b
    if a is b:
        return True
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    return bool(a.shape == b.shape and a.nnz == b.nnz and np.array_equal(a.indptr, b.indptr)
                and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


def differ_only_in(a: ModelParams, b: ModelParams, names: Sequence[str]) -> bool:
    """Whether ``a`` and ``b`` are equal in every parameter but ``names``."""
    left, right = a.model_dump(), b.model_dump()
    return all(left[k] == right[k] for k in left if k not in names)
