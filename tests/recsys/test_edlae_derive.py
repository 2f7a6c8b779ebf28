"""A fitted EDLAE derives its other diagonal variants by rescaling, not refactorising."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ModelError
from fastinsight.recsys.ease import EASEParams, EASERecommender
from fastinsight.recsys.edlae import EDLAEParams, EDLAERecommender


def _data(seed: int = 4) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Items from 5% to 60% popular (free diagonals 0.39-0.59: a bound of 0.5 binds on some
    columns, not others),
    and times in two sessions per user (the session term is part of the factorisation)."""
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix((rng.random((80, 20)) < np.linspace(0.05, 0.6, 20)).astype(np.float32))
    times = x.copy().astype(np.float64)
    times.data = np.where(rng.random(times.nnz) < 0.5, 0.0, 1e6) + np.arange(times.nnz)
    return x, times


def _model(times: sp.csr_matrix | None, **params: object) -> EDLAERecommender:
    model = EDLAERecommender(EDLAEParams(l2=6.0, dropout=0.3, session_gap_seconds=600.0,
                                         **params))  # type: ignore[arg-type]
    model.set_interaction_times(times)
    return model


def _weights(model: EASERecommender) -> np.ndarray:
    return model._state_arrays()["weights"]


def test_a_chain_of_derived_variants_equals_fresh_fits():
    x, times = _data()
    chain = [{"max_diagonal": 0.0}, {"max_diagonal": 0.5}, {"max_diagonal": 1.0},
             {"emphasis": False}, {"max_diagonal": 0.1}, {"max_diagonal": 0.0}]
    previous = _model(times, **chain[0]).fit(x)
    for params in chain[1:]:
        fresh = _model(times, **params).fit(x)
        derived = _model(times, **params)
        assert derived.derive_from(previous, x)
        expected, got = _weights(fresh), _weights(derived)
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
        assert np.array_equal(np.diagonal(got), np.diagonal(expected))
        assert np.array_equal(np.argsort(-fresh.score_users(np.arange(80)), axis=1)[:, :5],
                              np.argsort(-derived.score_users(np.arange(80)), axis=1)[:, :5])
        assert derived.user_items is not None and derived.n_items == 20
        # the weights moved, not copied: the model derived from is left unfitted
        assert previous.user_items is None
        with pytest.raises(ModelError):
            previous.score_history(x[:1])
        previous = derived


def test_the_variants_differ_where_the_bound_binds():
    """Known answer that the test above is not vacuous: the chain's variants differ."""
    x, times = _data()
    edlae = _weights(_model(times, max_diagonal=0.0).fit(x))
    rdlae = _weights(_model(times, max_diagonal=0.5).fit(x))
    binding = np.all(np.isclose(rdlae, 0.5 * edlae, rtol=1e-5, atol=1e-7), axis=0)
    assert 0 < binding.sum() < 20  # both kinds of column: each factor formula is exercised


@pytest.mark.parametrize("change", ["l2", "dropout", "gap", "matrix", "times", "class"])
def test_derivation_refuses_what_changes_the_factorisation(change: str):
    x, times = _data()
    previous = _model(times).fit(x)
    target_x, model = x, _model(times, max_diagonal=0.2)
    if change == "l2":
        model = EDLAERecommender(EDLAEParams(l2=7.0, dropout=0.3, session_gap_seconds=600.0))
        model.set_interaction_times(times)
    elif change == "dropout":
        model = _model(times).__class__(EDLAEParams(l2=6.0, dropout=0.1,
                                                    session_gap_seconds=600.0))
        model.set_interaction_times(times)
    elif change == "gap":
        model = EDLAERecommender(EDLAEParams(l2=6.0, dropout=0.3, session_gap_seconds=60.0))
        model.set_interaction_times(times)
    elif change == "matrix":
        target_x = x.copy()
        target_x.data[0] = 2.0
    elif change == "times":
        other = times.copy()
        other.data = other.data[::-1].copy()
        model = _model(other, max_diagonal=0.2)
    else:
        ease = EASERecommender(EASEParams(l2=6.0, session_gap_seconds=600.0))
        ease.set_interaction_times(times)
        assert not ease.derive_from(previous, x)  # EASE derives nothing
        model = _model(times, max_diagonal=0.2)
        previous = ease.fit(x)  # type: ignore[assignment]
    assert not model.derive_from(previous, target_x)
    assert previous.user_items is not None  # a refusal leaves the model it was offered intact
    assert model.user_items is None


def test_a_loaded_model_cannot_be_derived_from(tmp_path: Path):
    x, times = _data()
    _model(times).fit(x).save(tmp_path / "m")
    loaded = EDLAERecommender.load(tmp_path / "m")
    loaded.user_items = x  # as the trainer would know it
    assert not _model(times, max_diagonal=0.2).derive_from(loaded, x)
