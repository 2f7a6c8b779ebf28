"""Every analytic against numbers recomputed from the inserted rows in plain Python."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.services.insights.analytics import DEFAULT_FUNNEL, InsightsService
from tests.insights.conftest import Dataset, insert_items, insert_rows, make_dataset

Row = dict[str, Any]


@pytest.fixture(scope="module")
def shared(mongo_uri: str) -> Iterator[tuple[InsightsService, Dataset]]:
    """One seeded database and snapshot for the read-only tests of this module."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    name = f"fi_test_{uuid.uuid4().hex[:12]}"
    try:
        data = make_dataset()
        insert_items(client[name], data.items)
        insert_rows(client[name], data.rows)
        service = InsightsService(client[name], check_seconds=0.0)
        out = service.refresh(wait=True)
        assert out.status == "done" and out.interactions == len(data.rows)
        yield service, data
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture()
def svc(shared: tuple[InsightsService, Dataset]) -> InsightsService:
    return shared[0]


@pytest.fixture()
def data(shared: tuple[InsightsService, Dataset]) -> Dataset:
    return shared[1]


def day_of(row: Row) -> date:
    stamp: datetime = row["timestamp"]
    return stamp.date()


def in_window(rows: list[Row], end: date, days: int, shift: int = 0) -> list[Row]:
    hi = end - timedelta(days=shift * days)
    lo = hi - timedelta(days=days - 1)
    return [r for r in rows if lo <= day_of(r) <= hi]


def test_activity_per_day_matches_rows(svc: InsightsService, data: Dataset) -> None:
    out = svc.activity("day", 60, None)
    today = out.computed_at.date()
    assert out.window.end == today and len(out.buckets) == 60
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    users: dict[date, set[str]] = defaultdict(set)
    for r in data.rows:
        per_day[day_of(r)][r["type"]] += 1
        users[day_of(r)].add(r["user_id"])
    first_seen: dict[str, date] = {}
    for r in sorted(data.rows, key=lambda r: r["timestamp"]):
        first_seen.setdefault(r["user_id"], day_of(r))
    new_users = Counter(first_seen.values())
    for bucket in out.buckets:
        expected = per_day.get(bucket.start, Counter())
        assert {k: v for k, v in bucket.by_type.items() if v} == dict(expected)
        assert bucket.total == sum(expected.values())
        assert bucket.active_users == len(users.get(bucket.start, set()))
        assert bucket.new_users == new_users.get(bucket.start, 0)
    assert sum(b.total for b in out.buckets) == sum(
        1 for r in data.rows if day_of(r) > today - timedelta(days=60))


def test_activity_per_week_counts_distinct_users_per_iso_week(
    svc: InsightsService, data: Dataset
) -> None:
    out = svc.activity("week", 28, None)
    assert all(b.start.weekday() == 0 for b in out.buckets)
    for bucket in out.buckets:
        week = [r for r in data.rows if bucket.start <= day_of(r) < bucket.start + timedelta(days=7)]
        assert bucket.total == len(week)
        assert bucket.active_users == len({r["user_id"] for r in week})
        assert bucket.by_type.get("purchase", 0) == sum(r["type"] == "purchase" for r in week)
    first_item: dict[str, date] = {}
    for r in sorted(data.rows, key=lambda r: r["timestamp"]):
        first_item.setdefault(r["item_id"], day_of(r))
    start = out.buckets[0].start
    assert sum(b.new_items for b in out.buckets) == sum(1 for d in first_item.values() if d >= start)


@pytest.mark.parametrize("kind", [None, "purchase"])
def test_top_items_with_trend(svc: InsightsService, data: Dataset, kind: str | None) -> None:
    out = svc.top_items(14, 10, kind, None)
    end = out.computed_at.date()
    rows = [r for r in data.rows if kind is None or r["type"] == kind]
    cur = Counter(r["item_id"] for r in in_window(rows, end, 14))
    prev = Counter(r["item_id"] for r in in_window(rows, end, 14, shift=1))
    expected = sorted(cur.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(e.id, e.count) for e in out.entries] == expected
    assert out.total == sum(cur.values())
    for e in out.entries:
        assert e.previous == prev.get(e.id, 0)
        if e.previous == 0:
            assert e.trend == "new" and e.change is None
        else:
            change = (e.count - e.previous) / e.previous
            assert e.change == pytest.approx(change, abs=1e-4)
            assert e.trend == ("rising" if change >= 0.1 else "falling" if change <= -0.1 else "steady")
        assert e.title == data.catalogue.get(e.id, {}).get("title", "")
    assert out.previous_window.end == out.window.start - timedelta(days=1)


