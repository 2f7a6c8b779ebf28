"""Shared fixtures. Tests talk to a real MongoDB-compatible server over the network.

``make test`` starts the local FerretDB; point ``FASTINSIGHT_TEST_MONGODB_URI`` at any
other server. A test that cannot reach it fails (it never skips).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from fastinsight.api.app import create_app
from fastinsight.api.composition import Services
from fastinsight.config import Settings

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test-api-key"
ADMIN_KEY = "test-admin-key"
OPERATOR_KEY = "test-operator-key"


@pytest.fixture(scope="session")
def mongo_uri() -> str:
    uri = os.environ.get("FASTINSIGHT_TEST_MONGODB_URI", "mongodb://127.0.0.1:27017/")
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=3000)
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        pytest.fail(
            f"Cannot reach MongoDB at {uri} ({exc.__class__.__name__}). Start the local "
            "server with `scripts/db.sh start` (or run `make test`, which does it), or set "
            "FASTINSIGHT_TEST_MONGODB_URI.",
            pytrace=False,
        )
    finally:
        client.close()
    return uri


@pytest.fixture()
def db_name() -> str:
    return f"fi_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def db(mongo_uri: str, db_name: str) -> Iterator[Database[dict[str, object]]]:
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        yield client[db_name]
    finally:
        client.drop_database(db_name)
        client.close()


@pytest.fixture()
def settings(mongo_uri: str, db_name: str, tmp_path: Path) -> Settings:
    return Settings(
        mongodb_uri=mongo_uri, mongodb_db=db_name, api_key=API_KEY, admin_key=ADMIN_KEY,
        var_dir=tmp_path / "var", log_dir=tmp_path / "log", import_batch_size=50,
        model_poll_seconds=0.2, _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture()
def client(settings: Settings, db: Database[dict[str, object]]) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client


def services_of(client: TestClient) -> Services:
    """The composition root of a started app (inside ``with TestClient(...)``)."""
    return cast(Services, cast(FastAPI, client.app).state.services)


@pytest.fixture()
def admin_headers() -> dict[str, str]:
    return {"X-API-Key": ADMIN_KEY}
