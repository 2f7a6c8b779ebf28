"""Training-time candidate lists equal what serving computes live, user by user."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.candidates import precompute
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