def test_top_categories_count_each_category_of_an_item(svc: InsightsService, data: Dataset) -> None:
    out = svc.top_categories(30, 10, None, None)
    end = out.computed_at.date()
    cats = {i["_id"]: i["categories"] for i in data.items}
    cur: Counter[str] = Counter()
    for r in in_window(data.rows, end, 30):
        cur.update(cats.get(r["item_id"], []))
    prev: Counter[str] = Counter()
    for r in in_window(data.rows, end, 30, shift=1):
        prev.update(cats.get(r["item_id"], []))
    assert {e.id: e.count for e in out.entries} == dict(cur)
    assert {e.id: e.previous for e in out.entries} == {c: prev[c] for c in cur}


def test_funnel_overall_and_per_category(svc: InsightsService, data: Dataset) -> None:
    out = svc.funnel(30, None, DEFAULT_FUNNEL, None)
    window = in_window(data.rows, out.computed_at.date(), 30)
    counts = Counter(r["type"] for r in window)
    assert [s.count for s in out.steps] == [counts[t] for t in DEFAULT_FUNNEL]
    assert out.steps[0].rate_from_previous is None
    assert out.steps[1].rate_from_previous == pytest.approx(counts["click"] / counts["view"], abs=1e-4)
    assert out.steps[3].rate_from_first == pytest.approx(counts["purchase"] / counts["view"], abs=1e-4)

    cats = {i["_id"]: i["categories"] for i in data.items}
    per_cat: dict[str, Counter[str]] = defaultdict(Counter)
    for r in window:
        for c in cats.get(r["item_id"], []):
            per_cat[c][r["type"]] += 1
    books = svc.funnel(30, "books", DEFAULT_FUNNEL, None)
    assert [s.count for s in books.steps] == [per_cat["books"][t] for t in DEFAULT_FUNNEL]
    table = svc.funnel_by_category(30, DEFAULT_FUNNEL, None)
    assert {f.category: [s.count for s in f.steps] for f in table.categories} == {
        c: [per_cat[c][t] for t in DEFAULT_FUNNEL] for c in per_cat}


def test_catalogue_health(svc: InsightsService, data: Dataset) -> None:
    out = svc.catalogue(30)
    totals = Counter(r["item_id"] for r in data.rows)
    catalogue = [i["_id"] for i in data.items]
    never = [i for i in catalogue if totals[i] == 0]
    assert out.items == len(catalogue) and out.never_interacted == len(never) == 3
    assert sorted(out.never_interacted_sample) == sorted(never)
    assert out.unknown_items == 1  # "gone"
    recent = {r["item_id"] for r in in_window(data.rows, out.computed_at.date(), 30)}
    assert out.cold_in_window == sum(1 for i in catalogue if i not in recent)
    ranked = sorted((totals[i] for i in catalogue), reverse=True)
    assert out.top_1pct_items == 1
    assert out.top_1pct_share == pytest.approx(ranked[0] / len(data.rows), abs=1e-4)
    assert out.top_10pct_share == pytest.approx(sum(ranked[:3]) / len(data.rows), abs=1e-4)
    n, mean = len(ranked), sum(ranked) / len(ranked)
    gini = sum(abs(a - b) for a in ranked for b in ranked) / (2 * n * n * mean)
    assert out.gini == pytest.approx(gini, abs=1e-4)


def test_overview(svc: InsightsService, data: Dataset) -> None:
    out = svc.overview()
    today = out.computed_at.date()
    assert out.interactions == len(data.rows)
    assert out.users == len({r["user_id"] for r in data.rows})
    assert out.items == len(data.items)
    for n in (1, 7, 30):
        since = today - timedelta(days=n - 1)
        assert out.active_users[f"{n}d"] == len({r["user_id"] for r in data.rows if day_of(r) >= since})
    assert out.interactions_7d == len(in_window(data.rows, today, 7))
    assert out.interactions_previous_7d == len(in_window(data.rows, today, 7, shift=1))
    assert out.by_type == dict(Counter(r["type"] for r in data.rows))
    assert out.age_seconds >= 0 and out.snapshot_id


def test_answers_stay_as_of_the_snapshot_until_refreshed(
    db: Database[dict[str, Any]], dataset: Dataset
) -> None:
    svc = InsightsService(db, check_seconds=0.0)
    svc.refresh(wait=True)
    before = svc.overview()
    insert_rows(db, [{"user_id": "newcomer", "item_id": "i00", "type": "purchase",
                      "timestamp": dataset.now}])
    assert svc.overview().interactions == before.interactions
    svc.refresh(wait=True)
    after = svc.overview()
    assert after.interactions == before.interactions + 1
    assert after.computed_at > before.computed_at and after.snapshot_id != before.snapshot_id
    # another process sees the new snapshot through the store, and the old one is gone
    other = InsightsService(db, check_seconds=0.0)
    assert other.overview().snapshot_id == after.snapshot_id
    assert db["insight_snapshots"].count_documents({"snapshot_id": before.snapshot_id}) == 0
