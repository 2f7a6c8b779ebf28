"""MongoDB access: client factory, schema (indexes as data) and repositories."""

from fastinsight.storage.mongo.client import connect, get_database, ping
from fastinsight.storage.mongo.schema import INDEXES, apply_indexes

__all__ = ["INDEXES", "apply_indexes", "connect", "get_database", "ping"]
