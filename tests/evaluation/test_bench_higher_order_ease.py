"""``bench/higher_order_ease.py``'s constrained closed form against a direct solve per column."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module() -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("higher_order_ease")


def test_every_column_is_the_ridge_solution_without_its_forbidden_inputs() -> None:
    ho = _module()
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((60, 12)) < 0.35).astype(float))
    pairs = ho.top_pairs(x, 8)
    items, pair_weights, _ = ho.fit(x, 3.0, pairs, 5.0)
    inputs = sp.hstack([x, ho.pair_inputs(x, pairs)]).toarray()
    target = x.toarray()
    penalty = np.r_[np.full(12, 3.0), np.full(8, 5.0)]
    solved = np.vstack([items, pair_weights])
    for i in range(12):
        allowed = [k for k in range(20) if k != i and not (k >= 12 and i in pairs[k - 12])]
        a = inputs[:, allowed]
        expected = np.zeros(20)
        expected[allowed] = np.linalg.solve(a.T @ a + np.diag(penalty[allowed]), a.T @ target[:, i])
        np.testing.assert_allclose(solved[:, i], expected, atol=1e-10)
        assert solved[i, i] == 0.0 or abs(solved[i, i]) < 1e-12


def test_without_pairs_it_is_ease() -> None:
    ho = _module()
    rng = np.random.default_rng(1)
    x = sp.csr_matrix((rng.random((40, 9)) < 0.4).astype(float))
    items, _, _ = ho.fit(x, 2.0, ho.NO_PAIRS, 1.0)
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(9))
    ease = np.eye(9) - p / np.diag(p)[None, :]
    np.testing.assert_allclose(items, ease, atol=1e-10)


def test_top_pairs_are_the_most_co_occurring() -> None:
    ho = _module()
    x = sp.csr_matrix(np.array([[1, 1, 0, 1], [1, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 0]], float))
    assert ho.top_pairs(x, 1).tolist() == [[0, 1]]  # items 0 and 1 together in 3 rows
