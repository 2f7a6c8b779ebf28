"""Interaction data for offline evaluation: MovieLens files, import files, stored records.

Every source is reduced to the same thing, an :class:`EvalDataset` on fixed integer
indices with one row per distinct (user, item) pair, its summed training weight and
the time of its latest interaction, in two tables:

* **positives** (what a user can find relevant): pairs with at least one relevant
  record and no dislike. A rating is relevant when ``value >= min_rating`` (default
  4.0); every other type with a positive training weight is relevant.
* **context**: pairs the user interacted with but that are not positive, e.g. a movie
  rated 2 of 5. Training uses them as the product's training does (they are part of
  what the user has seen and say something about taste), and a ranked list never
  contains them, but they are never relevant.

Training weights are those of :mod:`fastinsight.recsys.matrix`: a record weighs
``weights[type]``, a rating ``weights["rating"] * value / rating_scale``; a pair sums
the positive weights of its records. A pair with any negative record (a dislike) is
dropped, as training drops it. MovieLens ``ratings.csv`` goes through the same rule
with ``weights = {"rating": 1.0}`` (a 4-star rating weighs 0.8). Records of unknown
types are skipped and counted.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.config import DEFAULT_INTERACTION_WEIGHTS
from fastinsight.errors import ValidationFailed
from fastinsight.recsys.matrix import (
    DEFAULT_RATING_SCALE,
    RATING_TYPES,
    rating_factor,
    to_epoch_seconds,
)

log = logging.getLogger(__name__)

DEFAULT_MIN_RATING = 4.0
MOVIELENS_WEIGHTS: dict[str, float] = {"rating": 1.0}


@dataclass(frozen=True)
class PairTable:
    """(user, item) pairs on an :class:`EvalDataset`'s index; one row per distinct pair."""

    users: np.ndarray  # int64 row index
    items: np.ndarray  # int64 column index
    weights: np.ndarray  # float32, > 0
    timestamps: np.ndarray  # float64 epoch seconds of the pair's latest interaction

    @classmethod
    def empty(cls) -> PairTable:
        none = np.empty(0, dtype=np.int64)
        return cls(none, none, np.empty(0, dtype=np.float32), np.empty(0, dtype=np.float64))

    @property
    def size(self) -> int:
        return int(self.users.size)

    def select(self, rows: np.ndarray) -> PairTable:
        return PairTable(self.users[rows], self.items[rows], self.weights[rows],
                         self.timestamps[rows])


@dataclass(frozen=True)
class EvalDataset:
    """Positive pairs (the top-level arrays) and non-relevant ``context`` pairs."""

    users: np.ndarray  # int64 row index into user_ids
    items: np.ndarray  # int64 column index into item_ids
    weights: np.ndarray  # float32, > 0
    timestamps: np.ndarray  # float64 epoch seconds of the pair's latest interaction
    user_ids: np.ndarray  # str
    item_ids: np.ndarray  # str
    item_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""
    context: PairTable = field(default_factory=PairTable.empty)

    @property
    def n_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    @property
    def n_pairs(self) -> int:
        return int(self.users.size)

    def matrix(self, rows: np.ndarray | None = None) -> sp.csr_matrix:
        """Users x items matrix of the selected pair rows (all rows by default)."""
        sel = slice(None) if rows is None else rows
        return sp.csr_matrix(
            (self.weights[sel], (self.users[sel], self.items[sel])),
            shape=(self.n_users, self.n_items), dtype=np.float32,
        )

    def context_matrix(self, rows: np.ndarray | None = None) -> sp.csr_matrix:
        """Users x items matrix of the selected context rows (all by default)."""
        ctx = self.context if rows is None else self.context.select(rows)
        return sp.csr_matrix(
            (ctx.weights, (ctx.users, ctx.items)),
            shape=(self.n_users, self.n_items), dtype=np.float32,
        )

    def time_matrix(self) -> sp.csr_matrix:
        """Users x items epoch seconds of every pair, positives and context (float64)."""
        ctx = self.context
        return sp.csr_matrix(
            (np.concatenate([self.timestamps, ctx.timestamps]).astype(np.float64),
             (np.concatenate([self.users, ctx.users]), np.concatenate([self.items, ctx.items]))),
            shape=(self.n_users, self.n_items), dtype=np.float64,
        )

    def without_context(self) -> EvalDataset:
        """The positives alone: training then sees only what can be relevant."""
        return replace(self, context=PairTable.empty())

    def binary(self) -> EvalDataset:
        """The positives alone, each of weight 1 (the binary-positives protocol)."""
        return replace(self, weights=np.ones_like(self.weights), context=PairTable.empty())

    def stats(self) -> dict[str, Any]:
        density = self.n_pairs / max(1, self.n_users * self.n_items)
        return {
            "source": self.source, "users": self.n_users, "items": self.n_items,
            "positives": self.n_pairs, "context_pairs": self.context.size,
            "density": round(density, 6),
        }


