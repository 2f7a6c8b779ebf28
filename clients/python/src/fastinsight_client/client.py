"""``FastInsight``: the synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import TypeVar

import httpx

from fastinsight_client import imports
from fastinsight_client._call import Call
from fastinsight_client._methods import sync_method as _m
from fastinsight_client._retry import RetryPolicy
from fastinsight_client._transport import (
    DEFAULT_TIMEOUT,
    ClientSettings,
    answer_delay,
    failure_delay,
    result,
)
from fastinsight_client.errors import JobFailedError, JobTimeoutError, TransportError
from fastinsight_client.models import ImportReport, ItemOut, JobOut, SegmentMember, UserOut
from fastinsight_client.ops import admin, audiences, catalog, events, insights, operator, recs
from fastinsight_client.ops import experiments as experiment_ops

T = TypeVar("T")


class FastInsight:
    """A client of one FastInsight server.

    ``url``, ``api_key`` and ``admin_key`` default to ``FASTINSIGHT_URL``,
    ``FASTINSIGHT_API_KEY`` and ``FASTINSIGHT_ADMIN_KEY``. The admin key is sent to
    admin routes only. Answers 429 and 503 are retried as ``retry`` allows (honouring
    ``Retry-After``); other errors raise the class for their kind (``errors``).
    """

    def __init__(
        self, url: str | None = None, *, api_key: str | None = None, admin_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.settings = ClientSettings.resolve(url, api_key, admin_key, timeout, retry)
        self._http = http_client or httpx.Client()
        self._owns_http = http_client is None

    def send(self, call: Call[T]) -> T:
        """Send one call, retrying as the policy allows, and read its answer."""
        attempt = 0
        while True:
            try:
                response = self._http.request(**self.settings.request(call))
            except httpx.TransportError as exc:
                delay = failure_delay(self.settings, call, exc, attempt)
                if delay is None:
                    raise TransportError(f"{call.route.method} {call.url}: {exc!r}") from exc
            else:
                delay = answer_delay(self.settings, call, response, attempt)
                if delay is None:
                    return result(call, response)
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> FastInsight:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # recommendations
    recommend = _m(recs.recommend)
    similar = _m(recs.similar)
    trending = _m(recs.trending)
    recommend_session = _m(recs.recommend_session)
    # events
    track = _m(events.track)
    track_many = _m(events.track_many)
    report_displayed = _m(events.report_displayed)
    user_interactions = _m(events.user_interactions)
    # catalogue
    upsert_user = _m(catalog.upsert_user)
    list_users = _m(catalog.list_users)
    get_user = _m(catalog.get_user)
    patch_user = _m(catalog.patch_user)
    delete_user = _m(catalog.delete_user)
    upsert_item = _m(catalog.upsert_item)
    list_items = _m(catalog.list_items)
    get_item = _m(catalog.get_item)
    patch_item = _m(catalog.patch_item)
    delete_item = _m(catalog.delete_item)
    # insights
    overview = _m(insights.overview)
    activity = _m(insights.activity)
    top_items = _m(insights.top_items)
    top_categories = _m(insights.top_categories)
    funnel = _m(insights.funnel)
    funnel_by_category = _m(insights.funnel_by_category)
    catalogue = _m(insights.catalogue)
    model_health = _m(insights.model_health)
    online_metrics = _m(insights.online_metrics)
    refresh_insights = _m(insights.refresh_insights)
    insights_status = _m(insights.insights_status)
    # audiences and segments
    item_audience = _m(audiences.item_audience)
    category_audience = _m(audiences.category_audience)
    segments = _m(audiences.segments)
    campaigns = _m(audiences.campaigns)
    segment_users = _m(audiences.segment_users)
    rebuild_segments = _m(audiences.rebuild_segments)
    # experiments
    list_experiments = _m(experiment_ops.list_experiments)
    create_experiment = _m(experiment_ops.create_experiment)
    get_experiment = _m(experiment_ops.get_experiment)
    update_experiment = _m(experiment_ops.update_experiment)
    delete_experiment = _m(experiment_ops.delete_experiment)
    stop_experiment = _m(experiment_ops.stop_experiment)
    experiments = _m(experiment_ops.experiments)
    experiment_report = _m(experiment_ops.experiment_report)
    # operations
    live = _m(admin.live)
    ready = _m(admin.ready)
    list_models = _m(admin.list_models)
    activate_model = _m(admin.activate_model)
    train = _m(admin.train)
    start_job = _m(admin.start_job)
    list_jobs = _m(admin.list_jobs)
    get_job = _m(admin.get_job)
    # The operator API: a client whose api_key is the operator key.
    create_tenant = _m(operator.create_tenant)
    list_tenants = _m(operator.list_tenants)
    get_tenant = _m(operator.get_tenant)
    update_tenant = _m(operator.update_tenant)
    suspend_tenant = _m(operator.suspend_tenant)
    resume_tenant = _m(operator.resume_tenant)
    delete_tenant = _m(operator.delete_tenant)
    create_key = _m(operator.create_key)
    list_keys = _m(operator.list_keys)
    revoke_key = _m(operator.revoke_key)

    def iter_users(self, page_size: int | None = None) -> Iterator[UserOut]:
        """Every user, page after page (``page_size`` per request)."""
        cursor: str | None = None
        while True:
            page = self.list_users(page_size, cursor)
            yield from page.items
            if not (cursor := page.next_cursor):
                return

    def iter_items(self, page_size: int | None = None, category: str | None = None) -> Iterator[ItemOut]:
        """Every item (of ``category``), page after page."""
        cursor: str | None = None
        while True:
            page = self.list_items(page_size, cursor, category)
            yield from page.items
            if not (cursor := page.next_cursor):
                return

    def iter_segment_users(self, segment_id: str, page_size: int | None = None,
                           version: str | None = None) -> Iterator[SegmentMember]:
        """Every member of a segment, page after page."""
        offset: int | None = 0
        while offset is not None:
            page = self.segment_users(segment_id, offset, page_size, version)
            yield from page.users
            offset = page.next_offset

    def import_users(self, source: imports.Source, *, format: imports.Format | None = None,
                     batch_size: int = imports.DEFAULT_BATCH,
                     on_progress: imports.ProgressCallback | None = None,
                     timeout: float | None = None) -> ImportReport:
        """Import users from a CSV / JSON Lines / JSON file (path or binary file) or an
        iterable of mappings or ``UserIn``, in batches; one merged per-row report."""
        return self._import("users", source, format, batch_size, on_progress, timeout)

    def import_items(self, source: imports.Source, *, format: imports.Format | None = None,
                     batch_size: int = imports.DEFAULT_BATCH,
                     on_progress: imports.ProgressCallback | None = None,
                     timeout: float | None = None) -> ImportReport:
        """Import items as ``import_users`` does users."""
        return self._import("items", source, format, batch_size, on_progress, timeout)

    def import_interactions(self, source: imports.Source, *, format: imports.Format | None = None,
                            batch_size: int = imports.DEFAULT_BATCH,
                            on_progress: imports.ProgressCallback | None = None,
                            timeout: float | None = None) -> ImportReport:
        """Import past interactions (a backfill, used by the next training)."""
        return self._import("interactions", source, format, batch_size, on_progress, timeout)

    def _import(self, kind: imports.Kind, source: imports.Source, fmt: imports.Format | None,
                batch_size: int, on_progress: imports.ProgressCallback | None,
                timeout: float | None) -> ImportReport:
        total, rows, count = ImportReport(), 0, 0
        for batch in imports.batches(source, fmt, batch_size):
            total = imports.merge(total, self.send(imports.import_call(kind, batch, timeout)))
            rows, count = rows + batch.rows, count + 1
            if on_progress is not None:
                on_progress(imports.ImportProgress(count, rows, total))
        return total

    def wait_for_job(self, job_id: str, *, timeout: float = 600.0, poll: float = 1.0) -> JobOut:
        """Poll the job until it ends: its record on success, else ``JobFailedError``
        (``JobTimeoutError`` if it still runs after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.status in admin.FINISHED:
                if job.status != "succeeded":
                    raise JobFailedError(job)
                return job
            if time.monotonic() >= deadline:
                raise JobTimeoutError(job, timeout)
            time.sleep(poll)
