"""The contract every registered recommender passes, on known-answer data.

Parametrised over ``registry.algorithms()``: a model registered there is tested here
with no change to this file (optionally one line in ``conftest.FAST_PARAMS``).
"""

from __future__ import annotations

import itertools
import json
import mmap as mmap_module
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ModelError
from fastinsight.recsys.ann import VectorIndex
from fastinsight.recsys.popularity import ItemScoreRecommender
from fastinsight.recsys.registry import algorithms, load_model

from .conftest import BLOCK_A, BLOCK_B, N_USERS, WITHHELD, block_matrix, fitted, make

ALL = algorithms()

# Contract checks a registered model is known to fail today, as (algorithm, check) ->
# reason. Strict: when the model is fixed the xfail turns into a failure, so the entry
# gets removed instead of silently hiding a regression later.
KNOWN_GAPS: dict[tuple[str, str], str] = {
}


def cases(check: str) -> list[object]:
    return [
        pytest.param(a, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[(a, check)]))
        if (a, check) in KNOWN_GAPS
        else a
        for a in ALL
    ]

# Parameters that make each model's arithmetic blow up; the fit must refuse to ship.
NAN_PARAMS: dict[str, dict[str, object]] = {
    "ease": {"l2": 1e39},  # overflows float32: the inverse comes out NaN
    "edlae": {"l2": 1e39},
    "als": {"alpha": 1e38},  # confidences overflow float32
}


def mapped(arr: np.ndarray) -> bool:
    """Whether ``arr`` is a view of a memory-mapped file (not a private copy)."""
    base: object = arr
    while base is not None:
        if isinstance(base, np.memmap | mmap_module.mmap):
            return True
        base = getattr(base, "base", None)
    return False


def is_popularity(algorithm: str) -> bool:
    return isinstance(make(algorithm), ItemScoreRecommender)


@pytest.mark.parametrize("algorithm", ALL)
def test_known_answer_first_recommendation(algorithm: str) -> None:
    if is_popularity(algorithm):
        model = fitted(algorithm, "graded")
        history = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 2])), shape=(1, 6))
        ids, _ = model.recommend(None, 4, history=history)
        assert ids.tolist() == [1, 3, 4, 5]  # most popular unseen first
        ids, _ = model.recommend(11, 3)  # user 11 has seen item 0 only
        assert ids.tolist() == [1, 2, 3]
    else:
        model = fitted(algorithm)
        user, item = WITHHELD
        ids, scores = model.recommend(user, 3)
        assert ids[0] == item, f"{algorithm} ranked {ids.tolist()} for user {user}"
        assert scores[0] > scores[1]


@pytest.mark.parametrize("algorithm", ALL)
def test_recommend_never_returns_seen_or_excluded_items(algorithm: str) -> None:
    model = fitted(algorithm)
    matrix = block_matrix()
    exclude = np.array([3, 9])
    for user in range(N_USERS):
        seen = set(matrix[user].indices.tolist())
        ids, scores = model.recommend(user, 12, exclude=exclude)
        returned = ids.tolist()
        assert len(returned) == len(set(returned))
        assert not seen & set(returned), f"user {user} got seen items"
        assert not {3, 9} & set(returned)
        assert len(returned) <= 12 - len(seen | {3, 9})
        assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) <= 0)
    # the same through a history row instead of a user index
    history = matrix[4]
    ids, _ = model.recommend(None, 12, exclude=exclude, history=history)
    assert not set(history.indices.tolist()) & set(ids.tolist())