def filter_min_positives(
    data: EvalDataset, min_positives: int = 5, keep_all_items: bool = False
) -> EvalDataset:
    """Keep users with at least ``min_positives`` positive pairs and re-index.

    Items left without any positive pair are dropped from the catalogue unless
    ``keep_all_items``: nobody can find them relevant, and every model would only
    carry an empty column for them. Context pairs of dropped users or items go too.
    """
    counts = np.bincount(data.users, minlength=data.n_users)
    keep_user = counts >= min_positives
    rows = keep_user[data.users]
    users, items = data.users[rows], data.items[rows]
    user_map = np.cumsum(keep_user) - 1
    if keep_all_items:
        keep_item = np.ones(data.n_items, dtype=bool)
    else:
        keep_item = np.bincount(items, minlength=data.n_items) > 0
    item_map = np.cumsum(keep_item) - 1
    item_ids = data.item_ids[keep_item]
    meta = {i: data.item_meta[i] for i in item_ids.tolist() if i in data.item_meta}
    log.info(
        "filter >=%d positives: users %d -> %d, items %d -> %d",
        min_positives, data.n_users, int(keep_user.sum()), data.n_items, int(keep_item.sum()),
    )
    ctx = data.context
    ctx = ctx.select(keep_user[ctx.users] & keep_item[ctx.items])
    return EvalDataset(
        users=user_map[users], items=item_map[items], weights=data.weights[rows],
        timestamps=data.timestamps[rows], user_ids=data.user_ids[keep_user],
        item_ids=item_ids, item_meta=meta, source=data.source,
        context=PairTable(user_map[ctx.users], item_map[ctx.items], ctx.weights, ctx.timestamps),
    )


