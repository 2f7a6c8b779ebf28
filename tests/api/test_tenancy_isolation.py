"""Tenants are isolated by construction: every route, with one tenant's keys against another
tenant's ids, answers 404 or that tenant's own data; deleting a tenant erases it all; a
single-tenant deployment upgrades untouched."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pymongo import MongoClient

from fastinsight.api.app import create_app
from fastinsight.services.insights.analytics import refresh_insights
from fastinsight.services.tenancy.directory import TenantRecord
from fastinsight.services.tenancy.settings import settings_for
from fastinsight.services.training.pipeline import train
from tests.api.tenants import (
    OPERATOR_KEY,
    Tenant,
    deployment,
    drop_deployment,
    new_tenant,
    seed,
    tenancy_settings,
)
from tests.conftest import ADMIN_KEY, API_KEY

__all__ = ["deployment"]  # the fixture, imported for pytest

PUBLIC = ("/health/", "/v1/operator/")
PARAM = re.compile(r"\{([a-z_]+)\}")


def _train(client: TestClient, tenant_id: str) -> str:
    app_settings = client.app.state.deployment.settings  # type: ignore[attr-defined]
    record = client.app.state.deployment.directory.tenant(tenant_id)  # type: ignore[attr-defined]
    assert isinstance(record, TenantRecord)
    settings = settings_for(app_settings, record)
    mongo: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        db = mongo[record.database]
        doc = train(db, settings, "popularity", evaluate=False)
        refresh_insights(db)
    finally:
        mongo.close()
    return str(doc["version"])


def _wait(client: TestClient, path: str, headers: dict[str, str], done: Any) -> Any:
    deadline = time.monotonic() + 60
    while True:
        body = client.get(path, headers=headers).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def _serving(client: TestClient, tenant: Tenant) -> None:
    """Wait until the tenant's process serves its trained version."""
    deadline = time.monotonic() + 60
    path = f"/v1/users/{tenant.users[0]}/recommendations"
    while client.get(path, headers=tenant.h()).status_code != 200:
        assert time.monotonic() < deadline, "the tenant never served its version"
        time.sleep(0.1)


def _a_ids(client: TestClient, a: Tenant) -> dict[str, str]:
    version = _train(client, a.id)
    job = client.post("/v1/admin/jobs", json={"name": "backup"}, headers=a.h(admin=True))
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    finished = _wait(client, f"/v1/admin/jobs/{job_id}", a.h(admin=True),
                     lambda b: b["status"] in ("succeeded", "failed", "timed_out"))
    assert finished["status"] == "succeeded", finished
    experiment = client.post("/v1/admin/experiments", headers=a.h(admin=True), json={
        "name": "alpha-exp", "variants": [{"name": "control", "model_version": version, "share": 0.5},
                                          {"name": "other", "model_version": version, "share": 0.5}]})
    assert experiment.status_code in (200, 201), experiment.text
    return {"user_id": a.users[0], "item_id": a.items[0], "version": version, "job_id": job_id,
            "experiment_id": experiment.json()["id"], "name": "alpha-cat", "segment_id": "0"}


def _operations(client: TestClient) -> list[tuple[str, str]]:
    doc = client.get("/openapi.json").json()
    return [(method.upper(), path) for path, ops in doc["paths"].items() for method in ops
            if not path.startswith(PUBLIC)]


