"""Python client of the FastInsight API.

    from fastinsight_client import FastInsight

    with FastInsight("http://localhost:8000", api_key="...") as fi:
        recs = fi.recommend("user-1", k=5)
        fi.track("user-1", recs.items[0].item_id, "purchase",
                 recommendation_id=recs.recommendation_id)

The request and answer models are in ``fastinsight_client.models``; the exceptions in
``fastinsight_client.errors``.
"""

from fastinsight_client._retry import NO_RETRIES, RetryPolicy
from fastinsight_client._version import __version__
from fastinsight_client.aio import AsyncFastInsight
from fastinsight_client.client import FastInsight
from fastinsight_client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    FastInsightError,
    JobFailedError,
    JobTimeoutError,
    ModelRejectedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnavailableError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from fastinsight_client.imports import ImportProgress

__all__ = [
    "NO_RETRIES",
    "APIError",
    "AsyncFastInsight",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "FastInsight",
    "FastInsightError",
    "ImportProgress",
    "JobFailedError",
    "JobTimeoutError",
    "ModelRejectedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "ValidationFailedError",
    "__version__",
]
