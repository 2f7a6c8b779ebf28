"""Two-tower retrieval model (Keras 3, JAX backend) with content features for cold start.

Training uses Keras (imported lazily in :mod:`fastinsight.recsys.two_tower_net`);
scoring uses NumPy on the trained weights, so loading and serving a model needs
neither Keras nor JAX and never waits for a JIT compile.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fastinsight.errors import ModelError
from fastinsight.recsys.base import ModelParams, Recommender
from fastinsight.recsys.content import ContentEncoder, ItemContent, load_encoder
from fastinsight.recsys.ranking import IdsScores, top_n

log = logging.getLogger(__name__)

KERAS_FILE = "model.keras"
CONTENT_DIR = "content"
_CHUNK = 1024


class TwoTowerParams(ModelParams):
    dim: int = Field(default=64, ge=2, le=1024)
    hidden_dim: int = Field(default=0, ge=0, le=4096)  # 0: each tower is linear + normalise
    epochs: int = Field(default=40, ge=1)  # an upper bound: early stopping usually ends sooner
    batch_size: int = Field(default=256, ge=2)
    learning_rate: float = Field(default=0.005, gt=0)
    temperature: float = Field(default=0.05, gt=0)
    history_length: int = Field(default=20, ge=1)
    target_fraction: float = Field(default=0.5, gt=0, lt=1)  # per epoch: targets vs history
    user_ids: bool = Field(
        default=True, description="learn one embedding per user; False: the user tower reads "
        "the history alone, and known and new users are scored the same way",
    )
    user_id_dropout: float = Field(default=0.25, ge=0, le=1)
    item_id_dropout: float = Field(default=0.25, ge=0, le=1)  # used only with content
    logq_correction: bool = True
    item_item_weight: float = Field(default=0.5, ge=0)  # co-consumed items' vectors close
    l2: float = Field(default=1e-4, ge=0)  # on the id embeddings
    validation_fraction: float = Field(default=0.1, ge=0, lt=0.5)
    patience: int = Field(default=3, ge=0)
    min_epochs: int = Field(
        default=10, ge=0, description="epochs before early stopping starts watching: on a "
        "few hundred users the held-out recall is noisy, and an early peak (epoch 5 of 8 on "
        "one MovieLens refit) stopped training before the model had learned",
    )
    monitor: Literal["val_recall", "val_loss"] = "val_recall"
    recall_k: int = Field(default=20, ge=1)
    max_validation_users: int = Field(default=2000, ge=1)
    seed: int = 0


class TwoTower(Recommender[TwoTowerParams]):
    """User tower (id + mean of recent items) x item tower (id + content), cosine scores.

    Content: call :meth:`set_item_content` with one float32 row per item (the item
    index space of the matrix) *before* :meth:`fit`, optionally with the fitted
    :class:`~fastinsight.recsys.content.ContentEncoder` that produced the rows; the
    encoder is then saved with the model and :meth:`item_vectors_for_items` embeds
    items created after training. Without content the model is id-only.

    Users and items unseen at training use a learned "unknown" id slot (trained by
    id dropout), so :meth:`score_history` works from a history alone and
    :meth:`item_vector_for_content` from content alone. With ``user_ids=False`` every
    user takes that slot, in training too: the user tower is the history alone.
    """

    algorithm = "two_tower"
    params_class = TwoTowerParams

    def __init__(self, params: TwoTowerParams | None = None) -> None:
        super().__init__(params)
        self.weights: dict[str, np.ndarray] = {}
        self.item_vectors = np.zeros((0, self.params.dim), dtype=np.float32)
        self.user_vectors = np.zeros((0, self.params.dim), dtype=np.float32)
        self.n_features = 0
        self.user_trained = np.zeros(0, dtype=bool)
        self.item_trained = np.zeros(0, dtype=bool)
        self.content_encoder: ContentEncoder | None = None
        self.history: dict[str, list[float]] = {}
        self._item_features: np.ndarray | None = None
        self._nets: Any = None
        self._source: Path | None = None

    # ---- content ------------------------------------------------------------------
    def set_item_content(
        self, item_features: np.ndarray, encoder: ContentEncoder | None = None
    ) -> Self:
        """Content rows (n_items x F) aligned with the matrix columns; call before fit."""
        features = np.asarray(item_features, dtype=np.float32)
        if features.ndim != 2 or not np.all(np.isfinite(features)):
            raise ModelError("item_features must be a finite 2-D array (n_items x F)")
        self._item_features = features
        self.n_features = features.shape[1]
        self.content_encoder = encoder
        return self

    def item_vector_for_content(self, features: np.ndarray) -> np.ndarray:
        """Embedding(s) of items unseen at training from their content row(s) alone."""
        if not self.n_features:
            raise ModelError("this two_tower model was trained without item content")
        rows = np.asarray(features, dtype=np.float32)
        single = rows.ndim == 1
        rows = rows.reshape(1, -1) if single else rows
        if rows.shape[1] != self.n_features:
            raise ModelError(f"expected {self.n_features} content features, got {rows.shape[1]}")
        vectors = self._item_forward(self.weights, np.zeros(len(rows), dtype=np.int64), rows)
        return vectors[0] if single else vectors

    def item_vectors_for_items(self, items: Sequence[ItemContent]) -> np.ndarray:
        """Encode metadata with the saved encoder, then :meth:`item_vector_for_content`."""
        if self.content_encoder is None:
            raise ModelError("no content encoder was stored with this two_tower model")
        return self.item_vector_for_content(self.content_encoder.transform(items))

    # ---- training -----------------------------------------------------------------
    def _fit(self, matrix: sp.csr_matrix) -> None:
        from fastinsight.recsys import two_tower_net as net

        p = self.params
        if matrix.nnz == 0:
            raise ModelError("two_tower needs at least one interaction")
        if not np.all(np.isfinite(matrix.data)):
            raise ModelError("the interaction matrix contains NaN or infinite weights")
        features = self._item_features
        if features is not None and features.shape[0] != self.n_items:
            raise ModelError(
                f"item content has {features.shape[0]} rows but the matrix has {self.n_items} items"
            )
        binary = _binary(matrix)
        train, val = _split(binary, p.validation_fraction, p.seed)
        counts = np.bincount(train.indices, minlength=self.n_items).astype(np.float64)
        logq = np.log(np.maximum(counts, 1.0) / max(train.nnz, 1)) if p.logq_correction \
            else np.zeros(self.n_items)
        cfg = net.NetConfig(
            n_users=self.n_users, n_items=self.n_items, n_features=self.n_features, dim=p.dim,
            hidden_dim=p.hidden_dim, history_length=p.history_length,
            temperature=p.temperature, learning_rate=p.learning_rate,
            item_item_weight=p.item_item_weight, l2=p.l2, seed=p.seed,
        )
        nets = net.build(cfg)
        item_dropout = p.item_id_dropout if features is not None else 0.0
        batches = net.InteractionBatches(
            train, None, features, logq, p.batch_size, p.history_length, p.target_fraction,
            p.user_id_dropout if p.user_ids else 1.0, item_dropout, p.seed,
            p.item_item_weight > 0,
        )
        val_batches = None
        evaluate = None
        if val.nnz:
            val_batches = net.InteractionBatches(
                train, val.tocoo(), features, logq, p.batch_size, p.history_length, 1.0,
                0.0, 0.0, p.seed + 1, p.item_item_weight > 0,
            )
            evaluate = self._recall_evaluator(train, val)
        self.history = net.train(
            nets, batches, val_batches, p.epochs, p.patience, p.monitor, evaluate,
            min_epochs=p.min_epochs,
        )
        self.weights = net.extract_weights(nets)
        self._nets = nets
        self._source = None
        # ids never seen in training kept their random initial embedding: use the
        # learned "unknown" slot for them (content / history only) instead
        # without user ids every user reads the "unknown" slot, as in training
        self.user_trained = (np.diff(train.indptr) > 0) & p.user_ids
        self.item_trained = np.bincount(train.indices, minlength=self.n_items) > 0
        self._compute_vectors(binary)

    def _recall_evaluator(self, train: sp.csr_matrix, val: sp.csr_matrix) -> Any:
        users = np.flatnonzero(np.diff(val.indptr))
        rng = np.random.default_rng(self.params.seed + 2)
        if len(users) > self.params.max_validation_users:
            users = np.sort(rng.choice(users, self.params.max_validation_users, replace=False))
        k = self.params.recall_k

        item_ids = np.where(np.bincount(train.indices, minlength=self.n_items) > 0,
                            np.arange(1, self.n_items + 1), 0)

        def evaluate(weights: dict[str, np.ndarray]) -> float:
            items = self._item_forward(weights, item_ids, self._item_features)
            total = 0.0
            for start in range(0, len(users), _CHUNK):
                chunk = users[start: start + _CHUNK]
                ids = chunk + 1 if self.params.user_ids else np.zeros_like(chunk)
                vecs = self._user_forward(weights, ids, train[chunk])
                scores = vecs @ items.T
                seen = train[chunk]
                scores[seen.nonzero()] = -np.inf
                top = np.argpartition(-scores, min(k, self.n_items - 1), axis=1)[:, :k]
                truth = val[chunk]
                for r in range(len(chunk)):
                    wanted = truth.indices[truth.indptr[r]: truth.indptr[r + 1]]
                    total += np.isin(top[r], wanted).sum() / min(k, len(wanted))
            return total / max(len(users), 1)

        return evaluate

    def _compute_vectors(self, matrix: sp.csr_matrix) -> None:
        item_ids = np.where(self.item_trained, np.arange(1, self.n_items + 1), 0)
        self.item_vectors = self._item_forward(self.weights, item_ids, self._item_features)
        self.user_vectors = np.zeros((self.n_users, self.params.dim), dtype=np.float32)
        for start in range(0, self.n_users, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, self.n_users))
            self.user_vectors[idx] = self._user_forward(self.weights, self._user_ids(idx),
                                                        matrix[idx])

    def _user_ids(self, user_idx: np.ndarray) -> np.ndarray:
        """Shifted embedding rows: 0 (unknown) for out-of-range or untrained users."""
        raw = np.asarray(user_idx, dtype=np.int64)
        known = (raw >= 0) & (raw < self.n_users)
        known[known] = self.user_trained[raw[known]]
        return np.where(known, raw + 1, 0)

    # ---- NumPy forward pass (mirrors two_tower_net.build) ---------------------------
    def _dense_tail(self, weights: dict[str, np.ndarray], tower: str, x: np.ndarray) -> np.ndarray:
        hidden = f"{tower}_hidden"
        if f"{hidden}/kernel" in weights:
            x = np.maximum(x @ weights[f"{hidden}/kernel"] + weights[f"{hidden}/bias"], 0)
        x = x @ weights[f"{tower}_out/kernel"] + weights[f"{tower}_out/bias"]
        norms = np.sqrt(np.maximum(np.sum(x * x, axis=1, keepdims=True), 1e-12))
        out: np.ndarray = (x / norms).astype(np.float32)
        return out

    def _user_forward(
        self, weights: dict[str, np.ndarray], ids: np.ndarray, history: sp.csr_matrix
    ) -> np.ndarray:
        """``ids`` are shifted (0 = unknown user); ``history`` rows are n_items wide."""
        hist = _binary(history)
        counts = np.maximum(np.diff(hist.indptr), 1).astype(np.float32)
        pooled = sp.diags(1.0 / counts) @ hist @ weights["hist_emb/embeddings"][1:]
        x = np.concatenate([weights["user_id_emb/embeddings"][ids], pooled], axis=1)
        return self._dense_tail(weights, "user", x)

    def _item_forward(
        self, weights: dict[str, np.ndarray], ids: np.ndarray, features: np.ndarray | None
    ) -> np.ndarray:
        parts = [weights["item_id_emb/embeddings"][ids]]
        if self.n_features:
            if features is None:
                raise ModelError("item content is needed to compute item vectors")
            parts.append(features @ weights["item_content/kernel"] + weights["item_content/bias"])
        return self._dense_tail(weights, "item", np.concatenate(parts, axis=1))

    def cold_item_vectors(self, items: Sequence[ItemContent]) -> np.ndarray | None:
        return None if self.content_encoder is None else self.item_vectors_for_items(items)

    def cold_query_vector(self, history: sp.csr_matrix) -> np.ndarray | None:
        return np.asarray(self.user_vectors_for(history)[0], dtype=np.float32)

    # ---- scoring ------------------------------------------------------------------
    def user_vectors_for(
        self, history: sp.csr_matrix, user_idx: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """User-tower vectors from history rows; ``user_idx`` (-1 = unknown) adds the id part."""
        self._require_fitted()
        history = sp.csr_matrix(history, dtype=np.float32)
        if history.shape[1] != self.n_items:
            raise ModelError(f"history has {history.shape[1]} columns, model has {self.n_items}")
        if user_idx is None:
            ids = np.zeros(history.shape[0], dtype=np.int64)
        else:
            ids = self._user_ids(np.asarray(user_idx, dtype=np.int64))
        return self._user_forward(self.weights, ids, history)

    def score_history(
        self, history: sp.csr_matrix, user_idx: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        return np.asarray(self.user_vectors_for(history, user_idx) @ self.item_vectors.T,
                          dtype=np.float32)

    def score_users(self, user_idx: Sequence[int] | np.ndarray) -> np.ndarray:
        self._require_fitted()
        idx = np.asarray(user_idx, dtype=np.int64)
        return np.asarray(self.user_vectors[idx] @ self.item_vectors.T, dtype=np.float32)

    def query_vector(self, history: sp.csr_matrix) -> np.ndarray | None:
        return np.asarray(self.user_vectors_for(history)[0], dtype=np.float32)

    def query_vectors(self, history: sp.csr_matrix) -> np.ndarray | None:
        return np.asarray(self.user_vectors_for(history), dtype=np.float32)

    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        self._require_fitted()
        sims = self.item_vectors @ self.item_vectors[item_idx]
        return top_n(sims, n, np.asarray([item_idx]))

    def user_factors(self) -> np.ndarray | None:
        return self.user_vectors if self.weights else None

    def item_factors(self) -> np.ndarray | None:
        return self.item_vectors if self.weights else None

    def _require_fitted(self) -> None:
        if not self.weights:
            raise ModelError("two_tower model is not fitted")

    # ---- persistence --------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"w/{name}": arr for name, arr in self.weights.items()}
        arrays.update(item_vectors=self.item_vectors, user_vectors=self.user_vectors,
                      user_trained=self.user_trained, item_trained=self.item_trained)
        return arrays

    def _state_meta(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "history": self.history,
                "epochs_run": len(self.history.get("loss", [])),
                "has_content_encoder": self.content_encoder is not None}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.weights = {k[2:]: v for k, v in arrays.items() if k.startswith("w/")}
        self.item_vectors = arrays["item_vectors"]
        self.user_vectors = arrays["user_vectors"]
        self.user_trained = arrays["user_trained"].astype(bool, copy=False)
        self.item_trained = arrays["item_trained"].astype(bool, copy=False)
        self.n_features = int(meta.get("n_features", 0))
        self.history = meta.get("history", {})

    def keras_model(self) -> Any:
        """The trained Keras model (both towers), e.g. to inspect or fine-tune it."""
        if self._nets is not None:
            return self._nets.joint
        if self._source is not None and (self._source / KERAS_FILE).exists():
            from fastinsight.recsys import two_tower_net as net

            return net.load_joint(str(self._source / KERAS_FILE))
        raise ModelError("no Keras model available (not fitted and not loaded from disk)")

    def save(self, directory: Path) -> None:
        super().save(directory)
        target = directory / KERAS_FILE
        if self._nets is not None:
            self._nets.joint.save(str(target))
        elif self._source is not None and (self._source / KERAS_FILE).exists() and (
            (self._source / KERAS_FILE).resolve() != target.resolve()
        ):
            shutil.copyfile(self._source / KERAS_FILE, target)
        if self.content_encoder is not None:
            self.content_encoder.save(directory / CONTENT_DIR)

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False) -> Self:
        model = super().load(directory, mmap=mmap)
        model._source = directory
        if (directory / CONTENT_DIR).exists():
            model.content_encoder = load_encoder(directory / CONTENT_DIR)
        return model


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.eliminate_zeros()
    out.data[:] = 1.0
    out.sort_indices()
    return out


def _split(
    matrix: sp.csr_matrix, fraction: float, seed: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out ``fraction`` of each user's interactions; every user keeps at least one."""
    if fraction <= 0:
        return matrix, sp.csr_matrix(matrix.shape, dtype=np.float32)
    rng = np.random.default_rng([seed, 7])
    held = rng.random(matrix.nnz) < fraction
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    held_per_row = np.bincount(rows[held], minlength=matrix.shape[0])
    full = held_per_row == np.diff(matrix.indptr)
    held[matrix.indptr[:-1][full & (np.diff(matrix.indptr) > 0)]] = False
    coo = matrix.tocoo()
    parts = []
    for mask in (~held, held):
        parts.append(sp.csr_matrix(
            (coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape, dtype=np.float32
        ))
    return parts[0], parts[1]
