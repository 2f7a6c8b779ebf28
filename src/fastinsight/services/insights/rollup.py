"""Rollups: one scan of the interactions (and one of the items) into compact arrays.

Every insight endpoint is answered from these arrays, never from the raw collection:

- ``cube``: event counts per (item, day, type), as parallel COO arrays sorted by day;
- ``dau`` / ``wau``: distinct active users per day and per ISO week (Monday first);
- per user: first and last active day, number of events; per item: first active day;
- ``seen``: which users interacted with each item (CSR, item -> users), for audiences
  and campaigns that exclude what people already saw;
- the catalogue: item ids, titles, categories (CSR), hidden flags.

Day indices count from ``first_day`` (the earliest event day); the range always reaches
the day the snapshot was computed, so "the last N days" is a plain slice.
"""

from __future__ import annotations

import logging
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np

from fastinsight.storage.mongo.insights import InsightScans, decode_strings, encode_strings

log = logging.getLogger(__name__)

_STRING_FIELDS = ("types", "item_ids", "item_titles", "categories", "user_ids")
_ARRAY_FIELDS = (
    "in_catalogue", "hidden", "cat_indptr", "cat_indices", "cube_item", "cube_day", "cube_type",
    "cube_count", "dau", "wau", "user_first", "user_last", "user_events", "item_first",
    "seen_indptr", "seen_users",
)


@dataclass
class Rollup:
    snapshot_id: str
    computed_at: datetime
    duration_seconds: float
    first_day: date
    n_days: int
    types: list[str]
    item_ids: list[str]
    item_titles: list[str]
    in_catalogue: np.ndarray
    hidden: np.ndarray
    categories: list[str]
    cat_indptr: np.ndarray
    cat_indices: np.ndarray
    user_ids: list[str]
    cube_item: np.ndarray
    cube_day: np.ndarray
    cube_type: np.ndarray
    cube_count: np.ndarray
    dau: np.ndarray
    wau: np.ndarray
    user_first: np.ndarray
    user_last: np.ndarray
    user_events: np.ndarray
    item_first: np.ndarray
    seen_indptr: np.ndarray
    seen_users: np.ndarray

    # ---- derived lookups (built on first use, once per loaded snapshot) ----------------
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def total_events(self) -> int:
        return int(self.cube_count.sum())

    @property
    def today(self) -> int:
        """Day index of the day the snapshot was computed."""
        return (self.computed_at.date() - self.first_day).days

    @property
    def week_offset(self) -> int:
        return self.first_day.weekday()

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {item: n for n, item in enumerate(self.item_ids)}

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {user: n for n, user in enumerate(self.user_ids)}

    @cached_property
    def category_index(self) -> dict[str, int]:
        return {cat: n for n, cat in enumerate(self.categories)}

    @cached_property
    def day_ptr(self) -> np.ndarray:
        """Cube entries of day ``d`` are ``day_ptr[d]:day_ptr[d + 1]`` (the cube is day-major)."""
        return np.searchsorted(self.cube_day, np.arange(self.n_days + 1)).astype(np.int64)

    def day_slice(self, lo: int, hi: int) -> slice:
        lo, hi = min(max(lo, 0), self.n_days), min(max(hi, 0), self.n_days)
        return slice(int(self.day_ptr[lo]), int(self.day_ptr[max(hi, lo)]))

    @cached_property
    def daily_by_type(self) -> np.ndarray:
        """(days x types) event counts."""
        out = np.zeros((self.n_days, len(self.types)), dtype=np.int64)
        np.add.at(out, (self.cube_day, self.cube_type), self.cube_count)
        return out

    @cached_property
    def item_totals(self) -> np.ndarray:
        return np.bincount(self.cube_item, weights=self.cube_count, minlength=self.n_items)

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)

    def day_index(self, value: date) -> int:
        return (value - self.first_day).days

    def week_start(self, week: int) -> date:
        return self.first_day + timedelta(days=week * 7 - self.week_offset)

    def items_in_category(self, category: int) -> np.ndarray:
        rows = np.repeat(np.arange(self.n_items), np.diff(self.cat_indptr))
        return np.asarray(rows[self.cat_indices == category], dtype=np.int64)

    def users_who_saw(self, items: np.ndarray) -> np.ndarray:
        parts = [self.seen_users[self.seen_indptr[i]:self.seen_indptr[i + 1]] for i in items.tolist()]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int32)

    # ---- persistence --------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in _STRING_FIELDS:
            out[f"{name}__data"], out[f"{name}__ends"] = encode_strings(getattr(self, name))
        for name in _ARRAY_FIELDS:
            out[name] = getattr(self, name)
        return out

    def meta(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id, "computed_at": self.computed_at,
            "duration_seconds": self.duration_seconds,
            "first_day": self.first_day.isoformat(), "n_days": self.n_days,
            "interactions": self.total_events, "users": self.n_users,
            "items": int(self.in_catalogue.sum()),
        }

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Rollup:
        strings = {n: decode_strings(arrays[f"{n}__data"], arrays[f"{n}__ends"])
                   for n in _STRING_FIELDS}
        computed_at = meta["computed_at"]
        if computed_at.tzinfo is None:
            computed_at = computed_at.replace(tzinfo=UTC)
        fields: dict[str, Any] = {**strings, **{n: arrays[n] for n in _ARRAY_FIELDS}}
        return cls(
            snapshot_id=str(meta["snapshot_id"]), computed_at=computed_at,
            duration_seconds=float(meta["duration_seconds"]),
            first_day=date.fromisoformat(meta["first_day"]), n_days=int(meta["n_days"]),
            **fields,
        )


