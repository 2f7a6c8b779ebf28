"""No default secrets (real processes refuse to start), loopback-only development mode,
security headers, truthful OPTIONS/405, and 413 for a huge chunked body."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.errors import ConfigurationError
from tests.conftest import ADMIN_KEY, API_KEY
from tests.live import drop_database, free_port, live_process, server_env, uvicorn_argv

CLI = [sys.executable, "-c", "from fastinsight.cli import main; main()"]


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


# ---- start-up ----------------------------------------------------------------------------
def test_uvicorn_refuses_to_start_without_keys(tmp_path: Path) -> None:
    proc = _run(uvicorn_argv(free_port()), server_env("fi_never", tmp_path, keys=False), tmp_path)
    assert proc.returncode != 0
    assert "FASTINSIGHT_API_KEY is not set" in proc.stderr
    assert "FASTINSIGHT_ADMIN_KEY is not set" in proc.stderr


@pytest.mark.parametrize(("keys", "problem"), [
    ({}, "FASTINSIGHT_API_KEY is not set"),
    ({"FASTINSIGHT_API_KEY": API_KEY}, "FASTINSIGHT_ADMIN_KEY is not set"),
    ({"FASTINSIGHT_API_KEY": "dev-api-key", "FASTINSIGHT_ADMIN_KEY": "dev-admin-key"},
     "FASTINSIGHT_API_KEY is a well-known value"),
    ({"FASTINSIGHT_API_KEY": API_KEY, "FASTINSIGHT_ADMIN_KEY": API_KEY}, "are the same"),
])
def test_serve_refuses_missing_or_guessable_keys(tmp_path: Path, keys: dict[str, str],
                                                 problem: str) -> None:
    env = server_env("fi_never", tmp_path, keys=False, **keys)
    proc = _run([*CLI, "serve", "--port", str(free_port())], env, tmp_path)
    assert proc.returncode == 2
    assert problem in proc.stderr.replace("\n", " ")


def test_dev_mode_refuses_a_public_bind_address(tmp_path: Path) -> None:
    env = server_env("fi_never", tmp_path, keys=False)
    proc = _run([*CLI, "serve", "--dev", "--host", "0.0.0.0", "--port", str(free_port())], env, tmp_path)
    assert proc.returncode == 2 and "127.0.0.1 only" in proc.stderr


@pytest.fixture()
def dev_server(tmp_path: Path) -> Iterator[tuple[str, str, int]]:
    db_name = f"fi_dev_{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = server_env(db_name, tmp_path, keys=False)
    try:
        with live_process([*CLI, "serve", "--dev", "--port", str(port)], env, tmp_path, port) as live:
            yield live.url, live.log(), port
    finally:
        drop_database(db_name)


def test_dev_mode_generates_keys_warns_and_listens_on_loopback_only(
    dev_server: tuple[str, str, int]
) -> None:
    url, log, port = dev_server
    assert "DEVELOPMENT MODE" in log and "loopback clients" in log
    key = re.search(r"FASTINSIGHT_API_KEY=(\S+)", log)
    assert key is not None and key.group(1) not in {"dev-api-key", API_KEY}
    assert httpx.get(url + "/v1/users", headers={"X-API-Key": key.group(1)}).status_code == 200
    assert httpx.get(url + "/v1/users", headers={"X-API-Key": "dev-api-key"}).status_code == 401
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    local = [fields[1] for fields in listening if fields[3] == "0A" and fields[1].endswith(f":{port:04X}")]
    assert local == [f"0100007F:{port:04X}"]  # 127.0.0.1, nothing else


def test_app_refuses_missing_keys_and_dev_mode_answers_loopback_only(
    settings: Settings, db: Database[dict[str, object]]
) -> None:
    with pytest.raises(ConfigurationError, match="FASTINSIGHT_ADMIN_KEY is not set"):
        create_app(settings.model_copy(update={"admin_key": None}))
    dev = settings.model_copy(update={"api_key": None, "admin_key": None, "dev_mode": True})
    with TestClient(create_app(dev)) as remote:  # the test client's address is not loopback
        assert remote.get("/health/live").status_code == 403
    with TestClient(create_app(dev), client=("127.0.0.1", 50000)) as local:
        assert local.get("/health/live").status_code == 200
        assert local.get("/v1/users", headers={"X-API-Key": "dev-api-key"}).status_code == 401


# ---- headers and methods -------------------------------------------------------------------
def test_security_headers_on_pages_and_data(client: TestClient) -> None:
    page = client.get("/dashboard")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    docs = client.get("/docs")
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    for response in (page, docs, client.get("/v1/users"), client.get("/openapi.json")):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "content-security-policy" in response.headers


def test_options_and_405_list_every_method_of_the_path(client: TestClient) -> None:
    client.post("/v1/items", json={"item_id": "i1"})
    r = client.options("/v1/items/i1")
    assert r.status_code == 204 and r.headers["allow"] == "DELETE, GET, PATCH, OPTIONS"
    r = client.put("/v1/items/i1")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PATCH"
    assert r.json()["error"] == "method_not_allowed"
    assert client.options("/v1/items/import").headers["allow"] == "POST, OPTIONS"


def test_json_routes_name_the_media_type_they_need(client: TestClient) -> None:
    r = client.post("/v1/users", content=b'{"user_id": "u1"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["message"]


def test_huge_chunked_body_is_413(tmp_path: Path) -> None:
    db_name = f"fi_body_{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = server_env(db_name, tmp_path, FASTINSIGHT_MAX_BODY_BYTES=str(1024 * 1024))

    def chunks() -> Iterator[bytes]:
        for _ in range(100):  # 100 MB without a Content-Length
            yield b" " * (1024 * 1024)

    try:
        with live_process(uvicorn_argv(port), env, tmp_path, port) as live:
            r = httpx.post(live.url + "/v1/interactions", content=chunks(), timeout=60,
                           headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
            assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
            admin = httpx.get(live.url + "/v1/admin/models", headers={"X-API-Key": ADMIN_KEY})
            assert admin.status_code == 200
    finally:
        drop_database(db_name)
