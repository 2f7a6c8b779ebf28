"""What one API operation is (``Route``) and one request of it (``Call``).

The operations in ``fastinsight_client.ops`` build calls; the sync and async clients only
send them, so each operation is written once. ``Route`` also carries what
``tests/clients/test_drift.py`` checks against the server's OpenAPI document: method,
path, query parameter names, request schema and answer schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
A = TypeVar("A", bound=BaseModel)
B = TypeVar("B", bound=BaseModel)
QueryValue = str | int | float | bool | date | Sequence[str] | None


@dataclass(frozen=True)
class Answer(Generic[T]):
    """How a successful answer is read, and the schema it is (``describes``)."""

    describes: str
    read: Callable[[httpx.Response], T]


def model(cls: type[M]) -> Answer[M]:
    return Answer(cls.__name__, lambda response: cls.model_validate_json(response.content))


def list_of(cls: type[M]) -> Answer[list[M]]:
    adapter = TypeAdapter(list[cls])  # type: ignore[valid-type]
    return Answer(f"list[{cls.__name__}]", lambda response: adapter.validate_json(response.content))


def done_or_started(done: type[A], started: type[B]) -> Answer[A | B]:
    """200 with ``done`` when the work finished in the request, 202 with ``started`` when
    it goes on in the background."""

    def read(response: httpx.Response) -> A | B:
        cls: type[A] | type[B] = started if response.status_code == 202 else done
        return cls.model_validate_json(response.content)

    return Answer(f"{done.__name__} | {started.__name__}", read)


NO_CONTENT: Answer[None] = Answer("None", lambda response: None)


@dataclass(frozen=True)
class Route(Generic[T]):
    method: str
    path: str
    answer: Answer[T]
    query: tuple[str, ...] = ()
    body: str | None = None
    # Safe to send again when the answer was lost (the server dedupes or overwrites).
    idempotent: bool = True
    # Retried on 429/503 (not for a readiness probe, whose 503 is the answer).
    retry_unavailable: bool = True

    @property
    def admin(self) -> bool:
        return self.path.startswith("/v1/admin/")

    def call(
        self, path: Mapping[str, str] | None = None, query: Mapping[str, QueryValue] | None = None,
        json_body: Any = None, content: bytes | None = None, content_type: str | None = None,
        timeout: float | None = None,
    ) -> Call[T]:
        url = self.path.format_map({k: quote(v, safe="") for k, v in (path or {}).items()})
        unknown = set(query or ()) - set(self.query)
        if unknown:
            raise TypeError(f"{self.method} {self.path} takes no query parameter {sorted(unknown)}")
        if json_body is not None:
            content, content_type = encode_json(json_body), "application/json"
        return Call(self, url, encode_query(query or {}), content, content_type, timeout)


@dataclass(frozen=True)
class Call(Generic[T]):
    route: Route[T]
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    content_type: str | None = None
    timeout: float | None = None


def encode_query(query: Mapping[str, QueryValue]) -> list[tuple[str, str]]:
    """Repeated keys for lists (the server reads them so), lower-case booleans."""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, date):
            pairs.append((key, value.isoformat()))
        elif isinstance(value, str | int | float):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, str(v)) for v in value)
    return pairs


def to_jsonable(value: Any) -> Any:
    """A model as the JSON it sends: only the fields that were set, so the server applies
    its own defaults and a patch changes only what it names."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, Mapping):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def encode_json(value: Any) -> bytes:
    return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"),
                      default=_default).encode()


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
