import json
from datetime import UTC, datetime

import numpy as np
import pytest

from fastinsight.errors import ValidationFailed
from fastinsight.recsys.evaluation.data import (
    from_records,
    load_interaction_file,
    load_movielens,
)
from fastinsight.services.training.evaluation import load_dataset

JAN3 = datetime(2024, 1, 3)  # naive, as PyMongo returns: UTC
WEIGHTS = {"view": 1.0, "purchase": 10.0, "rating": 3.0, "dislike": -5.0}


def pairs(data):
    return {
        (data.user_ids[u], data.item_ids[i]): pytest.approx(float(w))
        for u, i, w in zip(data.users, data.items, data.weights, strict=True)
    }


def context(data):
    c = data.context
    return {
        (data.user_ids[u], data.item_ids[i]): pytest.approx(float(w))
        for u, i, w in zip(c.users, c.items, c.weights, strict=True)
    }


def test_movielens_positives_and_metadata(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,200\n2,10,5.0,300\n2,30,4.5,50\n"
    )
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n10,"Heat, The (1995)",Action|Crime\n20,B,(no genres listed)\n'
    )
    data = load_movielens(tmp_path)
    # A rating weighs value / 5, as the product weighs an imported rating.
    assert pairs(data) == {("1", "10"): 0.8, ("2", "10"): 1.0, ("2", "30"): 0.9}
    assert context(data) == {("1", "20"): 0.7}  # seen, never relevant
    assert data.stats()["context_pairs"] == 1
    assert data.item_meta["10"] == {"title": "Heat, The (1995)", "categories": ["Action", "Crime"]}
    assert data.item_meta["20"]["categories"] == []
    assert data.item_ids.tolist() == ["10", "20", "30"]  # rated-below-threshold items kept
    strict = load_movielens(tmp_path, min_rating=5.0)
    assert pairs(strict) == {("2", "10"): 1.0}
    assert context(strict) == {("1", "10"): 0.8, ("1", "20"): 0.7, ("2", "30"): 0.9}
    assert context(strict.without_context()) == {}


def test_movielens_missing_dir(tmp_path):
    with pytest.raises(ValidationFailed):
        load_movielens(tmp_path / "nope")


def test_records_weights_ratings_and_dislikes():
    recs = [
        {"user_id": "a", "item_id": "x", "type": "view", "timestamp": 5},
        {"user_id": "a", "item_id": "x", "type": "purchase", "timestamp": 9},
        {"user_id": "a", "item_id": "y", "type": "view", "timestamp": 1},
        {"user_id": "a", "item_id": "y", "type": "dislike", "timestamp": 2},
        {"user_id": "b", "item_id": "x", "type": "rating", "value": 5, "timestamp": 3},
        {"user_id": "b", "item_id": "y", "type": "rating", "value": 3, "timestamp": 3},
        {"user_id": "b", "item_id": "z", "type": "unknown", "timestamp": 3},
        {"user_id": "b", "item_id": "w", "type": "rating", "value": "n/a", "timestamp": 3},
        {"user_id": "c", "item_id": "x", "type": "rating", "value": 2, "timestamp": 3},
        {"user_id": "c", "item_id": "x", "type": "view", "timestamp": 4},
    ]
    data = from_records(recs, WEIGHTS)
    # a/x: 1 + 10; a/y disliked -> dropped; b/x: 3 * 5/5; b/w: no rating value -> skipped;
    # c/x: a view makes the pair relevant, the low rating still adds its weight.
    assert pairs(data) == {("a", "x"): 11.0, ("b", "x"): 3.0, ("c", "x"): 1.0 + 3.0 * 2 / 5}
    # b/y: rating 3 < 4 -> context, weighted as training weighs it.
    assert context(data) == {("b", "y"): 3.0 * 3 / 5}
    ts = dict(zip(zip(data.users.tolist(), data.items.tolist(), strict=True),
                  data.timestamps.tolist(), strict=True))
    assert ts[(0, 0)] == 9.0  # latest interaction of the pair


def test_jsonl_and_csv_files(tmp_path):
    lines = [
        {"user_id": "u1", "item_id": "i1", "type": "view", "value": None,
         "timestamp": "2024-01-02T00:00:00Z"},
        {"user_id": "u1", "item_id": "i2", "type": "purchase", "timestamp": 10},
    ]
    jf = tmp_path / "x.jsonl"
    jf.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    data = load_interaction_file(jf, WEIGHTS)
    assert pairs(data) == {("u1", "i1"): 1.0, ("u1", "i2"): 10.0}
    assert data.timestamps[0] == datetime(2024, 1, 2, tzinfo=UTC).timestamp()
    cf = tmp_path / "x.csv"
    cf.write_text("user_id,item_id,type,value,timestamp\nu1,i1,rating,4.5,7\nu2,i1,view,,\n")
    data = load_interaction_file(cf, WEIGHTS)
    assert pairs(data) == {("u1", "i1"): pytest.approx(3.0 * 4.5 / 5), ("u2", "i1"): 1.0}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(ValidationFailed):
        load_interaction_file(bad, WEIGHTS)


def test_load_stored_interactions_full_scan(db):
    db.interactions.insert_many([
        {"user_id": "u1", "item_id": "i1", "type": "view",
         "timestamp": datetime(2024, 1, 1, tzinfo=UTC), "extra": "ignored"},
        {"user_id": "u1", "item_id": "i2", "type": "purchase", "timestamp": JAN3},
        {"user_id": "u2", "item_id": "i2", "type": "dislike", "timestamp": JAN3},
        {"user_id": "u2", "item_id": "i1", "type": "rating", "value": 2, "timestamp": JAN3},
    ])
    db.items.insert_many([
        {"_id": "i1", "item_id": "i1", "title": "One", "categories": ["a"], "tags": ["t"]},
        {"_id": "i9", "item_id": "i9", "title": "Never interacted with"},
    ])
    data = load_dataset(db, WEIGHTS)
    assert pairs(data) == {("u1", "i1"): 1.0, ("u1", "i2"): 10.0}
    assert context(data) == {("u2", "i1"): 3.0 * 2 / 5}  # a low rating: input, not relevant
    assert data.item_meta == {
        "i1": {"title": "One", "description": None, "categories": ["a"], "tags": ["t"]},
    }
    assert np.isclose(data.timestamps.max(), datetime(2024, 1, 3, tzinfo=UTC).timestamp())
