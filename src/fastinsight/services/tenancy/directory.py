"""Who a key belongs to: the process's copy of the tenants and their keys.

The env-var keys (``FASTINSIGHT_API_KEY``, ``_ADMIN_KEY``) belong to the implicit default
tenant, whose database is ``FASTINSIGHT_MONGODB_DB``: a single-tenant deployment keeps
working with no control database at all. ``FASTINSIGHT_OPERATOR_KEY`` is the operator.
Keys created through the operator API live hashed in the control database; this copy is
refreshed every ``tenant_cache_seconds`` (revocations and suspensions reach every
process within that time), and a key it does not know is looked up once (so a new key
works at once everywhere). Unknown keys are remembered briefly, so a client retrying a
wrong key does not cost a database read each time.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from fastinsight.config import Settings
from fastinsight.services.tenancy.keys import (
    DEFAULT_TENANT,
    OPERATOR,
    Principal,
    Scope,
    digest,
)
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.tenants import TenantRepository

log = logging.getLogger(__name__)

_MISSES_KEPT = 10_000
_MISS_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    database: str
    status: str = "active"
    settings: dict[str, Any] = field(default_factory=dict)
    quotas: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Document) -> TenantRecord:
        return cls(id=str(doc["_id"]), database=str(doc["database"]),
                   status=str(doc.get("status", "active")),
                   settings=dict(doc.get("settings") or {}), quotas=dict(doc.get("quotas") or {}),
                   limits=dict(doc.get("limits") or {}))


def _secret(value: SecretStr | None) -> bytes:
    return value.get_secret_value().encode() if value is not None else b""


class TenantDirectory:
    def __init__(self, settings: Settings, repo: TenantRepository) -> None:
        self.settings = settings
        self.repo = repo
        self.default = TenantRecord(DEFAULT_TENANT, settings.mongodb_db)
        self._env = [(_secret(settings.admin_key), Principal(DEFAULT_TENANT, Scope.ADMIN)),
                     (_secret(settings.api_key), Principal(DEFAULT_TENANT, Scope.READ_WRITE)),
                     (_secret(settings.operator_key), OPERATOR)]
        self._keys: dict[str, Principal] = {}
        self._tenants: dict[str, TenantRecord] = {}
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()
        # Reads of the control database are numbered when they start; a copy read
        # earlier never replaces one read later (the poller's refresh can finish after
        # the refresh that follows an operator's change, holding the old quotas).
        self._reads = 0
        self._installed = 0

    # ---- lookups ---------------------------------------------------------------------
    def authenticate(self, key: str) -> Principal | None:
        given = key.encode()
        for secret, principal in self._env:
            if secret and secrets.compare_digest(given, secret):
                return principal
        hashed = digest(key)
        known = self._keys.get(hashed)
        return known if known is not None else self._look_up(hashed)

    def tenant(self, tenant_id: str) -> TenantRecord | None:
        """The tenant (the implicit default one included), None if there is none."""
        record = self._tenants.get(tenant_id)
        if record is None and tenant_id == DEFAULT_TENANT:
            return self.default
        return record

    def tenants(self) -> list[TenantRecord]:
        listed = dict(self._tenants)
        listed.setdefault(DEFAULT_TENANT, self.default)
        return list(listed.values())

    # ---- keeping the copy current ----------------------------------------------------
    def refresh(self) -> None:
        """Reload tenants and live keys (the poller's step; also after local changes)."""
        ticket = self._ticket()
        tenants = {}
        for doc in self.repo.all():
            record = TenantRecord.from_doc(doc)
            tenants[record.id] = record
        keys = {str(d["_id"]): Principal(str(d["tenant"]), Scope(d["scope"]))
                for d in self.repo.all_keys()
                if str(d["tenant"]) in tenants or d["tenant"] == DEFAULT_TENANT}
        with self._lock:
            if ticket < self._installed:
                return  # a read that started later is already installed
            self._installed = ticket
            self._tenants, self._keys = tenants, keys
            self._misses.clear()

    def _ticket(self) -> int:
        with self._lock:
            self._reads += 1
            return self._reads

    def _look_up(self, hashed: str) -> Principal | None:
        now = time.monotonic()
        if self._misses.get(hashed, 0.0) > now:
            return None
        ticket = self._ticket()
        doc = self.repo.key(hashed)
        if doc is None or doc.get("revoked_at") is not None:
            with self._lock:
                if len(self._misses) >= _MISSES_KEPT:
                    self._misses.clear()
                self._misses[hashed] = now + _MISS_SECONDS
            return None
        principal = Principal(str(doc["tenant"]), Scope(doc["scope"]))
        tenant = None if principal.tenant == DEFAULT_TENANT else self.repo.get(principal.tenant)
        if tenant is None and principal.tenant != DEFAULT_TENANT:
            return None
        with self._lock:
            if tenant is not None and ticket > self._installed:
                self._tenants[principal.tenant] = TenantRecord.from_doc(tenant)
            self._keys[hashed] = principal
        return principal
