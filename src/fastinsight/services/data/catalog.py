"""Users, items and interaction reads: thin rules on top of the repositories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pymongo.database import Database

from fastinsight.errors import NotFoundError
from fastinsight.schemas.core import (
    DeletedOut,
    InteractionOut,
    ItemIn,
    ItemOut,
    ItemPatch,
    Page,
    UserIn,
    UserOut,
)
from fastinsight.services.tenancy.quotas import Admit, no_quota
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.items import ItemRepository
from fastinsight.storage.mongo.users import UserRepository

T = TypeVar("T")


class CatalogService:
    def __init__(self, db: Database[Document], admit: Admit = no_quota) -> None:
        self.admit = admit  # the tenant's row quotas (services.tenancy.quotas)
        self.users = UserRepository(db)
        self.items = ItemRepository(db)
        self.interactions = InteractionRepository(db)
        self.item_listeners: list[Callable[[str], None]] = []
        self.user_erased_listeners: list[Callable[[str], None]] = []

    def _item_changed(self, item_id: str) -> None:
        for listener in self.item_listeners:
            listener(item_id)

    # users
    def upsert_user(self, user: UserIn) -> tuple[UserOut, bool]:
        self.admit("users", [user.user_id])
        doc, created = self.users.upsert(user.user_id, user.attributes)
        return UserOut.model_validate(doc), created

    def get_user(self, user_id: str) -> UserOut:
        doc = self.users.get(user_id)
        if doc is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        return UserOut.model_validate(doc)

    def patch_user(self, user_id: str, attributes: dict[str, object]) -> UserOut:
        doc = self.users.patch_attributes(user_id, dict(attributes))
        if doc is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        return UserOut.model_validate(doc)

    def delete_user(self, user_id: str) -> DeletedOut:
        deleted, removed = self.users.delete(user_id)
        if not deleted and not removed:
            raise NotFoundError(f"user {user_id!r} does not exist")
        for listener in self.user_erased_listeners:
            listener(user_id)
        return DeletedOut(deleted=deleted, interactions_deleted=removed)

    def list_users(self, limit: int, cursor: str | None) -> Page[UserOut]:
        docs = self.users.list_page(limit + 1, cursor)
        return _page([UserOut.model_validate(d) for d in docs], limit, lambda u: u.user_id)

    # items
    def upsert_item(self, item: ItemIn) -> tuple[ItemOut, bool]:
        self.admit("items", [item.item_id])
        doc, created = self.items.upsert(item.model_dump())
        self._item_changed(item.item_id)
        return ItemOut.model_validate(doc), created

    def get_item(self, item_id: str) -> ItemOut:
        doc = self.items.get(item_id)
        if doc is None:
            raise NotFoundError(f"item {item_id!r} does not exist")
        return ItemOut.model_validate(doc)

    def patch_item(self, item_id: str, patch: ItemPatch) -> ItemOut:
        doc = self.items.patch(item_id, patch.changes())
        if doc is None:
            raise NotFoundError(f"item {item_id!r} does not exist")
        self._item_changed(item_id)
        return ItemOut.model_validate(doc)

    def delete_item(self, item_id: str) -> DeletedOut:
        deleted, removed = self.items.delete(item_id)
        if not deleted:
            raise NotFoundError(f"item {item_id!r} does not exist")
        self._item_changed(item_id)
        return DeletedOut(deleted=True, interactions_deleted=removed)

    def list_items(self, limit: int, cursor: str | None, category: str | None) -> Page[ItemOut]:
        docs = self.items.list_page(limit + 1, cursor, category)
        return _page([ItemOut.model_validate(d) for d in docs], limit, lambda i: i.item_id)

    # interactions
    def user_interactions(
        self, user_id: str, limit: int, before: datetime | None
    ) -> list[InteractionOut]:
        if self.users.get(user_id) is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        docs = self.interactions.for_user(user_id, limit, before)
        return [InteractionOut.model_validate(d) for d in docs]


def _page(rows: list[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    if len(rows) > limit:
        return Page[T](items=rows[:limit], next_cursor=key(rows[limit - 1]))
    return Page[T](items=rows, next_cursor=None)

