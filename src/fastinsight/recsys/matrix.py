"""Interaction records -> the users x items confidence matrix the models train on.

Rules, applied in this order:

1. ``since`` drops records older than it.
2. Each record weighs ``weights[type]``; an unknown type is a ``ValueError``.
   Types in :data:`RATING_TYPES` are scaled by their value: ``weight * value / rating_scale``
   (a 5-star rating weighs the full type weight, 2.5 stars half of it), the factor
   ``value / rating_scale`` clipped to +-:data:`MAX_RATING_FACTOR` so that one absurd
   rating stored before values were bounded cannot overflow the models' float32
   arithmetic. Other types ignore ``value``.
3. With ``half_life_days``, each weight is multiplied by ``0.5 ** (age_days / half_life_days)``
   where age is measured back from ``now`` (default: the newest record, so a replay of old
   data is decayed the same way whenever it runs). Records from the future count as age 0.
4. Weights of the same (user, item) pair are summed per sign. Negative weights (dislikes) go
   to ``negatives`` as 1.0, and a disliked item carries no positive weight at all, so it is
   neither learned from as a like nor recommended back.
5. With timestamps, ``times`` holds the epoch seconds of each stored pair's latest positive
   record (session-aware models cut histories into sessions with it).

Naive datetimes are taken as UTC (PyMongo returns naive UTC by default).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.errors import ModelError
from fastinsight.recsys.sessions import pair_times

log = logging.getLogger(__name__)

RATING_TYPES: frozenset[str] = frozenset({"rating"})
DEFAULT_RATING_SCALE = 5.0
MAX_RATING_FACTOR = 20.0
"""A rating weighs at most 20 times its type weight (a 100 on the default 5-point scale)."""
SECONDS_PER_DAY = 86_400.0

Record = tuple[str, str, str, float | None, datetime]

_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class InteractionMatrix:
    """Positive confidences and dislikes over the same user and item axes."""

    matrix: sp.csr_matrix
    negatives: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    times: sp.csr_matrix | None = None  # float64 epoch seconds, the pattern of ``matrix``
    _cache: dict[str, dict[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    def user_index(self) -> dict[str, int]:
        """user id -> row (built once, then cached)."""
        if "user" not in self._cache:
            self._cache["user"] = {str(u): i for i, u in enumerate(self.user_ids.tolist())}
        return self._cache["user"]

    def item_index(self) -> dict[str, int]:
        """item id -> column (built once, then cached)."""
        if "item" not in self._cache:
            self._cache["item"] = {str(v): i for i, v in enumerate(self.item_ids.tolist())}
        return self._cache["item"]


def to_epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is UTC."""
    epoch = _EPOCH_NAIVE if moment.tzinfo is None else _EPOCH_AWARE
    return (moment - epoch).total_seconds()


def build_matrix(
    records: Iterable[Record],
    weights: Mapping[str, float],
    *,
    half_life_days: float | None = None,
    now: datetime | None = None,
    since: datetime | None = None,
    item_ids: Sequence[str] | np.ndarray | None = None,
    rating_scale: float = DEFAULT_RATING_SCALE,
) -> InteractionMatrix:
    """Build the matrix from ``(user_id, item_id, type, value, timestamp)`` tuples.

    ``item_ids`` fixes the item axis (e.g. the whole catalogue, including items nobody
    interacted with yet); records about other items are dropped and counted in the log.
    """
    columns: list[Sequence[Any]] = list(zip(*records, strict=True))
    if not columns:
        columns = [(), (), (), (), ()]
    if len(columns) != 5:
        raise ValueError("records must be (user_id, item_id, type, value, timestamp) tuples")
    users, items, types, values, stamps = columns
    seconds = np.fromiter(
        (to_epoch_seconds(t) for t in stamps), dtype=np.float64, count=len(stamps)
    )
    return _build(
        _factorize_list(users),
        _factorize_list(items),
        _factorize_list(types),
        np.array(values, dtype=np.float64),  # None -> nan
        seconds,
        weights,
        half_life_days=half_life_days,
        now=now,
        since=since,
        item_ids=item_ids,
        rating_scale=rating_scale,
    )


def from_arrays(
    users: np.ndarray,
    items: np.ndarray,
    types: np.ndarray,
    values: np.ndarray | None,
    timestamps: np.ndarray | None,
    weights: Mapping[str, float],
    *,
    half_life_days: float | None = None,
    now: datetime | None = None,
    since: datetime | None = None,
    item_ids: Sequence[str] | np.ndarray | None = None,
    rating_scale: float = DEFAULT_RATING_SCALE,
) -> InteractionMatrix:
    """:func:`build_matrix` for column arrays of equal length.

    ``values`` holds NaN where a record has no value. ``timestamps`` is either
    ``datetime64`` or seconds since the epoch; it may be ``None`` when neither decay nor
    ``since`` is asked for (the result then has no ``times``).
    """
    n = np.asarray(users).shape[0]
    vals = np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)
    secs = None if timestamps is None else _as_seconds(timestamps)
    return _build(
        _factorize_array(users),
        _factorize_array(items),
        _factorize_array(types),
        vals,
        secs,
        weights,
        half_life_days=half_life_days,
        now=now,
        since=since,
        item_ids=item_ids,
        rating_scale=rating_scale,
    )


