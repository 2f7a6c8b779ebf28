"""The composition root builds every service once; routes reach them through typed deps."""

from __future__ import annotations

import dataclasses
import socket
from datetime import UTC, datetime
from typing import Any, get_origin, get_type_hints

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.composition import Services
from fastinsight.config import Settings
from fastinsight.ops.jobs.kinds import JOB_KINDS
from fastinsight.schemas.jobs import JobIn, JobRecord
from tests.conftest import services_of


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_build_makes_every_service_without_reading_the_database(settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={"mongodb_uri": f"mongodb://127.0.0.1:{_closed_port()}/", "mongodb_timeout_ms": 200}
    )
    services = Services.build(unreachable)
    try:
        hints = get_type_hints(Services)
        for field in dataclasses.fields(Services):
            expected = get_origin(hints[field.name]) or hints[field.name]
            assert isinstance(getattr(services, field.name), expected), field.name
        assert services.recommend.manager is services.models
        assert services.recommend.realtime is services.realtime
        assert services.poller.state is services.realtime
        assert services.audience.insights is services.insights
        assert services.segments.insights is services.insights
    finally:
        services.client.close()


def test_start_wires_the_services_together_and_stop_closes(
    settings: Settings, db: Database[dict[str, object]]
) -> None:
    services = Services.build(settings)
    services.start()
    try:
        assert services.readiness.schema_applied
        assert services.recommend.warm in services.models.changed_listeners
        assert services.models.sync in services.model_admin.activated_listeners
        assert services.models.item_changed in services.catalog.item_listeners
        assert services.realtime.user_erased in services.catalog.user_erased_listeners
        assert services.realtime.record in services.ingest.fresh_listeners
    finally:
        services.stop()


def test_app_state_holds_the_composition_root(client: TestClient) -> None:
    assert isinstance(services_of(client), Services)
    assert client.get("/health/ready").json() == {
        "status": "ok", "database": "ok", "model_version": None
    }


def test_train_submits_one_retrain_job(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, dict[str, Any], str]] = []

    def submit(name: str, args: dict[str, Any], *, requested_by: str = "api",
               timeout_seconds: float | None = None) -> JobRecord:
        calls.append((name, args, requested_by))
        return JobRecord(id="ab12", name=name, args=args, status="running", requested_by=requested_by,
                         created_at=datetime.now(UTC), timeout_seconds=60)

    monkeypatch.setattr(services_of(client).jobs, "submit", submit)
    r = client.post("/v1/admin/train", json={"algorithm": "popularity", "activate": False,
                                             "params": {"measure": "users"}},
                    headers=admin_headers)
    assert r.status_code == 202
    assert r.json() == {"job_id": "ab12", "status": "running", "poll": "/v1/admin/jobs/ab12"}
    # The algorithm, its parameters and the activation choice all reach the job.
    assert calls == [("retrain", {"algorithm": "popularity", "params": {"measure": "users"},
                                  "activate": False}, "api")]

    r = client.post("/v1/admin/train", json={"algorithm": "nope"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "algorithm"
    r = client.post("/v1/admin/train", json={"algorithm": "popularity", "params": {"x": 1}},
                    headers=admin_headers)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "params.x"
    assert len(calls) == 1
    assert client.post("/v1/admin/train", json={}).status_code == 403


def test_job_request_documents_every_job_kind() -> None:
    assert JobIn.model_fields["name"].description == f"One of: {', '.join(sorted(JOB_KINDS))}."
