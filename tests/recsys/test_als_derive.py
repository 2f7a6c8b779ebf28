"""More ALS iterations continue a fitted model instead of starting over, and end where a
fresh fit of that many iterations ends: ours and the implicit reference alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ModelError
from fastinsight.recsys.als import ALSParams, ALSRecommender
from fastinsight.recsys.evaluation.external import ImplicitRanker
from fastinsight.recsys.side import SideData


def _data(seed: int = 5) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """200 users x 60 items, two sessions per user (session rows are part of the fit)."""
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix((rng.random((200, 60)) < np.linspace(0.03, 0.4, 60)).astype(np.float32))
    times = x.copy().astype(np.float64)
    times.data = np.where(rng.random(times.nnz) < 0.5, 0.0, 1e6) + np.arange(times.nnz)
    return x, times


def _swapped(times: sp.csr_matrix) -> sp.csr_matrix:
    """The same times with two of user 0's pairs swapped between its two sessions: the
    same number of session rows, not the same rows."""
    other = times.copy()
    row = other.data[other.indptr[0]:other.indptr[1]]
    early, late = np.flatnonzero(row < 1e6)[0], np.flatnonzero(row >= 1e6)[0]
    row[[early, late]] = row[[late, early]]
    return other


def _als(times: sp.csr_matrix | None, **params: object) -> ALSRecommender:
    base: dict[str, object] = {"factors": 8, "regularization": 0.5, "alpha": 4.0,
                               "session_gap_seconds": 600.0, "num_threads": 2}
    model = ALSRecommender(ALSParams(**{**base, **params}))  # type: ignore[arg-type]
    model.set_interaction_times(times)
    return model


def test_a_chain_of_continued_fits_equals_fresh_fits():
    x, times = _data()
    previous = _als(times, iterations=2).fit(x)
    assert previous._session_factors is not None and previous._session_factors.shape[0] > 0
    for iterations in (5, 6, 20):
        fresh = _als(times, iterations=iterations).fit(x)
        derived = _als(times, iterations=iterations)
        assert derived.derive_from(previous, x)
        # the same arithmetic in the same order: equal to the bit, users, items and sessions
        assert np.array_equal(derived._users, fresh._users)
        assert np.array_equal(derived._items, fresh._items)
        assert np.array_equal(derived._session_factors, fresh._session_factors)  # type: ignore[arg-type]
        assert np.array_equal(derived.score_history(x[:7]), fresh.score_history(x[:7]))
        assert previous.user_items is None  # consumed: its factors moved
        with pytest.raises(ModelError):
            previous.score_users([0])
        previous = derived


def test_the_chain_is_not_vacuous():
    """Known answer: more iterations do change the factors, so equality above means
    the continuation really ran the difference."""
    x, times = _data()
    short, long = _als(times, iterations=2).fit(x), _als(times, iterations=20).fit(x)
    assert not np.allclose(short._items, long._items, atol=1e-3)


@pytest.mark.parametrize("change", ["fewer", "same", "factors", "alpha", "weight", "matrix",
                                    "times"])
def test_continuation_is_refused_when_it_would_not_equal_a_fresh_fit(change: str):
    x, times = _data()
    previous = _als(times, iterations=6).fit(x)
    target, model = x, _als(times, iterations=12)
    if change == "fewer":
        model = _als(times, iterations=3)
    elif change == "same":
        model = _als(times, iterations=6)
    elif change == "factors":
        model = _als(times, iterations=12, factors=9)
    elif change == "alpha":
        model = _als(times, iterations=12, alpha=2.0)
    elif change == "weight":
        model = _als(times, iterations=12, session_weight=2.0)
    elif change == "matrix":
        target = x.copy()
        target.data[0] = 3.0
    else:
        model = _als(_swapped(times), iterations=12)
    assert not model.derive_from(previous, target)
    assert previous.user_items is not None and previous._items.shape[0] == 60  # left intact
    assert model.user_items is None


def test_a_loaded_model_cannot_be_continued(tmp_path: Path):
    """The session rows' factors are not saved: a loaded model starts over."""
    x, times = _data()
    _als(times, iterations=3).fit(x).save(tmp_path / "m")
    loaded = ALSRecommender.load(tmp_path / "m")
    loaded.user_items = x
    assert not _als(times, iterations=6).derive_from(loaded, x)


def _reference(times: sp.csr_matrix, **params: object) -> ImplicitRanker:
    base: dict[str, object] = {"factors": 8, "regularization": 0.5, "alpha": 4.0,
                               "session_gap_seconds": 600.0}
    return ImplicitRanker("implicit_als", {**base, **params}, SideData(times=times))


def test_the_reference_continues_too_and_ends_where_a_fresh_fit_ends():
    x, times = _data()
    previous = _reference(times, iterations=3)
    previous.fit(x)
    assert previous.session_count > 0
    derived = _reference(times, iterations=15)
    assert derived.derive(previous, x) is not None
    fresh = _reference(times, iterations=15)
    fresh.fit(x)
    assert np.array_equal(derived.model.item_factors, fresh.model.item_factors)
    assert np.array_equal(derived.model.user_factors, fresh.model.user_factors)
    users = np.arange(200)
    assert np.array_equal(derived.top_k(users, 10), fresh.top_k(users, 10))
    assert previous.model is None  # consumed


@pytest.mark.parametrize("change", ["fewer", "regularization", "times", "bpr"])
def test_the_reference_refuses_what_a_fresh_fit_would_not_equal(change: str):
    x, times = _data()
    previous = _reference(times, iterations=4)
    previous.fit(x)
    model = _reference(times, iterations=10)
    if change == "fewer":
        model = _reference(times, iterations=2)
    elif change == "regularization":
        model = _reference(times, iterations=10, regularization=0.7)
    elif change == "times":
        model = _reference(_swapped(times), iterations=10)
    else:
        previous = ImplicitRanker("implicit_bpr", {"factors": 8, "iterations": 4})
        previous.fit(x)
        model = ImplicitRanker("implicit_bpr", {"factors": 8, "iterations": 10})
    assert model.derive(previous, x) is None
    assert previous.model is not None and model.model is None
