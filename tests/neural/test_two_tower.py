from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ModelError
from fastinsight.recsys.content import ItemContent
from fastinsight.recsys.keras_env import use_jax_backend
from fastinsight.recsys.two_tower import TwoTower

from .conftest import COLD_ITEM, N_ITEMS, N_TOPICS, N_USERS, SMALL_PARAMS, topic_of_item


def _topics(idx: np.ndarray) -> set[int]:
    return {topic_of_item(int(i)) for i in idx}


def test_known_users_get_items_of_their_topic(fitted: TwoTower, matrix: sp.csr_matrix) -> None:
    for user in range(0, N_USERS, 7):
        ids, scores = fitted.recommend(user, 5)
        assert _topics(ids) == {user % N_TOPICS}
        assert not set(ids) & set(matrix[user].indices)
        assert np.all(np.diff(scores) <= 0)


def test_similar_items_share_the_topic(fitted: TwoTower) -> None:
    for item in (0, 25, 47, 78):
        ids, _ = fitted.similar_items(item, 5)
        assert item not in ids
        assert _topics(ids) == {topic_of_item(item)}


def test_factors_are_float32_and_unit_length(fitted: TwoTower) -> None:
    users, items = fitted.user_factors(), fitted.item_factors()
    assert users is not None and items is not None
    assert users.shape == (N_USERS, SMALL_PARAMS.dim) and users.dtype == np.float32
    assert items.shape == (N_ITEMS, SMALL_PARAMS.dim) and items.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        fitted.score_users([3]), users[[3]] @ items.T, rtol=1e-5, atol=1e-6
    )


def test_new_item_from_metadata_lands_in_its_topic(fitted: TwoTower) -> None:
    new = [
        ItemContent("x1", title="alien robot", description="laser orbit", categories=("scifi",)),
        ItemContent("x2", title="kiss the bride", categories=("romance",), tags=("wedding",)),
        ItemContent("x3", title="haunted crypt", description="vampire curse"),
    ]
    vectors = fitted.item_vectors_for_items(new)
    assert vectors.shape == (3, SMALL_PARAMS.dim) and vectors.dtype == np.float32
    items = fitted.item_factors()
    assert items is not None
    for vec, topic in zip(vectors, (0, 1, 2), strict=True):
        nearest = np.argsort(-(items @ vec))[:5]
        assert _topics(nearest) == {topic}
        # the content vector also ranks the new item high for users of its topic
        users = fitted.user_factors()
        assert users is not None
        same = users[np.arange(N_USERS) % N_TOPICS == topic] @ vec
        other = users[np.arange(N_USERS) % N_TOPICS != topic] @ vec
        assert same.mean() > other.mean() + 0.2


def test_item_without_interactions_is_embedded_from_its_content(
    fitted: TwoTower, content
) -> None:  # type: ignore[no-untyped-def]
    _, features = content
    items = fitted.item_factors()
    assert items is not None
    # One row through the item tower against the same row inside a batch: XLA may
    # order the float32 sums differently, so equal up to rounding, not bit for bit.
    np.testing.assert_allclose(
        items[COLD_ITEM], fitted.item_vector_for_content(features[COLD_ITEM]), rtol=1e-5, atol=1e-6
    )
    ids, _ = fitted.similar_items(COLD_ITEM, 5)
    assert _topics(ids) == {topic_of_item(COLD_ITEM)}


def test_new_user_vector_moves_towards_interacted_items(fitted: TwoTower) -> None:
    items = fitted.item_factors()
    assert items is not None
    picked = np.array([41, 45, 52])  # topic 2
    empty = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
    some = sp.csr_matrix((np.ones(3), ([0, 0, 0], picked)), shape=(1, N_ITEMS))
    before = fitted.user_vectors_for(empty)[0]
    after = fitted.user_vectors_for(some)[0]
    gain = items[picked] @ after - items[picked] @ before
    assert np.all(gain > 0.05) and gain.mean() > 0.2
    ids, _ = fitted.recommend(None, 5, history=some)
    assert _topics(ids) == {2} and not set(ids) & set(picked)
    # a known user (topic 0) with fresh topic-2 interactions drifts towards topic 2
    with_id = fitted.user_vectors_for(some, user_idx=[0])[0]
    assert (items[picked] @ with_id).mean() > (items[picked] @ fitted.user_factors()[0]).mean()


