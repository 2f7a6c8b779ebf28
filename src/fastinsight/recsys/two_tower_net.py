"""The Keras side of the two-tower model: layers, towers, batches and the training loop.

Import this module only from inside functions (it imports Keras, after selecting the
JAX backend). :mod:`fastinsight.recsys.two_tower` owns the model's state and scores
with NumPy from the weights returned by :func:`extract_weights`, so serving never
needs Keras or JAX.

Index conventions: row 0 of every id embedding is the "unknown" slot (users or items
unseen at training, and ids dropped out during training); known ids are shifted by
one. In history inputs, 0 is padding.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.keras_env import use_jax_backend

use_jax_backend()

import keras  # noqa: E402
from keras import ops  # noqa: E402

log = logging.getLogger(__name__)

USER_LAYERS = ("user_id_emb", "hist_emb", "user_hidden", "user_out")
ITEM_LAYERS = ("item_id_emb", "item_content", "item_hidden", "item_out")


@keras.saving.register_keras_serializable(package="fastinsight")
class MaskedMeanPool(keras.layers.Layer):  # type: ignore[misc]
    """Mean of history embeddings over non-padding positions (all padding -> zeros)."""

    def call(self, embeddings: Any, ids: Any) -> Any:
        mask = ops.expand_dims(ops.cast(ops.greater(ids, 0), embeddings.dtype), -1)
        total = ops.sum(embeddings * mask, axis=1)
        count = ops.maximum(ops.sum(mask, axis=1), 1.0)
        return total / count


@keras.saving.register_keras_serializable(package="fastinsight")
class InBatchLogits(keras.layers.Layer):  # type: ignore[misc]
    """Cosine logits of every query (user, or context item) against every positive.

    ``logq`` (log sampling probability of each positive) is subtracted so popular items
    are not over-penalised as negatives; other rows holding the same item are masked,
    they are not negatives. With ``anchor_keys`` (item queries), a positive equal to
    the row's own query item is masked too, and rows whose key is negative (no
    context item) get a zero loss.
    """

    def __init__(self, temperature: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = temperature

    def call(
        self, queries: Any, items: Any, item_keys: Any, logq: Any, anchor_keys: Any = None
    ) -> Any:
        logits = ops.matmul(queries, ops.transpose(items)) / self.temperature
        logits = logits - ops.expand_dims(logq, 0)
        eye = ops.cast(ops.eye(ops.shape(item_keys)[0]), "bool")
        masked = ops.logical_and(
            ops.equal(ops.expand_dims(item_keys, 1), ops.expand_dims(item_keys, 0)),
            ops.logical_not(eye),
        )
        if anchor_keys is not None:
            masked = ops.logical_or(
                masked, ops.equal(ops.expand_dims(anchor_keys, 1), ops.expand_dims(item_keys, 0))
            )
            no_anchor = ops.expand_dims(ops.less(anchor_keys, 0), 1)
            logits = ops.where(no_anchor, ops.where(eye, 0.0, -1e9), logits)
        return ops.where(masked, -1e9, logits)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


def in_batch_softmax_loss(y_true: Any, y_pred: Any) -> Any:
    """Each row's positive is on the diagonal; ``y_true`` is unused."""
    del y_true
    return -ops.diagonal(ops.log_softmax(y_pred, axis=1))


@dataclass
class NetConfig:
    n_users: int
    n_items: int
    n_features: int
    dim: int
    hidden_dim: int
    history_length: int
    temperature: float
    learning_rate: float
    item_item_weight: float
    l2: float
    seed: int


@dataclass
class Nets:
    user_tower: Any
    item_tower: Any
    joint: Any  # inputs of both towers -> (user vectors, item vectors); what is saved
    trainer: Any  # joint + in-batch logits, compiled


def _tower(name: str, parts: list[Any], cfg: NetConfig, seed: int) -> Any:
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"{name}_concat")(parts)
    if cfg.hidden_dim:
        x = keras.layers.Dense(
            cfg.hidden_dim, activation="relu", name=f"{name}_hidden",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        )(x)
    x = keras.layers.Dense(
        cfg.dim, name=f"{name}_out",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
    )(x)
    return keras.layers.UnitNormalization(name=f"{name}_norm")(x)


def _embedding(n: int, cfg: NetConfig, name: str, seed: int) -> Any:
    reg = keras.regularizers.L2(cfg.l2) if cfg.l2 else None
    return keras.layers.Embedding(
        n, cfg.dim, name=name, embeddings_regularizer=reg,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed),
    )


