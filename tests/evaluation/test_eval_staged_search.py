"""Staged searches (ALS's sessions after its other parameters) and repeated models scored once."""

import numpy as np
import pytest

from fastinsight.recsys.evaluation import report, runner
from fastinsight.recsys.evaluation.runner import Candidate, _model_key, evaluate_candidate
from fastinsight.recsys.evaluation.search import run_search
from fastinsight.recsys.evaluation.spaces import SESSION_KEYS, STAGED, default_space
from fastinsight.recsys.evaluation.splits import random_split
from fastinsight.recsys.side import SideData

from .helpers import blocks

SPACE = {"a": [100.0, 200.0, 400.0, 800.0], "s": [1.0, 2.0, 3.0]}


def score(params):
    """Peaks at a = 400 and s = 2, whatever the other parameter."""
    return {"ndcg@10": -abs(np.log2(params["a"] / 400.0)) - abs(params["s"] - 2.0)}, 0.0


def test_staged_parameters_are_searched_after_the_others_at_their_best():
    result = run_search(score, SPACE, complete=True, staged={"s": 1.0}, mode="grid",
                        max_alternations=4)
    first, second = result.trials[:4], result.trials[4:6]
    assert [t.params["s"] for t in first] == [1.0] * 4  # held at its value meanwhile
    assert sorted(t.params["a"] for t in first) == SPACE["a"]
    assert [t.params["a"] for t in second] == [400.0, 400.0]  # the first stage's best
    assert sorted(t.params["s"] for t in second) == [2.0, 3.0]  # s = 1 already ran
    assert result.best.params == {"a": 400.0, "s": 2.0}
    assert result.complete and result.on_edge() == []
    assert result.space == SPACE
    info = result.to_dict()["staged"]
    assert info["params"] == ["s"] and info["held_at"] == {"s": 1.0}
    assert info["first_stage_trials"] == 4 and info["first_stage_best"] == -1.0
    # s moved to 2: the first stage runs again there (a = 400 already ran), which
    # confirms a = 400, and the search stops at that fixed point.
    again = result.trials[6:]
    assert [t.params["s"] for t in again] == [2.0] * 3
    assert sorted(t.params["a"] for t in again) == [100.0, 200.0, 800.0]
    assert info["fixed_point"] is True
    assert [(a["stage"], a["at"], a["trials"]) for a in info["alternations"]] == [
        ("first", {"s": 2.0}, 3)]
    joint = run_search(score, SPACE, complete=True)  # the control: every combination
    assert len(joint.trials) == 12 and "staged" not in joint.to_dict()


def test_the_second_stage_widens_its_own_edges():
    def far(params):  # s peaks at 4.5, beyond the grid
        return {"ndcg@10": -abs(np.log2(params["a"] / 400.0)) - abs(params["s"] - 4.5)}, 0.0

    result = run_search(far, SPACE, complete=True, staged={"s": 1.0}, max_widenings=3,
                        max_alternations=4)
    assert result.best.params == {"a": 400.0, "s": 4.5} and result.on_edge() == []
    assert [w["added"] for w in result.widenings] == [{"s": 4.5}, {"s": 6.75}]
    staged = result.to_dict()["staged"]
    second = result.trials[staged["first_stage_trials"]:][:4]  # s = 2, 3, 4.5, 6.75
    assert all(t.params["a"] == 400.0 for t in second)
    assert staged["fixed_point"] is True


# Not separable: with s held at 1 the best a is 100, there the best s is 3, and with
# s = 3 the best a is 800, which is also the grid's best point (0.90).
COUPLED = {100.0: (0.50, 0.55, 0.60), 200.0: (0.40, 0.45, 0.50),
           400.0: (0.30, 0.40, 0.55), 800.0: (0.20, 0.50, 0.90)}


def coupled(params):
    return {"ndcg@10": COUPLED[params["a"]][int(params["s"]) - 1]}, 0.0