def _from_pairs(
    user_raw: list[str], item_raw: list[str], weights: list[float], relevant: list[bool],
    times: list[float], item_meta: dict[str, dict[str, Any]], source: str,
) -> EvalDataset:
    """Index raw records, sum weights per pair, split pairs into positives and context."""
    if not user_raw:
        raise ValidationFailed(f"{source}: no usable interactions")
    user_ids, users = np.unique(np.asarray(user_raw, dtype=str), return_inverse=True)
    item_ids, items = np.unique(np.asarray(item_raw, dtype=str), return_inverse=True)
    n_items = item_ids.size
    key = users.astype(np.int64) * n_items + items.astype(np.int64)
    pair_keys, inverse = np.unique(key, return_inverse=True)
    raw_w = np.asarray(weights, dtype=np.float64)
    gain = np.maximum(raw_w, 0.0)
    w = np.bincount(inverse, weights=gain, minlength=pair_keys.size)
    rel = np.bincount(inverse, weights=gain * np.asarray(relevant, dtype=bool),
                      minlength=pair_keys.size) > 0
    disliked = np.bincount(inverse, weights=(raw_w < 0), minlength=pair_keys.size) > 0
    ts = np.full(pair_keys.size, -np.inf)
    np.maximum.at(ts, inverse, np.asarray(times, dtype=np.float64))
    ts[~np.isfinite(ts)] = 0.0
    kept = (w > 0) & ~disliked
    table = PairTable(
        (pair_keys // n_items).astype(np.int64), (pair_keys % n_items).astype(np.int64),
        w.astype(np.float32), ts,
    )
    positive = table.select(kept & rel)
    # Users/items seen only in context pairs stay in the catalogue here;
    # filter_min_positives decides what to keep.
    return EvalDataset(
        users=positive.users, items=positive.items, weights=positive.weights,
        timestamps=positive.timestamps, user_ids=user_ids, item_ids=item_ids,
        item_meta={i: item_meta[i] for i in item_ids.tolist() if i in item_meta}, source=source,
        context=table.select(kept & ~rel),
    )


def _movielens_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield {"user_id": row["userId"], "item_id": row["movieId"], "type": "rating",
                   "value": row["rating"], "timestamp": float(row["timestamp"])}


def load_movielens(directory: Path, min_rating: float = DEFAULT_MIN_RATING) -> EvalDataset:
    """``ratings.csv`` (+ ``movies.csv`` titles and genres when present) from ``directory``."""
    ratings = directory / "ratings.csv"
    if not ratings.is_file():
        raise ValidationFailed.field("movielens", f"{ratings} not found")
    data = from_records(_movielens_records(ratings), MOVIELENS_WEIGHTS, min_rating,
                        source=f"movielens:{directory.name}")
    meta: dict[str, dict[str, Any]] = {}
    movies = directory / "movies.csv"
    if movies.is_file():
        with movies.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                genres = [g for g in row["genres"].split("|") if g and g != "(no genres listed)"]
                meta[row["movieId"]] = {"title": row["title"], "categories": genres}
    wanted = data.item_ids.tolist()
    return replace(data, item_meta={i: meta[i] for i in wanted if i in meta})


def _timestamp(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    if isinstance(value, datetime):
        return to_epoch_seconds(value)
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        return to_epoch_seconds(datetime.fromisoformat(text.replace("Z", "+00:00")))


def from_records(
    records: Iterable[Mapping[str, Any]],
    weights: Mapping[str, float] | None = None,
    min_rating: float = DEFAULT_MIN_RATING,
    source: str = "records",
    rating_scale: float = DEFAULT_RATING_SCALE,
) -> EvalDataset:
    """Records with ``user_id, item_id, type, value, timestamp`` -> dataset.

    Skipped (and counted in the log): unknown types, missing ids, and ratings without
    a numeric value.
    """
    table = dict(DEFAULT_INTERACTION_WEIGHTS if weights is None else weights)
    users: list[str] = []
    items: list[str] = []
    ws: list[float] = []
    relevant: list[bool] = []
    times: list[float] = []
    skipped = 0
    for rec in records:
        kind = str(rec.get("type") or "view")
        if kind not in table or rec.get("user_id") is None or rec.get("item_id") is None:
            skipped += 1
            continue
        w = table[kind]
        good = True
        if kind in RATING_TYPES:
            rating = _rating(rec.get("value"))
            if rating is None:
                skipped += 1
                continue
            w = w * rating_factor(rating, rating_scale)
            good = rating >= min_rating
        users.append(str(rec["user_id"]))
        items.append(str(rec["item_id"]))
        ws.append(w)
        relevant.append(good)
        times.append(_timestamp(rec.get("timestamp")))
    if skipped:
        log.warning("%s: skipped %d records (unknown type, missing ids or rating value)",
                    source, skipped)
    return _from_pairs(users, items, ws, relevant, times, {}, source)


def _rating(value: Any) -> float | None:
    try:
        rating = float(value)
    except (TypeError, ValueError):
        return None
    return rating if np.isfinite(rating) else None


def _iter_file(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
        return
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValidationFailed(f"{path}:{number}: invalid JSON: {exc.msg}") from exc


def load_interaction_file(
    path: Path, weights: Mapping[str, float] | None = None,
    min_rating: float = DEFAULT_MIN_RATING,
) -> EvalDataset:
    """JSON Lines (``.jsonl``/``.json``) or CSV in the import format."""
    if not path.is_file():
        raise ValidationFailed.field("file", f"{path} not found")
    return from_records(_iter_file(path), weights, min_rating, source=f"file:{path.name}")


def with_item_meta(data: EvalDataset, items: Iterable[Mapping[str, Any]]) -> EvalDataset:
    """``data`` with the title, description, categories and tags of its items (documents
    shaped like the ``items`` collection; items ``data`` does not hold are skipped)."""
    wanted = set(data.item_ids.tolist())
    meta: dict[str, dict[str, Any]] = {}
    for doc in items:
        item_id = str(doc.get("item_id", ""))
        if item_id in wanted:
            meta[item_id] = {k: doc.get(k) for k in ("title", "description", "categories", "tags")}
    return replace(data, item_meta=meta)
