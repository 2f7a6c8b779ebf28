"""Training-time candidate lists equal what serving computes live, user by user."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.candidates import item_pools, precompute
from fastinsight.recsys.pools import NormOrder, scan_length
from tests.recsys.conftest import WITHHELD, block_matrix, fitted

DISLIKE = (1, 4)  # user 1 dislikes item 4 of its own block


def negatives(shape: tuple[int, int]) -> sp.csr_matrix:
    neg = sp.lil_matrix(shape, dtype=np.float32)
    neg[DISLIKE] = 1.0
    return neg.tocsr()


@pytest.mark.parametrize("algorithm,threshold", [
    ("als", 20_000), ("als", 0), ("ease", 20_000), ("itemknn", 20_000), ("popularity", 20_000),
])
def test_lists_match_live_scoring(algorithm: str, threshold: int) -> None:
    """``threshold=0`` forces the HNSW graph; candidates are re-scored exactly either way."""
    model = fitted(algorithm)
    matrix = block_matrix()
    neg = negatives(matrix.shape)
    lists = precompute(model, matrix, neg, 5, exact_threshold=threshold)
    assert lists is not None and lists.ids.shape == (matrix.shape[0], 5)
    for user in range(60):
        row = matrix[user]
        blocked = np.union1d(row.indices, neg[user].indices)
        want_ids, want_scores = model.recommend(None, 5, exclude=blocked, history=row)
        got = lists.ids[user][lists.ids[user] >= 0]
        np.testing.assert_array_equal(got, want_ids, err_msg=f"user {user}")
        np.testing.assert_allclose(lists.scores[user][: len(got)], want_scores, rtol=1e-5, atol=1e-6)
        assert not set(got.tolist()) & set(blocked.tolist())
    if algorithm != "popularity":
        assert lists.ids[WITHHELD[0], 0] == WITHHELD[1]  # the withheld item comes first
    assert DISLIKE[1] not in lists.ids[DISLIKE[0]].tolist()


def test_short_rows_are_padded_and_because_names_the_closest_history_item() -> None:
    model = fitted("als")
    matrix = block_matrix()
    lists = precompute(model, matrix, negatives(matrix.shape), 12)
    assert lists is not None
    # User 0 has seen 5 of 12 items: 7 candidates, then padding.
    assert (lists.ids[0] >= 0).sum() == 7 and (lists.ids[0, 7:] == -1).all()
    assert np.isneginf(lists.scores[0, 7:]).all()
    factors = model.item_factors()
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    for user in (0, 3, 40):
        seen = matrix[user].indices
        for pos, item in enumerate(lists.ids[user].tolist()):
            if item < 0:
                assert lists.because[user, pos] == -1
                continue
            because = lists.because[user, pos]
            assert because in seen  # the closest of the user's items (up to float rounding)
            assert unit[because] @ unit[item] >= (unit[seen] @ unit[item]).max() - 1e-5


def test_models_without_embeddings_are_skipped_past_the_cell_budget() -> None:
    matrix = block_matrix()
    assert precompute(fitted("ease"), matrix, negatives(matrix.shape), 5, max_cells=100) is None
    lists = precompute(fitted("ease"), matrix, negatives(matrix.shape), 5)
    assert lists is not None and (lists.because == -1).all()  # no embeddings to explain with


@pytest.mark.parametrize("algorithm,threshold", [("als", 20_000), ("als", 0), ("two_tower", 20_000)])
def test_item_pools_are_the_best_items_of_each_one_item_history(algorithm: str, threshold: int) -> None:
    model = fitted(algorithm)
    space = model.embedding_space()
    assert space is not None
    pools = item_pools(model, 4, space.retrieval_index(exact_threshold=threshold))
    assert pools.shape == (model.n_items, 4) and pools.dtype == np.int32
    for item in range(model.n_items):
        history = sp.csr_matrix(([1.0], ([0], [item])), shape=(1, model.n_items))
        want, _ = model.recommend(None, 4, history=history)
        np.testing.assert_array_equal(pools[item], want, err_msg=f"item {item}")
        assert item not in pools[item]


def test_norm_order_reaches_exactly_the_items_at_least_that_long() -> None:
    rng = np.random.default_rng(3)
    items = rng.normal(size=(500, 8)).astype(np.float32)
    order = NormOrder.of(items)
    norms = np.linalg.norm(items, axis=1)
    np.testing.assert_array_equal(np.linalg.norm(order.vectors, axis=1), norms[order.order])
    for length in [0.5, 1.7, 2.8, float(norms.max()), float(norms[7]), 1e9]:
        n = order.reaching(length)
        assert all(norms[i] < length for i in order.order[n:])  # none at least that long left out
        assert all(norms[i] >= length * (1 - 1e-6) for i in order.order[:n])
    # A bound that cannot exclude anything reaches everything; one never met, nothing.
    assert scan_length(order, needed=-np.inf, base_score=0.0, distance=1.0, scale=1.0) == 500
    assert scan_length(order, needed=1.0, base_score=2.0, distance=1.0, scale=1.0) == 500
    assert scan_length(order, needed=1.0, base_score=-np.inf, distance=1.0, scale=1.0) == 0
    assert scan_length(order, needed=1.0, base_score=0.0, distance=0.0, scale=1.0) == 0
