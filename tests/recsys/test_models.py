"""Model-specific known answers (the shared contract lives in test_contract.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ModelError, ValidationFailed
from fastinsight.recsys.ease import EASEParams, EASERecommender
from fastinsight.recsys.itemknn import ItemKNNParams, ItemKNNRecommender
from fastinsight.recsys.matrix import build_matrix
from fastinsight.recsys.popularity import (
    PopularityParams,
    PopularityRecommender,
    TrendingParams,
    TrendingRecommender,
)
from fastinsight.recsys.registry import (
    MODELS,
    algorithms,
    create,
    get_algorithm,
    load_model,
    params_schema,
)


def csr(rows: list[list[float]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


# ---- popularity / trending ------------------------------------------------------------
def test_popularity_measures_weight_or_distinct_users():
    m = csr([[5.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    by_weight = PopularityRecommender().fit(m)
    by_users = PopularityRecommender(PopularityParams(measure="users")).fit(m)
    np.testing.assert_array_equal(by_weight.item_scores(), [5.0, 3.0, 1.0])
    np.testing.assert_array_equal(by_users.item_scores(), [1.0, 3.0, 1.0])
    assert by_weight.recommend(None, 1, history=csr([[0, 0, 1]]))[0].tolist() == [0]
    assert by_users.recommend(None, 1, history=csr([[0, 0, 1]]))[0].tolist() == [1]


def test_trending_on_a_windowed_decayed_matrix_prefers_recent_items():
    now = datetime(2024, 6, 30)
    weights = {"view": 1.0, "purchase": 10.0}
    records = [(f"u{i}", "classic", "purchase", None, now - timedelta(days=40)) for i in range(5)]
    records += [("u9", "fresh", "view", None, now - timedelta(days=1)),
                ("u8", "fresh", "view", None, now - timedelta(days=2)),
                ("u7", "lukewarm", "view", None, now - timedelta(days=10))]
    params = TrendingParams(half_life_days=3, window_days=14)
    options = params.matrix_options(now)
    assert options["since"] == now - timedelta(days=14)
    windowed = build_matrix(records, weights, item_ids=["classic", "fresh", "lukewarm"],
                            **options)
    trending = TrendingRecommender(params).fit(windowed.matrix)
    scores = trending.item_scores()
    assert scores[0] == 0.0  # outside the window
    assert scores[1] == pytest.approx(2 ** (-1 / 3) + 2 ** (-2 / 3), rel=1e-5)
    assert scores[2] == pytest.approx(2 ** (-10 / 3), rel=1e-5)
    all_time = build_matrix(records, weights, item_ids=["classic", "fresh", "lukewarm"])
    assert PopularityRecommender().fit(all_time.matrix).similar_items(2, 1)[0].tolist() == [0]
    assert trending.similar_items(2, 1)[0].tolist() == [1]


# ---- itemknn ----------------------------------------------------------------------------
def test_itemknn_cosine_neighbours_with_padding():
    m = csr([[1, 1, 0], [1, 0, 1], [0, 1, 0]])
    model = ItemKNNRecommender(ItemKNNParams(k=2)).fit(m)
    idx, scores = model.neighbours()
    assert idx.dtype == np.int32 and scores.dtype == np.float32 and idx.shape == (3, 2)
    assert idx.tolist() == [[2, 1], [0, -1], [0, -1]]
    np.testing.assert_allclose(scores, [[2**-0.5, 0.5], [0.5, 0.0], [2**-0.5, 0.0]], rtol=1e-6)
    # history @ S: a user holding items 1 and 2 scores item 0 with 0.5 + 0.707
    np.testing.assert_allclose(model.score_history(csr([[0, 1, 1]])), [[0.5 + 2**-0.5, 0, 0]],
                               rtol=1e-6)
    assert model.similar_items(1, 5)[0].tolist() == [0]


def test_itemknn_shrink_discounts_similarity():
    m = csr([[1, 1, 0], [1, 0, 1], [0, 1, 0]])
    model = ItemKNNRecommender(ItemKNNParams(k=2, shrink=1.0)).fit(m)
    _, scores = model.neighbours()
    np.testing.assert_allclose(scores[0], [1 / (2**0.5 + 1), 1 / 3], rtol=1e-6)


def test_itemknn_bm25_discounts_heavy_users():
    # Item 0 shares one user with item 1 (u0, who has 5 items) and one with item 2
    # (u1, who has 2): plain cosine ties them, BM25 trusts the light user more.
    m = csr([
        [1, 1, 0, 1, 1, 1],
        [1, 0, 1, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
    ])
    cos = ItemKNNRecommender(ItemKNNParams(k=5)).fit(m)
    c_idx, c_scores = cos.similar_items(0, 5)
    assert c_scores[c_idx.tolist().index(1)] == pytest.approx(c_scores[c_idx.tolist().index(2)])
    bm25 = ItemKNNRecommender(ItemKNNParams(k=5, weighting="bm25")).fit(m)
    assert bm25.similar_items(0, 1)[0].tolist() == [2]


def test_itemknn_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch):
    import fastinsight.recsys.itemknn as itemknn

    m = sp.random(80, 30, density=0.2, random_state=3, format="csr", dtype=np.float32)
    whole = ItemKNNRecommender(ItemKNNParams(k=7)).fit(m).neighbours()
    monkeypatch.setattr(itemknn, "BLOCK_BYTES", 8 * 30 * 4)  # 4 columns per block
    blocked = ItemKNNRecommender(ItemKNNParams(k=7)).fit(m).neighbours()
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_allclose(whole[1], blocked[1], rtol=1e-6)


def _tied_matrix() -> sp.csr_matrix:
    """Binary columns repeated many times over: most similarities are tied."""
    base = sp.random(40, 6, density=0.4, random_state=5, format="csr", dtype=np.float32)
    base.data[:] = 1.0
    return sp.csr_matrix(sp.hstack([base] * 5))  # 30 items, each with 4 identical twins


@pytest.mark.parametrize("weighting", ["cosine", "bm25"])
def test_itemknn_ties_go_to_the_lower_item_so_a_smaller_k_is_a_cut(weighting: str):
    m = _tied_matrix()
    wide = ItemKNNRecommender(ItemKNNParams(k=12, weighting=weighting)).fit(m).neighbours()
    for k in (1, 3, 4, 7):
        narrow = ItemKNNRecommender(ItemKNNParams(k=k, weighting=weighting)).fit(m).neighbours()
        np.testing.assert_array_equal(narrow[0], wide[0][:, :k])
        np.testing.assert_array_equal(narrow[1], wide[1][:, :k])
    # item 0's four twins (6, 12, 18, 24) tie at 1 and come first, lowest index first
    assert wide[0][0, :4].tolist() == [6, 12, 18, 24]
    np.testing.assert_allclose(wide[1][0, :4], 1.0, rtol=1e-6)


def test_itemknn_derives_a_smaller_k_and_either_selection_from_a_larger_fit():
    m = _tied_matrix()
    history = m[:5]
    for selection in ("source", "target"):
        larger = ItemKNNRecommender(ItemKNNParams(k=9)).fit(m)
        params = ItemKNNParams(k=4, selection=selection)
        derived = ItemKNNRecommender(params)
        assert derived.derive_from(larger, m)
        fresh = ItemKNNRecommender(params).fit(m)
        np.testing.assert_array_equal(derived.neighbours()[0], fresh.neighbours()[0])
        np.testing.assert_array_equal(derived.score_history(history), fresh.score_history(history))
    smaller = ItemKNNRecommender(ItemKNNParams(k=4)).fit(m)
    assert not ItemKNNRecommender(ItemKNNParams(k=9)).derive_from(smaller, m)
    assert smaller.neighbours()[0].shape == (30, 4)  # a refused derivation leaves it whole
    other = ItemKNNRecommender(ItemKNNParams(k=9, weighting="bm25")).fit(m)
    assert not ItemKNNRecommender(ItemKNNParams(k=4)).derive_from(other, m)


# ---- ease ---------------------------------------------------------------------------------
def test_ease_matches_the_closed_form(monkeypatch: pytest.MonkeyPatch):
    import fastinsight.recsys.ease as ease

    monkeypatch.setattr(ease, "BLOCK_BYTES", 8 * 40 * 7)  # several blocks
    m = sp.random(300, 40, density=0.2, random_state=1, format="csr", dtype=np.float32)
    lam = 5.0
    gram = (m.T @ m).toarray().astype(np.float64) + lam * np.eye(40)
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    model = EASERecommender(EASEParams(l2=lam)).fit(m)
    history = m[:5]
    np.testing.assert_allclose(model.score_history(history), history @ expected, atol=2e-5)


def test_ease_memory_guard_names_the_numbers():
    m = sp.random(50, 2000, density=0.01, random_state=0, format="csr", dtype=np.float32)
    with pytest.raises(ModelError, match=r"EASE needs ~0\.\d GiB for 2000 items; limit is 0\.01"
                                         r" GiB .*max_items"):
        EASERecommender(EASEParams(max_memory_gib=0.01)).fit(m)


def test_ease_max_items_fits_the_most_popular_items_only():
    m = csr([[1, 1, 0, 1, 0], [1, 1, 0, 0, 0], [1, 0, 1, 1, 0], [0, 1, 0, 1, 1]])
    model = EASERecommender(EASEParams(l2=1.0, max_items=3)).fit(m)  # items 0, 1, 3
    assert not model.covers_all_items
    scores = model.score_history(csr([[1, 0, 0, 0, 0]]))[0]
    assert np.isneginf(scores[[2, 4]]).all() and np.isfinite(scores[[0, 1, 3]]).all()
    ids, _ = model.recommend(None, 5, history=csr([[1, 0, 0, 0, 0]]))
    assert set(ids.tolist()) == {1, 3}
    assert model.similar_items(2, 3)[0].size == 0
    assert set(model.similar_items(0, 3)[0].tolist()) == {1, 3}


def test_ease_singular_gram_without_l2_raises():
    m = csr([[1, 0, 1], [1, 0, 1]])  # item 1 never seen, items 0 and 2 identical
    with pytest.raises(ModelError, match="not positive definite"):
        EASERecommender(EASEParams(l2=0.0)).fit(m)


# ---- registry -----------------------------------------------------------------------------
def test_registry_lists_the_models():
    assert {"popularity", "trending", "itemknn", "ease"} <= set(algorithms())
    assert "k" in params_schema("itemknn")["properties"]


def test_registry_rejects_unknown_algorithm_and_bad_params():
    with pytest.raises(ValidationFailed) as unknown:
        create("nope")
    assert unknown.value.details[0]["field"] == "algorithm"
    with pytest.raises(ValidationFailed) as bad:
        create("itemknn", {"k": 0, "weighting": "jaccard"})
    fields = {d["field"] for d in bad.value.details}
    assert fields == {"params.k", "params.weighting"}
    with pytest.raises(ValidationFailed, match=r"params\.bogus"):
        create("ease", {"bogus": 1})
    model = create("itemknn", {"k": 3})
    assert isinstance(model, ItemKNNRecommender) and model.params.k == 3


def test_registry_is_read_only_and_extended_by_building_a_new_one(tmp_path: Path):
    entries: Any = MODELS.entries
    with pytest.raises(TypeError):
        entries["itemknn2"] = ItemKNNRecommender

    class ItemKNN2(ItemKNNRecommender):
        algorithm = "itemknn2"

    mine = MODELS.extended({"itemknn2": ItemKNN2})
    assert "itemknn2" in mine.names() and "itemknn2" not in algorithms()
    model = mine.create("itemknn2", {"k": 2}).fit(csr([[1, 1, 0], [0, 1, 1]]))
    model.save(tmp_path / "m")
    assert isinstance(mine.load(tmp_path / "m"), ItemKNN2)
    with pytest.raises(ModelError, match="unknown algorithm 'itemknn2'"):
        load_model(tmp_path / "m")
    # A lazy entry resolves on use and leaves the registry as it was.
    before = dict(MODELS.entries)
    assert get_algorithm("hybrid").algorithm == "hybrid"
    assert dict(MODELS.entries) == before


def test_load_model_reports_unreadable_directories(tmp_path: Path):
    with pytest.raises(ModelError, match=r"cannot read meta\.json"):
        load_model(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"algorithm": "nope"}))
    with pytest.raises(ModelError, match="unknown algorithm 'nope'"):
        load_model(tmp_path)


def test_itemknn_target_side_keeps_each_candidates_k_best_sources():
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float32))
    k = 3
    source = ItemKNNRecommender(ItemKNNParams(k=k)).fit(x)
    target = ItemKNNRecommender(ItemKNNParams(k=k, selection="target")).fit(x)
    # Brute force: cosine between item columns, never an item with itself.
    dense = x.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=0)
    cos = dense.T @ dense / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(cos, -np.inf)
    t = target.similarity().toarray()
    for j in range(12):  # column j holds exactly j's k most similar sources
        kept = set(np.flatnonzero(t[:, j]).tolist())
        assert kept == set(np.argsort(-cos[:, j], kind="stable")[:k].tolist()) - {
            i for i in range(12) if cos[i, j] <= 0}
        assert np.allclose(t[list(kept), j], cos[list(kept), j], atol=1e-5)
    assert np.array_equal(t, source.similarity().toarray().T)
    assert (np.count_nonzero(t, axis=0) <= k).all()
    assert not (np.count_nonzero(t, axis=1) <= k).all()  # rows are no longer capped


def test_itemknn_selection_changes_which_items_vote_known_answer():
    # Items a, b, c: sim(a, b) < sim(b, c). With k = 1, source-side: a keeps b, b keeps c,
    # c keeps b. Target-side: b keeps c as its only voter, so a history {a} scores nothing.
    x = sp.csr_matrix(np.array([
        [1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0],
    ], dtype=np.float32))
    history = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    source = ItemKNNRecommender(ItemKNNParams(k=1)).fit(x)
    target = ItemKNNRecommender(ItemKNNParams(k=1, selection="target")).fit(x)
    assert source.score_history(history)[0].tolist()[1] > 0
    assert target.score_history(history)[0].tolist() == [0.0, 0.0, 0.0]
