"""Scopes, principals and key material. A key is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_TENANT = "default"
TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"


class Scope(StrEnum):
    """What a key may do, narrowest first. ``tracking`` is for pages in a browser: send
    events and read recommendations, nothing else. ``operator`` manages tenants only."""

    TRACKING = "tracking"
    READ_WRITE = "api"
    ADMIN = "admin"
    OPERATOR = "operator"


TENANT_SCOPES = (Scope.TRACKING, Scope.READ_WRITE, Scope.ADMIN)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a tenant and a scope (the operator has no tenant)."""

    tenant: str
    scope: Scope


OPERATOR = Principal("", Scope.OPERATOR)


def new_key(tenant_id: str) -> str:
    """A fresh key naming its tenant: ``fi_<tenant>_<43 random characters>``."""
    return f"fi_{tenant_id}_{secrets.token_urlsafe(32)}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str:
    """A public handle of a key (to list and revoke it): a prefix of its digest."""
    return digest(key)[:16]
