"""Interactions (one, a batch, an import body), a user's history, displayed lists.

Events sent through ``track`` and ``track_many`` carry an ``event_id``: the client sets
a new one where it is missing, before the first attempt, so a retry after a lost answer
is recognised by the server as the same event and stored once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fastinsight_client._call import Call, Route, list_of, model
from fastinsight_client.models import (
    DisplayedIn,
    DisplayedOut,
    ImportReport,
    InteractionIn,
    InteractionOut,
)

TRACK = Route("POST", "/v1/interactions", model(ImportReport), body="InteractionIn")
TRACK_MANY = Route("POST", "/v1/interactions/batch", model(ImportReport), body="InteractionBatchIn")
IMPORT_INTERACTIONS = Route("POST", "/v1/interactions/import", model(ImportReport), query=("first_row",),
                            body="import")
USER_INTERACTIONS = Route("GET", "/v1/users/{user_id}/interactions", list_of(InteractionOut),
                          query=("limit", "before"))
DISPLAYED = Route("POST", "/v1/impressions", model(DisplayedOut), body="DisplayedBatchIn")


def new_event_id() -> str:
    return uuid.uuid4().hex


def with_event_id(event: InteractionIn | Mapping[str, Any]) -> Any:
    """The event as JSON with an ``event_id`` (a new one when it has none). A mapping
    is sent as given otherwise, so the server reports a bad row by its fields."""
    row: dict[str, Any] = (event.model_dump(mode="json", exclude_unset=True)
                           if isinstance(event, InteractionIn) else dict(event))
    if not row.get("event_id"):
        row["event_id"] = new_event_id()
    return row


def track(
    user_id: str, item_id: str, type: str, *, value: float | None = None,
    timestamp: datetime | float | None = None, recommendation_id: str | None = None,
    event_id: str | None = None,
) -> Call[ImportReport]:
    """Record one event; it changes the user's next recommendations without retraining.
    Pass the ``recommendation_id`` of the answer that showed the item (attribution)."""
    fields = {"user_id": user_id, "item_id": item_id, "type": type, "value": value,
              "timestamp": timestamp, "recommendation_id": recommendation_id,
              "event_id": event_id or new_event_id()}
    event = InteractionIn.model_validate({k: v for k, v in fields.items() if v is not None})
    return TRACK.call(json_body=event)


def track_many(events: Iterable[InteractionIn | Mapping[str, Any]]) -> Call[ImportReport]:
    """Record up to 10,000 events in one request; invalid rows come back in ``rejected``."""
    return TRACK_MANY.call(json_body={"interactions": [with_event_id(e) for e in events]})


def user_interactions(user_id: str, limit: int | None = None,
                      before: datetime | None = None) -> Call[list[InteractionOut]]:
    """The user's events, newest first; page with ``before`` (the oldest timestamp seen)."""
    return USER_INTERACTIONS.call({"user_id": user_id}, {"limit": limit, "before": before})


def report_displayed(impressions: Iterable[DisplayedIn | Mapping[str, Any]]) -> Call[DisplayedOut]:
    """Which items of each answer were actually shown (the first report of an answer counts)."""
    return DISPLAYED.call(json_body={"impressions": list(impressions)})
