"""build_matrix / from_arrays: weighting rules with hand-computed answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from fastinsight.recsys.matrix import build_matrix, fresh_weights, from_arrays

W = {"view": 1.0, "click": 2.0, "purchase": 10.0, "rating": 4.0, "dislike": -5.0}
T0 = datetime(2024, 6, 1, 12, 0, 0)


def cell(im, user: str, item: str) -> float:
    return float(im.matrix[im.user_index()[user], im.item_index()[item]])


def test_weights_are_summed_per_pair_and_ids_are_sorted_str_arrays():
    im = build_matrix(
        [
            ("u2", "b", "view", None, T0),
            ("u1", "a", "view", None, T0),
            ("u1", "a", "purchase", None, T0),
            ("u1", "b", "click", None, T0),
            ("u2", "b", "view", None, T0),
        ],
        W,
    )
    assert im.user_ids.tolist() == ["u1", "u2"]
    assert im.item_ids.tolist() == ["a", "b"]
    assert im.user_ids.dtype.kind == "U" and im.item_ids.dtype.kind == "U"
    assert im.matrix.format == "csr" and im.matrix.dtype == np.float32
    np.testing.assert_array_equal(im.matrix.toarray(), [[11.0, 2.0], [0.0, 2.0]])
    assert im.negatives.nnz == 0
    assert im.user_index() is im.user_index()
    assert im.item_index() == {"a": 0, "b": 1}


def test_rating_weight_is_scaled_by_value_over_five():
    im = build_matrix(
        [
            ("u", "five", "rating", 5.0, T0),
            ("u", "half", "rating", 2.5, T0),
            ("u", "one", "rating", 1.0, T0),
            ("u", "view", "view", 3.0, T0),  # value ignored for non-rating types
        ],
        W,
    )
    assert cell(im, "u", "five") == pytest.approx(4.0)
    assert cell(im, "u", "half") == pytest.approx(2.0)
    assert cell(im, "u", "one") == pytest.approx(0.8)
    assert cell(im, "u", "view") == pytest.approx(1.0)


def test_rating_without_value_is_rejected():
    with pytest.raises(ValueError, match="'rating' needs a numeric value"):
        build_matrix([("u", "i", "rating", None, T0)], W)


def test_dislike_goes_to_negatives_and_drops_the_positive_weight():
    im = build_matrix(
        [
            ("u1", "a", "purchase", None, T0),
            ("u1", "a", "dislike", None, T0),
            ("u1", "a", "dislike", None, T0),
            ("u1", "b", "view", None, T0),
            ("u2", "a", "view", None, T0),
            ("u2", "c", "dislike", None, T0),
        ],
        W,
    )
    dense = im.matrix.toarray()
    np.testing.assert_array_equal(dense, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(im.negatives.toarray(), [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert im.matrix.nnz == 2  # the dropped positive is not kept as an explicit zero
    assert im.matrix.data.min() > 0


def test_decay_halves_the_weight_after_one_half_life():
    now = T0
    records = [
        ("u", "fresh", "purchase", None, now),
        ("u", "week", "purchase", None, now - timedelta(days=7)),
        ("u", "fortnight", "purchase", None, now - timedelta(days=14)),
        ("u", "future", "purchase", None, now + timedelta(days=3)),
    ]
    im = build_matrix(records, W, half_life_days=7, now=now)
    assert cell(im, "u", "fresh") == pytest.approx(10.0)
    assert cell(im, "u", "week") == pytest.approx(5.0)
    assert cell(im, "u", "fortnight") == pytest.approx(2.5)
    assert cell(im, "u", "future") == pytest.approx(10.0)


def test_decay_reference_defaults_to_newest_record():
    records = [
        ("u", "new", "view", None, T0),
        ("u", "old", "view", None, T0 - timedelta(days=2)),
    ]
    im = build_matrix(records, W, half_life_days=2)
    assert cell(im, "u", "new") == pytest.approx(1.0)
    assert cell(im, "u", "old") == pytest.approx(0.5)


def test_aware_and_naive_datetimes_are_both_utc():
    aware = T0.replace(tzinfo=UTC) - timedelta(days=1)
    other_zone = aware.astimezone(timezone(timedelta(hours=5)))
    im = build_matrix(
        [("u", "a", "view", None, aware), ("u", "b", "view", None, other_zone)],
        W,
        half_life_days=1,
        now=T0,
    )
    assert cell(im, "u", "a") == pytest.approx(0.5)
    assert cell(im, "u", "b") == pytest.approx(0.5)


def test_since_drops_older_records_and_their_users():
    records = [
        ("old_user", "a", "view", None, T0 - timedelta(days=30)),
        ("u", "a", "view", None, T0 - timedelta(days=30)),
        ("u", "b", "view", None, T0),
    ]
    im = build_matrix(records, W, since=T0 - timedelta(days=7))
    assert im.user_ids.tolist() == ["u"]
    np.testing.assert_array_equal(im.matrix.toarray(), [[0.0, 1.0]])


def test_unknown_type_is_named_in_the_error():
    with pytest.raises(ValueError, match="'wishlist'"):
        build_matrix([("u", "a", "view", None, T0), ("u", "a", "wishlist", None, T0)], W)


def test_fixed_item_universe_keeps_cold_items_and_drops_unknown_ones():
    im = build_matrix(
        [
            ("u1", "b", "view", None, T0),
            ("u1", "gone", "view", None, T0),
            ("only_gone", "gone", "view", None, T0),
        ],
        W,
        item_ids=["c", "b", "a"],
    )
    assert im.item_ids.tolist() == ["c", "b", "a"]  # catalogue order is kept
    assert im.user_ids.tolist() == ["u1"]
    np.testing.assert_array_equal(im.matrix.toarray(), [[0.0, 1.0, 0.0]])


def test_duplicate_item_universe_is_rejected():
    with pytest.raises(ValueError, match="duplicates"):
        build_matrix([("u", "a", "view", None, T0)], W, item_ids=["a", "a"])


def test_empty_input_gives_empty_matrix():
    im = build_matrix([], W)
    assert im.matrix.shape == (0, 0)
    im2 = build_matrix([], W, item_ids=["a", "b"])
    assert im2.matrix.shape == (0, 2)


def test_from_arrays_matches_build_matrix():
    rng = np.random.default_rng(3)
    n = 2000
    users = np.char.add("u", rng.integers(0, 50, n).astype(str))
    items = np.char.add("i", rng.integers(0, 40, n).astype(str))
    types = np.array(list(W))[rng.integers(0, len(W), n)]
    values = rng.integers(1, 6, n).astype(np.float64)
    stamps = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 10**7, n).astype(
        "timedelta64[s]"
    )
    py_stamps = [datetime.fromisoformat(str(s)) for s in stamps]
    a = from_arrays(users, items, types, values, stamps, W, half_life_days=10)
    b = build_matrix(
        zip(users.tolist(), items.tolist(), types.tolist(), values.tolist(), py_stamps,
            strict=True),
        W,
        half_life_days=10,
    )
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_allclose(a.matrix.toarray(), b.matrix.toarray(), rtol=1e-6)
    np.testing.assert_array_equal(a.negatives.toarray(), b.negatives.toarray())
    assert a.times is not None and b.times is not None
    np.testing.assert_array_equal(a.times.toarray(), b.times.toarray())
    assert from_arrays(users, items, types, values, None, W).times is None


def test_times_hold_the_latest_positive_record_of_each_stored_pair():
    epoch = datetime(1970, 1, 1)
    im = build_matrix(
        [
            ("u1", "a", "view", None, T0 + timedelta(hours=2)),
            ("u1", "a", "purchase", None, T0),  # earlier: the view's time is kept
            ("u1", "b", "click", None, T0 + timedelta(minutes=5)),
            ("u2", "b", "view", None, T0),
            ("u2", "b", "dislike", None, T0 + timedelta(days=1)),  # not stored: no time
        ],
        W,
    )
    assert im.times is not None
    np.testing.assert_array_equal(im.times.indptr, im.matrix.indptr)
    np.testing.assert_array_equal(im.times.indices, im.matrix.indices)
    t0 = (T0 - epoch).total_seconds()
    np.testing.assert_array_equal(im.times.data, [t0 + 7200, t0 + 300])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("half_life", [None, 7.0])
def test_fresh_weights_follow_the_training_rules(seed: int, half_life: float | None) -> None:
    """Serving's matrix-free weighting of one user's events gives the row and dislikes
    ``build_matrix`` (training) gives on the same item axis."""
    rng = np.random.default_rng(seed)
    item_ids = np.array(list("abcdefgh"))
    kinds = list(W)
    records = []
    for _ in range(int(rng.integers(1, 15))):
        kind = kinds[int(rng.integers(len(kinds)))]
        value = float(rng.integers(1, 6)) if kind == "rating" else None
        records.append((str(rng.choice(item_ids)), kind, value,
                        T0 - timedelta(hours=float(rng.integers(0, 400)))))
    options = {"half_life_days": half_life, "now": T0 + timedelta(days=1)}
    built = build_matrix((("u", *r) for r in records), W, item_ids=item_ids, **options)
    positive, negative = fresh_weights(records, W, **options)
    index = {i: n for n, i in enumerate(item_ids.tolist())}
    dense = np.zeros(len(item_ids))
    for item, weight in positive.items():
        dense[index[item]] = weight
    np.testing.assert_allclose(dense, built.matrix.toarray()[0], rtol=1e-6)
    assert sorted(index[i] for i in negative) == built.negatives.indices.tolist()
    assert not set(positive) & negative


def test_fresh_weights_skip_what_training_refuses() -> None:
    """A type no longer configured or a rating without a value: skipped, not an error."""
    positive, negative = fresh_weights(
        [("a", "gone_type", None, T0), ("b", "rating", None, T0), ("c", "view", None, T0),
         ("c", "click", None, T0), ("d", "dislike", None, T0), ("d", "view", None, T0)], W)
    assert positive == {"c": 3.0} and negative == {"d"}
