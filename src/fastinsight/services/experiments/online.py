"""Online metrics for insights: click-through of served lists per model version per day.

Same attribution as the experiment reports (by id, else last touch within the window),
over every impression of the last ``days`` days, computed on request and cached for
``report_cache_seconds``. A day is the UTC day the list was served.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.schemas.experiments import OnlineDay, OnlineOut
from fastinsight.services.experiments.attribution import (
    Attributor,
    impressions,
    join,
    load_displays,
    load_events,
)
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.impressions import ImpressionRepository


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class OnlineMetrics:
    def __init__(self, db: Database[Document], settings: Settings) -> None:
        self.repo = ImpressionRepository(db)
        self.settings = settings
        self.before: list[Callable[[], object]] = []  # e.g. write this process's queued impressions
        self._cache: dict[int, tuple[float, OnlineOut]] = {}
        self._lock = threading.Lock()

    def ctr_by_version(self, days: int) -> OnlineOut:
        with self._lock:
            cached = self._cache.get(days)
            if cached is not None and time.monotonic() - cached[0] < self.settings.report_cache_seconds:
                return cached[1]
            for step in self.before:
                step()
            out = self._compute(days, datetime.now(UTC))
            self._cache[days] = (time.monotonic(), out)
            return out

    def _compute(self, days: int, now: datetime) -> OnlineOut:
        start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        window = self.settings.attribution_window_seconds
        weights = self.settings.interaction_weights
        events = load_events(self.repo, start, now, frozenset(t for t, w in weights.items() if w > 0))
        attributor = Attributor(window, events)
        exposures: Counter[tuple[str, str]] = Counter()
        displays = load_displays(self.repo, start, now)
        for shown in join(attributor, impressions(self.repo, start, now, displays)):
            if shown.exposed:
                exposures[(_day(shown.ts), shown.model_version)] += 1
        clicked: dict[tuple[str, str], set[str]] = {}
        conversions: Counter[tuple[str, str]] = Counter()
        conversion_types = set(self.settings.conversion_types)
        for credit in attributor.run().credits:
            shown = credit.impression
            if not shown.exposed or shown.ts < start.timestamp():
                continue
            key = (_day(shown.ts), shown.model_version)
            clicked.setdefault(key, set()).add(shown.rid)
            if credit.event.type in conversion_types:
                conversions[key] += 1
        rows = [OnlineDay(day=day, model_version=version, exposures=n,
                          clicked_exposures=len(clicked.get((day, version), ())),
                          ctr=len(clicked.get((day, version), ())) / n if n else None,
                          conversions=conversions[(day, version)])
                for (day, version), n in sorted(exposures.items())]
        return OnlineOut(computed_at=now, days=days, attribution_window_seconds=window, rows=rows)
