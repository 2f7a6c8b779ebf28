"""Known-answer matrices and small, fast parameters for the recsys tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.base import Recommender
from fastinsight.recsys.registry import create

# Small parameters so the whole contract suite stays fast. An algorithm missing here
# runs with its defaults; add a line for a new model if those are slow.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "itemknn": {"k": 6},
    "ease": {"l2": 100.0},
    "edlae": {"l2": 20.0, "dropout": 0.3},
    "multvae": {"hidden": 16, "latent": 4, "epochs": 60, "batch_size": 16,
                "learning_rate": 0.01},
    "als": {"factors": 8, "iterations": 15, "regularization": 5.0, "random_state": 7},
    "two_tower": {"dim": 8, "epochs": 40, "batch_size": 32, "learning_rate": 0.02,
                  "validation_fraction": 0.0},
}
# The blend machinery on fast components (its default blends als, two_tower, popularity).
FAST_PARAMS["hybrid"] = {
    "components": [
        {"algorithm": name, "params": FAST_PARAMS.get(name, {})}
        for name in ("als", "itemknn", "popularity")
    ]
}
FAST_PARAMS["stacked"] = {
    "components": [
        {"algorithm": name, "params": FAST_PARAMS.get(name, {})}
        for name in ("ease", "itemknn", "als")
    ]
}

BLOCK_A = list(range(6))
BLOCK_B = list(range(6, 12))
N_USERS = 61  # users 0-29 like block A, 30-59 block B, 60 has no interactions
WITHHELD = (0, 2)  # user 0 has every block-A item except item 2


def block_matrix() -> sp.csr_matrix:
    """Two groups of users, each liking (most of) one group of items, plus a little noise.

    User 0 lacks only item 2 of its block, so a collaborative model must rank item 2
    first for user 0.
    """
    rng = np.random.default_rng(20240601)
    dense = np.zeros((N_USERS, 12), dtype=np.float32)
    for u in range(60):
        block = BLOCK_A if u < 30 else BLOCK_B
        liked = rng.random(6) < 0.75
        liked[rng.integers(6)] = True
        dense[u, np.array(block)[liked]] = rng.choice([1.0, 1.5, 2.0], size=int(liked.sum()))
    dense[0, BLOCK_A] = 1.0
    dense[WITHHELD] = 0.0
    dense[59, 0] = 0.5  # cross-block noise
    dense[5, 7] = 0.5
    return sp.csr_matrix(dense)


def graded_matrix() -> sp.csr_matrix:
    """Item j is liked by 12 - 2j users (12, 10, 8, 6, 4, 2): popularity is explicit."""
    dense = np.zeros((12, 6), dtype=np.float32)
    for j in range(6):
        dense[: 12 - 2 * j, j] = 1.0
    return sp.csr_matrix(dense)


def make(algorithm: str, **overrides: Any) -> Recommender[Any]:
    return create(algorithm, {**FAST_PARAMS.get(algorithm, {}), **overrides})


_FITTED: dict[tuple[str, str], Recommender[Any]] = {}


def fitted(algorithm: str, data: str = "block") -> Recommender[Any]:
    """A model fitted once per test session on ``block`` or ``graded`` data."""
    key = (algorithm, data)
    if key not in _FITTED:
        matrix = block_matrix() if data == "block" else graded_matrix()
        _FITTED[key] = make(algorithm).fit(matrix)
    return _FITTED[key]


@pytest.fixture()
def block() -> sp.csr_matrix:
    return block_matrix()
