"""Sessions from interaction times, and EASE's session term, with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ModelError
from fastinsight.recsys.als import ALSParams, ALSRecommender
from fastinsight.recsys.ease import EASEParams, EASERecommender
from fastinsight.recsys.matrix import build_matrix
from fastinsight.recsys.sessions import pair_times, session_matrix

T0 = datetime(2024, 6, 1, 12, 0, 0)
MIN = timedelta(minutes=1)


def test_sessions_cut_at_long_gaps_per_user_in_time_order() -> None:
    # user 0: item 2 (t=0), 0 (5 min), 3 (3 h), 1 (3 h 4 min); user 1: 1 (0), 2 (20 min)
    m = sp.csr_matrix(np.array([[2, 7, 3, 4], [0, 5, 6, 0]], dtype=np.float32))
    seconds = np.array([300.0, 11040.0, 0.0, 10800.0, 0.0, 1200.0])  # in m.data order
    s = session_matrix(m, seconds, gap_seconds=600)
    # user 1's items are 20 minutes apart: two single-item sessions, both left out
    np.testing.assert_array_equal(s.toarray(), [[2, 0, 3, 0], [0, 7, 0, 4]])
    # a gap longer than anyone's span joins each user's entries: S equals the matrix
    np.testing.assert_array_equal(session_matrix(m, seconds, 4 * 3600).toarray(), m.toarray())


def test_entries_without_a_time_are_left_out() -> None:
    m = sp.csr_matrix(np.array([[1, 1, 1]], dtype=np.float32))
    s = session_matrix(m, np.array([0.0, np.nan, 60.0]), gap_seconds=600)
    np.testing.assert_array_equal(s.toarray(), [[1, 0, 1]])
    assert session_matrix(m, np.full(3, np.nan), 600).shape == (0, 3)
    assert session_matrix(m, np.array([0.0, np.nan, 6000.0]), 600).shape == (0, 3)
    with pytest.raises(ModelError, match="one time per stored matrix entry"):
        session_matrix(m, np.zeros(2), 600)
    with pytest.raises(ModelError, match="gap_seconds must be positive"):
        session_matrix(m, np.zeros(3), 0)


def test_pair_times_reads_only_the_pairs_asked_for() -> None:
    times = sp.csr_matrix(np.array([[10.0, 0, 30.0], [0, 20.0, 40.0]]))
    fit = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))
    got = pair_times(times, fit)  # (0,0) known, (0,1) unknown, (1,2) known
    np.testing.assert_array_equal(got[[0, 2]], [10.0, 40.0])
    assert np.isnan(got[1])
    with pytest.raises(ModelError, match="interaction times are 2 x 3, the matrix is 1 x 3"):
        pair_times(times, fit[:1])


def _session_data():
    """Ten users take x and s within minutes and l a month later, two more take x and l
    a month apart; user t took only x.

    Over whole histories l goes with x more often than s does, so plain EASE ranks l
    first; only the sessions tell that s goes with x more closely.
    """
    records = []
    for u in range(10):
        start = T0 + timedelta(days=u)
        records += [(f"u{u}", "x", "view", None, start),
                    (f"u{u}", "s", "view", None, start + 3 * MIN),
                    (f"u{u}", "l", "view", None, start + timedelta(days=30))]
        records.append((f"u{u}", f"f{u % 3}", "view", None, start + timedelta(days=60)))
    for u in (10, 11):
        records += [(f"u{u}", "x", "view", None, T0), (f"u{u}", "l", "view", None, T0 + 40 * MIN)]
    records.append(("t", "x", "view", None, T0))
    return build_matrix(records, {"view": 1.0})


MODELS = {
    "ease": (EASERecommender, lambda **kw: EASEParams(l2=1.0, **kw)),
    "als": (ALSRecommender, lambda **kw: ALSParams(factors=4, regularization=0.01,
                                                   iterations=30, **kw)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sessions_rank_the_item_taken_in_the_same_session_first(name: str) -> None:
    data = _session_data()
    history = data.matrix[data.user_index()["t"]]
    cls, params = MODELS[name]

    def first(times: sp.csr_matrix | None, **kw: float) -> str:
        model = cls(params(**kw))
        model.set_interaction_times(times)
        ids, _ = model.fit(data.matrix).recommend(None, 1, history=history)
        return str(data.item_ids[ids[0]])

    assert first(data.times, session_gap_seconds=3600) == "s"
    assert first(data.times, session_gap_seconds=0) == "l"
    assert first(data.times, session_weight=0) == "l"
    assert first(None) == "l"  # no times: no sessions


def test_session_term_matches_the_closed_form() -> None:
    data = _session_data()
    x = data.matrix
    s = session_matrix(x, pair_times(data.times, x), 600)
    gram = (x.T @ x + 2.5 * (s.T @ s)).toarray().astype(np.float64) + 3.0 * np.eye(x.shape[1])
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    model = EASERecommender(EASEParams(l2=3.0, session_gap_seconds=600, session_weight=2.5))
    model.set_interaction_times(data.times)
    model.fit(x)
    np.testing.assert_allclose(model.score_history(x), x @ expected, atol=2e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_times_of_pairs_outside_the_fit_matrix_change_nothing(name: str) -> None:
    """The model is given times for the whole data set and fitted on a part: held-out
    pairs' times must not reach it (no leak from validation or test)."""
    data = _session_data()
    held = data.item_index()["s"]
    fit = data.matrix.tolil()
    fit[:5, held] = 0  # five users' s held out
    fit = sp.csr_matrix(fit)
    fit.eliminate_zeros()
    moved = data.times.tolil()
    moved[:5, held] = 1.0  # those pairs' times changed: same model
    moved = sp.csr_matrix(moved)
    cls, params = MODELS[name]
    weights = []
    for times in (data.times, moved):
        model = cls(params(session_gap_seconds=3600))
        model.set_interaction_times(times)
        weights.append(model.fit(fit).score_history(sp.identity(fit.shape[1], format="csr")))
    np.testing.assert_array_equal(weights[0], weights[1])
