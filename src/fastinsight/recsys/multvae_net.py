"""The Keras side of Mult-VAE: encoder, decoder, the multinomial loss and training.

Import this module only from inside functions (it imports Keras, after selecting the
JAX backend). :mod:`fastinsight.recsys.multvae` scores with NumPy from the weights
returned by :func:`train`, so serving never needs Keras or JAX.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.keras_env import use_jax_backend

use_jax_backend()

import keras  # noqa: E402
from keras import ops  # noqa: E402

log = logging.getLogger(__name__)

LAYERS = ("enc_hidden", "enc_mu", "enc_logvar", "dec_hidden", "dec_out")


@keras.saving.register_keras_serializable(package="fastinsight")
class GaussianSample(keras.layers.Layer):  # type: ignore[misc]
    """``mu + exp(logvar / 2) * eps`` while training (``mu`` otherwise); adds
    ``beta`` x the KL divergence to the standard normal as a loss."""

    def __init__(self, beta: float, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta = beta
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mu: Any, logvar: Any, training: bool = False) -> Any:
        kl = -0.5 * ops.mean(ops.sum(1.0 + logvar - ops.square(mu) - ops.exp(logvar), axis=1))
        self.add_loss(self.beta * kl)
        if not training:
            return mu
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        return mu + ops.exp(0.5 * logvar) * eps

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta, "seed": self.seed}


def multinomial_nll(y_true: Any, y_pred: Any) -> Any:
    """Negative multinomial log-likelihood of the rows ``y_true`` under logits ``y_pred``."""
    return -ops.sum(y_true * ops.log_softmax(y_pred, axis=-1), axis=-1)


def _normalise(x: Any) -> Any:
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=1, keepdims=True)), 1e-12)


class Rows(keras.utils.PyDataset):  # type: ignore[misc]
    """Shuffled dense batches of a users x items matrix (input = target)."""

    def __init__(self, matrix: sp.csr_matrix, batch_size: int, seed: int) -> None:
        super().__init__()
        self.matrix = matrix
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(matrix.shape[0])

    def __len__(self) -> int:
        return max(1, -(-int(self.matrix.shape[0]) // self.batch_size))

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[idx * self.batch_size: (idx + 1) * self.batch_size]
        dense = self.matrix[rows].toarray().astype(np.float32)
        return dense, dense

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.matrix.shape[0])


def train(
    matrix: sp.csr_matrix, *, hidden: int, latent: int, dropout: float, beta: float,
    learning_rate: float, epochs: int, batch_size: int, seed: int,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Train on the rows of ``matrix``; returns the dense layers' weights and the losses."""
    keras.utils.set_random_seed(seed)
    n_items = int(matrix.shape[1])
    init = keras.initializers.GlorotUniform(seed=seed)
    x = keras.Input((n_items,), name="history")
    h = keras.layers.Dropout(dropout, seed=seed)(keras.layers.Lambda(_normalise)(x))
    h = keras.layers.Dense(hidden, activation="tanh", name="enc_hidden", kernel_initializer=init)(h)
    mu = keras.layers.Dense(latent, name="enc_mu", kernel_initializer=init)(h)
    logvar = keras.layers.Dense(latent, name="enc_logvar", kernel_initializer=init)(h)
    z = GaussianSample(beta, seed, name="sample")(mu, logvar)
    h = keras.layers.Dense(hidden, activation="tanh", name="dec_hidden", kernel_initializer=init)(z)
    logits = keras.layers.Dense(n_items, name="dec_out", kernel_initializer=init)(h)
    model = keras.Model(x, logits, name="multvae")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=multinomial_nll)
    history = model.fit(Rows(matrix, batch_size, seed), epochs=epochs, verbose=0, shuffle=False)
    weights: dict[str, np.ndarray] = {}
    for name in LAYERS:
        kernel, bias = model.get_layer(name).get_weights()
        weights[f"{name}_kernel"] = np.asarray(kernel, dtype=np.float32)
        weights[f"{name}_bias"] = np.asarray(bias, dtype=np.float32)
    losses = [float(v) for v in history.history.get("loss", [])]
    log.info("multvae: %d epochs, loss %.3f -> %.3f", len(losses), losses[0] if losses else 0.0,
             losses[-1] if losses else 0.0)
    return weights, losses
