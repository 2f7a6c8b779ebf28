"""Analytics answered from the rollup snapshot: activity, top items and categories with
trends, funnels, catalogue health and model health.

Every answer carries the snapshot's ``computed_at``: it is as of the last refresh, not
live. ``refresh_insights(db)`` is the one entry point to recompute (after imports and
training, on a schedule, or through ``POST /v1/admin/insights/refresh``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np
from pymongo.database import Database

from fastinsight.errors import FastInsightError, NotFoundError, Unavailable, ValidationFailed
from fastinsight.schemas.insights import (
    ActivityBucket,
    ActivityOut,
    CatalogueOut,
    CategoryFunnel,
    CategoryFunnelsOut,
    Coverage,
    FunnelOut,
    FunnelStep,
    ModelHealth,
    ModelsHealthOut,
    OverviewOut,
    RefreshOut,
    Snapshot,
    TaskStatus,
    TopOut,
    Trend,
    TrendEntry,
    Window,
)
from fastinsight.services.insights.cache import (
    BackgroundTask,
    EmbeddingCache,
    SnapshotReader,
    compute_coverage,
    refresh_snapshot,
)
from fastinsight.services.insights.rollup import Rollup
from fastinsight.services.writes import ensure_writable
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.insights import SnapshotStore
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)

DEFAULT_FUNNEL = ("view", "click", "add_to_cart", "purchase")
TREND_THRESHOLD = 0.10
COVERAGE_VERSIONS = 10


def refresh_insights(
    db: Database[Document], embeddings: EmbeddingCache | None = None, now: datetime | None = None
) -> Rollup:
    """Recompute the snapshot (one scan) and model coverage. Call after imports or
    training; on the FerretDB dev server it costs ~30-100 µs per interaction. Refused
    (``Unavailable``) while a backup pauses writes."""
    ensure_writable(db, "insights refresh")
    rollup = refresh_snapshot(db, now)
    update_coverage(db, rollup, embeddings or EmbeddingCache(db))
    return rollup


def update_coverage(db: Database[Document], rollup: Rollup, cache: EmbeddingCache) -> list[str]:
    """Coverage of the active version on this snapshot, and of recent versions that have
    none yet (computed once, so the model history gets a coverage point per version)."""
    store = SnapshotStore(db)
    active = cache.repo.active_version()
    done = []
    for doc in cache.repo.list(limit=COVERAGE_VERSIONS):
        version = str(doc["version"])
        if doc.get("has_embeddings") is False:
            continue
        if version != active and store.coverage(version) is not None:
            continue
        try:
            loaded = cache.get(version) if version == active else cache.load(version)
        except FastInsightError as exc:  # a version without embeddings (e.g. popularity)
            log.info("insights: no coverage for %s: %s", version, exc.message)
            continue
        store.save_coverage(version, compute_coverage(rollup, loaded))
        done.append(version)
    return done


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 5) if den else None


def _trend(count: int, previous: int) -> tuple[float | None, Trend]:
    if previous == 0:
        return None, ("new" if count else "steady")
    change = (count - previous) / previous
    if change >= TREND_THRESHOLD:
        return round(change, 5), "rising"
    if change <= -TREND_THRESHOLD:
        return round(change, 5), "falling"
    return round(change, 5), "steady"


class InsightsService:
    def __init__(self, db: Database[Document], check_seconds: float = 1.0) -> None:
        self.db = db
        self.reader = SnapshotReader(db, check_seconds)
        self.embeddings = EmbeddingCache(db)
        self.models = ModelVersionRepository(db)
        self.task: BackgroundTask[Rollup] = BackgroundTask("insights refresh")

    # ---- refresh ------------------------------------------------------------------------
    def refresh(self, wait: bool = True) -> RefreshOut:
        rollup = self.task.run(self._refresh, wait)
        if rollup is None:
            return RefreshOut(status="started")
        return RefreshOut(status="done", snapshot_id=rollup.snapshot_id,
                          computed_at=rollup.computed_at, duration_seconds=rollup.duration_seconds,
                          interactions=rollup.total_events)

    def _refresh(self) -> Rollup:
        rollup = refresh_insights(self.db, self.embeddings)
        self.reader.put(rollup)
        return rollup

    def status(self) -> TaskStatus:
        try:
            current: Snapshot | None = self._snapshot(self.reader.get())
        except FastInsightError:
            current = None
        return TaskStatus(running=self.task.running, started_at=self.task.started_at,
                          finished_at=self.task.finished_at, last_error=self.task.last_error,
                          current=current)

    # ---- helpers ------------------------------------------------------------------------
    def rollup(self) -> Rollup:
        return self.reader.get()

    def rollup_or_refresh(self) -> Rollup:
        """The snapshot, computing the first one inline (audiences and segments need it)."""
        try:
            return self.reader.get()
        except NotFoundError:
            if self.task.running:
                raise Unavailable("insights are being computed; retry shortly", retry_after=30) from None
            log.info("no insights snapshot yet: computing one now")
            self.refresh(wait=True)
            return self.reader.get()

    @staticmethod
    def _snapshot(r: Rollup) -> Snapshot:
        age = (datetime.now(UTC) - r.computed_at).total_seconds()
        return Snapshot(computed_at=r.computed_at, snapshot_id=r.snapshot_id,
                        age_seconds=round(max(age, 0.0), 3))

    @staticmethod
    def _window(r: Rollup, days: int, end: date | None, shift: int = 0) -> tuple[int, int, Window]:
        """Day-index range [lo, hi) of ``days`` days ending at ``end`` (default: the
        snapshot day), moved back by ``shift`` windows."""
        hi = (r.day_index(end) if end else r.today) + 1 - shift * days
        lo = hi - days
        window = Window(start=r.day(lo), end=r.day(hi - 1), days=days)
        return lo, hi, window

    def _type_code(self, r: Rollup, kind: str | None) -> int | None:
        if kind is None:
            return None
        if kind not in r.types:
            return -1  # a type nobody used yet: everything counts zero
        return r.types.index(kind)

    def _item_counts(self, r: Rollup, lo: int, hi: int, kind: int | None) -> np.ndarray:
        window = r.day_slice(lo, hi)
        items, counts = r.cube_item[window], r.cube_count[window]
        if kind is not None:
            mask = r.cube_type[window] == kind
            items, counts = items[mask], counts[mask]
        return np.bincount(items, weights=counts, minlength=r.n_items).astype(np.int64)

    @staticmethod
    def _category_counts(r: Rollup, item_counts: np.ndarray) -> np.ndarray:
        per_slot = np.repeat(item_counts, np.diff(r.cat_indptr))
        return np.bincount(r.cat_indices, weights=per_slot, minlength=len(r.categories)).astype(np.int64)

    @staticmethod
    def _entries(
        ids: Sequence[str], titles: Sequence[str] | None, cur: np.ndarray, prev: np.ndarray,
        total: int, k: int,
    ) -> list[TrendEntry]:
        # ties are broken by id, so the order never depends on storage order
        floor = max(int(np.partition(cur, -k)[-k]), 1) if cur.size > k else 1
        candidates = np.flatnonzero(cur >= floor).tolist()
        candidates.sort(key=lambda n: (-int(cur[n]), ids[n]))
        out = []
        for n in candidates[:k]:
            change, trend = _trend(int(cur[n]), int(prev[n]))
            out.append(TrendEntry(id=ids[n], title=titles[n] if titles is not None else None,
                                  count=int(cur[n]), previous=int(prev[n]), change=change,
                                  trend=trend, share=round(int(cur[n]) / max(total, 1), 5)))
        return out

    # ---- endpoints ----------------------------------------------------------------------
    def overview(self) -> OverviewOut:
        r = self.rollup()
        lo, hi, _ = self._window(r, 7, None)
        cur = self._item_counts(r, lo, hi, None)
        prev = self._item_counts(r, lo - 7, lo, None)
        by_type = r.daily_by_type.sum(axis=0)
        active = {f"{n}d": int((r.user_last >= r.today - n + 1).sum()) for n in (1, 7, 30)}
        last = int(np.flatnonzero(r.daily_by_type.sum(axis=1))[-1]) if r.total_events else r.today
        return OverviewOut(
            **self._snapshot(r).model_dump(), interactions=r.total_events, users=r.n_users,
            items=int(r.in_catalogue.sum()),
            items_with_interactions=int((r.item_totals > 0).sum()),
            first_day=r.first_day, last_day=r.day(last), active_users=active,
            interactions_7d=int(cur.sum()), interactions_previous_7d=int(prev.sum()),
            by_type={t: int(by_type[n]) for n, t in enumerate(r.types)},
            top_items_7d=self._entries(r.item_ids, r.item_titles, cur, prev, int(cur.sum()), 5),
        )

    def activity(
        self, granularity: Literal["day", "week"], days: int, end: date | None
    ) -> ActivityOut:
        """Buckets over the window; weekly buckets are whole ISO weeks (the window is
        widened back to a Monday), so their distinct-user counts are exact."""
        r = self.rollup()
        lo, hi, window = self._window(r, days, end)
        if granularity == "week":
            lo -= (lo + r.week_offset) % 7
            window = Window(start=r.day(lo), end=window.end, days=hi - lo)
        valid = np.arange(max(lo, 0), max(min(hi, r.n_days), 0))
        first_users = np.bincount(r.user_first[r.user_first < r.n_days], minlength=r.n_days)
        first_items = np.bincount(r.item_first[r.item_first >= 0], minlength=r.n_days)
        buckets: list[ActivityBucket] = []
        if granularity == "day":
            for d in range(lo, hi):
                inside = 0 <= d < r.n_days
                row = r.daily_by_type[d] if inside else np.zeros(len(r.types), np.int64)
                buckets.append(ActivityBucket(
                    start=r.day(d), total=int(row.sum()),
                    by_type={t: int(row[n]) for n, t in enumerate(r.types)},
                    active_users=int(r.dau[d]) if inside else 0,
                    new_users=int(first_users[d]) if inside else 0,
                    new_items=int(first_items[d]) if inside else 0,
                ))
        else:
            weeks = (valid + r.week_offset) // 7
            for w in range((lo + r.week_offset) // 7, (hi - 1 + r.week_offset) // 7 + 1):
                sel = valid[weeks == w]
                row = r.daily_by_type[sel].sum(axis=0)
                buckets.append(ActivityBucket(
                    start=r.week_start(w), total=int(row.sum()),
                    by_type={t: int(row[n]) for n, t in enumerate(r.types)},
                    active_users=int(r.wau[w]) if 0 <= w < r.wau.size else 0,
                    new_users=int(first_users[sel].sum()), new_items=int(first_items[sel].sum()),
                ))
        return ActivityOut(**self._snapshot(r).model_dump(), granularity=granularity,
                           window=window, types=list(r.types), buckets=buckets)

    def top_items(self, days: int, k: int, kind: str | None, end: date | None) -> TopOut:
        r = self.rollup()
        code = self._type_code(r, kind)
        lo, hi, window = self._window(r, days, end)
        plo, phi, previous = self._window(r, days, end, shift=1)
        cur, prev = self._item_counts(r, lo, hi, code), self._item_counts(r, plo, phi, code)
        total = int(cur.sum())
        return TopOut(**self._snapshot(r).model_dump(), window=window, previous_window=previous,
                      type=kind, total=total,
                      entries=self._entries(r.item_ids, r.item_titles, cur, prev, total, k))

    def top_categories(self, days: int, k: int, kind: str | None, end: date | None) -> TopOut:
        r = self.rollup()
        code = self._type_code(r, kind)
        lo, hi, window = self._window(r, days, end)
        plo, phi, previous = self._window(r, days, end, shift=1)
        items_now = self._item_counts(r, lo, hi, code)
        cur = self._category_counts(r, items_now)
        prev = self._category_counts(r, self._item_counts(r, plo, phi, code))
        total = int(items_now.sum())
        return TopOut(**self._snapshot(r).model_dump(), window=window, previous_window=previous,
                      type=kind, total=total,
                      entries=self._entries(r.categories, None, cur, prev, total, k))

    @staticmethod
    def _steps(counts: Sequence[int], steps: Sequence[str]) -> list[FunnelStep]:
        out = []
        for n, (kind, count) in enumerate(zip(steps, counts, strict=True)):
            out.append(FunnelStep(
                type=kind, count=int(count),
                rate_from_previous=_rate(int(count), int(counts[n - 1])) if n else None,
                rate_from_first=_rate(int(count), int(counts[0])) if n else None,
            ))
        return out

    def _funnel_counts(self, r: Rollup, lo: int, hi: int, steps: Sequence[str]) -> np.ndarray:
        """(steps x items) event counts in the window."""
        rows = [self._item_counts(r, lo, hi, self._type_code(r, s)) for s in steps]
        return np.vstack(rows) if rows else np.zeros((0, r.n_items), np.int64)

    def funnel(
        self, days: int, category: str | None, steps: Sequence[str], end: date | None
    ) -> FunnelOut:
        r = self.rollup()
        lo, hi, window = self._window(r, days, end)
        counts = self._funnel_counts(r, lo, hi, steps)
        if category is not None:
            cat = r.category_index.get(category)
            if cat is None:
                raise ValidationFailed.field("category", f"no item has category {category!r}")
            totals = counts[:, r.items_in_category(cat)].sum(axis=1)
        else:
            totals = counts.sum(axis=1)
        return FunnelOut(**self._snapshot(r).model_dump(), window=window, category=category,
                         steps=self._steps(totals.tolist(), steps))

    def funnel_by_category(
        self, days: int, steps: Sequence[str], end: date | None
    ) -> CategoryFunnelsOut:
        r = self.rollup()
        lo, hi, window = self._window(r, days, end)
        counts = self._funnel_counts(r, lo, hi, steps)
        per_cat = np.vstack([self._category_counts(r, row) for row in counts])
        rows = [CategoryFunnel(category=r.categories[c], steps=self._steps(per_cat[:, c].tolist(), steps))
                for c in np.argsort(-per_cat[0], kind="stable").tolist()]
        return CategoryFunnelsOut(**self._snapshot(r).model_dump(), window=window, categories=rows)

    def catalogue(self, days: int, sample: int = 20) -> CatalogueOut:
        r = self.rollup()
        lo, hi, window = self._window(r, days, None)
        totals = r.item_totals.astype(np.int64)
        catalogue = r.in_catalogue
        never = np.flatnonzero(catalogue & (totals == 0))
        recent = self._item_counts(r, lo, hi, None)
        counts = np.sort(totals[catalogue])[::-1]
        n = counts.size
        all_events = max(int(totals.sum()), 1)
        top1 = max(1, int(np.ceil(n * 0.01))) if n else 0
        top10 = max(1, int(np.ceil(n * 0.10))) if n else 0
        if n and counts.sum() > 0:
            asc = counts[::-1].astype(np.float64)
            gini = float((2 * np.arange(1, n + 1) - n - 1) @ asc / (n * asc.sum()))
        else:
            gini = 0.0
        return CatalogueOut(
            **self._snapshot(r).model_dump(), items=int(catalogue.sum()),
            never_interacted=int(never.size),
            never_interacted_share=round(never.size / max(int(catalogue.sum()), 1), 5),
            never_interacted_sample=[r.item_ids[i] for i in never[:sample].tolist()],
            cold_in_window=int((catalogue & (recent == 0)).sum()), window=window,
            unknown_items=int((~catalogue & (totals > 0)).sum()), top_1pct_items=top1,
            top_1pct_share=round(int(counts[:top1].sum()) / all_events, 5),
            top_10pct_share=round(int(counts[:top10].sum()) / all_events, 5),
            gini=round(gini, 5),
        )

    def model_health(self, limit: int = 50) -> ModelsHealthOut:
        active = self.models.active_version()
        store = SnapshotStore(self.db)
        versions = []
        for doc in self.models.list(limit=limit):
            coverage = store.coverage(str(doc["version"]))
            snap = doc.get("snapshot", {})
            versions.append(ModelHealth(
                version=doc["version"], algorithm=doc.get("algorithm", "?"),
                status=doc.get("status", "ready"), active=doc["version"] == active,
                created_at=doc["created_at"],
                metrics={k: float(v) for k, v in dict(doc.get("metrics", {})).items()},
                trained_on={k: int(snap[k]) for k in ("interactions", "users", "items") if k in snap},
                coverage=Coverage.model_validate(coverage) if coverage else None,
            ))
        return ModelsHealthOut(active_version=active, versions=versions)


def parse_steps(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return DEFAULT_FUNNEL
    steps = tuple(s.strip() for s in raw.split(",") if s.strip())
    if not 1 <= len(steps) <= 10:
        raise ValidationFailed.field("steps", "give 1 to 10 comma-separated interaction types")
    return steps


def default_end(value: date | None) -> date | None:
    if value is not None and value > datetime.now(UTC).date() + timedelta(days=1):
        raise ValidationFailed.field("end", "must not be in the future")
    return value
