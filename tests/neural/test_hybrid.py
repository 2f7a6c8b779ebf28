from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ModelError
from fastinsight.recsys.evaluation.metrics import ranking_metrics, top_k_from_scores
from fastinsight.recsys.hybrid import (
    NON_FINITE_Z,
    ComponentSpec,
    HybridParams,
    HybridRecommender,
    ndcg_at_k,
    simplex_grid,
    standardise,
)
from fastinsight.recsys.registry import load_model

from .conftest import N_ITEMS, N_TOPICS, N_USERS, SMALL_PARAMS, topic_of_item

EASE = ComponentSpec(algorithm="ease", params={"l2": 10.0})
POP = ComponentSpec(algorithm="popularity")


def popularity_only_matrix(seed: int = 5) -> sp.csr_matrix:
    """Every user draws 6 items from one Zipf-like distribution: no personal taste."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 300, 60
    p = 1.0 / np.arange(1, n_items + 1) ** 1.1
    p /= p.sum()
    rows = np.repeat(np.arange(n_users), 6)
    cols = np.concatenate([rng.choice(n_items, 6, replace=False, p=p) for _ in range(n_users)])
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))


def test_simplex_grid() -> None:
    grid = simplex_grid(3, 0.5)
    assert grid.tolist() == [
        [1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5],
        [0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0],
    ]
    assert len(simplex_grid(3, 0.1)) == 66
    np.testing.assert_allclose(simplex_grid(4, 0.25).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="divide 1"):
        simplex_grid(2, 0.3)


def test_standardise_rows() -> None:
    z = standardise(np.array([[1.0, 2.0, 3.0, -np.inf], [5.0, 5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(z[0, :3], [-1.2247449, 0.0, 1.2247449], atol=1e-6)
    assert z[0, 3] == NON_FINITE_Z
    np.testing.assert_array_equal(z[1], 0.0)


def test_ndcg_matches_the_evaluation_harness() -> None:
    # hand-computed: relevant {1, 3}; ranking 3, 0, 1 -> (1 + 1/log2(4)) / (1 + 1/log2(3))
    scores = np.array([[0.5, 0.1, -1.0, 0.9]])
    relevant = np.array([[False, True, False, True]])
    expected = (1 + 0.5) / (1 + 1 / np.log2(3))
    np.testing.assert_allclose(ndcg_at_k(scores, relevant, 3), [expected])
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal((50, 40)), 1)  # plenty of ties
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    rel = rng.random((50, 40)) < 0.1
    rel[np.arange(50), rng.integers(0, 40, 50)] = True
    reference = ranking_metrics(top_k_from_scores(scores, 10), sp.csr_matrix(rel), [10])
    np.testing.assert_allclose(ndcg_at_k(scores, rel, 10), reference["ndcg@10"], atol=1e-12)


def test_weights_favour_the_collaborative_model_on_taste_data(matrix: sp.csr_matrix) -> None:
    model = HybridRecommender(HybridParams(components=(EASE, POP))).fit(matrix)
    assert model.weights.sum() == pytest.approx(1.0)
    assert model.weights[0] >= 0.5
    search = model.search
    assert search["best"] >= max(search["single_component"].values())
    for user in range(0, N_USERS, 9):
        ids, _ = model.recommend(user, 5)
        assert {topic_of_item(int(i)) for i in ids} == {user % N_TOPICS}
    ids, _ = model.similar_items(3, 5)
    assert {topic_of_item(int(i)) for i in ids} == {0} and 3 not in ids


def test_popularity_gets_weight_when_there_is_no_taste() -> None:
    data = popularity_only_matrix()
    model = HybridRecommender(HybridParams(components=(EASE, POP))).fit(data)
    singles = model.search["single_component"]
    assert singles["1_popularity"] > singles["0_ease"]
    assert model.weights[1] > 0
    # the other way round on taste data: see the test above (EASE gets >= half)


def test_save_load_with_a_two_tower_component(
    matrix: sp.csr_matrix, content, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    encoder, features = content
    tower = ComponentSpec(algorithm="two_tower", params=SMALL_PARAMS.model_dump())
    params = HybridParams(components=(tower, EASE, POP), grid_step=0.25)
    model = HybridRecommender(params).set_item_content(features, encoder).fit(matrix)
    model.save(tmp_path / "h")
    meta = json.loads((tmp_path / "h" / "meta.json").read_text())
    weights = meta["state"]["weights"]
    assert set(weights) == {"0_two_tower", "1_ease", "2_popularity"}
    assert sum(weights.values()) == pytest.approx(1.0)
    for i, name in enumerate(weights):
        assert (tmp_path / "h" / "components" / name).is_dir() == (model.weights[i] > 0)
    if model.weights[0] > 0:
        assert (tmp_path / "h" / "components" / "0_two_tower" / "model.keras").is_file()
    loaded = load_model(tmp_path / "h")
    assert isinstance(loaded, HybridRecommender)
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    hist = sp.csr_matrix((np.ones(2), ([0, 0], [41, 50])), shape=(1, N_ITEMS))
    np.testing.assert_array_equal(loaded.score_history(hist), model.score_history(hist))
    ids, _ = loaded.recommend(None, 5, history=hist)
    assert {topic_of_item(int(i)) for i in ids} == {2}
    for a, b in zip(loaded.similar_items(60, 5), model.similar_items(60, 5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_configurations_fail_clearly(matrix: sp.csr_matrix) -> None:
    with pytest.raises(ModelError, match="another hybrid"):
        HybridRecommender(HybridParams(components=(ComponentSpec(algorithm="hybrid"),))).fit(
            matrix
        )
    with pytest.raises(ModelError, match="not fitted"):
        HybridRecommender().score_users([0])


def test_users_who_have_seen_most_of_the_catalogue() -> None:
    # 7 of 8 items seen: ranking the rest must not turn 0 * -inf into NaN in the search
    rng = np.random.default_rng(1)
    dense = (rng.random((40, 8)) < 0.85).astype(np.float32)
    dense[:, 0] = 1.0
    model = HybridRecommender(HybridParams(components=(EASE, POP), k=3)).fit(
        sp.csr_matrix(dense)
    )
    assert np.isfinite(model.search["best"]) and model.weights.sum() == pytest.approx(1.0)
    ids, scores = model.recommend(0, 3)
    assert np.all(np.isfinite(scores)) and not set(ids) & set(np.flatnonzero(dense[0]))
