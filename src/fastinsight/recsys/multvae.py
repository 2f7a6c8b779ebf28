"""Mult-VAE (Liang et al., 2018): a variational autoencoder of users' item sets, in Keras 3.

A user's row (L2-normalised, with input dropout while training) is encoded by a tanh
layer into the mean and log-variance of a Gaussian latent; a sample is decoded by a
tanh layer into one logit per item, and the loss is the multinomial negative
log-likelihood of the row plus ``beta`` times the KL divergence to the standard normal.
Training runs in Keras on JAX (:mod:`fastinsight.recsys.multvae_net`); scoring uses the
latent *mean* and plain NumPy on the saved weights, so serving needs neither. Any
history can be scored (fold-in): the model has no per-user state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fastinsight.errors import ModelError
from fastinsight.recsys.base import ModelParams, Recommender
from fastinsight.recsys.ranking import IdsScores, top_n

_LAYERS = ("enc_hidden", "enc_mu", "enc_logvar", "dec_hidden", "dec_out")


class MultVAEParams(ModelParams):
    hidden: int = Field(default=600, ge=1)
    latent: int = Field(default=200, ge=1)
    dropout: float = Field(default=0.5, ge=0, lt=1, description="input dropout while training")
    beta: float = Field(default=0.2, ge=0, description="weight of the KL term")
    learning_rate: float = Field(default=1e-3, gt=0)
    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=128, ge=1)
    seed: int = 0


class MultVAERecommender(Recommender[MultVAEParams]):
    algorithm = "multvae"
    params_class = MultVAEParams

    def __init__(self, params: MultVAEParams | None = None) -> None:
        super().__init__(params)
        self.weights: dict[str, np.ndarray] = {}
        self.losses: list[float] = []
        self._w64: dict[str, np.ndarray] = {}

    def _fit(self, matrix: sp.csr_matrix) -> None:
        from fastinsight.recsys import multvae_net as net

        if matrix.nnz == 0:
            raise ModelError("multvae needs at least one interaction")
        binary = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        binary.data = (binary.data > 0).astype(np.float32)
        binary.eliminate_zeros()
        p = self.params
        self.weights, self.losses = net.train(
            binary, hidden=p.hidden, latent=p.latent, dropout=p.dropout, beta=p.beta,
            learning_rate=p.learning_rate, epochs=p.epochs, batch_size=p.batch_size, seed=p.seed,
        )
        self._w64 = {}

    def _layer(self, name: str, x: np.ndarray) -> np.ndarray:
        # float64, so a row scores the same alone and in a batch (BLAS kernels differ).
        if not self._w64:
            self._w64 = {k: v.astype(np.float64) for k, v in self.weights.items()}
        out: np.ndarray = x @ self._w64[f"{name}_kernel"] + self._w64[f"{name}_bias"]
        return out

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        if not self.weights:
            raise ModelError("multvae model is not fitted")
        rows = sp.csr_matrix(history, dtype=np.float32, copy=True)
        rows.data = (rows.data > 0).astype(np.float32)
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1))).reshape(-1, 1)
        x = np.asarray((sp.diags(1.0 / np.maximum(norms[:, 0], 1e-12)) @ rows).toarray(),
                       dtype=np.float64)
        hidden = np.tanh(self._layer("enc_hidden", x))
        mu = self._layer("enc_mu", hidden)
        return np.asarray(self._layer("dec_out", np.tanh(self._layer("dec_hidden", mu))),
                          dtype=np.float32)

    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        """Items decoded from a history holding ``item_idx`` alone."""
        one = sp.csr_matrix(([1.0], ([0], [item_idx])), shape=(1, self.n_items), dtype=np.float32)
        return top_n(self.score_history(one)[0], n, np.array([item_idx]))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.weights)

    def _state_meta(self) -> dict[str, Any]:
        return {"losses": self.losses[-5:]}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.weights = {k: np.asarray(arrays[k], dtype=np.float32)
                        for name in _LAYERS for k in (f"{name}_kernel", f"{name}_bias")}
        self.losses = [float(v) for v in meta.get("losses", [])]
        self._w64 = {}