Factorized = tuple[np.ndarray, np.ndarray]
"""(sorted unique ids as a '<U' array, int64 code of each record into them)."""


def _factorize_list(values: Sequence[Any]) -> Factorized:
    # A dict pass is ~5x faster than np.unique on a million Python strings.
    seen: dict[str, int] = {}
    codes = np.fromiter(
        (seen.setdefault(str(v), len(seen)) for v in values), dtype=np.int64, count=len(values)
    )
    ids = np.array(list(seen), dtype=str) if seen else np.empty(0, dtype="<U1")
    order = np.argsort(ids, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return ids[order], rank[codes] if codes.size else codes


def _factorize_array(values: np.ndarray) -> Factorized:
    return _factorize_list(np.asarray(values).reshape(-1).tolist())


def _build(
    users: Factorized,
    items: Factorized,
    types: Factorized,
    vals: np.ndarray,
    secs: np.ndarray | None,
    weights: Mapping[str, float],
    *,
    half_life_days: float | None,
    now: datetime | None,
    since: datetime | None,
    item_ids: Sequence[str] | np.ndarray | None,
    rating_scale: float,
) -> InteractionMatrix:
    user_ids, rows = users
    item_seen, item_codes = items
    n = rows.shape[0]
    if item_codes.shape[0] != n or types[1].shape[0] != n or vals.shape[0] != n:
        raise ValueError("every column must have one entry per record")
    if half_life_days is not None and not half_life_days > 0:
        raise ValueError("half_life_days must be positive")
    if rating_scale <= 0:
        raise ValueError("rating_scale must be positive")
    if (half_life_days is not None or since is not None) and secs is None:
        raise ValueError("time decay and since need one timestamp per record")
    if secs is not None and secs.shape[0] != n:
        raise ValueError("every column must have one entry per record")

    w = _type_weights(types, vals, weights, rating_scale)
    keep = np.ones(n, dtype=bool)
    if since is not None and secs is not None:
        keep &= secs >= to_epoch_seconds(since)
    if half_life_days is not None and secs is not None and secs.size:
        ref = to_epoch_seconds(now) if now is not None else float(secs[keep].max(initial=0.0))
        age_days = np.maximum(ref - secs, 0.0) / SECONDS_PER_DAY
        w *= np.exp2(-age_days / half_life_days)

    universe, item_map = _item_axis(item_seen, item_ids)
    cols = item_map[item_codes]
    outside = keep & (cols < 0)
    if outside.any():
        log.warning("dropped %d interactions with items outside the item universe",
                    int(outside.sum()))
    keep &= cols >= 0
    if not keep.all():
        rows, cols, w = rows[keep], cols[keep], w[keep]
        secs = None if secs is None else secs[keep]
        user_ids, rows = _compact(user_ids, rows)
    shape = (user_ids.shape[0], universe.shape[0])

    pos = w > 0
    neg = w < 0
    negatives = sp.csr_matrix(
        (np.ones(int(neg.sum()), dtype=np.float32), (rows[neg], cols[neg])), shape=shape
    )
    negatives.sum_duplicates()
    negatives.data[:] = 1.0
    matrix = sp.csr_matrix(
        (w[pos].astype(np.float32), (rows[pos], cols[pos])), shape=shape, dtype=np.float32
    )
    matrix.sum_duplicates()
    if negatives.nnz:
        matrix = sp.csr_matrix(matrix - matrix.multiply(negatives), dtype=np.float32)
        matrix.eliminate_zeros()
    matrix.sort_indices()
    negatives.sort_indices()
    times = None if secs is None else _latest_times(matrix, rows[pos], cols[pos], secs[pos])
    log.info("built matrix users=%d items=%d nnz=%d dislikes=%d from %d records",
             shape[0], shape[1], matrix.nnz, negatives.nnz, n)
    return InteractionMatrix(matrix=matrix, negatives=negatives, user_ids=user_ids,
                             item_ids=universe, times=times)


def _latest_times(
    matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, secs: np.ndarray
) -> sp.csr_matrix:
    """The latest of ``secs`` per stored pair of ``matrix`` (canonical CSR), same pattern."""
    order = np.lexsort((secs, cols, rows))
    rows, cols, secs = rows[order], cols[order], secs[order]
    last = np.ones(rows.size, dtype=bool)
    last[:-1] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    latest = sp.csr_matrix((secs[last], (rows[last], cols[last])), shape=matrix.shape,
                           dtype=np.float64)
    return sp.csr_matrix((pair_times(latest, matrix), matrix.indices.copy(),
                          matrix.indptr.copy()), shape=matrix.shape)


def fresh_weights(
    records: Iterable[tuple[str, str, float | None, datetime]],
    weights: Mapping[str, float],
    *,
    half_life_days: float | None = None,
    now: datetime | None = None,
    rating_scale: float = DEFAULT_RATING_SCALE,
) -> tuple[dict[str, float], set[str]]:
    """The training weights (``build_matrix``) of one user's handful of records, without
    building matrices:
    (summed positive weight per item, disliked items). A disliked item has no positive
    weight. Serving applies this per request to the events posted since training, where
    the matrix machinery cost ten times the arithmetic. Records of a type that is no
    longer configured, or ratings without a value, are skipped instead of failing."""
    records = list(records)
    ref = None
    if half_life_days is not None and records:
        ref = (to_epoch_seconds(now) if now is not None
               else max(to_epoch_seconds(r[3]) for r in records))
    positive: dict[str, float] = {}
    disliked: set[str] = set()
    for item, kind, value, stamp in records:
        weight = weights.get(kind)
        if weight is None:
            continue
        w = float(weight)
        if kind in RATING_TYPES:
            if value is None or not np.isfinite(value):
                continue
            w *= rating_factor(float(value), rating_scale)
        if ref is not None and half_life_days is not None:
            age_days = max(ref - to_epoch_seconds(stamp), 0.0) / SECONDS_PER_DAY
            w *= 2.0 ** (-age_days / half_life_days)
        if w > 0:
            positive[item] = positive.get(item, 0.0) + w
        elif w < 0:
            disliked.add(item)
    for item in disliked:
        positive.pop(item, None)
    return positive, disliked


def _as_seconds(timestamps: np.ndarray) -> np.ndarray:
    arr = np.asarray(timestamps)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[us]").astype(np.int64) / 1e6
    if arr.dtype == object:
        return np.fromiter((to_epoch_seconds(t) for t in arr), dtype=np.float64, count=arr.size)
    return arr.astype(np.float64)


def _type_weights(
    types: Factorized, values: np.ndarray, weights: Mapping[str, float], rating_scale: float
) -> np.ndarray:
    names, codes = types
    unknown = sorted(str(t) for t in names if t not in weights)
    if unknown:
        raise ValueError(
            f"unknown interaction type(s) {', '.join(map(repr, unknown))}; "
            f"configured: {', '.join(sorted(weights))}"
        )
    per_type = np.array([float(weights[str(t)]) for t in names], dtype=np.float64)
    w = per_type[codes] if names.size else np.empty(0, dtype=np.float64)
    for code, name in enumerate(names.tolist()):
        if name not in RATING_TYPES:
            continue
        mask = codes == code
        rating = values[mask]
        if not np.all(np.isfinite(rating)):
            raise ValueError(f"interaction type {name!r} needs a numeric value on every record")
        factor = rating / rating_scale
        clipped = np.abs(factor) > MAX_RATING_FACTOR
        if clipped.any():
            log.warning("%d %r values beyond %g x the rating scale were clipped to it",
                        int(clipped.sum()), name, MAX_RATING_FACTOR)
        w[mask] *= np.clip(factor, -MAX_RATING_FACTOR, MAX_RATING_FACTOR)
    return w


def rating_factor(value: float, rating_scale: float = DEFAULT_RATING_SCALE) -> float:
    """What one rating multiplies its type weight by: ``value / rating_scale``, clipped."""
    return min(max(value / rating_scale, -MAX_RATING_FACTOR), MAX_RATING_FACTOR)


def _item_axis(
    seen: np.ndarray, item_ids: Sequence[str] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(item universe, column in it of each seen item, -1 where it is not in the universe)."""
    if item_ids is None:
        return seen, np.arange(seen.shape[0], dtype=np.int64)
    universe = np.asarray(item_ids).astype(str, copy=False)
    order = np.argsort(universe, kind="stable")
    ordered = universe[order]
    if ordered.size > 1 and bool((ordered[1:] == ordered[:-1]).any()):
        raise ValueError("item_ids contains duplicates")
    if ordered.size == 0:
        return universe, np.full(seen.shape[0], -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(ordered, seen), ordered.size - 1)
    return universe, np.where(ordered[pos] == seen, order[pos], -1).astype(np.int64)


def _compact(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop ids no remaining row refers to and renumber the rows."""
    used, new_rows = np.unique(rows, return_inverse=True)
    return ids[used], new_rows.reshape(-1)


def row_of(matrix: sp.csr_matrix, row: int) -> sp.csr_matrix:
    """Row ``row`` of a CSR matrix as a 1 x n CSR matrix sharing its arrays: half the
    cost of ``matrix[row]``, which validates the index and copies."""
    start, stop = int(matrix.indptr[row]), int(matrix.indptr[row + 1])
    indptr = np.array([0, stop - start], dtype=matrix.indptr.dtype)
    return sp.csr_matrix((matrix.data[start:stop], matrix.indices[start:stop], indptr),
                         shape=(1, matrix.shape[1]), copy=False)


def require_finite(matrix: sp.spmatrix | sp.sparray) -> None:
    """Raise ``ModelError`` when a training matrix holds NaN or infinite weights.

    ``Recommender.fit`` rejects negative weights but lets NaN through (``nan < 0`` is
    false), and a NaN weight silently poisons every score it touches.
    """
    data = sp.csr_matrix(matrix).data
    if data.size and not np.all(np.isfinite(data)):
        raise ModelError("the interaction matrix contains NaN or infinite weights")