class _Columns:
    """Interaction rows as integer codes, filled by one pass over the cursor."""

    def __init__(self) -> None:
        self.users: dict[str, int] = {}
        self.types: dict[str, int] = {}
        self.days: dict[str, int] = {}
        self.u = array("q")
        self.i = array("q")
        self.t = array("q")
        self.d = array("q")
        self.skipped = 0


def _scan_interactions(scans: InsightScans, items: dict[str, int]) -> _Columns:
    cols = _Columns()
    users, types, days = cols.users, cols.types, cols.days
    ua, ia, ta, da = cols.u.append, cols.i.append, cols.t.append, cols.d.append
    for doc in scans.interactions():
        try:
            user, item, kind, day = doc["user_id"], doc["item_id"], doc["type"], doc["day"]
            d = days.get(day)
            if d is None:
                d = days[day] = date.fromisoformat(day).toordinal()
        except (KeyError, TypeError, ValueError):
            cols.skipped += 1
            continue
        u = users.get(user)
        if u is None:
            u = users[user] = len(users)
        i = items.get(item)
        if i is None:
            i = items[item] = len(items)
        t = types.get(kind)
        if t is None:
            t = types[kind] = len(types)
        ua(u)
        ia(i)
        ta(t)
        da(d)
    return cols


def _distinct_per_bucket(users: np.ndarray, buckets: np.ndarray, n_buckets: int) -> np.ndarray:
    if users.size == 0:
        return np.zeros(n_buckets, dtype=np.int64)
    keys = np.unique(users.astype(np.int64) * n_buckets + buckets)
    return np.bincount(keys % n_buckets, minlength=n_buckets).astype(np.int64)


