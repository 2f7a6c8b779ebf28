import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.evaluation.external import ImplicitRanker
from fastinsight.recsys.evaluation.runner import (
    Candidate,
    activity_buckets,
    evaluate_candidate,
    evaluate_ranker,
    make_ranker,
)
from fastinsight.recsys.evaluation.search import plan, run_search
from fastinsight.recsys.evaluation.splits import random_split

from .helpers import blocks, csr


def test_popularity_by_hand_with_empty_history_and_user_without_test_items():
    # Popularity from train: item0 3 users, item1 1, item2 1, items 3-4 none.
    train = csr([[0, 1], [0, 2], [0], [], [1]], 5)
    test = csr([[2], [1], [3], [0], []], 5)
    ranker = make_ranker("popularity", {"measure": "users"})
    ranker.fit(train)
    out = evaluate_ranker(ranker, train, test, ks=[2])
    # u0 -> [2, 3] hit@1; u1 -> [1, 3] hit@1; u2 -> [1, 2] miss; u3 (no history) -> [0, 1] hit@1.
    # u4 has nothing in test and is not evaluated.
    assert out.users.tolist() == [0, 1, 2, 3]
    assert out.per_user["ndcg@2"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert out.metrics["ndcg@2"] == pytest.approx(0.75)
    assert out.metrics["precision@2"] == pytest.approx(0.375)
    assert out.metrics["recall@2"] == pytest.approx(0.75)
    assert out.metrics["coverage@2"] == pytest.approx(4 / 5)  # items 0, 1, 2, 3
    assert out.metrics["users"] == 4
    assert out.activity.tolist() == [2, 2, 1, 0]


def test_itemknn_is_perfect_on_blocks():
    split = random_split(blocks(), validation=0.0, test=0.2, seed=0)
    ranker = make_ranker("itemknn", {})
    ranker.fit(split.train)
    out = evaluate_ranker(ranker, split.train, split.test, ks=[1, 5])
    assert out.metrics["ndcg@1"] == 1.0
    assert out.metrics["recall@5"] == 1.0


def test_implicit_als_stays_in_block_and_excludes_training_items():
    split = random_split(blocks(), validation=0.0, test=0.2, seed=0)
    ranker = ImplicitRanker("implicit_als", {"factors": 4, "regularization": 0.01})
    ranker.fit(split.train)
    users = np.arange(split.train.shape[0])
    recs = ranker.top_k(users, 1)
    assert recs.shape == (16, 1)
    for u in users:
        assert recs[u, 0] not in split.train[u].indices
        assert recs[u, 0] // 5 == (0 if u < 12 else 1)
    long = ranker.top_k(np.array([0]), 20)[0]
    assert long[6:].tolist() == [-1] * 14  # only 10 - 4 items are left to rank
    assert sorted(long[:6].tolist()) == sorted(set(range(10)) - set(split.train[0].indices))


def test_unknown_external_params_are_rejected():
    with pytest.raises(ValueError):
        ImplicitRanker("implicit_als", {"nope": 1})
    with pytest.raises(ValueError):
        ImplicitRanker("implicit_foo")


def test_activity_buckets():
    values = np.array([1.0, 0.0, 0.5, 0.25])
    activity = np.array([3, 12, 15, 250])
    assert activity_buckets(values, activity, (0, 10, 100)) == [
        {"bucket": "0-9", "users": 1, "mean": 1.0},
        {"bucket": "10-99", "users": 2, "mean": 0.25},
        {"bucket": "100+", "users": 1, "mean": 0.25},
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_search_respects_budget_and_starts_with_defaults():
    clock = FakeClock()
    seen = []

    def evaluate(params):
        seen.append(params)
        clock.now += 10.0
        return {"ndcg@10": params["a"] / 10}, 1.0

    result = run_search(evaluate, {"a": [1, 2, 3, 4]}, budget_seconds=25.0, mode="grid",
                        defaults={"a": 3}, clock=clock)
    # t=0 run; t=10 + slowest 10 <= 25 run; t=20 + 10 > 25 stop.
    assert seen == [{"a": 3}, {"a": 1}]
    assert result.best.params == {"a": 3}
    assert not result.complete


def test_search_tie_goes_to_first_trial_and_random_plan_is_seeded():
    result = run_search(lambda p: ({"ndcg@10": 0.5}, 0.0), {"a": [1, 2]}, defaults={"a": 2})
    assert result.best.params == {"a": 2}
    space = {"a": [1, 2, 3], "b": ["x", "y"]}
    assert plan(space, "random", seed=5) == plan(space, "random", seed=5)
    assert sorted(map(str, plan(space, "random", seed=5))) == sorted(map(str, plan(space, "grid")))
    assert plan(space, "grid")[0] == {"a": 1, "b": "x"}


def test_evaluate_candidate_searches_on_validation_and_refits():
    split = random_split(blocks((12, 8), 10), validation=0.1, test=0.1, seed=1)
    result = evaluate_candidate(
        Candidate("itemknn", space={"k": [1, 5, 50]}), split.train, split.validation,
        split.test, [5], search=True, budget_seconds=60, seed=0, metric="ndcg@5",
    )
    assert result.search is not None
    assert result.search.trials[0].params["k"] == 100  # the default comes first
    assert len(result.search.trials) == 4
    assert result.params["k"] == result.search.best.params["k"]
    assert result.validation["ndcg@5"] == result.search.best.score
    # Refitted on train + validation: the fit matrix of the test outcome includes validation.
    assert result.test.activity.sum() == (split.train + split.validation)[result.test.users].nnz
    assert result.test.metrics["ndcg@5"] == 1.0


def _with_low_rating_of_item_5(data):
    """Every user of group 0 (users 0-11) has rated item 5 (group 1's first item) low."""
    from dataclasses import replace

    from fastinsight.recsys.evaluation.data import PairTable

    users = np.arange(12)
    return replace(data, context=PairTable(
        users, np.full(12, 5), np.full(12, 0.4, dtype=np.float32), np.zeros(12)))


@pytest.mark.parametrize("algorithm", ["popularity", "implicit_als"])
def test_context_items_are_never_ranked(algorithm):
    data = _with_low_rating_of_item_5(blocks())
    users = np.arange(12)
    with_ctx = random_split(data, validation=0.0, test=0.2, seed=0)
    plain = random_split(data.without_context(), validation=0.0, test=0.2, seed=0)
    seen = {}
    for name, split in (("context", with_ctx), ("plain", plain)):
        ranker = make_ranker(algorithm, {"factors": 4} if algorithm == "implicit_als" else {})
        ranker.fit(split.train)
        seen[name] = set(ranker.top_k(users, 9).ravel().tolist())
    # 9 places cover every item a group-0 user has not liked in training, so item 5 is
    # listed unless the user's low rating excludes it.
    assert 5 in seen["plain"]
    assert 5 not in seen["context"]


def test_run_evaluation_trains_on_context_unless_positives_only():
    from fastinsight.recsys.evaluation.experiment import EvaluationConfig, run_evaluation

    data = _with_low_rating_of_item_5(blocks())
    cfg = EvaluationConfig(algorithms=("popularity",), search=False, min_positives=1)
    report = run_evaluation(data, cfg)
    assert report["protocol"]["context"] is True
    # One context pair per user: the split keeps it in training (as it keeps a positive).
    assert report["protocol"]["split_sizes"]["train_context"] == 12
    assert report["dataset"]["context_pairs"] == 12
    off = run_evaluation(data, EvaluationConfig(
        algorithms=("popularity",), search=False, min_positives=1, context=False))
    assert off["protocol"]["split_sizes"]["train_context"] == 0
    # The test positives are the same either way; only training input differs.
    assert off["protocol"]["split_sizes"]["test"] == report["protocol"]["split_sizes"]["test"]


def _session_dataset():
    """u0-u9 take x and s minutes apart and l a month later; u10, u11 take x and l five
    minutes apart; t took x, and s is its held-out (test) item."""
    from fastinsight.recsys.evaluation.data import from_records

    day, minute = 86_400, 60
    records = []
    for u in range(12):
        base = u * day
        taken = [("x", 0), ("s", 3 * minute), ("l", 30 * day)] if u < 10 else [("x", 0), ("l", 5 * minute)]
        records += [{"user_id": f"u{u:02d}", "item_id": i, "type": "view", "timestamp": base + at}
                    for i, at in taken]
    records += [{"user_id": "zt", "item_id": i, "type": "view", "timestamp": 0} for i in ("x", "s")]
    return from_records(records)


@pytest.mark.parametrize("algorithm, params", [
    ("ease", {"l2": 1.0, "session_gap_seconds": 600}),
    ("hybrid", {"components": [{"algorithm": "ease",
                                "params": {"l2": 1.0, "session_gap_seconds": 600}}],
                "min_positives": 2}),
])
def test_side_data_gives_models_the_interaction_times(algorithm, params):
    """With times, EASE (also inside a hybrid) learns that s goes with x and ranks the
    held-out s first; without them it ranks l first."""
    from fastinsight.recsys.side import SideData

    data = _session_dataset()
    t = int(np.flatnonzero(data.user_ids == "zt")[0])
    s = int(np.flatnonzero(data.item_ids == "s")[0])
    full = data.matrix()
    test = sp.csr_matrix(([1.0], ([t], [s])), shape=full.shape, dtype=np.float32)
    train = sp.csr_matrix(full - full.multiply(test))
    train.eliminate_zeros()
    empty = sp.csr_matrix(full.shape, dtype=np.float32)
    ndcg = {}
    for name, side in (("times", SideData(times=data.time_matrix())), ("none", None)):
        result = evaluate_candidate(Candidate(algorithm, params=params), train, empty, test, [1],
                                    search=False, side=side)
        ndcg[name] = result.test.metrics["ndcg@1"]
    assert ndcg == {"times": 1.0, "none": 0.0}
