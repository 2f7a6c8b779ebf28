"""The one contract every recommender implements.

Models see only integer indices and SciPy sparse matrices; mapping to string ids is
the job of :mod:`fastinsight.recsys.matrix` and the services. A fitted model is a
directory of ``meta.json`` (algorithm, params, extra state) and ``arrays.npz``
(loaded with ``allow_pickle=False``). Subclasses declare their typed parameters as a
Pydantic model and implement ``_fit``, ``score_history`` and ``similar_items``; they
return the arrays worth saving from ``_state_arrays`` and restore them in
``_restore``.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from fastinsight.errors import ModelError

log = logging.getLogger(__name__)

META_FILE = "meta.json"
ARRAYS_FILE = "arrays.npz"
FORMAT_VERSION = 1


class ModelParams(BaseModel):
    """Base for typed hyper-parameters; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=ModelParams)

IdsScores = tuple[np.ndarray, np.ndarray]


def top_n(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> IdsScores:
    """Indices and scores of the ``n`` best entries of a 1-D score vector, best first.

    Excluded indices and non-finite scores are never returned.
    """
    scores = np.asarray(scores, dtype=np.float32).copy()
    if exclude is not None and len(exclude):
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    valid = np.isfinite(scores)
    n = int(min(n, int(valid.sum())))
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    if n < scores.size:
        part = np.argpartition(-scores, n - 1)[:n]
        # Items tied with the n-th best may sit just outside the partition: add them back,
        # so the lowest index wins a tie whatever the partition picked.
        part = np.flatnonzero(scores >= scores[part].min())
    else:
        part = np.arange(scores.size)
    part = part[np.isfinite(scores[part])]
    # Stable order: score descending, then index ascending, so ties are deterministic.
    order = np.lexsort((part, -scores[part]))
    best = part[order][:n]
    return best.astype(np.int64), scores[best]


class Recommender(ABC, Generic[P]):
    """fit / recommend / similar_items / save / load, on integer indices."""

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
        """Top ``n`` items for a user, best first.

        With ``history`` (1 x n_items), the user is scored from that history (fold-in);
        otherwise from the training data of ``user_idx``. Items in the history (or
        the training row) are left out when ``exclude_history``.
        """
        if history is not None:
            row = sp.csr_matrix(history, dtype=np.float32)
            scores = self.score_history(row)[0]
        elif user_idx is not None:
            if self.user_items is None:
                raise ModelError("model is not fitted")
            row = self.user_items[user_idx]
            scores = self.score_users([user_idx])[0]
        else:
            raise ValueError("recommend() needs user_idx or history")
        excluded: list[np.ndarray] = []
        if exclude is not None and len(exclude):
            excluded.append(np.asarray(exclude, dtype=np.int64))
        if exclude_history and row.nnz:
            excluded.append(row.indices.astype(np.int64))
        return top_n(scores, n, np.concatenate(excluded) if excluded else None)

    @abstractmethod
    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        """The ``n`` items most similar to ``item_idx`` (never the item itself)."""

    # ---- embeddings (None where the model has none) ---------------------------------
    def query_vector(self, history: sp.csr_matrix) -> np.ndarray | None:
        """A vector ``q`` with ``score_history(history)[0] == q @ item_factors().T``.

        Models scored by an inner product with their item factors return it, so serving
        can find the best items through a nearest-neighbour index instead of scoring
        the whole catalogue; the others return None.
        """
        return None

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
        np.savez(directory / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
        meta = {
            "format_version": FORMAT_VERSION,
            "algorithm": self.algorithm,
            "params": self.params.model_dump(mode="json"),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "fit_seconds": self.fit_seconds,
            "state": self._state_meta(),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Self:
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("algorithm") != cls.algorithm:
            raise ModelError(f"{directory} holds {meta.get('algorithm')!r}, not {cls.algorithm!r}")
        model = cls(cls.params_class.model_validate(meta["params"]))  # type: ignore[arg-type]
        model.n_users = int(meta["n_users"])
        model.n_items = int(meta["n_items"])
        model.fit_seconds = float(meta.get("fit_seconds", 0.0))
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
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

