"""One exception class per kind of failure.

Every answer of the API outside 2xx carries one body, ``{"error", "message", "details":
[{"field", "message"}], "request_id"}``; :func:`error_from` turns it into the class for
its ``error`` code (or, for a body from something in front of the server, its status).
"""

from __future__ import annotations

import json

import httpx

from fastinsight_client._retry import parse_retry_after
from fastinsight_client.models import FieldError, JobOut


class FastInsightError(Exception):
    """Base class of everything this client raises on purpose."""


class ConfigurationError(FastInsightError, ValueError):
    """The client was not told where the server is, or which key to use."""


class TransportError(FastInsightError):
    """No answer: the connection failed or timed out (after the retries allowed)."""


class APIError(FastInsightError):
    """The server answered with an error. ``details`` names each offending field."""

    status_code: int
    code: str
    message: str
    details: list[FieldError]
    request_id: str | None
    retry_after: float | None

    def __init__(self, status_code: int, code: str, message: str, details: list[FieldError],
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after

    def field_messages(self) -> dict[str, list[str]]:
        """``{field: [message, ...]}`` from ``details``."""
        out: dict[str, list[str]] = {}
        for detail in self.details:
            out.setdefault(detail.field, []).append(detail.message)
        return out


class BadRequestError(APIError):
    """400: well formed but unusable (or a request the HTTP server could not read)."""


class AuthenticationError(APIError):
    """401: missing or unknown key."""


class PermissionDeniedError(APIError):
    """403: the route needs the admin key (or the server answers loopback clients only)."""


class NotFoundError(APIError):
    """404: no such user, item, experiment, job, model version..."""


class ConflictError(APIError):
    """409: the same work is already running, or the change conflicts with the state."""


class ModelRejectedError(ConflictError):
    """409 ``model_rejected``: the model version failed its load or sanity check."""


class PayloadTooLargeError(APIError):
    """413: the body is over the server's limit (use smaller import batches)."""


class UnsupportedMediaTypeError(APIError):
    """415: the body's Content-Type is not one the route reads."""


class ValidationFailedError(APIError):
    """422: invalid input; ``details`` has one entry per field."""


class RateLimitedError(APIError):
    """429: too many requests; retried by the client while its policy allows."""


class UnavailableError(APIError):
    """503: the database is down, writes are paused for a backup, or the work needs what
    is not ready yet; retried by the client while its policy allows."""


class ServerError(APIError):
    """5xx other than 503: a failure inside the server (see its logs by ``request_id``)."""


_BY_CODE: dict[str, type[APIError]] = {
    "bad_request": BadRequestError, "unauthorized": AuthenticationError,
    "forbidden": PermissionDeniedError, "not_found": NotFoundError, "conflict": ConflictError,
    "model_rejected": ModelRejectedError, "payload_too_large": PayloadTooLargeError,
    "unsupported_media_type": UnsupportedMediaTypeError, "validation_failed": ValidationFailedError,
    "too_many_requests": RateLimitedError, "unavailable": UnavailableError,
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 413: PayloadTooLargeError, 415: UnsupportedMediaTypeError,
    422: ValidationFailedError, 429: RateLimitedError, 503: UnavailableError,
}


def error_class(status_code: int, code: str) -> type[APIError]:
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return ServerError if status_code >= 500 else APIError


def error_from(response: httpx.Response) -> APIError:
    """The exception for an error answer, with the body's details when it has the API's shape."""
    status = response.status_code
    code, message, details, request_id = "", "", [], response.headers.get("x-request-id")
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body["error"]
        message = str(body.get("message", ""))
        details = [FieldError.model_validate(d) for d in body.get("details") or []
                   if isinstance(d, dict) and {"field", "message"} <= d.keys()]
        request_id = body.get("request_id") or request_id
    else:
        message = response.text[:500].strip() or response.reason_phrase
    cls = error_class(status, code)
    return cls(status, code or f"http_{status}", message, details, request_id,
               parse_retry_after(response.headers.get("retry-after")))


class JobFailedError(FastInsightError):
    """``wait_for_job``: the job ended without success; ``job`` holds its record."""

    def __init__(self, job: JobOut) -> None:
        super().__init__(f"job {job.id} ({job.name}) {job.status}: {job.error or job.output_tail[-500:]}")
        self.job = job


class JobTimeoutError(FastInsightError, TimeoutError):
    """``wait_for_job``: still running at the deadline; ``job`` is its last state."""

    def __init__(self, job: JobOut, waited: float) -> None:
        super().__init__(f"job {job.id} ({job.name}) still {job.status} after {waited:.0f}s")
        self.job = job
