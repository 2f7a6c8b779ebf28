"""One family of errors below the API; ``api.errors`` maps them to HTTP responses."""

from __future__ import annotations

from typing import Any


class FastInsightError(Exception):
    """Base class. ``code`` is a stable machine-readable name."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadRequest(FastInsightError):
    """Well formed but unusable as given (e.g. an experiment that could never run)."""

    code = "bad_request"
    status = 400


class NotFoundError(FastInsightError):
    code = "not_found"
    status = 404


class ValidationFailed(FastInsightError):
    code = "validation_failed"
    status = 422

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])


class Conflict(FastInsightError):
    code = "conflict"
    status = 409


class PayloadTooLarge(FastInsightError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(FastInsightError):
    code = "unsupported_media_type"
    status = 415


class RetryLater(FastInsightError):
    """An error the client should retry after ``retry_after`` seconds (``Retry-After``)."""

    default_retry_after = 5

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = self.default_retry_after if retry_after is None else retry_after


class Unavailable(RetryLater):
    """A dependency (usually the database) is down; clients should retry."""

    code = "unavailable"
    status = 503


class Forbidden(FastInsightError):
    code = "forbidden"
    status = 403


class QuotaExceeded(FastInsightError):
    """A write would take a tenant past one of its quotas (rows of a kind)."""

    code = "quota_exceeded"
    status = 403


class RateLimited(RetryLater):
    """A tenant sent more requests than its rate limit allows."""

    code = "rate_limited"
    status = 429
    default_retry_after = 1


class ModelError(FastInsightError):
    """A model could not be fitted, saved or loaded (NaN, too large, bad file)."""

    code = "model_error"
    status = 500


class RejectedVersion(ModelError):
    """A stored model version failed its load or sanity check: it is never activated."""

    code = "model_rejected"
    status = 409
class ConfigurationError(FastInsightError):
    """Settings that must not be served with (e.g. missing or well-known API keys)."""

    code = "configuration_error"
    status = 500
