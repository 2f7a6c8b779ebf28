"""Complete searches, grid edges and their widening, the binary protocol, fair references."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.evaluation.experiment import EvaluationConfig, evaluate_dataset, inputs
from fastinsight.recsys.evaluation.external import ImplicitRanker
from fastinsight.recsys.evaluation.runner import Candidate, evaluate_candidate, without_times
from fastinsight.recsys.evaluation.search import run_search
from fastinsight.recsys.evaluation.splits import random_split
from fastinsight.recsys.evaluation.widening import grid_edges, widen
from fastinsight.recsys.side import SideData

from .helpers import blocks


class SlowClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_complete_search_runs_every_trial_whatever_the_time():
    clock = SlowClock()

    def evaluate(params):
        clock.now += 1000.0  # every trial far over the budget
        return {"ndcg@10": -abs(params["a"] - 2)}, 1.0

    result = run_search(evaluate, {"a": [1, 2, 3], "b": ["x", "y"]}, budget_seconds=1.0,
                        max_trials=1, complete=True, clock=clock, mode="random")
    assert len(result.trials) == 6 and result.complete
    assert result.to_dict()["mode"] == "complete"
    budgeted = run_search(evaluate, {"a": [1, 2, 3]}, budget_seconds=1.0, clock=clock)
    assert len(budgeted.trials) == 1 and not budgeted.complete


def test_grid_edges_per_parameter():
    space = {"l2": [100.0, 200.0, 400.0], "k": [10, 20], "w": ["cosine", "bm25"], "one": [1]}
    edges = grid_edges(space, {"l2": 400.0, "k": 10, "w": "bm25", "one": 1})
    assert edges["l2"]["edge"] == "high" and edges["k"]["edge"] == "low"
    assert set(edges) == {"l2", "k"}  # categorical and single-valued grids have no edge
    assert grid_edges(space, {"l2": 200.0, "k": 10})["l2"]["edge"] is None
    assert grid_edges(space, {"l2": 800.0})["l2"]["edge"] == "high"  # beyond (defaults)


def test_widen_steps_geometrically_and_stops_at_zero():
    assert widen([100.0, 200.0, 400.0], "high") == 800.0
    assert widen([100.0, 200.0, 400.0], "low") == 50.0
    assert widen([128, 256], "high") == 512 and widen([15, 60], "low") == 4
    assert widen([0.0, 300.0, 1800.0], "low") is None  # 0 means "off": nothing below
    assert widen([0.0, 300.0], "high") == 600.0
    assert widen(["a", "b"], "high") is None


def test_complete_search_widens_until_the_best_is_interior():
    # Score peaks at a = 1600: the grid [100, 200, 400] must widen three times on top.
    def evaluate(params):
        return {"ndcg@10": -abs(np.log2(params["a"] / 1600.0))}, 0.0

    result = run_search(evaluate, {"a": [100.0, 200.0, 400.0]}, complete=True, max_widenings=5)
    assert result.best.params["a"] == 1600.0
    assert result.space["a"] == [100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0]
    assert result.on_edge() == []
    assert [w["added"] for w in result.widenings] == [{"a": 800.0}, {"a": 1600.0}, {"a": 3200.0}]
    assert len(result.trials) == 6  # no point ran twice

    bounded = run_search(evaluate, {"a": [100.0, 200.0, 400.0]}, complete=True, max_widenings=1)
    assert bounded.on_edge() == ["a"] and len(bounded.widenings) == 1
    refused = run_search(evaluate, {"a": [100.0, 200.0, 400.0]}, complete=True,
                         max_widenings=3, accepts=lambda name, value: value <= 400)
    assert refused.widenings == [{"round": 1, "added": {}, "at_limit": ["a"]}]
    budget = run_search(evaluate, {"a": [100.0, 200.0, 400.0]}, max_widenings=3)
    assert budget.widenings == [] and budget.on_edge() == ["a"]  # reported, never widened


def test_widening_approaches_a_bound_the_model_refuses():
    """Dropout must stay below 1: on the 0.5 edge the search tries 0.75 (1.0 is refused),
    then halfway to the refused 1.125 (0.9375), until the best point is interior."""
    def evaluate(params):
        return {"ndcg@10": -abs(params["p"] - 0.8)}, 0.0

    result = run_search(evaluate, {"p": [0.1, 0.25, 0.5]}, complete=True, max_widenings=4,
                        accepts=lambda name, value: value < 1)
    assert [w["added"] for w in result.widenings] == [{"p": 0.75}, {"p": 0.9375}]
    assert result.best.params["p"] == 0.75 and result.on_edge() == []
    # An integer parameter at its maximum is a stated limit, not approached.
    ints = run_search(lambda p: ({"ndcg@10": float(p["f"])}, 0.0), {"f": [256, 1024]},
                      complete=True, max_widenings=2, accepts=lambda name, value: value <= 1024)
    assert ints.widenings == [{"round": 1, "added": {}, "at_limit": ["f"]}]
    # A step past it takes the limit itself (512 -> 2048 refused: 1100), then stops.
    up = run_search(lambda p: ({"ndcg@10": float(p["f"])}, 0.0), {"f": [128, 512]},
                    complete=True, max_widenings=3, accepts=lambda name, value: value <= 1100)
    assert [w["added"] for w in up.widenings] == [{"f": 1100}, {}]
    assert up.widenings[1]["at_limit"] == ["f"] and up.best.params["f"] == 1100
    # A limit short of halfway (geometrically) is as good as the edge: no trial for it.
    near = run_search(lambda p: ({"ndcg@10": float(p["f"])}, 0.0), {"f": [240, 960]},
                      complete=True, max_widenings=3, accepts=lambda name, value: value <= 1000)
    assert near.widenings == [{"round": 1, "added": {}, "at_limit": ["f"]}]
    down = run_search(lambda p: ({"ndcg@10": -float(p["f"])}, 0.0), {"f": [40, 80]},
                      complete=True, max_widenings=3, accepts=lambda name, value: value >= 12)
    assert [w["added"] for w in down.widenings] == [{"f": 20}, {"f": 12}, {}]


def test_widening_is_a_line_search_from_the_best_point():
    """Two parameters, the best of one on an edge: each round adds one trial (the new
    value with the other parameter at its best), not a column of the grid."""
    def evaluate(params):
        return {"ndcg@10": -abs(np.log2(params["a"] / 1600.0)) - abs(params["b"] - 2)}, 0.0

    result = run_search(evaluate, {"a": [100.0, 200.0, 400.0], "b": [1, 2, 3]}, complete=True,
                        max_widenings=5)
    assert result.best.params == {"a": 1600.0, "b": 2} and result.on_edge() == []
    assert len(result.trials) == 9 + 3
    assert [t.params["b"] for t in result.trials[9:]] == [2, 2, 2]


def test_evaluate_candidate_widens_only_to_values_the_model_accepts():
    split = random_split(blocks((12, 8), 10), validation=0.1, test=0.1, seed=1)
    result = evaluate_candidate(
        Candidate("itemknn", space={"k": [1, 2]}, try_defaults=False), split.train,
        split.validation, split.test, [5], complete=True, max_widenings=2, metric="ndcg@5",
    )
    assert result.search is not None
    info = result.search.to_dict()
    assert info["mode"] == "complete" and "edges" in info and "on_edge" in info
    assert all(v >= 1 for v in info["space"]["k"])  # never below the model's limit k >= 1


def test_itemknn_k_widens_to_every_other_item_and_no_further():
    """Past ``n_items - 1`` a larger k keeps the same neighbours: the search widens to
    that limit, not beyond, and says it is there."""
    split = random_split(blocks((12, 8), 10), validation=0.1, test=0.1, seed=1)
    n_items = split.train.shape[1]
    result = evaluate_candidate(
        Candidate("itemknn", space={"k": [2, 8], "selection": ["source"]}, try_defaults=False),
        split.train, split.validation, split.test, [5], complete=True, max_widenings=3,
        metric="ndcg@5",
    )
    assert result.search is not None
    assert n_items - 1 == 19  # 8 -> 32 overshoots: the limit instead, then no further
    assert [t.params["k"] for t in result.search.trials] == [2, 8, 19]
    assert result.params["k"] == 19
    assert [w["added"] for w in result.search.widenings] == [{"k": 19}, {}]
    assert result.search.widenings[-1]["at_limit"] == ["k"]


def test_session_parameters_are_not_searched_without_times():
    space = {"l2": [1.0], "session_gap_seconds": [0.0, 300.0], "session_weight": [1.0]}
    assert without_times(space, SideData()) == {"l2": [1.0]}
    assert without_times(space, SideData(times=sp.csr_matrix((2, 2)))) == space


def test_binary_protocol_gives_every_model_binary_positives_alone():
    cfg = EvaluationConfig(protocol="binary", algorithms=("ease", "implicit_als"), ks=(2,),
                           metric="ndcg@2", search=False)
    assert inputs(cfg) == {"weights": "1 per positive", "context": False, "times": False,
                           "content": False}
    data = blocks((12, 8), 10)
    graded = type(data)(**{**data.__dict__, "weights": np.full(data.users.size, 0.8,
                                                                dtype=np.float32)})
    run = evaluate_dataset(graded, cfg)
    assert run.report["protocol"]["protocol"] == "binary"
    assert run.report["protocol"]["inputs"]["times"] is False
    assert {r.candidate.label for r in run.results} == {"ease", "implicit_als"}
    assert np.all(graded.binary().weights == 1.0)
    with pytest.raises(ValueError):
        EvaluationConfig(protocol="nonsense")  # type: ignore[arg-type]


def test_implicit_als_gets_the_same_session_rows_as_our_models():
    data = blocks((6, 6), 5)
    times = data.time_matrix()
    matrix = data.matrix()
    with_sessions = ImplicitRanker("implicit_als", {"factors": 4, "session_gap_seconds": 5.0},
                                   SideData(times=times))
    with_sessions.fit(matrix)
    # Timestamps are 0, 1, 2, ... so each user's five items form one session of five.
    assert with_sessions.session_count == 12
    without = ImplicitRanker("implicit_als", {"factors": 4}, SideData())
    without.fit(matrix)
    assert without.session_count == 0
    off = ImplicitRanker("implicit_als", {"factors": 4, "session_gap_seconds": 0.0},
                         SideData(times=times))
    off.fit(matrix)
    assert off.session_count == 0
    recs = with_sessions.top_k(np.arange(12), 3)
    assert recs.shape == (12, 3)
    for u in range(12):  # users are still the first rows; their own items stay filtered
        assert not set(recs[u].tolist()) & set(matrix[u].indices.tolist())


def test_stacked_blend_is_built_from_tuned_models_and_ablated():
    cfg = EvaluationConfig(
        protocol="binary", algorithms=("popularity", "itemknn", "ease", "edlae", "stacked"),
        ks=(2,), metric="ndcg@2", search=True, max_trials=2, ablate=("itemknn", "two_tower"),
    )
    run = evaluate_dataset(blocks((12, 8), 10), cfg)
    by_name = {r.candidate.label: r for r in run.results}
    stacked = by_name["stacked (tuned components)"]
    components = stacked.params["components"]
    assert {c["algorithm"] for c in components} == {"itemknn", "ease", "edlae"}
    for c in components:  # each keeps what its own search chose
        assert c["params"] == by_name[c["algorithm"]].params
    assert set(stacked.test.info["weights"]) == {f"{i}_{c['algorithm']}"
                                                 for i, c in enumerate(components)}
    ablated = by_name["stacked without itemknn"]
    assert {c["algorithm"] for c in ablated.params["components"]} == {"ease", "edlae"}
    assert np.array_equal(ablated.test.users, stacked.test.users)
    # Not a component: the ablation is the blend itself, the same answer for every user.
    same = by_name["stacked without two_tower"]
    assert np.array_equal(same.test.per_user["ndcg@2"], stacked.test.per_user["ndcg@2"])


def test_keras_models_join_the_stack_whatever_their_rank_and_blends_are_ablated():
    # An undertrained two-tower model (one epoch, two dimensions), so that it ranks below
    # the four best: tuned, it is the best model on these blocks.
    weak = Candidate("two_tower", params={"epochs": 1, "dim": 2, "validation_fraction": 0.0},
                     space={})
    cfg = EvaluationConfig(
        protocol="binary", ks=(2,), metric="ndcg@2", search=True, max_trials=1,
        algorithms=("itemknn", "ease", "edlae", "als", "popularity"), ablate=("two_tower",),
        extra_candidates=(weak, Candidate("hybrid"), Candidate("stacked")),
    )
    run = evaluate_dataset(blocks((12, 8), 10), cfg)
    by_name = {r.candidate.label: r for r in run.results}
    ranked = sorted(("itemknn", "ease", "edlae", "als", "popularity", "two_tower"),
                    key=lambda a: -by_name[a].validation["ndcg@2"])
    assert ranked.index("two_tower") >= 4  # outside the four best: joins as a Keras model
    stacked = {c["algorithm"] for c in by_name["stacked (tuned components)"].params["components"]}
    assert stacked == {"itemknn", "ease", "edlae", "als", "two_tower"}  # 4 best + Keras
    without = by_name["stacked without two_tower"].params["components"]
    assert {c["algorithm"] for c in without} == stacked - {"two_tower"}
    hybrid = by_name["hybrid (tuned components)"]
    ablated = by_name["hybrid without two_tower"]
    assert "two_tower" not in {c["algorithm"] for c in ablated.params["components"]}
    if "two_tower" not in {c["algorithm"] for c in hybrid.params["components"]}:
        assert ablated.test.metrics == hybrid.test.metrics


def test_complete_selection_tunes_like_the_evaluation_and_builds_blends_last():
    from fastinsight.recsys.evaluation.selection import default_candidates, select_model

    data = blocks((12, 8), 10)
    sel = select_model(data.matrix(), ["stacked", "popularity", "itemknn", "ease"],
                       metric="ndcg@2", holdout_fraction=0.2, min_positives=5, seed=0,
                       search="complete")
    assert set(sel.scores) == {"stacked", "popularity", "itemknn", "ease"}
    assert sel.scores[sel.winner]["ndcg@2"] == max(s["ndcg@2"] for s in sel.scores.values())
    assert sel.reasons[-1].endswith("search: complete")
    if sel.winner == "stacked":  # built from the tuned models, as the evaluation builds it
        assert {c["algorithm"] for c in sel.params["components"]} <= {"itemknn", "ease"}
    assert "trending" not in default_candidates() and "stacked" in default_candidates()
