"""Known answers for EDLAE/DLAE and the stacked blend."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.ease import EASEParams, EASERecommender
from fastinsight.recsys.edlae import EDLAEParams, EDLAERecommender
from fastinsight.recsys.registry import create
from fastinsight.recsys.stacked import StackedRecommender, stack_weights

from .conftest import block_matrix


def _random_matrix(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((60, 15)) < 0.3).astype(np.float32))


def _weights(model: EASERecommender) -> np.ndarray:
    return model._state_arrays()["weights"]


def test_edlae_without_dropout_is_ease():
    x = _random_matrix()
    ease = EASERecommender(EASEParams(l2=30.0)).fit(x)
    edlae = EDLAERecommender(EDLAEParams(l2=30.0, dropout=0.0)).fit(x)
    assert np.array_equal(_weights(ease), _weights(edlae))


@pytest.mark.parametrize("emphasis", [True, False])
def test_edlae_and_dlae_match_their_dense_closed_forms(emphasis: bool):
    x = _random_matrix(1)
    l2, p = 5.0, 0.4
    g = (x.T @ x).toarray().astype(np.float64)
    lam = l2 + p / (1 - p) * np.diag(g)
    inv = np.linalg.inv(g + np.diag(lam))
    if emphasis:
        expected = -inv / np.diag(inv)[None, :]
        np.fill_diagonal(expected, 0.0)
    else:
        expected = inv @ g  # (G + Λ)⁻¹ G
    model = EDLAERecommender(EDLAEParams(l2=l2, dropout=p, emphasis=emphasis)).fit(x)
    assert np.allclose(_weights(model), expected, atol=2e-4)


@pytest.mark.parametrize("xi", [0.2, 0.4])
def test_relaxed_diagonal_solves_each_column_under_its_bound(xi: float):
    """RDLAE, column by column: min ||X_j - X b||² + Σ Λ_ii b_i² subject to b_j <= ξ.

    Where the free optimum (DLAE's column) keeps b_j <= ξ it is the answer; otherwise
    b_j = ξ and the rest solve the reduced ridge problem (G + Λ)₋ⱼ b = (1 - ξ) G₋ⱼ,ⱼ.
    """
    rng = np.random.default_rng(3)  # item popularity from 5% to 60%: both branches occur
    x = sp.csr_matrix((rng.random((60, 15)) < np.linspace(0.05, 0.6, 15)).astype(np.float32))
    l2, p = 8.0, 0.3
    g = (x.T @ x).toarray().astype(np.float64)
    lam = np.diag(l2 + p / (1 - p) * np.diag(g))
    expected = np.zeros_like(g)
    bound = 0
    for j in range(g.shape[0]):
        column = np.linalg.solve(g + lam, g[:, j])
        if column[j] > xi:
            bound += 1
            rest = np.arange(g.shape[0]) != j
            column = np.zeros_like(column)
            column[rest] = np.linalg.solve((g + lam)[np.ix_(rest, rest)], (1 - xi) * g[rest, j])
        expected[:, j] = column
    np.fill_diagonal(expected, 0.0)
    assert 0 < bound < g.shape[0]  # the data exercises both branches
    model = EDLAERecommender(EDLAEParams(l2=l2, dropout=p, max_diagonal=xi)).fit(x)
    assert np.allclose(_weights(model), expected, atol=2e-4)


def test_relaxed_diagonal_spans_edlae_and_dlae():
    x = _random_matrix(4)
    def fit(**kw: object) -> np.ndarray:
        return _weights(EDLAERecommender(EDLAEParams(l2=3.0, dropout=0.25, **kw)).fit(x))
    assert np.array_equal(fit(max_diagonal=0.0), fit())
    dlae, relaxed = fit(emphasis=False), fit(max_diagonal=1.0)
    off = ~np.eye(dlae.shape[0], dtype=bool)
    assert np.allclose(relaxed[off], dlae[off], atol=1e-6)
    assert not np.allclose(fit(max_diagonal=0.3), fit(), atol=1e-3)


def test_dropout_penalises_popular_items_more():
    x = _random_matrix(2)
    g = np.asarray((x.T @ x).diagonal())
    popular, rare = int(np.argmax(g)), int(np.argmin(g))
    plain = _weights(EDLAERecommender(EDLAEParams(l2=1.0, dropout=0.0)).fit(x))
    dropped = _weights(EDLAERecommender(EDLAEParams(l2=1.0, dropout=0.5)).fit(x))
    shrink = np.abs(dropped).sum(axis=1) / np.abs(plain).sum(axis=1)
    assert shrink[popular] < shrink[rare]  # popular sources lose more of their weight


def test_stack_weights_find_the_component_that_is_the_truth():
    rng = np.random.default_rng(0)
    features, labels = [], []
    for _ in range(300):
        y = (rng.random(40) < 0.1).astype(float)
        truth = y + rng.normal(0, 0.05, 40) + rng.normal()  # per-user offset: centred away
        noise = rng.normal(0, 1, 40)
        anti = -y + rng.normal(0, 0.5, 40)
        features.append(np.column_stack([noise, truth, anti]))
        labels.append(y)
    weights = stack_weights(features, labels)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[1] > 0.97 and weights[2] == 0.0  # never a negative weight
    assert stack_weights([np.ones((3, 2))], [np.zeros(3)]).tolist() == [0.5, 0.5]


def test_stacked_model_learns_weights_and_reports_them():
    model = create("stacked", {"components": [
        {"algorithm": "ease", "params": {"l2": 10.0}},
        {"algorithm": "popularity"},
    ], "min_positives": 3, "validation_fraction": 0.3})
    assert isinstance(model, StackedRecommender)
    model.fit(block_matrix())
    meta = model._state_meta()
    assert meta["search"]["method"] == "nnls" and meta["search"]["rows"] > 0
    assert set(meta["weights"]) == {"0_ease", "1_popularity"}
    assert sum(meta["weights"].values()) == pytest.approx(1.0)
    assert meta["weights"]["0_ease"] > meta["weights"]["1_popularity"]
    search = meta["search"]
    assert sum(search["learned"]) == pytest.approx(1.0)
    # Learned weights are kept only when they beat every component alone on the holdout.
    assert search["best"] == max(search["learned_ndcg"], *search["single_component"].values())
    assert search["kept"] == "learned" or search["kept"].startswith("single ")
    with pytest.raises(Exception, match="blend"):
        create("stacked", {"components": [{"algorithm": "hybrid"}]}).fit(block_matrix())


def test_one_se_rule_keeps_a_component_only_when_the_holdout_can_tell():
    from fastinsight.recsys.hybrid import _fewest_within_one_se

    grid = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    rng = np.random.default_rng(0)
    alone = rng.random(400)
    noisy = alone + rng.normal(0.0, 0.2, 400) + 0.005  # better on average, within noise
    assert noisy.mean() > alone.mean()
    per_user = np.vstack([alone, noisy, alone - 0.3])
    assert _fewest_within_one_se(grid, per_user) == 0  # the single component
    steady = alone + 0.02 + rng.normal(0.0, 0.01, 400)  # better for nearly every user
    assert _fewest_within_one_se(grid, np.vstack([alone, steady, alone - 0.3])) == 1


def test_hybrid_one_se_rule_uses_no_more_components_than_the_best_point():
    components = [{"algorithm": "ease", "params": {"l2": 10.0}}, {"algorithm": "popularity"}]
    common = {"components": components, "min_positives": 3, "validation_fraction": 0.3}
    best = create("hybrid", common).fit(block_matrix())
    ruled = create("hybrid", {**common, "weights_rule": "one_se"}).fit(block_matrix())
    b, r = best._state_meta(), ruled._state_meta()
    assert "weights_rule" not in b["search"] and r["search"]["weights_rule"] == "one_se"
    assert r["search"]["top"] == list(best.weights)  # the same grid's best point
    assert np.count_nonzero(ruled.weights) <= np.count_nonzero(best.weights)
    assert r["search"]["best"] >= r["search"]["top_ndcg"] - 0.05  # within noise of the top
    history = block_matrix()[:3]
    assert np.all(np.isfinite(ruled.score_history(history)))
