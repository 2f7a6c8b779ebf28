"""Mult-VAE in Keras 3: it learns the blocks, scores with NumPy, and folds in new users."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.multvae import MultVAEParams, MultVAERecommender
from fastinsight.recsys.registry import create

from ..recsys.conftest import BLOCK_A, BLOCK_B, block_matrix


def test_multvae_learns_blocks_and_folds_in_new_histories():
    model = create("multvae", {"hidden": 16, "latent": 4, "epochs": 60, "batch_size": 16,
                               "learning_rate": 0.01})
    assert isinstance(model, MultVAERecommender)
    model.fit(block_matrix())
    assert model.losses[-1] < model.losses[0]  # it trained
    for block, other in ((BLOCK_A, BLOCK_B), (BLOCK_B, BLOCK_A)):
        history = sp.csr_matrix(([1.0, 1.0], ([0, 0], block[:2])), shape=(1, 12))
        ids, _ = model.recommend(None, 4, history=history)
        assert set(ids.tolist()) <= set(block) - set(block[:2]), (block, ids)
    scores = model.score_history(sp.csr_matrix((2, 12), dtype=np.float32))
    assert np.allclose(scores[0], scores[1])  # an empty history: the same prior for all


def test_multvae_is_deterministic_for_a_seed():
    params = MultVAEParams(hidden=8, latent=2, epochs=5, batch_size=16, seed=3)
    a = MultVAERecommender(params).fit(block_matrix()).score_users([0, 40])
    b = MultVAERecommender(params).fit(block_matrix()).score_users([0, 40])
    assert np.allclose(a, b, atol=1e-5)