def test_save_load_gives_identical_scores(fitted: TwoTower, tmp_path: Path) -> None:
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.keras").is_file()
    loaded = TwoTower.load(tmp_path / "m")
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(loaded.score_users(users), fitted.score_users(users))
    hist = sp.csr_matrix((np.ones(2), ([0, 0], [3, 9])), shape=(1, N_ITEMS))
    np.testing.assert_array_equal(loaded.score_history(hist), fitted.score_history(hist))
    for a, b in zip(loaded.similar_items(7, 10), fitted.similar_items(7, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    probe = [ItemContent("p", title="pasta sauce", categories=("cooking",))]
    np.testing.assert_array_equal(
        loaded.item_vectors_for_items(probe), fitted.item_vectors_for_items(probe)
    )
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    curve = meta["state"]["history"]["loss"]
    assert len(curve) == SMALL_PARAMS.epochs and curve[-1] < curve[0]
    # saving the loaded model again carries the Keras file along
    loaded.save(tmp_path / "m2")
    assert (tmp_path / "m2" / "model.keras").is_file()


def test_keras_file_computes_what_numpy_serves(
    fitted: TwoTower, content, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    fitted.save(tmp_path / "m")
    keras_model = TwoTower.load(tmp_path / "m").keras_model()
    assert fitted.content_encoder is not None
    ids = np.array([0, 5, 61], dtype=np.int32)
    hist = np.zeros((3, SMALL_PARAMS.history_length), dtype=np.int32)
    hist[1, :2] = [4, 7]  # user 5 (shifted ids): history items 3 and 6
    _, features = content
    users, items = keras_model.predict(
        {"user_id": ids + 1, "hist": hist, "item_id": ids + 1, "item_feat": features[ids]},
        verbose=0,
    )
    history = sp.csr_matrix((np.ones(2), ([1, 1], [3, 6])), shape=(3, N_ITEMS))
    np.testing.assert_allclose(users, fitted.user_vectors_for(history, [0, 5, 61]), atol=1e-5)
    np.testing.assert_allclose(items, fitted.item_factors()[[0, 5, 61]], atol=1e-5)


def test_same_seed_same_scores_other_seed_differs(
    fitted: TwoTower, matrix: sp.csr_matrix, content
) -> None:  # type: ignore[no-untyped-def]
    _, features = content
    again = TwoTower(SMALL_PARAMS).set_item_content(features).fit(matrix)
    np.testing.assert_array_equal(again.score_users([0, 1, 2]), fitted.score_users([0, 1, 2]))
    other = TwoTower(SMALL_PARAMS.model_copy(update={"seed": 4})).set_item_content(features)
    other.fit(matrix)
    assert not np.allclose(other.score_users([0, 1, 2]), fitted.score_users([0, 1, 2]))


def test_id_only_model_with_early_stopping(matrix: sp.csr_matrix) -> None:
    params = SMALL_PARAMS.model_copy(update={
        "validation_fraction": 0.2, "epochs": 30, "patience": 2,
    })
    model = TwoTower(params).fit(matrix)
    history = model.history
    assert set(history) >= {"loss", "val_loss", "val_recall"}
    assert len(history["loss"]) < 30  # stopped early
    assert max(history["val_recall"]) > 0.6  # chance is 20/80 per slot
    ids, _ = model.recommend(1, 5)
    assert _topics(ids) == {1}
    with pytest.raises(ModelError, match="without item content"):
        model.item_vector_for_content(np.zeros(4, dtype=np.float32))


def test_early_stopping_waits_for_min_epochs(matrix: sp.csr_matrix) -> None:
    """A noisy early peak of held-out recall must not end training (min_epochs)."""
    params = SMALL_PARAMS.model_copy(update={
        "validation_fraction": 0.2, "epochs": 30, "patience": 0, "min_epochs": 0,
    })
    eager = TwoTower(params).fit(matrix).history["loss"]
    patient = TwoTower(params.model_copy(update={"min_epochs": 8})).fit(matrix).history["loss"]
    assert len(eager) < 9  # with patience 0, the first epoch that does not improve ends it
    assert 9 <= len(patient) < 30  # watched from epoch 9 on, then stopped early


def test_without_user_ids_known_users_are_scored_from_their_history(
    fitted: TwoTower, matrix: sp.csr_matrix, content
) -> None:  # type: ignore[no-untyped-def]
    _, features = content
    users = [0, 1, 2]
    # With ids (the fixture), a known user's vector is more than the history's.
    assert not np.allclose(fitted.score_users(users), fitted.score_history(matrix[users]),
                           atol=1e-4)
    model = TwoTower(SMALL_PARAMS.model_copy(update={"user_ids": False}))
    model.set_item_content(features).fit(matrix)
    np.testing.assert_allclose(model.score_users(users), model.score_history(matrix[users]),
                               atol=1e-5)
    ids, _ = model.recommend(1, 5)
    assert _topics(ids) == {topic_of_item(int(matrix[1].indices[0]))}


def test_content_rows_must_match_the_matrix(matrix: sp.csr_matrix) -> None:
    model = TwoTower(SMALL_PARAMS).set_item_content(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ModelError, match="rows"):
        model.fit(matrix)
    with pytest.raises(ModelError, match="finite"):
        TwoTower().set_item_content(np.full((2, 2), np.nan))


def test_backend_guard_refuses_another_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("keras")
    fake.backend = types.SimpleNamespace(backend=lambda: "torch")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keras", fake)
    with pytest.raises(ModelError, match="'torch' backend"):
        use_jax_backend()
