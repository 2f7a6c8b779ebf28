"""Sessions: a user's interactions cut wherever the gap between two of them is long.

Items a user takes within minutes of each other are more closely related than items
the same user took months apart; session-aware models learn from both. Times come as
a sparse matrix of epoch seconds per (user, item) pair (the time of the pair's latest
interaction, :attr:`fastinsight.recsys.matrix.InteractionMatrix.times`). It may hold
more pairs than the matrix a model is fitted on (the whole data set, while the model
is fitted on a training part): only the fitted pairs' times are ever read, so held-out
pairs cannot leak into a model through their times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fastinsight.errors import ModelError
from fastinsight.recsys.base import ModelParams

log = logging.getLogger(__name__)


class SessionParams(ModelParams):
    """Parameters of models that also learn from sessions (:class:`SessionAware`)."""

    session_gap_seconds: float = Field(
        default=1800.0, ge=0,
        description="a user's session ends after this long without an interaction; 0: no "
        "sessions (also when the model is given no interaction times)",
    )
    session_weight: float = Field(
        default=1.0, ge=0, description="weight of the sessions' evidence next to the users'"
    )


def sessions_off(gap_seconds: float, weight: float) -> bool:
    """True when these parameters add no session rows (and the other one changes nothing)."""
    return gap_seconds <= 0 or weight <= 0


def inert_sessions_dropped(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the session parameters set to 0 when sessions are off, so that
    two parameter sets that fit the same model compare equal."""
    values = dict(params)
    gap, weight = values.get("session_gap_seconds", 1.0), values.get("session_weight", 1.0)
    if sessions_off(gap, weight):
        values.update({k: 0.0 for k in ("session_gap_seconds", "session_weight") if k in values})
    return values


class SessionAware:
    """Mixin: keeps the times given by ``set_interaction_times`` and cuts a fit matrix
    into session rows with the model's :class:`SessionParams`."""

    _times: sp.csr_matrix | None = None

    def set_interaction_times(self, times: sp.csr_matrix | None) -> None:
        """Epoch seconds per (user, item) pair; it may hold more pairs than the fit matrix
        (only the fitted pairs' times are read)."""
        self._times = times

    def session_rows(self, matrix: sp.csr_matrix) -> sp.csr_matrix | None:
        """Sessions x items of ``matrix`` (None when sessions are off or no times were given)."""
        p = getattr(self, "params", None)
        if not isinstance(p, SessionParams):
            raise ModelError(f"{type(self).__name__} needs SessionParams to use sessions")
        if self._times is None or sessions_off(p.session_gap_seconds, p.session_weight):
            return None
        sessions = session_matrix(matrix, pair_times(self._times, matrix), p.session_gap_seconds)
        log.info("%d sessions of %d users (gap %gs)", sessions.shape[0],
                 int((matrix.getnnz(axis=1) > 0).sum()), p.session_gap_seconds)
        return sessions


def _pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys: np.ndarray = rows * np.int64(matrix.shape[1]) + matrix.indices.astype(np.int64)
    return keys


def pair_times(times: sp.csr_matrix, matrix: sp.csr_matrix) -> np.ndarray:
    """Epoch seconds of each stored entry of ``matrix`` (in ``matrix.data`` order), looked
    up in ``times``; NaN for pairs ``times`` does not hold."""
    if times.shape != matrix.shape:
        raise ModelError(
            f"interaction times are {times.shape[0]} x {times.shape[1]}, the matrix is "
            f"{matrix.shape[0]} x {matrix.shape[1]}"
        )
    times = sp.csr_matrix(times, dtype=np.float64)
    times.sum_duplicates()  # canonical: sorted indices, so the keys below are sorted
    known = _pair_keys(times)
    wanted = _pair_keys(matrix)
    out = np.full(wanted.size, np.nan, dtype=np.float64)
    if known.size == 0 or wanted.size == 0:
        return out
    pos = np.minimum(np.searchsorted(known, wanted), known.size - 1)
    hit = known[pos] == wanted
    out[hit] = times.data[pos[hit]]
    return out


def session_matrix(matrix: sp.csr_matrix, seconds: np.ndarray, gap_seconds: float) -> sp.csr_matrix:
    """Sessions x items: each row holds the weights of one session of one user.

    A user's entries are ordered by time and a new session starts after a gap longer
    than ``gap_seconds``. Sessions of a single item are left out (they tell nothing
    about which items go together, and would only cost fitting time), as are entries
    without a time (NaN).
    """
    matrix = sp.csr_matrix(matrix)
    if seconds.shape != matrix.data.shape:
        raise ModelError("session_matrix needs one time per stored matrix entry")
    if not gap_seconds > 0:
        raise ModelError("gap_seconds must be positive")
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    known = np.isfinite(seconds)
    rows, cols = rows[known], matrix.indices[known].astype(np.int64)
    weights, stamps = matrix.data[known], seconds[known]
    if rows.size == 0:
        return sp.csr_matrix((0, matrix.shape[1]), dtype=matrix.dtype)
    order = np.lexsort((cols, stamps, rows))
    rows, cols, weights, stamps = rows[order], cols[order], weights[order], stamps[order]
    starts = np.ones(rows.size, dtype=bool)
    starts[1:] = (rows[1:] != rows[:-1]) | (np.diff(stamps) > gap_seconds)
    session = np.cumsum(starts) - 1
    sizes = np.bincount(session)
    keep = sizes[session] >= 2
    _, session = np.unique(session[keep], return_inverse=True)
    return sp.csr_matrix(
        (weights[keep], (session.reshape(-1), cols[keep])),
        shape=(int(np.count_nonzero(sizes >= 2)), matrix.shape[1]), dtype=matrix.dtype,
    )
