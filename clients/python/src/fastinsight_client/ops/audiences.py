"""Audiences (who to target with an item or a category) and user segments.

The routes also answer CSV (``format=csv``); this client reads JSON only.
"""

from __future__ import annotations

from fastinsight_client._call import Call, Route, done_or_started, model
from fastinsight_client.models import AudienceOut, CampaignsOut, RefreshOut, SegmentsOut, SegmentUsersOut

ITEM_AUDIENCE = Route("GET", "/v1/items/{item_id}/audience", model(AudienceOut), query=("k", "exclude_seen"))
CATEGORY_AUDIENCE = Route("GET", "/v1/categories/{name}/audience", model(AudienceOut),
                          query=("k", "exclude_seen"))
SEGMENTS = Route("GET", "/v1/segments", model(SegmentsOut), query=("version",))
CAMPAIGNS = Route("GET", "/v1/segments/campaigns", model(CampaignsOut), query=("per_segment", "version"))
SEGMENT_USERS = Route("GET", "/v1/segments/{segment_id}/users", model(SegmentUsersOut),
                      query=("offset", "limit", "version"))
REBUILD_SEGMENTS = Route("POST", "/v1/admin/segments/rebuild", done_or_started(SegmentsOut, RefreshOut),
                         query=("k", "wait"))


def item_audience(item_id: str, k: int | None = None, *,
                  exclude_seen: bool | None = None) -> Call[AudienceOut]:
    """The ``k`` users most likely to want the item (by default not those who had it)."""
    return ITEM_AUDIENCE.call({"item_id": item_id}, {"k": k, "exclude_seen": exclude_seen})


def category_audience(name: str, k: int | None = None, *,
                      exclude_seen: bool | None = None) -> Call[AudienceOut]:
    return CATEGORY_AUDIENCE.call({"name": name}, {"k": k, "exclude_seen": exclude_seen})


def segments(version: str | None = None) -> Call[SegmentsOut]:
    """The segments of a model version (default: the active one)."""
    return SEGMENTS.call(query={"version": version})


def campaigns(per_segment: int | None = None, version: str | None = None) -> Call[CampaignsOut]:
    """Items to promote to each segment."""
    return CAMPAIGNS.call(query={"per_segment": per_segment, "version": version})


def segment_users(segment_id: str, offset: int | None = None, limit: int | None = None,
                  version: str | None = None) -> Call[SegmentUsersOut]:
    """One page of a segment's members (or use ``iter_segment_users``)."""
    return SEGMENT_USERS.call({"segment_id": segment_id},
                              {"offset": offset, "limit": limit, "version": version})


def rebuild_segments(k: int | None = None, wait: bool | None = None) -> Call[SegmentsOut | RefreshOut]:
    """Admin: cluster the users again (``wait=False``: in the background, answers 202)."""
    return REBUILD_SEGMENTS.call(query={"k": k, "wait": wait})