def build_rollup(scans: InsightScans, snapshot_id: str, now: datetime | None = None) -> Rollup:
    """Scan items then interactions once each and aggregate everything with NumPy."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    items: dict[str, int] = {}
    titles: list[str] = []
    hidden: list[bool] = []
    categories: dict[str, int] = {}
    cat_ptr: list[int] = [0]
    cat_idx: list[int] = []
    for doc in scans.items():
        items[str(doc["_id"])] = len(items)
        titles.append(str(doc.get("title") or ""))
        hidden.append(bool(doc.get("hidden", False)))
        for cat in dict.fromkeys(doc.get("categories") or []):
            cat_idx.append(categories.setdefault(str(cat), len(categories)))
        cat_ptr.append(len(cat_idx))
    n_catalogue = len(items)
    cols = _scan_interactions(scans, items)
    scanned = time.perf_counter() - started
    if cols.skipped:
        log.warning("insights: skipped %d interactions without a usable day", cols.skipped)

    n_items, n_users, n_types = len(items), len(cols.users), len(cols.types)
    # interacted items missing from the catalogue (deleted since) keep empty rows
    titles.extend([""] * (n_items - n_catalogue))
    hidden.extend([False] * (n_items - n_catalogue))
    cat_ptr.extend([len(cat_idx)] * (n_items - n_catalogue))

    u = np.frombuffer(cols.u, dtype=np.int64) if len(cols.u) else np.zeros(0, np.int64)
    i = np.frombuffer(cols.i, dtype=np.int64) if len(cols.i) else np.zeros(0, np.int64)
    t = np.frombuffer(cols.t, dtype=np.int64) if len(cols.t) else np.zeros(0, np.int64)
    d_ord = np.frombuffer(cols.d, dtype=np.int64) if len(cols.d) else np.zeros(0, np.int64)
    today_ord = now.date().toordinal()
    first_ord = int(d_ord.min()) if d_ord.size else today_ord
    n_days = max(int(d_ord.max()) if d_ord.size else today_ord, today_ord) - first_ord + 1
    d = d_ord - first_ord
    first_day = date.fromordinal(first_ord)

    # day-major order, so a window is one contiguous slice of the cube (see ``day_slice``)
    keys, counts = np.unique((d * n_items + i) * max(n_types, 1) + t, return_counts=True)
    cube_type = keys % max(n_types, 1)
    cube_item = (keys // max(n_types, 1)) % max(n_items, 1)
    cube_day = keys // (max(n_types, 1) * max(n_items, 1))

    week_offset = first_day.weekday()
    weeks = (d + week_offset) // 7
    n_weeks = (n_days - 1 + week_offset) // 7 + 1

    user_first = np.full(n_users, n_days, dtype=np.int32)
    user_last = np.full(n_users, -1, dtype=np.int32)
    np.minimum.at(user_first, u, d.astype(np.int32))
    np.maximum.at(user_last, u, d.astype(np.int32))
    item_first = np.full(n_items, n_days, dtype=np.int32)
    np.minimum.at(item_first, i, d.astype(np.int32))
    item_first[item_first == n_days] = -1

    pairs = np.unique(i * max(n_users, 1) + u)
    seen_items = pairs // max(n_users, 1)
    seen_indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(seen_items, minlength=n_items), out=seen_indptr[1:])

    rollup = Rollup(
        snapshot_id=snapshot_id, computed_at=now, duration_seconds=0.0, first_day=first_day,
        n_days=n_days, types=list(cols.types), item_ids=list(items), item_titles=titles,
        in_catalogue=np.arange(n_items) < n_catalogue, hidden=np.asarray(hidden, dtype=bool),
        categories=list(categories), cat_indptr=np.asarray(cat_ptr, dtype=np.int64),
        cat_indices=np.asarray(cat_idx, dtype=np.int32), user_ids=list(cols.users),
        cube_item=cube_item.astype(np.int32), cube_day=cube_day.astype(np.int32),
        cube_type=cube_type.astype(np.int16), cube_count=counts.astype(np.int32),
        dau=_distinct_per_bucket(u, d, n_days), wau=_distinct_per_bucket(u, weeks, n_weeks),
        user_first=user_first, user_last=user_last,
        user_events=np.bincount(u, minlength=n_users).astype(np.int64), item_first=item_first,
        seen_indptr=seen_indptr, seen_users=(pairs % max(n_users, 1)).astype(np.int32),
    )
    rollup.duration_seconds = round(time.perf_counter() - started, 3)
    log.info("insights rollup %s: %d events, %d users, %d items; scan %.1fs, total %.1fs",
             snapshot_id, u.size, n_users, n_items, scanned, rollup.duration_seconds)
    return rollup
