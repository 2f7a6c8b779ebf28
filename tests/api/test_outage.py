"""A database outage gives 503 with a retry hint; the app recovers by itself."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from tests.conftest import ADMIN_KEY, API_KEY, ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _db(action: str, env: dict[str, str]) -> None:
    subprocess.run([str(ROOT / "scripts" / "db.sh"), action], env=env, check=True,
                   capture_output=True, timeout=120)


def test_outage_then_recovery(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FASTINSIGHT_DB_ADDR": f"127.0.0.1:{port}",
           "FASTINSIGHT_DB_DATA": str(tmp_path / "db")}
    _db("start", env)
    try:
        settings = Settings(mongodb_uri=f"mongodb://127.0.0.1:{port}/", mongodb_db="outage",
                            api_key=API_KEY, admin_key=ADMIN_KEY, mongodb_timeout_ms=500,
                            _env_file=None)  # type: ignore[call-arg]
        with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
            assert client.post("/v1/users", json={"user_id": "u1"}).status_code == 201
            _db("stop", env)
            r = client.get("/v1/users/u1")
            assert r.status_code == 503
            assert r.headers["Retry-After"] == "5"
            assert r.json()["error"] == "unavailable"
            assert client.get("/health/ready").status_code == 503
            _db("start", env)
            assert client.get("/health/ready").status_code == 200
            assert client.get("/v1/users/u1").json()["user_id"] == "u1"
    finally:
        _db("stop", env)