@pytest.mark.parametrize("algorithm", cases("similar_items"))
def test_similar_items_excludes_the_item_and_prefers_its_block(algorithm: str) -> None:
    model = fitted(algorithm)
    for item in range(12):
        ids, scores = model.similar_items(item, 5)
        assert item not in ids.tolist()
        assert len(ids) == len(set(ids.tolist())) <= 5
        assert np.all(np.diff(scores) <= 0)
        if not is_popularity(algorithm):
            block = BLOCK_A if item in BLOCK_A else BLOCK_B
            assert len(ids) == 5
            assert set(ids.tolist()) == set(block) - {item}, (
                f"{algorithm}: similar_items({item}) = {ids.tolist()}"
            )
    if is_popularity(algorithm):
        pop = fitted(algorithm, "graded")
        assert pop.similar_items(1, 3)[0].tolist() == [0, 2, 3]


@pytest.mark.parametrize("algorithm", cases("fold_in"))
def test_fold_in_scores_a_new_user_from_history(algorithm: str) -> None:
    model = fitted(algorithm)
    history = sp.csr_matrix(([2.0, 1.0], ([0, 0], [1, 4])), shape=(1, 12))
    scores = model.score_history(history)
    assert scores.shape == (1, 12) and scores.dtype == np.float32
    ids, _ = model.recommend(None, 4, history=history)
    if is_popularity(algorithm):
        expected = model.recommend(None, 4, exclude=[1, 4], history=sp.csr_matrix((1, 12)))
        assert ids.tolist() == expected[0].tolist()
    else:
        assert set(ids.tolist()) == {0, 2, 3, 5}, f"{algorithm} ranked {ids.tolist()}"
        history_b = sp.csr_matrix(([1.0], ([0], [8])), shape=(1, 12))
        ids_b, _ = model.recommend(None, 5, history=history_b)
        assert set(ids_b.tolist()) == set(BLOCK_B) - {8}


