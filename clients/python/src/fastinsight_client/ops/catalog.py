"""Users and items: upsert, read, patch, delete, list by cursor, import one body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastinsight_client._call import Call, Route, model
from fastinsight_client.models import (
    DeletedOut,
    ImportReport,
    ItemIn,
    ItemOut,
    ItemPatch,
    PageItemOut,
    PageUserOut,
    UserIn,
    UserOut,
    UserPatch,
)

UPSERT_USER = Route("POST", "/v1/users", model(UserOut), body="UserIn")
LIST_USERS = Route("GET", "/v1/users", model(PageUserOut), query=("limit", "cursor"))
GET_USER = Route("GET", "/v1/users/{user_id}", model(UserOut))
PATCH_USER = Route("PATCH", "/v1/users/{user_id}", model(UserOut), body="UserPatch")
DELETE_USER = Route("DELETE", "/v1/users/{user_id}", model(DeletedOut))
IMPORT_USERS = Route("POST", "/v1/users/import", model(ImportReport), query=("first_row",), body="import")

UPSERT_ITEM = Route("POST", "/v1/items", model(ItemOut), body="ItemIn")
LIST_ITEMS = Route("GET", "/v1/items", model(PageItemOut), query=("limit", "cursor", "category"))
GET_ITEM = Route("GET", "/v1/items/{item_id}", model(ItemOut))
PATCH_ITEM = Route("PATCH", "/v1/items/{item_id}", model(ItemOut), body="ItemPatch")
DELETE_ITEM = Route("DELETE", "/v1/items/{item_id}", model(DeletedOut))
IMPORT_ITEMS = Route("POST", "/v1/items/import", model(ImportReport), query=("first_row",), body="import")


def upsert_user(user: UserIn | Mapping[str, Any]) -> Call[UserOut]:
    """Create the user or replace its attributes (201 created, 200 replaced)."""
    return UPSERT_USER.call(json_body=user)


def list_users(limit: int | None = None, cursor: str | None = None) -> Call[PageUserOut]:
    """One page of users; pass the answer's ``next_cursor`` for the next (or use ``iter_users``)."""
    return LIST_USERS.call(query={"limit": limit, "cursor": cursor})


def get_user(user_id: str) -> Call[UserOut]:
    return GET_USER.call({"user_id": user_id})


def patch_user(user_id: str, patch: UserPatch | Mapping[str, Any]) -> Call[UserOut]:
    """Merge attributes: a key set to ``None`` is removed."""
    return PATCH_USER.call({"user_id": user_id}, json_body=patch)


def delete_user(user_id: str) -> Call[DeletedOut]:
    """Erase the user with their interactions and impressions."""
    return DELETE_USER.call({"user_id": user_id})


def upsert_item(item: ItemIn | Mapping[str, Any]) -> Call[ItemOut]:
    """Create the item or replace it (201 created, 200 replaced)."""
    return UPSERT_ITEM.call(json_body=item)


def list_items(limit: int | None = None, cursor: str | None = None,
               category: str | None = None) -> Call[PageItemOut]:
    """One page of items, optionally of one category (or use ``iter_items``)."""
    return LIST_ITEMS.call(query={"limit": limit, "cursor": cursor, "category": category})


def get_item(item_id: str) -> Call[ItemOut]:
    return GET_ITEM.call({"item_id": item_id})


def patch_item(item_id: str, patch: ItemPatch | Mapping[str, Any]) -> Call[ItemOut]:
    """Change only the fields given; ``None`` resets one to its empty value."""
    return PATCH_ITEM.call({"item_id": item_id}, json_body=patch)


def delete_item(item_id: str) -> Call[DeletedOut]:
    return DELETE_ITEM.call({"item_id": item_id})