def test_a_complete_search_alternates_the_stages_to_a_fixed_point():
    result = run_search(coupled, SPACE, complete=True, staged={"s": 1.0}, mode="grid",
                        max_alternations=4)
    assert result.best.params == {"a": 800.0, "s": 3.0}  # one pass stops at (100, 3): 0.60
    staged = result.to_dict()["staged"]
    assert staged["fixed_point"] is True
    assert [(a["stage"], a["at"], a["trials"], a["best_after"])
            for a in staged["alternations"]] == [
        ("first", {"s": 3.0}, 3, 0.90),   # a = 200, 400, 800 at s = 3 (100 ran)
        ("second", {"a": 800.0}, 1, 0.90),  # s = 2 at a = 800 (1 ran first): 3 stays
    ]
    assert len(result.trials) == 4 + 2 + 3 + 1 and result.complete
    assert len({tuple(sorted(t.params.items())) for t in result.trials}) == len(result.trials)


def test_by_default_a_complete_search_makes_one_pass():
    result = run_search(coupled, SPACE, complete=True, staged={"s": 1.0}, mode="grid")
    assert result.best.params == {"a": 100.0, "s": 3.0} and len(result.trials) == 6
    assert "alternations" not in result.to_dict()["staged"]


def test_the_alternations_are_capped_and_say_so():
    result = run_search(coupled, SPACE, complete=True, staged={"s": 1.0}, mode="grid",
                        max_alternations=1)
    staged = result.to_dict()["staged"]
    assert staged["fixed_point"] is False and len(staged["alternations"]) == 1
    assert result.best.params == {"a": 800.0, "s": 3.0}
    budgeted = run_search(coupled, SPACE, staged={"s": 1.0}, mode="grid", budget_seconds=1e9)
    assert budgeted.best.params == {"a": 100.0, "s": 3.0}  # one pass only
    assert "alternations" not in budgeted.to_dict()["staged"]


def test_the_first_stage_again_retries_the_values_its_widenings_added():
    def far(params):  # a peaks at 1600, beyond the grid; s at 2
        return {"ndcg@10": -abs(np.log2(params["a"] / 1600.0)) - abs(params["s"] - 2.0)}, 0.0

    result = run_search(far, SPACE, complete=True, staged={"s": 1.0}, max_widenings=3,
                        mode="grid", max_alternations=4)
    assert result.space["a"] == [100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0]
    assert result.best.params == {"a": 1600.0, "s": 2.0}
    staged = result.to_dict()["staged"]
    assert staged["fixed_point"] is True
    assert [a["stage"] for a in staged["alternations"]] == ["first"]
    ran = [(t.params["a"], t.params["s"]) for t in result.trials]
    assert (3200.0, 2.0) in ran  # the widened value, tried again at the new s


def test_a_budgeted_search_keeps_a_share_of_the_budget_for_the_second_stage():
    """4 first-stage points and 2 second-stage ones: the first stage gets 4/6 of the
    budget (and of max_trials), so the second is not starved."""
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()

    def slow(params):
        clock.now += 10.0
        return score(params)

    def search(**options):
        return run_search(slow, SPACE, staged={"s": 1.0}, mode="grid", clock=clock, **options)

    # 36.7 s for the first stage: 3 trials; the rest of 55 s: both second-stage points.
    result = search(budget_seconds=55.0)
    assert [(t.params["a"], t.params["s"]) for t in result.trials] == [
        (100.0, 1.0), (200.0, 1.0), (400.0, 1.0), (400.0, 2.0), (400.0, 3.0)]
    assert result.complete is False and result.to_dict()["staged"]["first_stage_trials"] == 3
    short = search(budget_seconds=25.0)  # 16.7 s: 1 trial; then 1 of the second stage
    assert [t.params["s"] for t in short.trials] == [1.0, 2.0]
    none_left = search(budget_seconds=15.0)
    assert len(none_left.trials) == 1 and "staged" not in none_left.to_dict()
    assert not none_left.complete
    counted = search(budget_seconds=1e9, max_trials=3)  # 2 trials for the first stage
    assert [t.params["s"] for t in counted.trials] == [1.0, 1.0, 2.0]


def test_both_als_models_search_their_sessions_in_a_second_stage():
    for algorithm in ("als", "implicit_als"):
        assert set(SESSION_KEYS) <= set(default_space(algorithm))
        assert STAGED[algorithm] == SESSION_KEYS
    assert "ease" not in STAGED  # cheap to fit: searched jointly