@pytest.mark.parametrize("algorithm", ALL)
def test_query_vector_reproduces_scores_when_offered(algorithm: str) -> None:
    """Serving retrieves through an ANN index only when ``q @ item_factors`` is the score."""
    model = fitted(algorithm)
    history = sp.csr_matrix(([2.0, 1.0], ([0, 0], [1, 4])), shape=(1, 12))
    query = model.query_vector(history)
    if query is None:
        return
    factors = model.item_factors()
    assert factors is not None and query.shape == (factors.shape[1],)
    np.testing.assert_allclose(query @ factors.T, model.score_history(history)[0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algorithm", ALL)
@pytest.mark.parametrize("mmap", [False, True])
def test_save_and_load_give_identical_scores(algorithm: str, mmap: bool, tmp_path: Path) -> None:
    model = fitted(algorithm)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", mmap=mmap)
    assert type(loaded) is type(model)
    assert loaded.params == model.params
    assert (loaded.n_users, loaded.n_items) == (model.n_users, model.n_items)
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    history = sp.csr_matrix(([1.0, 3.0], ([0, 0], [2, 7])), shape=(1, 12))
    np.testing.assert_array_equal(loaded.score_history(history), model.score_history(history))
    for item in (0, 7):
        for a, b in zip(loaded.similar_items(item, 4), model.similar_items(item, 4),
                        strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded.recommend(3, 5), model.recommend(3, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded.recommend_many(history, 5), model.recommend_many(history, 5),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded.recommend(None, 5, history=history), model.recommend(None, 5, history=history),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    files = sorted((tmp_path / "m" / "arrays").glob("*.npy"))
    assert sorted(meta["arrays"].values()) == [f.name for f in files]
    assert all(np.load(f, allow_pickle=False).dtype != object for f in files)


@pytest.mark.parametrize("algorithm", ALL)
def test_mapped_arrays_are_read_only_views_of_the_saved_files(algorithm: str, tmp_path: Path) -> None:
    """Serving maps every model array: shared by the processes of a host, never written."""
    model = fitted(algorithm)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", mmap=True)
    arrays = dict(loaded._state_arrays())
    assert loaded.user_items is not None
    arrays.update(ui_data=loaded.user_items.data, ui_indices=loaded.user_items.indices)
    for name, arr in arrays.items():
        assert not arr.flags.writeable, name
        assert mapped(arr), f"{name} was copied into private memory"
        if arr.size:
            with pytest.raises(ValueError, match="read-only"):
                arr.reshape(-1)[0] = 0
def as_format_1(directory: Path) -> None:
    """Rewrite a saved model the way models were saved before format 2: one arrays.npz."""
    for meta_path in directory.rglob("meta.json"):
        meta = json.loads(meta_path.read_text())
        files = meta.pop("arrays")
        arrays = {name: np.load(meta_path.parent / "arrays" / file) for name, file in files.items()}
        np.savez(meta_path.parent / "arrays.npz", **arrays)  # type: ignore[arg-type]
        for file in files.values():
            (meta_path.parent / "arrays" / file).unlink()
        (meta_path.parent / "arrays").rmdir()
        meta["format_version"] = 1
        meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("algorithm", ALL)
def test_models_saved_as_one_archive_still_load_read_only(algorithm: str, tmp_path: Path) -> None:
    model = fitted(algorithm)
    model.save(tmp_path / "m")
    as_format_1(tmp_path / "m")
    loaded = load_model(tmp_path / "m", mmap=True)
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    for name, arr in loaded._state_arrays().items():
        assert not arr.flags.writeable, name


@pytest.mark.parametrize("algorithm", ALL)
def test_fit_is_deterministic(algorithm: str) -> None:
    a = make(algorithm).fit(block_matrix())
    b = fitted(algorithm)
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(a.score_users(users), b.score_users(users))


@pytest.mark.parametrize("algorithm", cases("nan_input"))
def test_nan_input_raises_model_error(algorithm: str) -> None:
    matrix = block_matrix()
    matrix.data[3] = np.nan
    with pytest.raises(ModelError):
        make(algorithm).fit(matrix)


@pytest.mark.parametrize("algorithm", sorted(set(ALL) & set(NAN_PARAMS)))
def test_nan_producing_params_raise_model_error(algorithm: str) -> None:
    with pytest.raises(ModelError):
        make(algorithm, **NAN_PARAMS[algorithm]).fit(block_matrix())


@pytest.mark.parametrize("algorithm", ALL)
def test_fit_rejects_negative_weights(algorithm: str) -> None:
    matrix = block_matrix()
    matrix.data[0] = -1.0
    with pytest.raises(ModelError, match="non-negative"):
        make(algorithm).fit(matrix)


@pytest.mark.parametrize("algorithm", ALL)
def test_user_without_interactions_gets_finite_recommendations(algorithm: str) -> None:
    model = fitted(algorithm)
    ids, scores = model.recommend(N_USERS - 1, 5)
    assert len(ids) == 5 and np.all(np.isfinite(scores))
    ids, scores = model.recommend(None, 5, history=sp.csr_matrix((1, 12), dtype=np.float32))
    assert len(ids) == 5 and np.all(np.isfinite(scores))


@pytest.mark.parametrize("algorithm", ALL)
def test_embeddings_when_present_are_float32_and_aligned(algorithm: str) -> None:
    model = fitted(algorithm)
    users, items = model.user_factors(), model.item_factors()
    if items is not None:
        assert items.dtype == np.float32 and items.shape[0] == 12
        assert np.all(np.isfinite(items))
    if users is not None:
        assert users.dtype == np.float32 and users.shape[0] == N_USERS
        assert items is not None and users.shape[1] == items.shape[1]


# ---- recommend_many: the batched call -------------------------------------------------
def extra_exclusions(n_rows: int, n_items: int = 12) -> sp.csr_matrix:
    """Row ``u`` also leaves out items ``u % 12`` and ``5u % 12`` (one item when equal)."""
    rows = np.repeat(np.arange(n_rows), 2)
    cols = np.stack([np.arange(n_rows) % n_items, 5 * np.arange(n_rows) % n_items], 1).ravel()
    excl = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n_rows, n_items))
    excl.data[:] = 1.0  # duplicates summed: the weight does not matter, the column does
    return excl


def assert_same_ranking(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray],
                        full: np.ndarray, what: str) -> None:
    """Same padded lists of ids and scores, except that items whose scores tie up to float
    rounding may trade places: a batch and a single row (or a gathered candidate and a
    full product) may sum in a different order and differ in the last bit."""
    (ids, scores), (want_ids, want_scores) = got, want
    assert ids.shape == want_ids.shape and ((ids >= 0) == (want_ids >= 0)).all(), what
    valid = ids >= 0
    np.testing.assert_allclose(scores[valid], want_scores[valid], rtol=1e-6, atol=1e-7,
                               err_msg=what)
    differ = ids != want_ids
    np.testing.assert_allclose(full[ids[differ]], full[want_ids[differ]], rtol=1e-6, atol=1e-7,
                               err_msg=f"{what}: {ids.tolist()} != {want_ids.tolist()}")


def padded(pair: tuple[np.ndarray, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full(n, -1, dtype=np.int64)
    scores = np.full(n, -np.inf, dtype=np.float32)
    ids[: len(pair[0])], scores[: len(pair[1])] = pair
    return ids, scores


@pytest.mark.parametrize("algorithm", ALL)
def test_recommend_many_equals_recommend_row_by_row(algorithm: str) -> None:
    model = fitted(algorithm)
    matrix = block_matrix()
    excl = extra_exclusions(N_USERS)
    users = np.arange(N_USERS)
    by_user = model.recommend_many(matrix, 7, excl, users=users)
    by_history = model.recommend_many(matrix, 7, excl)
    for ids, scores in (by_user, by_history):
        assert ids.shape == scores.shape == (N_USERS, 7)
        assert ids.dtype == np.int64 and scores.dtype == np.float32
    for user in range(N_USERS):
        left_out = excl[user].indices
        assert_same_ranking((by_user[0][user], by_user[1][user]),
                            padded(model.recommend(user, 7, exclude=left_out), 7),
                            model.score_users([user])[0], f"user {user}")
        assert_same_ranking((by_history[0][user], by_history[1][user]),
                            padded(model.recommend(None, 7, exclude=left_out,
                                                   history=matrix[user]), 7),
                            model.score_history(matrix[user])[0], f"history {user}")


@pytest.mark.parametrize("algorithm", ALL)
def test_recommend_many_honours_exclusions_and_pads(algorithm: str) -> None:
    model = fitted(algorithm)
    matrix = block_matrix()
    excl = extra_exclusions(N_USERS)
    ids, scores = model.recommend_many(matrix, 12, excl)
    for user in range(N_USERS):
        banned = set(matrix[user].indices.tolist()) | set(excl[user].indices.tolist())
        valid = ids[user][ids[user] >= 0]
        assert not banned & set(valid.tolist()), f"user {user} got left-out items"
        assert len(valid) <= 12 - len(banned) and len(set(valid.tolist())) == len(valid)
        assert (ids[user][len(valid):] == -1).all() and np.isneginf(scores[user][len(valid):]).all()
        assert np.all(np.isfinite(scores[user][: len(valid)]))
        assert np.all(np.diff(scores[user][: len(valid)]) <= 0)
    # The user without interactions, with ten of twelve items left out: two, then padding.
    empty = sp.csr_matrix((1, 12), dtype=np.float32)
    ten = sp.csr_matrix((np.ones(10, dtype=np.float32), np.arange(10), [0, 10]), shape=(1, 12))
    ids, scores = model.recommend_many(empty, 4, ten, users=[N_USERS - 1])
    assert sorted(ids[0, :2].tolist()) == [10, 11] and ids[0, 2:].tolist() == [-1, -1]
    assert np.isfinite(scores[0, :2]).all() and np.isneginf(scores[0, 2:]).all()
    # Seen items come back when the history is not to be left out.
    ids, _ = model.recommend_many(matrix[:1], 12, exclude_history=False)
    assert set(matrix[0].indices.tolist()) <= set(ids[0].tolist())


@pytest.mark.parametrize("algorithm", ALL)
@pytest.mark.parametrize("threshold", [20_000, 0])
def test_recommend_many_through_the_index_gives_the_exact_answer(algorithm: str, threshold: int) -> None:
    """``threshold=0`` forces the HNSW graph; candidates are re-scored exactly either way."""
    model = fitted(algorithm)
    matrix = block_matrix()
    excl = extra_exclusions(N_USERS)
    space = model.embedding_space()
    if space is None:
        assert model.query_vector(matrix[:1]) is None
        index = VectorIndex().build(np.eye(12, dtype=np.float32))
        with pytest.raises(ModelError, match="no embedding space"):
            model.recommend_many(matrix, 5, index=index)
        return
    index = space.retrieval_index(exact_threshold=threshold)
    assert index.exact == (threshold > 0) and index.size == 12
    for users in (None, np.arange(N_USERS)):
        want = model.recommend_many(matrix, 5, excl, users=users)
        got = model.recommend_many(matrix, 5, excl, users=users, index=index)
        full = model.score_users(users) if users is not None else model.score_history(matrix)
        for user in range(N_USERS):
            assert_same_ranking((got[0][user], got[1][user]), (want[0][user], want[1][user]),
                                full[user], f"user {user}")
        assert got[0][WITHHELD[0], 0] == WITHHELD[1]  # the withheld item still comes first


@pytest.mark.parametrize("algorithm", ALL)
def test_embedding_space_when_offered_scores_by_inner_product(algorithm: str) -> None:
    model = fitted(algorithm)
    space = model.embedding_space()
    if space is None:
        return
    assert space.users.shape == (N_USERS, space.items.shape[1]) and space.n_items == 12
    users = np.arange(N_USERS)
    np.testing.assert_allclose(space.users @ space.items.T, model.score_users(users),
                               rtol=1e-5, atol=1e-6)
    unit = space.unit_items()
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("algorithm", ALL)
@pytest.mark.parametrize("threshold", [None, 20_000, 0])
def test_recommend_many_includes_items_whatever_their_rank(
    algorithm: str, threshold: int | None
) -> None:
    """``include`` (pinned items) follows the best items, scored, unless among them or left out."""
    model = fitted(algorithm)
    space = model.embedding_space()
    index = None
    if threshold is not None:
        if space is None:
            return
        index = space.retrieval_index(exact_threshold=threshold)
    matrix = block_matrix()
    excl = extra_exclusions(N_USERS)
    include = [9, 2, 9, 7]  # the repeat counts once
    best = model.recommend_many(matrix, 3, excl, index=index)
    ids, scores = model.recommend_many(matrix, 3, excl, index=index, include=include)
    assert ids.shape == scores.shape == (N_USERS, 6)
    full = model.score_history(matrix)
    for user in range(N_USERS):
        assert_same_ranking((ids[user][:3], scores[user][:3]), (best[0][user], best[1][user]),
                            full[user], f"user {user}")
        banned = set(matrix[user].indices.tolist()) | set(excl[user].indices.tolist())
        listed = set(ids[user][:3].tolist())
        want = [i for i in (9, 2, 7) if i not in listed and i not in banned]
        tail = ids[user][3:]
        assert tail[: len(want)].tolist() == want and (tail[len(want):] == -1).all()
        np.testing.assert_allclose(scores[user][3: 3 + len(want)], full[user][want],
                                   rtol=1e-5, atol=1e-6)
        assert np.isneginf(scores[user][3 + len(want):]).all()
    with pytest.raises(ValueError, match="outside"):
        model.recommend_many(matrix, 3, include=[12])


def test_recommend_many_rejects_misshapen_input() -> None:
    model = fitted("als")
    matrix = block_matrix()
    with pytest.raises(ValueError, match="users"):
        model.recommend_many(matrix, 3, users=[0, 1])
    with pytest.raises(ValueError, match="exclude"):
        model.recommend_many(matrix, 3, matrix[:2])
    with pytest.raises(ValueError, match="items"):
        model.recommend_many(sp.csr_matrix((2, 5), dtype=np.float32), 3)
    assert model.recommend_many(matrix, 0)[0].shape == (N_USERS, 0)


@pytest.mark.parametrize("algorithm", ALL)
def test_optional_capabilities_are_none_or_consistent(algorithm: str) -> None:
    """Serving reaches model-specific features only through the contract's optional calls."""
    model = fitted(algorithm)
    neighbours = model.item_neighbours()
    if neighbours is not None:
        ids, scores = neighbours
        assert ids.shape == scores.shape and ids.shape[0] == model.n_items
        block_item = BLOCK_A[0]
        kept = [int(i) for i in ids[block_item] if i >= 0]
        assert kept and block_item not in kept
        assert set(kept[: len(BLOCK_A) - 1]) <= set(BLOCK_A)  # neighbours come from its block
    history = sp.csr_matrix(([1.0], ([0], [BLOCK_A[0]])), shape=(1, model.n_items))
    query = model.cold_query_vector(history)
    assert model.cold_item_vectors([]) is None or query is not None
    if query is not None:
        assert query.ndim == 1 and np.all(np.isfinite(query))


def _other_values(algorithm: str, name: str, current: object) -> list[object]:
    """Values of ``name`` other than ``current``, from the default search space."""
    from fastinsight.recsys.evaluation.spaces import DEFAULT_SPACES

    values = DEFAULT_SPACES.get(algorithm, {}).get(name) or ([not current]
                                                             if isinstance(current, bool) else [])
    others = [v for v in values if v != current]
    assert others, f"{algorithm}.{name}: no other value to derive in its default space"
    return others


@pytest.mark.parametrize("algorithm", ALL)
def test_derive_from_is_refused_or_equals_a_fresh_fit(algorithm: str) -> None:
    """Some derivations go one way only (ALS continues to more iterations, item-kNN cuts
    to fewer neighbours): from each value of a derived parameter (the fixture's and its
    default space's) to each other, the derivation is either refused, leaving the
    previous fit whole, or scores as a fresh fit; at least one is accepted."""
    model = make(algorithm)
    declared = type(model.params).model_fields
    assert set(model.derived_params) <= set(declared)
    matrix = block_matrix()
    assert not make(algorithm).derive_from(make(algorithm), matrix)  # previous not fitted
    other = "popularity" if algorithm != "popularity" else "ease"
    stranger = make(other).fit(matrix)
    assert not make(algorithm).derive_from(stranger, matrix)
    assert stranger.user_items is not None
    if not model.derived_params:  # nothing to derive: even an equal fit is refused
        twin = make(algorithm).fit(matrix)
        assert not make(algorithm).derive_from(twin, matrix) and twin.user_items is not None
        return
    users = np.arange(N_USERS)
    for name in model.derived_params:
        accepted = 0
        current = getattr(model.params, name)
        values = [current, *_other_values(algorithm, name, current)]
        for start, value in itertools.permutations(values, 2):
            previous = make(algorithm, **{name: start}).fit(matrix)
            derived = make(algorithm, **{name: value})
            if not derived.derive_from(previous, matrix):
                assert previous.user_items is not None  # refused: left as it was
                continue
            accepted += 1
            assert previous.user_items is None  # consumed
            fresh = make(algorithm, **{name: value}).fit(matrix)
            np.testing.assert_allclose(derived.score_users(users), fresh.score_users(users),
                                       rtol=1e-4, atol=1e-6)
        assert accepted, f"{algorithm} refused to derive {name} to every other value"
