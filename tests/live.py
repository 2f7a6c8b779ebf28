"""A real API process (uvicorn on a free loopback port) over a test database, for the tests
that need real HTTP: the browser tests, start-up checks and the schema fuzz."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from fastinsight.config import Settings
from tests.conftest import ADMIN_KEY, API_KEY, OPERATOR_KEY


@dataclass
class LiveProcess:
    url: str
    process: subprocess.Popen[bytes]
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mongo_uri_for_tests() -> str:
    return os.environ.get("FASTINSIGHT_TEST_MONGODB_URI", "mongodb://127.0.0.1:27017/")


def server_env(db_name: str, tmp: Path, keys: bool = True, operator: bool = False,
               **extra: str) -> dict[str, str]:
    """The environment of a server process: no ``FASTINSIGHT_*`` of the caller's leaks in.
    ``operator``: also the operator key (tenants; drop them with ``drop_tenants``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")}
    env.update({
        "FASTINSIGHT_MONGODB_URI": mongo_uri_for_tests(), "FASTINSIGHT_MONGODB_DB": db_name,
        "FASTINSIGHT_VAR_DIR": str(tmp / "var"), "FASTINSIGHT_LOG_DIR": str(tmp / "log"),
        "FASTINSIGHT_LOG_JSON": "false", "FASTINSIGHT_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    })
    if keys:
        env.update({"FASTINSIGHT_API_KEY": API_KEY, "FASTINSIGHT_ADMIN_KEY": ADMIN_KEY})
    if operator:
        env["FASTINSIGHT_OPERATOR_KEY"] = OPERATOR_KEY
    env.update(extra)
    return env


def live_settings(db_name: str, tmp: Path, **overrides: Any) -> Settings:
    return Settings(mongodb_uri=mongo_uri_for_tests(), mongodb_db=db_name, api_key=API_KEY,
                    admin_key=ADMIN_KEY, var_dir=tmp / "var", log_dir=tmp / "log",
                    _env_file=None, **overrides)  # type: ignore[call-arg]


def uvicorn_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]


@contextmanager
def live_process(argv: list[str], env: dict[str, str], cwd: Path, port: int,
                 timeout: float = 60) -> Iterator[LiveProcess]:
    """Start ``argv`` and wait until ``/health/live`` answers on ``port``; stop it after."""
    stderr = cwd / f"server-{port}.err"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        live = LiveProcess(f"http://127.0.0.1:{port}", proc, stderr)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(live.url + "/health/live", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the API did not start: " + live.log()[-3000:])
                time.sleep(0.2)
            yield live
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def drop_database(db_name: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri_for_tests())
    try:
        client.drop_database(db_name)
    finally:
        client.close()


def drop_tenants(db_name: str) -> None:
    """Drop the control database and the tenant databases of a deployment over ``db_name``."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri_for_tests())
    try:
        for name in client.list_database_names():
            if name == f"{db_name}_control" or name.startswith(f"{db_name}_t_"):
                client.drop_database(name)
    finally:
        client.close()