def build(cfg: NetConfig) -> Nets:
    user_id = keras.Input(shape=(), dtype="int32", name="user_id")
    hist = keras.Input(shape=(cfg.history_length,), dtype="int32", name="hist")
    u = _embedding(cfg.n_users + 1, cfg, "user_id_emb", cfg.seed)(user_id)
    h = MaskedMeanPool(name="hist_pool")(
        _embedding(cfg.n_items + 1, cfg, "hist_emb", cfg.seed + 1)(hist), hist
    )
    user_vec = _tower("user", [u, h], cfg, cfg.seed + 10)
    user_tower = keras.Model([user_id, hist], user_vec, name="user_tower")

    item_id = keras.Input(shape=(), dtype="int32", name="item_id")
    item_inputs = [item_id]
    parts = [_embedding(cfg.n_items + 1, cfg, "item_id_emb", cfg.seed + 2)(item_id)]
    if cfg.n_features:
        feat = keras.Input(shape=(cfg.n_features,), dtype="float32", name="item_feat")
        item_inputs.append(feat)
        parts.append(keras.layers.Dense(
            cfg.dim, name="item_content",
            kernel_initializer=keras.initializers.GlorotUniform(seed=cfg.seed + 3),
        )(feat))
    item_vec = _tower("item", parts, cfg, cfg.seed + 20)
    item_tower = keras.Model(item_inputs, item_vec, name="item_tower")

    joint_inputs = {"user_id": user_id, "hist": hist, "item_id": item_id}
    if cfg.n_features:
        joint_inputs["item_feat"] = item_inputs[1]
    users_out = user_tower([user_id, hist])
    items_out = item_tower(item_inputs)
    joint = keras.Model(joint_inputs, [users_out, items_out], name="two_tower")

    item_key = keras.Input(shape=(), dtype="int32", name="item_key")
    logq = keras.Input(shape=(), dtype="float32", name="logq")
    train_inputs = {**joint_inputs, "item_key": item_key, "logq": logq}
    outputs = {"user_item": InBatchLogits(cfg.temperature, name="user_item")(
        users_out, items_out, item_key, logq
    )}
    losses = {"user_item": in_batch_softmax_loss}
    weights = {"user_item": 1.0}
    if cfg.item_item_weight > 0:
        # A history item of the same user as query: item vectors of co-consumed items
        # become close, so item-item cosine (similar_items, ANN) is meaningful.
        ctx_id = keras.Input(shape=(), dtype="int32", name="ctx_id")
        ctx_key = keras.Input(shape=(), dtype="int32", name="ctx_key")
        ctx_inputs = [ctx_id]
        train_inputs.update(ctx_id=ctx_id, ctx_key=ctx_key)
        if cfg.n_features:
            ctx_feat = keras.Input(shape=(cfg.n_features,), dtype="float32", name="ctx_feat")
            ctx_inputs.append(ctx_feat)
            train_inputs["ctx_feat"] = ctx_feat
        outputs["item_item"] = InBatchLogits(cfg.temperature, name="item_item")(
            item_tower(ctx_inputs), items_out, item_key, logq, ctx_key
        )
        losses["item_item"] = in_batch_softmax_loss
        weights["item_item"] = cfg.item_item_weight
    trainer = keras.Model(train_inputs, outputs)
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss=losses, loss_weights=weights,
    )
    return Nets(user_tower, item_tower, joint, trainer)


def extract_weights(nets: Nets) -> dict[str, np.ndarray]:
    """Layer weights as ``<layer>/kernel|bias|embeddings`` float32 arrays."""
    out: dict[str, np.ndarray] = {}
    for tower, names in ((nets.user_tower, USER_LAYERS), (nets.item_tower, ITEM_LAYERS)):
        present = {layer.name: layer for layer in tower.layers}
        for name in names:
            if name not in present:
                continue
            for var in present[name].weights:
                value = ops.convert_to_numpy(var.value)
                out[f"{name}/{var.name}"] = np.asarray(value, dtype=np.float32)
    return out


class InteractionBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """Shuffled (user, positive item, sampled history) batches, seeded per epoch and batch.

    Training mode (``targets`` is None): every epoch splits each user's interactions at
    random into targets (``target_fraction``) and history; the examples are the
    targets and each one's history is ``history_length`` draws (with replacement) from
    that user's history part. All targets of a user share one history distribution,
    so the model cannot learn "the item missing from the history is the answer", a
    shortcut that masking only the target would teach. Validation mode: the examples
    are ``targets`` and the history is drawn from all of ``matrix``.

    Ids are dropped to the unknown slot with the given probabilities so the towers
    learn to work from the history / the content alone.
    """

    def __init__(
        self, matrix: sp.csr_matrix, targets: sp.coo_matrix | None,
        item_features: np.ndarray | None, logq: np.ndarray, batch_size: int,
        history_length: int, target_fraction: float, user_dropout: float,
        item_dropout: float, seed: int, with_context: bool,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.with_context = with_context
        self.rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)).astype(np.int64)
        self.cols = matrix.indices.astype(np.int64)
        self.n_users = matrix.shape[0]
        self.fixed_targets = targets
        if targets is None:
            self.n_examples = max(1, round(len(self.cols) * target_fraction))
        else:
            self.n_examples = int(targets.nnz)
        self.item_features = item_features
        self.logq = logq.astype(np.float32)
        self.batch_size = min(batch_size, self.n_examples)
        self.history_length = history_length
        self.user_dropout = user_dropout
        self.item_dropout = item_dropout
        self.seed = seed
        self.epoch = 0
        self._prepare()

    def _prepare(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.fixed_targets is None:
            perm = rng.permutation(len(self.cols))
            target, hist = perm[: self.n_examples], np.sort(perm[self.n_examples:])
            self.users, self.items = self.rows[target], self.cols[target]
            hist_rows, self.hist_items = self.rows[hist], self.cols[hist]
        else:
            self.users = self.fixed_targets.row.astype(np.int64)
            self.items = self.fixed_targets.col.astype(np.int64)
            hist_rows, self.hist_items = self.rows, self.cols
        counts = np.bincount(hist_rows, minlength=self.n_users)
        self.hist_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return max(1, self.n_examples // self.batch_size)  # drop the ragged tail: one shape

    def __getitem__(self, idx: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        rng = np.random.default_rng([self.seed, self.epoch, idx, 1])
        sel = np.arange(idx * self.batch_size, (idx + 1) * self.batch_size)
        users, items = self.users[sel], self.items[sel]
        start = self.hist_ptr[users]
        deg = self.hist_ptr[users + 1] - start
        offsets = np.floor(rng.random((len(sel), self.history_length)) * deg[:, None])
        pos = np.minimum(start[:, None] + offsets.astype(np.int64), len(self.hist_items) - 1)
        picked = self.hist_items[np.maximum(pos, 0)] if len(self.hist_items) else \
            np.zeros_like(pos)
        hist = np.where(deg[:, None] > 0, picked + 1, 0).astype(np.int32)
        user_id = np.where(rng.random(len(sel)) < self.user_dropout, 0, users + 1)
        item_id = np.where(rng.random(len(sel)) < self.item_dropout, 0, items + 1)
        x = {
            "user_id": user_id.astype(np.int32), "hist": hist,
            "item_id": item_id.astype(np.int32), "item_key": items.astype(np.int32),
            "logq": self.logq[items],
        }
        if self.item_features is not None:
            x["item_feat"] = self.item_features[items]
        y = {"user_item": np.zeros(len(sel), dtype=np.float32)}
        if self.with_context:
            ctx = hist[:, 0].astype(np.int64) - 1  # a random history item, -1 if none
            keep = (ctx >= 0) & (rng.random(len(sel)) >= self.item_dropout)
            x["ctx_id"] = np.where(keep, ctx + 1, 0).astype(np.int32)
            x["ctx_key"] = ctx.astype(np.int32)
            if self.item_features is not None:
                x["ctx_feat"] = self.item_features[np.maximum(ctx, 0)]
            y["item_item"] = y["user_item"]
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.fixed_targets is None:
            self._prepare()


class EpochReport(keras.callbacks.Callback):  # type: ignore[misc]
    """Adds the validation ranking metric to the epoch logs and logs the epoch."""

    def __init__(
        self, nets: Nets, evaluate: Callable[[dict[str, np.ndarray]], float] | None,
        metric: str, epochs: int,
    ) -> None:
        super().__init__()
        self.nets = nets
        self.evaluate = evaluate
        self.metric = metric
        self.epochs = epochs
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["epoch_seconds"] = time.perf_counter() - self.started
        if self.evaluate is not None:
            logs[self.metric] = float(self.evaluate(extract_weights(self.nets)))
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            self.model.stop_training = True
        log.info(
            "two_tower epoch %d/%d loss=%.4f val_loss=%.4f %s=%.4f in %.1fs", epoch + 1,
            self.epochs, loss, float(logs.get("val_loss", math.nan)), self.metric,
            float(logs.get(self.metric, math.nan)), logs["epoch_seconds"],
        )


def train(
    nets: Nets, batches: InteractionBatches, val_batches: InteractionBatches | None,
    epochs: int, patience: int, monitor: str,
    evaluate: Callable[[dict[str, np.ndarray]], float] | None, min_epochs: int = 0,
) -> dict[str, list[float]]:
    """Fit with early stopping on ``monitor`` from epoch ``min_epochs`` on (the best
    weights are taken from those epochs only); returns the per-epoch curves."""
    callbacks: list[Any] = [EpochReport(nets, evaluate, "val_recall", epochs)]
    if val_batches is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max" if monitor == "val_recall" else "min",
            patience=patience, restore_best_weights=True,
            start_from_epoch=min(min_epochs, max(epochs - 1, 0)),
        ))
    history = nets.trainer.fit(
        batches, validation_data=val_batches, epochs=epochs, shuffle=False, verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def load_joint(path: str) -> Any:
    return keras.saving.load_model(path, compile=False)