def _snapshot(mongo_uri: str, database: str) -> str:
    """A digest of every document of every collection of ``database``."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    try:
        db = client[database]
        parts = []
        for name in sorted(db.list_collection_names()):
            docs = sorted(json.dumps(d, sort_keys=True, default=str) for d in db[name].find({}))
            parts.append(name + "\n" + "\n".join(docs))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
    finally:
        client.close()


def test_every_route_with_another_tenants_ids_answers_404_or_its_own_data(
    deployment: TestClient, mongo_uri: str
) -> None:
    client = deployment
    a, b = new_tenant(client, "alpha"), new_tenant(client, "beta")
    seed(client, a, "alpha")
    seed(client, b, "beta")
    ids = _a_ids(client, a)
    _train(client, b.id)
    _serving(client, b)
    database_a = client.app.state.deployment.directory.tenant("alpha").database  # type: ignore[attr-defined]
    before = _snapshot(mongo_uri, database_a)
    checked = 0
    for method, template in _operations(client):
        path = PARAM.sub(lambda m: ids[m.group(1)], template)
        for headers in (b.h(), b.h(admin=True)):
            body: Any = {} if method in ("POST", "PATCH", "PUT") else None
            r = client.request(method, path, headers=headers, json=body)
            assert r.status_code != 500, (method, path, r.text)
            if "{" in template:
                assert r.status_code in (403, 404, 422), (method, path, r.status_code, r.text)
                if r.status_code == 422:  # the body was refused before the id was looked up
                    assert method in ("POST", "PATCH"), (method, path, r.text)
            # An error may echo the id it was asked for; nothing else of A may appear.
            echoed = r.text
            for value in ids.values():
                echoed = echoed.replace(value, "")
            assert "alpha" not in echoed, (method, path, r.text[:300])
            checked += 1
    # The routes that read one thing by id answer 404 to the other tenant's id.
    for path in (f"/v1/users/{a.users[0]}", f"/v1/items/{a.items[0]}",
                 f"/v1/users/{a.users[0]}/recommendations", f"/v1/users/{a.users[0]}/interactions",
                 f"/v1/items/{a.items[0]}/similar", f"/v1/admin/jobs/{ids['job_id']}",
                 f"/v1/admin/experiments/{ids['experiment_id']}",
                 f"/v1/experiments/{ids['experiment_id']}/report"):
        assert client.get(path, headers=b.h(admin=True)).status_code == 404, path
    for method, path in (("DELETE", f"/v1/users/{a.users[0]}"), ("DELETE", f"/v1/items/{a.items[0]}"),
                         ("POST", f"/v1/admin/models/{ids['version']}/activate")):
        assert client.request(method, path, headers=b.h(admin=True)).status_code == 404, path
    assert checked > 80
    # Nothing of A changed, and A still reads its own data.
    assert _snapshot(mongo_uri, database_a) == before
    assert client.get(f"/v1/users/{a.users[0]}", headers=a.h()).status_code == 200
    listed = client.get("/v1/users", headers=a.h()).json()
    assert {u["user_id"] for u in listed["items"]} == set(a.users)


def test_deleting_a_tenant_erases_its_data_keys_and_files(
    deployment: TestClient, mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    client = deployment
    gone, kept = new_tenant(client, "gone"), new_tenant(client, "kept")
    seed(client, gone, "gone")
    seed(client, kept, "kept")
    _train(client, gone.id)
    _serving(client, gone)
    job = client.post("/v1/admin/jobs", json={"name": "backup"}, headers=gone.h(admin=True)).json()
    done = _wait(client, f"/v1/admin/jobs/{job['id']}", gone.h(admin=True),
                 lambda b: b["status"] != "running" and b["status"] != "queued")
    assert done["status"] == "succeeded", done
    folders = [tmp_path / "var" / "models" / "tenants" / "gone",
               tmp_path / "var" / "backups" / "tenants" / "gone", tmp_path / "log" / "tenants" / "gone"]
    assert all(f.is_dir() and any(f.rglob("*")) for f in folders), folders

    # Another host (its own model cache) serving the tenant too.
    elsewhere = tmp_path / "other-host"
    with TestClient(create_app(tenancy_settings(mongo_uri, db_name, elsewhere))) as other:
        copies = elsewhere / "var" / "models" / "tenants" / "gone"
        deadline = time.monotonic() + 60
        while not (copies.is_dir() and any(copies.rglob("*"))):
            assert other.get(f"/v1/users/{gone.users[0]}/recommendations",
                             headers=gone.h()).status_code == 200
            assert time.monotonic() < deadline, "the other host never loaded the tenant's model"
            time.sleep(0.1)
        r = client.delete("/v1/operator/tenants/gone")
        assert r.status_code == 200, r.text
        while copies.exists():  # its directory poller removes them (tenant_cache_seconds)
            assert time.monotonic() < deadline + 30, "the other host kept the deleted tenant's files"
            time.sleep(0.1)
        assert other.get("/v1/users", headers=gone.h()).status_code == 401
    assert r.json()["databases_dropped"] == [f"{db_name}_t_gone"]
    assert not any(f.exists() for f in folders)
    assert client.get("/v1/users", headers=gone.h()).status_code == 401
    assert client.get("/v1/operator/tenants/gone").status_code == 404
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    try:
        # The other host's in-flight writes may have created it again for a moment: the
        # deleting process drops it once more after the grace period.
        deadline = time.monotonic() + 30
        while f"{db_name}_t_gone" in (names := mongo.list_database_names()):
            assert time.monotonic() < deadline, "the deleted tenant's database came back"
            time.sleep(0.2)
        for name in names:
            if not name.startswith(db_name):
                continue
            for collection in mongo[name].list_collection_names():
                for doc in mongo[name][collection].find({}):
                    assert "gone" not in json.dumps(doc, default=str), (name, collection, doc)
    finally:
        mongo.close()
    assert client.get(f"/v1/users/{kept.users[0]}", headers=kept.h()).status_code == 200


def test_a_single_tenant_deployment_upgrades_without_any_change(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """Data and keys of a deployment without tenants: untouched when the operator key
    is configured and tenants are added beside it."""
    plain = tenancy_settings(mongo_uri, db_name, tmp_path, operator_key=None)
    try:
        with TestClient(create_app(plain), headers={"X-API-Key": API_KEY}) as client:
            default = Tenant("default", API_KEY, ADMIN_KEY)
            seed(client, default, "solo")
            assert client.get("/v1/operator/tenants").status_code == 403  # no operator key set
            assert client.get("/v1/operator/tenants", headers={"X-API-Key": OPERATOR_KEY}).status_code == 401
        before = _snapshot(mongo_uri, db_name)
        upgraded = tenancy_settings(mongo_uri, db_name, tmp_path)
        with TestClient(create_app(upgraded), headers={"X-API-Key": API_KEY}) as client:
            users = client.get("/v1/users").json()["items"]
            assert {u["user_id"] for u in users} == set(default.users)
            assert client.get("/v1/admin/models", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
            other = new_tenant(client, "newcomer")
            assert client.get("/v1/users", headers=other.h()).json()["items"] == []
            listed = client.get("/v1/operator/tenants", headers={"X-API-Key": OPERATOR_KEY}).json()
            default_row = next(t for t in listed["tenants"] if t["id"] == "default")
            assert default_row["database"] == db_name
            assert default_row["usage"]["users"] == len(default.users)
        assert _snapshot(mongo_uri, db_name) == before
    finally:
        drop_deployment(mongo_uri, db_name)
