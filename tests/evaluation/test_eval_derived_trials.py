"""Searches put the parameters a fitted model can change innermost, and derive those trials."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from fastinsight.recsys.als import ALSRecommender
from fastinsight.recsys.edlae import EDLAERecommender
from fastinsight.recsys.evaluation.external import ImplicitRanker
from fastinsight.recsys.evaluation.runner import Candidate, evaluate_candidate
from fastinsight.recsys.evaluation.search import grid, plan
from fastinsight.recsys.evaluation.splits import random_split
from fastinsight.recsys.itemknn import ItemKNNRecommender
from fastinsight.recsys.side import SideData

from .helpers import blocks

SPACE = {"l2": [1.0, 2.0, 4.0], "dropout": [0.1, 0.5], "max_diagonal": [0.0, 0.3, 1.0]}


ABSTRACT = {"z": [1.0, 2.0, 4.0], "y": [0.1, 0.5], "a": [0.0, 0.3, 1.0]}  # inner "a" sorts first


def _runs(configs: list[dict[str, float]]) -> list[tuple[float, float]]:
    """The outer (z, y) values in order, consecutive repeats collapsed."""
    return [key for key, _ in itertools.groupby((c["z"], c["y"]) for c in configs)]


@pytest.mark.parametrize("mode", ["grid", "random"])
def test_inner_parameters_vary_fastest_and_nothing_is_lost(mode: str):
    ordered = plan(ABSTRACT, mode, seed=3, inner=("a",))
    assert sorted(map(str, ordered)) == sorted(map(str, grid(ABSTRACT)))
    assert len(_runs(ordered)) == 6  # each (z, y) group is contiguous
    if mode == "random":  # groups are shuffled, not listed in grid order
        assert _runs(ordered) != _runs(grid(ABSTRACT, ("a",)))
    plain = plan(ABSTRACT, mode, seed=3)
    assert len(_runs(plain)) > 6 and plain == plan(ABSTRACT, mode, seed=3, inner=())


def test_the_defaults_group_follows_the_defaults():
    defaults = {"z": 2.0, "y": 0.5, "a": 0.3}
    ordered = plan(ABSTRACT, "random", seed=1, defaults=defaults, inner=("a",))
    assert ordered[0] == defaults
    assert [(c["z"], c["y"]) for c in ordered[:3]] == [(2.0, 0.5)] * 3
    assert len(_runs(ordered)) == 6 and len(ordered) == 18


def _search(algorithm: str, space: dict[str, list[object]], times: bool = True,
            **options: object) -> tuple[dict[str, object], list[float], int]:
    """A complete search on small blocks: the chosen parameters, every trial's score (in
    the order of their parameters) and how many trials were derived."""
    data = blocks((14, 10, 8), 6)
    split = random_split(data, validation=0.2, test=0.2, seed=2)
    side = SideData(times=data.time_matrix()) if times else None
    result = evaluate_candidate(Candidate(algorithm, space=space, try_defaults=False),
                                split.train, split.validation, split.test, [3], complete=True,
                                metric="ndcg@3", side=side, mode="random",
                                **options)  # type: ignore[arg-type]
    assert result.search is not None
    info = result.search.to_dict()
    scores = {json.dumps(t["params"], sort_keys=True): t["score"] for t in info["trials"]}
    return result.params, [scores[k] for k in sorted(scores)], info["derived_trials"]


def test_edlae_search_fits_once_per_factorisation_and_chooses_as_fresh_fits(
    monkeypatch: pytest.MonkeyPatch,
):
    space = {**SPACE, "session_gap_seconds": [0.0, 3.0]}
    params, scores, derived = _search("edlae", space)
    # 12 factorisations (l2 x dropout x gap), each serving its 3 bounds: 24 derived of 36
    assert derived == 24
    monkeypatch.setattr(EDLAERecommender, "derived_params", ())
    fresh_params, fresh_scores, fresh_derived = _search("edlae", space)
    assert fresh_derived == 0
    assert params == fresh_params
    assert np.allclose(scores, fresh_scores, atol=1e-9)


@pytest.mark.parametrize("algorithm", ["als", "implicit_als"])
def test_als_searches_continue_longer_runs_and_choose_as_fresh_fits(
    algorithm: str, monkeypatch: pytest.MonkeyPatch,
):
    """Iterations vary innermost (ascending): each longer run continues the shorter one,
    for our ALS and for the implicit reference alike, and the search ends as fresh fits.
    The session gap is staged: the first stage runs at the default 30 minutes (sessions
    on), the second tries gaps 0 and 3 s at the best point (fresh fits)."""
    space: dict[str, list[object]] = {
        "factors": [4, 8], "regularization": [0.1, 1.0], "iterations": [2, 5, 12],
        "session_gap_seconds": [0.0, 3.0]}
    params, scores, derived = _search(algorithm, space, max_widenings=0)
    assert len(scores) == 12 + 2
    assert derived == 8  # 4 groups of (factors, regularization): 2 of 3 continued
    if algorithm == "als":
        monkeypatch.setattr(ALSRecommender, "derived_params", ())
    else:
        monkeypatch.setattr(ImplicitRanker, "derivable", {})
    fresh_params, fresh_scores, fresh_derived = _search(algorithm, space, max_widenings=0)
    assert fresh_derived == 0
    assert params == fresh_params
    assert scores == fresh_scores  # continued fits are the fresh fits, to the bit


def test_itemknn_computes_the_similarities_once_for_both_selections(
    monkeypatch: pytest.MonkeyPatch,
):
    """The source- and target-side models keep the same neighbour lists: the second
    selection of each (k, weighting) takes over the first's, and the search ends as
    fresh fits do."""
    space: dict[str, list[object]] = {
        "k": [2, 4, 8], "weighting": ["cosine", "bm25"], "selection": ["source", "target"]}
    params, scores, derived = _search("itemknn", space, times=False, max_widenings=0)
    assert derived == 6
    monkeypatch.setattr(ItemKNNRecommender, "derived_params", ())
    fresh = _search("itemknn", space, times=False, max_widenings=0)
    assert fresh == (params, scores, 0)


def test_itemknn_computes_the_similarities_once_per_weighting_from_the_largest_k(
    monkeypatch: pytest.MonkeyPatch,
):
    """With k listed from the largest down, every smaller k is cut from the fit before:
    one similarity computation per weighting (12 trials, 2 fits), chosen as fresh fits
    choose. Listed upwards, each k needs its own fit."""
    space: dict[str, list[object]] = {
        "k": [8, 4, 2], "weighting": ["cosine", "bm25"], "selection": ["source", "target"]}
    params, scores, derived = _search("itemknn", space, times=False, max_widenings=0)
    assert derived == 10
    monkeypatch.setattr(ItemKNNRecommender, "derived_params", ())
    fresh_params, fresh_scores, fresh_derived = _search("itemknn", space, times=False,
                                                        max_widenings=0)
    assert fresh_derived == 0
    assert scores == fresh_scores  # every trial scores as its fresh fit, to the bit
    # Without inner parameters the trials run in another order, and on these small
    # blocks two configurations tie for the best: either is the same choice.
    assert params["k"] == fresh_params["k"] and params["selection"] == fresh_params["selection"]
