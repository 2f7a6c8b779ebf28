"""VectorIndex: exact mode against brute force, HNSW mode recall with the shipped params."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastinsight.recsys.ann import VectorIndex


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Overlapping Zipf-sized clusters with varied norms (like factor-model items)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(300, dim))
    sizes = 1.0 / np.arange(1, 301) ** 0.8
    x = centers[rng.choice(300, size=n, p=sizes / sizes.sum())]
    x = x + rng.normal(scale=0.8, size=(n, dim))
    return (x * rng.lognormal(0.0, 0.3, size=(n, 1))).astype(np.float32)


def brute(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_exact_mode_equals_brute_force_with_exclusions():
    vectors = clustered(500, 8, 1)
    queries = clustered(20, 8, 2)
    index = VectorIndex().build(vectors)
    assert index.exact
    ids, scores = index.search(queries, 5)
    np.testing.assert_array_equal(ids, brute(vectors, queries, 5))
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1),
                               rtol=1e-5)
    banned = [ids[r, :3] for r in range(20)]
    ids2, _ = index.search(queries, 5, exclude=banned)
    for r in range(20):
        assert not set(banned[r].tolist()) & set(ids2[r].tolist())
        assert ids2[r, :2].tolist() == ids[r, 3:5].tolist()


def test_hnsw_recall_at_10_with_the_shipped_parameters():
    vectors = clustered(20_000, 32, 3)
    queries = clustered(300, 32, 4)
    index = VectorIndex(exact_threshold=0, num_threads=2).build(vectors)
    assert not index.exact
    ids, scores = index.search(queries, 10)
    truth = brute(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), truth.tolist(),
                                                                 strict=True)])
    assert recall >= 0.95, recall
    # returned scores are exact inner products, best first
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1),
                               rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_hnsw_exclusions_larger_than_the_candidate_list_still_fill_k():
    vectors = clustered(3000, 16, 5)
    index = VectorIndex(exact_threshold=0).build(vectors)
    query = vectors[:1] * 1.0
    banned = brute(vectors, query, 200)[0]
    ids, scores = index.search(query, 10, exclude=[banned])
    assert (ids >= 0).all() and np.isfinite(scores).all()
    assert not set(banned.tolist()) & set(ids[0].tolist())


def test_cosine_metric_and_padding():
    vectors = np.array([[1, 0], [10, 0], [0, 1], [1, 1], [0, 0]], dtype=np.float32)
    index = VectorIndex().build(vectors, metric="cosine")
    ids, scores = index.search(np.array([2.0, 0.0]), 4, exclude=[[1]])
    assert ids.tolist() == [[0, 3, 2, 4]]
    np.testing.assert_allclose(scores[0], [1.0, 2**-0.5, 0.0, 0.0], atol=1e-6)
    ids, scores = index.search(np.array([[2.0, 0.0]]), 7)
    assert ids[0, 5:].tolist() == [-1, -1] and np.isneginf(scores[0, 5:]).all()


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="NaN"):
        VectorIndex().build(np.array([[np.nan, 1.0]]))
    index = VectorIndex().build(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="one entry per query"):
        index.search(np.eye(3), 2, exclude=[[0]])
    with pytest.raises(ValueError, match="dim"):
        index.search(np.ones((1, 4)), 2)


@pytest.mark.parametrize("threshold", [0, 10_000])
def test_save_and_load_give_the_same_answers(tmp_path: Path, threshold: int):
    vectors = clustered(2000, 16, 6)
    queries = clustered(10, 16, 7)
    index = VectorIndex(exact_threshold=threshold).build(vectors, metric="cosine")
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    assert loaded.exact == index.exact and loaded.metric == "cosine"
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
