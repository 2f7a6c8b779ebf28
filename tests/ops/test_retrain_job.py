"""``POST /v1/admin/train`` and the ``retrain`` job honour ``activate`` and ``params``
(issue 18, item 3): the real job runs the real ``fastinsight train`` command."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from fastinsight.config import Settings
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.models import ModelVersionRepository
from tests.api.test_recommend import seed
from tests.ops.conftest import Db

ADMIN = {"X-API-Key": "test-admin-key"}


def _wait_job(client: TestClient, job_id: str, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/admin/jobs/{job_id}", headers=ADMIN).json()
        if body["status"] != "running":
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout}s")


def test_train_without_activation_keeps_the_active_version_and_uses_the_params(
    client: TestClient, db: Db, settings: Settings
) -> None:
    seed(db, settings)
    active = train(db, settings, "itemknn", evaluate=False)["version"]
    r = client.post("/v1/admin/train", headers=ADMIN, json={
        "algorithm": "popularity", "activate": False, "params": {"measure": "users"}})
    assert r.status_code == 202, r.text
    done = _wait_job(client, r.json()["job_id"])
    assert done["status"] == "succeeded", done["output_tail"]
    assert done["args"] == {"algorithm": "popularity", "params": {"measure": "users"},
                            "activate": False, "evaluate": True}

    repo = ModelVersionRepository(db)
    assert repo.active_version() == active  # trained, stored, not switched in
    versions = client.get("/v1/admin/models", headers=ADMIN).json()
    new = [v for v in versions if v["version"] != active]
    assert len(new) == 1 and new[0]["algorithm"] == "popularity" and not new[0]["active"]
    assert new[0]["params"]["measure"] == "users"  # the params reached the trained model
    assert client.get("/v1/users/a0/recommendations").json()["model_version"] == active


def test_retrain_params_are_checked_against_the_algorithm_before_the_job_starts(
    client: TestClient, db: Db
) -> None:
    bad = client.post("/v1/admin/jobs", headers=ADMIN, json={
        "name": "retrain", "args": {"algorithm": "popularity", "params": {"measure": "bogus"}}})
    assert bad.status_code == 422, bad.text
    assert bad.json()["details"][0]["field"] == "args.params.measure"
    # Without an algorithm, the settings' default (ALS) is the one the params must fit.
    default = client.post("/v1/admin/jobs", headers=ADMIN, json={
        "name": "retrain", "args": {"params": {"factors": 0}}})
    assert default.status_code == 422 and default.json()["details"][0]["field"] == "args.params.factors"
    through_train = client.post("/v1/admin/train", headers=ADMIN, json={
        "algorithm": "als", "params": {"factors": "many"}})
    assert through_train.status_code == 422
    assert through_train.json()["details"][0]["field"] == "params.factors"
    assert db.jobs.count_documents({}) == 0  # nothing started


def test_train_without_an_algorithm_uses_the_default_one(
    db: Db, settings: Settings
) -> None:
    from fastinsight.api.app import create_app

    seed(db, settings)
    popular = settings.model_copy(update={"default_algorithm": "popularity"})
    with TestClient(create_app(popular), headers={"X-API-Key": "test-api-key"}) as client:
        r = client.post("/v1/admin/train", headers=ADMIN, json={"activate": False})
        assert r.status_code == 202, r.text
        done = _wait_job(client, r.json()["job_id"])
        assert done["status"] == "succeeded", done["output_tail"]
        assert done["args"]["algorithm"] is None
        versions = client.get("/v1/admin/models", headers=ADMIN).json()
        assert [v["algorithm"] for v in versions] == ["popularity"]
        null = client.post("/v1/admin/train", headers=ADMIN, json={"algorithm": None})
        assert null.status_code == 422 and null.json()["details"][0]["field"] == "algorithm"


def test_train_params_take_the_json_types_as_declared(client: TestClient, db: Db) -> None:
    """``true`` is not 1: it used to train (and activate) an ALS model with one factor."""
    for params, field in (({"factors": True}, "params.factors"), ({"factors": "8"}, "params.factors"),
                          ({"regularization": False}, "params.regularization")):
        r = client.post("/v1/admin/train", headers=ADMIN, json={"algorithm": "als", "params": params})
        assert r.status_code == 422, (params, r.text)
        assert r.json()["details"][0]["field"] == field
        job = client.post("/v1/admin/jobs", headers=ADMIN, json={
            "name": "retrain", "args": {"algorithm": "als", "params": params}})
        assert job.status_code == 422 and job.json()["details"][0]["field"] == f"args.{field}"
    assert db.jobs.count_documents({}) == 0
    ok = client.post("/v1/admin/train", headers=ADMIN, json={
        "algorithm": "als", "params": {"factors": 8, "regularization": 1}})  # an integer is a number
    assert ok.status_code == 202, ok.text
    assert _wait_job(client, ok.json()["job_id"])["status"] in {"succeeded", "failed"}
