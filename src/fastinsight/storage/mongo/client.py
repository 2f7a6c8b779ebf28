"""Client factory. Clients are created by the app's lifespan or the CLI, never at import."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from fastinsight.config import Settings
from fastinsight.errors import Unavailable

log = logging.getLogger(__name__)

Document = dict[str, Any]


def connect(settings: Settings) -> MongoClient[Document]:
    """A client with short timeouts, so an outage becomes a quick 503, not a hung request."""
    timeout = settings.mongodb_timeout_ms
    return MongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=max(timeout * 30, 60_000),
        tz_aware=True,
        appname="fastinsight",
    )


def get_database(client: MongoClient[Document], settings: Settings) -> Database[Document]:
    return client[settings.mongodb_db]


def ping(client: MongoClient[Document]) -> None:
    """Raise :class:`Unavailable` unless the server answers."""
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        raise Unavailable(f"database unreachable: {exc.__class__.__name__}") from exc