def test_without_sessions_the_weight_does_not_make_another_model():
    gap, weight = SESSION_KEYS
    assert _model_key({"l2": 1.0, gap: 0.0, weight: 2.0}) == _model_key({"l2": 1.0, gap: 0.0,
                                                                         weight: 0.5})
    assert _model_key({"l2": 1.0, gap: 300.0, weight: 0.0}) == _model_key(
        {"l2": 1.0, gap: 0.0, weight: 1.0})
    assert _model_key({gap: 300.0, weight: 2.0}) != _model_key({gap: 300.0, weight: 0.5})
    assert _model_key({"l2": 1.0}) != _model_key({"l2": 2.0})


@pytest.fixture()
def fits(monkeypatch):
    """Counts the full fits of our models."""
    counted: list[dict] = []
    fit = runner.RecommenderRanker.fit

    def counting(self, matrix):
        counted.append(dict(self.model.params.model_dump()))
        return fit(self, matrix)

    monkeypatch.setattr(runner.RecommenderRanker, "fit", counting)
    return counted


def test_als_search_with_times_stages_its_sessions_and_fits_each_model_once(fits):
    data = blocks((8, 8), 5)
    split = random_split(data, validation=0.2, test=0.2, seed=0)
    space = {"factors": [2, 4], "session_gap_seconds": [0.0, 300.0],
             "session_weight": [1.0, 2.0]}
    result = evaluate_candidate(
        Candidate("als", space=space, try_defaults=False), split.train, split.validation, split.test, [5],
        complete=True, max_widenings=0, metric="ndcg@5",
        side=SideData(times=data.time_matrix()),
    )
    assert result.search is not None
    trials = result.search.trials
    # First stage: factors with the sessions at ALS's defaults (30 minutes, weight 1).
    assert [(t.params["session_gap_seconds"], t.params["session_weight"])
            for t in trials[:2]] == [(1800.0, 1.0)] * 2
    best_factors = max(trials[:2], key=lambda t: t.score).params["factors"]
    # Second stage: the 6 session points at the best factors, less the one already run.
    assert all(t.params["factors"] == best_factors for t in trials[2:])
    assert len(trials) == 2 + 5
    repeats = [t for t in trials if t.repeated]
    assert [(t.params["session_gap_seconds"]) for t in repeats] == [0.0]
    twin = next(t for t in trials if t.params["session_gap_seconds"] == 0.0 and not t.repeated)
    assert repeats[0].score == twin.score and repeats[0].metrics == twin.metrics
    assert len(fits) == 6 + 1  # one fit per distinct model, and the refit on train + validation
    assert result.search.to_dict()["repeated_trials"] == 1


def test_the_runner_passes_the_alternations_to_the_search():
    data = blocks((8, 8), 5)
    split = random_split(data, validation=0.2, test=0.2, seed=0)
    space = {"factors": [2, 4], "session_gap_seconds": [0.0, 300.0],
             "session_weight": [1.0, 2.0]}

    def staged(alternations: int) -> dict:
        result = evaluate_candidate(
            Candidate("als", space=space, try_defaults=False), split.train, split.validation,
            split.test, [5], complete=True, max_widenings=0, metric="ndcg@5",
            side=SideData(times=data.time_matrix()), max_alternations=alternations)
        assert result.search is not None
        return result.search.to_dict()["staged"]

    assert "fixed_point" not in staged(0)
    assert "fixed_point" in staged(2)
    assert "up to 2 more times" in report._search_sentence(
        {"complete": True, "max_widenings": 3, "max_alternations": 2}, "ndcg@10")
    assert "alternate" not in report._search_sentence(
        {"complete": True, "max_widenings": 3, "max_alternations": 0}, "ndcg@10")


def test_an_evaluation_config_sets_the_alternations_of_its_searches():
    from fastinsight.recsys.evaluation.experiment import EvaluationConfig, run_evaluation

    space = {"factors": [2, 4], "session_gap_seconds": [0.0, 300.0]}
    cfg = EvaluationConfig(
        algorithms=("popularity",),
        extra_candidates=(Candidate("als", space=space, try_defaults=False),),
        complete=True, max_widenings=0, max_alternations=3, min_positives=1, ks=(5,),
        metric="ndcg@5")
    report_ = run_evaluation(blocks((8, 8), 5), cfg)
    assert report_["protocol"]["max_alternations"] == 3
    als = next(m for m in report_["models"] if m["algorithm"] == "als")
    assert "fixed_point" in als["search"]["staged"]
