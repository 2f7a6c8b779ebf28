"""What the sync and async clients share: settings from arguments or the environment,
the headers of a call, and when an attempt is tried again."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from fastinsight_client._call import Call
from fastinsight_client._retry import RETRY_STATUSES, RetryPolicy, parse_retry_after
from fastinsight_client._version import __version__
from fastinsight_client.errors import ConfigurationError, error_from

log = logging.getLogger("fastinsight_client")
T = TypeVar("T")

ENV_URL = "FASTINSIGHT_URL"
ENV_API_KEY = "FASTINSIGHT_API_KEY"
ENV_ADMIN_KEY = "FASTINSIGHT_ADMIN_KEY"
DEFAULT_TIMEOUT = 10.0
# No request was sent: trying again cannot store anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    api_key: str | None
    admin_key: str | None
    timeout: float
    retry: RetryPolicy

    @classmethod
    def resolve(cls, url: str | None, api_key: str | None, admin_key: str | None,
                timeout: float, retry: RetryPolicy | None) -> ClientSettings:
        """Arguments first, then ``FASTINSIGHT_URL``, ``FASTINSIGHT_API_KEY`` and
        ``FASTINSIGHT_ADMIN_KEY``."""
        base = url or os.environ.get(ENV_URL, "")
        if not base:
            raise ConfigurationError(f"no server URL: pass url=... or set {ENV_URL}")
        if not base.startswith(("http://", "https://")):
            raise ConfigurationError(f"the server URL must start with http:// or https://, not {base!r}")
        api_key = api_key or os.environ.get(ENV_API_KEY) or None
        admin_key = admin_key or os.environ.get(ENV_ADMIN_KEY) or None
        if not (api_key or admin_key):
            raise ConfigurationError(f"no key: pass api_key=... or set {ENV_API_KEY}")
        return cls(base.rstrip("/"), api_key, admin_key, timeout, retry or RetryPolicy())

    def key_for(self, call: Call[Any]) -> str:
        """The admin key for admin routes only; the API key everywhere else."""
        if call.route.admin:
            if not self.admin_key:
                raise ConfigurationError(
                    f"{call.route.method} {call.route.path} needs the admin key: pass admin_key=... "
                    f"or set {ENV_ADMIN_KEY} (server side only, never in a browser)")
            return self.admin_key
        return self.api_key or self.admin_key or ""

    def request(self, call: Call[Any]) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request`` for one attempt of ``call``."""
        headers = {"X-API-Key": self.key_for(call), "User-Agent": f"fastinsight-client-python/{__version__}"}
        if call.content_type:
            headers["Content-Type"] = call.content_type
        return {"method": call.route.method, "url": self.base_url + call.url, "params": call.params,
                "content": call.content, "headers": headers,
                "timeout": call.timeout if call.timeout is not None else self.timeout}


def answer_delay(settings: ClientSettings, call: Call[Any], response: httpx.Response,
                 attempt: int) -> float | None:
    """Seconds to wait before sending ``call`` again after this answer, or None."""
    if response.status_code not in RETRY_STATUSES or not call.route.retry_unavailable:
        return None
    delay = settings.retry.delay(attempt, parse_retry_after(response.headers.get("retry-after")))
    if delay is not None:
        log.warning("%s %s answered %d; retry %d in %.1fs", call.route.method, call.url,
                    response.status_code, attempt + 1, delay)
    return delay


def failure_delay(settings: ClientSettings, call: Call[Any], exc: httpx.TransportError,
                  attempt: int) -> float | None:
    """Seconds to wait before sending again after no answer, or None. A request that may
    have reached the server is sent again only when that cannot store it twice."""
    if not isinstance(exc, _NOT_SENT) and not call.route.idempotent:
        return None
    delay = settings.retry.delay(attempt, None)
    if delay is not None:
        log.warning("%s %s failed (%s); retry %d in %.1fs", call.route.method, call.url,
                    exc.__class__.__name__, attempt + 1, delay)
    return delay


def result(call: Call[T], response: httpx.Response) -> T:
    if response.is_success:
        return call.route.answer.read(response)
    raise error_from(response)
