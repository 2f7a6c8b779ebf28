"""Metrics against answers computed by hand (see the comments for the arithmetic)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.evaluation.metrics import (
    catalogue_metrics,
    exclude_seen,
    hit_matrix,
    item_popularity,
    mean_ci95,
    paired_bootstrap,
    ranking_metrics,
    top_k_from_scores,
)


def relevant(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    data, r, c = [], [], []
    for u, items in enumerate(rows):
        for i in items:
            r.append(u)
            c.append(i)
            data.append(1.0)
    return sp.csr_matrix((data, (r, c)), shape=(len(rows), n_items))


def test_top_k_breaks_ties_by_lowest_index():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5]])
    assert top_k_from_scores(scores, 3).tolist() == [[1, 3, 0]]
    assert top_k_from_scores(scores, 4).tolist() == [[1, 3, 0, 2]]


def test_top_k_all_tied_is_index_order():
    assert top_k_from_scores(np.zeros((2, 5)), 3).tolist() == [[0, 1, 2], [0, 1, 2]]


def test_top_k_pads_when_fewer_finite_scores_than_k():
    scores = np.array([[np.nan, 2.0, -np.inf, 1.0], [-np.inf] * 4])
    assert top_k_from_scores(scores, 3).tolist() == [[1, 3, -1], [-1, -1, -1]]


def test_top_k_k_larger_than_catalogue():
    assert top_k_from_scores(np.array([[1.0, 3.0]]), 4).tolist() == [[1, 0, -1, -1]]


def test_top_k_matches_full_sort_on_random_scores():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(50, 30)).astype(float)  # many ties
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    assert np.array_equal(top_k_from_scores(scores, 7), expected)


def test_exclude_seen_removes_training_items():
    scores = np.ones((2, 4))
    seen = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 0, 0]], dtype=float))
    exclude_seen(scores, seen)
    assert top_k_from_scores(scores, 4).tolist() == [[1, 2, -1, -1], [0, 1, 2, 3]]


def test_hit_matrix_ignores_padding():
    recs = np.array([[3, -1, 0], [9, 2, 1]])
    hits = hit_matrix(recs, relevant([[0, 9], [2]]))
    assert hits.tolist() == [[False, False, True], [False, True, False]]


def test_perfect_ranking_scores_one():
    m = ranking_metrics(np.array([[0, 1, 2, 3]]), relevant([[0, 1]]), ks=[2])
    for name in ("precision@2", "recall@2", "ndcg@2", "mrr@2", "hit@2"):
        assert m[name][0] == pytest.approx(1.0), name


def test_worst_ranking_scores_zero():
    m = ranking_metrics(np.array([[0, 1, 2]]), relevant([[3]]), ks=[3])
    for name in ("precision@3", "recall@3", "ndcg@3", "mrr@3", "hit@3"):
        assert m[name][0] == 0.0, name


def test_fewer_relevant_than_k():
    # One relevant item (2) at rank 2 of 2: P = 1/2, R = 1/min(2,1) = 1,
    # NDCG = (1/log2 3) / (1/log2 2), MRR = 1/2.
    m = ranking_metrics(np.array([[5, 2]]), relevant([[2]]), ks=[2])
    assert m["precision@2"][0] == pytest.approx(0.5)
    assert m["recall@2"][0] == pytest.approx(1.0)
    assert m["ndcg@2"][0] == pytest.approx(1 / math.log2(3))
    assert m["mrr@2"][0] == pytest.approx(0.5)
    assert m["hit@2"][0] == 1.0


def test_several_k_on_one_ranking():
    # relevant {1, 4, 7}; ranking 1 0 4 2 3 -> hits 1 0 1 0 0
    m = ranking_metrics(np.array([[1, 0, 4, 2, 3]]), relevant([[1, 4, 7]]), ks=[2, 5])
    idcg5 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["precision@5"][0] == pytest.approx(2 / 5)
    assert m["recall@5"][0] == pytest.approx(2 / 3)
    assert m["ndcg@5"][0] == pytest.approx((1 + 1 / math.log2(4)) / idcg5)
    assert m["mrr@5"][0] == pytest.approx(1.0)
    assert m["precision@2"][0] == pytest.approx(1 / 2)
    assert m["recall@2"][0] == pytest.approx(1 / 2)  # min(2, 3) = 2
    assert m["ndcg@2"][0] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_padded_list_is_divided_by_k():
    # Only one recommendation available; it is relevant. P@3 = 1/3, R@3 = 1/min(3,2).
    m = ranking_metrics(np.array([[4, -1, -1]]), relevant([[4, 6]]), ks=[3])
    assert m["precision@3"][0] == pytest.approx(1 / 3)
    assert m["recall@3"][0] == pytest.approx(1 / 2)
    assert m["ndcg@3"][0] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_users_without_relevant_items_are_rejected():
    with pytest.raises(ValueError):
        ranking_metrics(np.array([[0, 1]]), relevant([[]]), ks=[2])


def test_mrr_uses_first_hit_only():
    m = ranking_metrics(np.array([[0, 5, 6, 7]]), relevant([[6, 7]]), ks=[4, 2])
    assert m["mrr@4"][0] == pytest.approx(1 / 3)
    assert m["mrr@2"][0] == 0.0


def test_catalogue_metrics_by_hand():
    # pop = [3, 1, 0, 0] over U = 3 users. Self-information -log2((pop+1)/4):
    # item0 0, item1 1, item2 2. Lists [0,1] and [0,2].
    pop = np.array([3.0, 1.0, 0.0, 0.0])
    m = catalogue_metrics(np.array([[0, 1], [0, 2]]), pop, 3, ks=[2, 1])
    assert m["coverage@2"] == pytest.approx(3 / 4)
    assert m["novelty@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["arp@2"] == pytest.approx(((1 + 1 / 3) / 2 + 0.5) / 2)
    assert m["coverage@1"] == pytest.approx(1 / 4)
    assert m["novelty@1"] == pytest.approx(0.0)
    assert m["arp@1"] == pytest.approx(1.0)


def test_catalogue_metrics_skip_padding():
    m = catalogue_metrics(np.array([[2, -1]]), np.array([3.0, 1.0, 0.0, 0.0]), 3, ks=[2])
    assert m["novelty@2"] == pytest.approx(2.0)
    assert m["coverage@2"] == pytest.approx(1 / 4)


def test_item_popularity_counts_users_not_weights():
    train = sp.csr_matrix(np.array([[5.0, 0, 1], [2.0, 0, 0]]))
    assert item_popularity(train).tolist() == [2.0, 0.0, 1.0]


def test_mean_ci95():
    mean, half = mean_ci95(np.array([0.0, 1.0, 0.0, 1.0]))
    assert mean == 0.5
    assert half == pytest.approx(1.96 * math.sqrt(1 / 3) / 2)


def test_paired_bootstrap_detects_consistent_gain():
    a = np.array([0.5, 0.6, 0.7, 0.8] * 10)
    out = paired_bootstrap(a, a - 0.1, seed=1)
    assert out["mean_diff"] == pytest.approx(0.1)
    assert out["ci_low"] == pytest.approx(0.1)
    assert out["p_not_better"] == 0.0


def naive(recs, rel_sets, k):
    """Straight from the definitions, one user at a time."""
    out = {"precision": [], "recall": [], "ndcg": [], "mrr": [], "hit": []}
    for row, rel in zip(recs, rel_sets, strict=True):
        top = list(row[:k])
        hits = [1.0 if i >= 0 and i in rel else 0.0 for i in top]
        dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(rel))))
        first = next((j + 1 for j, h in enumerate(hits) if h), None)
        out["precision"].append(sum(hits) / k)
        out["recall"].append(sum(hits) / min(k, len(rel)))
        out["ndcg"].append(dcg / idcg)
        out["mrr"].append(1 / first if first else 0.0)
        out["hit"].append(1.0 if first else 0.0)
    return out


def test_vectorised_metrics_match_naive_definitions():
    rng = np.random.default_rng(11)
    n_users, n_items, k_max = 40, 30, 12
    recs = np.array([rng.permutation(n_items)[:k_max] for _ in range(n_users)])
    recs[rng.random(recs.shape) < 0.1] = -1  # some padding
    rel_sets = [set(rng.choice(n_items, size=rng.integers(1, 15), replace=False).tolist())
                for _ in range(n_users)]
    got = ranking_metrics(recs, relevant([sorted(s) for s in rel_sets], n_items), ks=[1, 5, 12])
    for k in (1, 5, 12):
        want = naive(recs, rel_sets, k)
        for name, values in want.items():
            assert np.allclose(got[f"{name}@{k}"], values), (name, k)
