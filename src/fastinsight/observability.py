"""Prometheus metrics shared by the API, the training pipeline and the job runner.

Defined once here (module-level metric objects are cheap and touch nothing outside the
process) and registered in the default registry, so ``/metrics`` can serve
``prometheus_client.generate_latest()`` and gets the process collectors for free.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "fastinsight_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "fastinsight_http_request_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MODEL_VERSION = Gauge(
    "fastinsight_model_version_info",
    "1 for the model version this process serves (labels carry version and algorithm).",
    ["version", "algorithm"],
)
MODEL_LOADED_AT = Gauge(
    "fastinsight_model_loaded_timestamp_seconds",
    "Unix time at which the served model version was switched in.",
)
LIVE_PATHS = ("pool_cached", "pool", "pool_scan", "index", "exact")
LIVE_SCORING = Counter(
    "fastinsight_live_scoring_total",
    "Answers scored live (users with events since training, sessions), by how the candidates "
    "were found: the user's pooled candidates kept since their last event (pool_cached), "
    "the version's pools (pool), the pools plus the items the bound added "
    "(pool_scan), the HNSW index (index, versions without pools), or every item (exact).",
    ["path"],
)
TRAINING_SECONDS = Histogram(
    "fastinsight_training_seconds",
    "Wall time of a training run by algorithm.",
    ["algorithm"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
JOB_OUTCOMES = Counter(
    "fastinsight_job_outcomes_total",
    "Finished operations jobs by job name and final status.",
    ["name", "status"],
)
JOB_SECONDS = Histogram(
    "fastinsight_job_seconds",
    "Duration of operations jobs by job name.",
    ["name"],
    buckets=(0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
JOBS_RUNNING = Gauge(
    "fastinsight_jobs_running",
    "Jobs currently running in this process.",
    ["name"],
)
DB_ERRORS = Counter(
    "fastinsight_db_errors_total",
    "Database errors by operation (e.g. find, insert, ping).",
    ["operation"],
)
TENANTS_LOADED = Gauge(
    "fastinsight_tenants_loaded",
    "Tenants whose services this process has loaded (the default tenant included).",
)
TENANT_MODEL_BYTES = Gauge(
    "fastinsight_tenant_model_bytes",
    "Bytes of model files this process maps for each loaded tenant.",
    ["tenant"],
)
TENANT_REQUESTS = Counter(
    "fastinsight_tenant_requests_total",
    "Requests authenticated for each tenant, and how many its rate limit refused.",
    ["tenant", "outcome"],
)

TENANT_OUTCOMES = ("ok", "rate_limited")


def forget_tenant(tenant: str) -> None:
    """Drop a deleted tenant's series: ``/metrics`` names only tenants that exist."""
    for outcome in TENANT_OUTCOMES:
        with contextlib.suppress(KeyError):
            TENANT_REQUESTS.remove(tenant, outcome)
    with contextlib.suppress(KeyError):
        TENANT_MODEL_BYTES.remove(tenant)


__all__ = [
    "DB_ERRORS",
    "JOBS_RUNNING",
    "JOB_OUTCOMES",
    "JOB_SECONDS",
    "LIVE_PATHS",
    "LIVE_SCORING",
    "MODEL_LOADED_AT",
    "MODEL_VERSION",
    "REQUESTS",
    "REQUEST_SECONDS",
    "TENANTS_LOADED",
    "TENANT_MODEL_BYTES",
    "TENANT_OUTCOMES",
    "TENANT_REQUESTS",
    "TRAINING_SECONDS",
    "forget_tenant",
]
