"""Attribution: which served list (impression) an interaction is credited to.

Two rules, and every credit says which one applied:

- **by id**: the interaction names a ``recommendation_id``. It is credited to that list
  if the item was in it (and among the displayed items, where the client reported
  them), the user is the list's user, and the interaction happened at most the
  attribution window after the list was served (and not more than ``CLOCK_SKEW``
  before it: client clocks drift). Otherwise it is *unmatched* and credited nowhere:
  an explicit id is never re-guessed.
- **fallback**: an interaction without an id is credited to the user's most recent
  list that held the item, served at most the window before it (last touch).

Only positive interactions (types with a positive weight) are credited; dislikes are
not clicks. The join is computed from the stored impressions and interactions when a
report is asked for (see ``services.experiments.report``), so a late impression write
or a late interaction is never lost to an earlier pass.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.impressions import ImpressionRepository

CLOCK_SKEW = 300.0  # seconds an id-carrying interaction may be stamped before its list
Rule = Literal["id", "fallback"]


@dataclass(frozen=True, slots=True)
class Shown:
    """An impression as the join needs it (``ts`` in epoch seconds)."""

    rid: str
    user_id: str | None
    items: tuple[str, ...]
    offset: int
    ts: float
    experiment_id: str | None
    variant: str | None
    model_version: str
    displayed: frozenset[str] | None = None  # None: the client reported nothing

    def position(self, item_id: str) -> int | None:
        """1-based position of a shown item, or None if it was not shown."""
        if self.displayed is not None and item_id not in self.displayed:
            return None
        try:
            return self.offset + self.items.index(item_id) + 1
        except ValueError:
            return None

    @property
    def exposed(self) -> bool:
        return self.displayed is None or bool(self.displayed)


@dataclass(frozen=True, slots=True)
class Event:
    key: str
    user_id: str
    item_id: str
    type: str
    value: float | None
    ts: float
    recommendation_id: str | None


@dataclass(frozen=True, slots=True)
class Credit:
    event: Event
    impression: Shown
    position: int
    rule: Rule


@dataclass
class JoinResult:
    credits: list[Credit] = field(default_factory=list)
    unmatched: list[Event] = field(default_factory=list)


def shown_from(doc: Document, displays: dict[str, frozenset[str]]) -> Shown:
    rid = str(doc["_id"])
    return Shown(rid=rid, user_id=doc.get("user_id"), items=tuple(doc.get("items") or ()),
                 offset=int(doc.get("offset") or 0), ts=doc["ts"].timestamp(),
                 experiment_id=doc.get("experiment_id"), variant=doc.get("variant"),
                 model_version=str(doc.get("model_version") or ""), displayed=displays.get(rid))


def event_from(doc: Document) -> Event:
    value = doc.get("value")
    return Event(key=str(doc["_id"]), user_id=str(doc["user_id"]), item_id=str(doc["item_id"]),
                 type=str(doc["type"]), value=float(value) if value is not None else None,
                 ts=doc["timestamp"].timestamp(), recommendation_id=doc.get("recommendation_id"))


class Attributor:
    """Credits events to impressions; feed impressions oldest first."""

    def __init__(self, window: float, events: Sequence[Event]) -> None:
        self.window = window
        self.events = events
        self._users = {e.user_id for e in events}
        self._named = {e.recommendation_id for e in events if e.recommendation_id}
        self._by_rid: dict[str, Shown] = {}
        self._by_user: dict[str, tuple[list[float], list[Shown]]] = {}

    def wants(self, impression: Shown) -> bool:
        return impression.rid in self._named or impression.user_id in self._users

    def add(self, impression: Shown) -> None:
        """Keep an impression the events may be credited to (call in time order)."""
        if impression.rid in self._named:
            self._by_rid[impression.rid] = impression
        if impression.user_id is not None and impression.user_id in self._users:
            times, shown = self._by_user.setdefault(impression.user_id, ([], []))
            times.append(impression.ts)
            shown.append(impression)

    def run(self) -> JoinResult:
        result = JoinResult()
        for event in self.events:
            credit = self._by_id(event) if event.recommendation_id else self._fallback(event)
            if credit is not None:
                result.credits.append(credit)
            elif event.recommendation_id:
                result.unmatched.append(event)
        return result

    def _by_id(self, event: Event) -> Credit | None:
        shown = self._by_rid.get(event.recommendation_id or "")
        if shown is None or (shown.user_id is not None and shown.user_id != event.user_id):
            return None
        if not shown.ts - CLOCK_SKEW <= event.ts <= shown.ts + self.window:
            return None
        position = shown.position(event.item_id)
        return Credit(event, shown, position, "id") if position is not None else None

    def _fallback(self, event: Event) -> Credit | None:
        found = self._by_user.get(event.user_id)
        if found is None:
            return None
        times, shown = found
        first = bisect_left(times, event.ts - self.window)
        for n in range(bisect_right(times, event.ts) - 1, first - 1, -1):
            position = shown[n].position(event.item_id)
            if position is not None:
                return Credit(event, shown[n], position, "fallback")
        return None


def load_events(repo: ImpressionRepository, start: datetime, end: datetime,
                creditable: frozenset[str]) -> list[Event]:
    """Positive interactions stamped in ``[start - CLOCK_SKEW, end]``, oldest first."""
    events = [event_from(d) for d in repo.events_between(start - timedelta(seconds=CLOCK_SKEW), end)
              if d.get("type") in creditable]
    events.sort(key=lambda e: (e.ts, e.key))
    return events


def load_displays(repo: ImpressionRepository, start: datetime, end: datetime) -> dict[str, frozenset[str]]:
    return {str(d["_id"]): frozenset(d.get("items") or ()) for d in repo.displays_between(start, end)}


def impressions(repo: ImpressionRepository, start: datetime, end: datetime,
                displays: dict[str, frozenset[str]]) -> Iterator[Shown]:
    """Impressions served in ``[start, end]``, oldest first, with their display reports."""
    for doc in repo.between(start, end):
        yield shown_from(doc, displays)


def join(attributor: Attributor, stream: Iterable[Shown]) -> Iterator[Shown]:
    """Pass every impression through, keeping those the events may be credited to."""
    for shown in stream:
        if attributor.wants(shown):
            attributor.add(shown)
        yield shown
