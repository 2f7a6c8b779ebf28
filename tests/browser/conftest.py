"""A real API process (uvicorn, loopback, free port) over a seeded test database, and
headless Chromium driven by Playwright. Chromium is the Debian package; Playwright's own
browser download is never used."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from fastinsight.config import Settings
from fastinsight.services.data.demo import DemoSize, load_synthetic
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.insights.analytics import refresh_insights
from fastinsight.services.training.pipeline import train
from tests.conftest import ADMIN_KEY, API_KEY, ROOT

CHROMIUM = os.environ.get("FASTINSIGHT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass
class Server:
    url: str
    db_name: str
    versions: list[str]

    def api(self, method: str, path: str, key: str = API_KEY, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers={"X-API-Key": key}, timeout=30, **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(settings: Settings) -> list[str]:
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        db = client[settings.mongodb_db]
        load_synthetic(IngestService(db, settings),
                       DemoSize(users=150, items=80, interactions=4000, days=60))
        older = train(db, settings, "als", reason="browser test (older)")
        newer = train(db, settings, "als", reason="browser test (newer)")
        refresh_insights(db)
        return [older["version"], newer["version"]]
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package 'chromium'", pytrace=False)
    uri = os.environ.get("FASTINSIGHT_TEST_MONGODB_URI", "mongodb://127.0.0.1:27017/")
    db_name = f"fi_browser_{uuid.uuid4().hex[:10]}"
    tmp = tmp_path_factory.mktemp("browser")
    settings = Settings(mongodb_uri=uri, mongodb_db=db_name, api_key=API_KEY, admin_key=ADMIN_KEY,
                        var_dir=tmp / "var", log_dir=tmp / "log", _env_file=None)
    port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")},
           "FASTINSIGHT_MONGODB_URI": uri, "FASTINSIGHT_MONGODB_DB": db_name,
           "FASTINSIGHT_API_KEY": API_KEY, "FASTINSIGHT_ADMIN_KEY": ADMIN_KEY,
           "FASTINSIGHT_VAR_DIR": str(tmp / "var"), "FASTINSIGHT_LOG_DIR": str(tmp / "log"),
           "FASTINSIGHT_LOG_JSON": "false", "FASTINSIGHT_LOG_LEVEL": "WARNING"}
    proc: subprocess.Popen[bytes] | None = None
    err_log = (tmp / "server.err").open("wb")
    try:
        versions = _seed(settings)
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err_log,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the API did not start: " + (tmp / "server.err").read_text()[-2000:])
            time.sleep(0.2)
        yield Server(url=url, db_name=db_name, versions=versions)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err_log.close()
        MongoClient(uri).drop_database(db_name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Tab:
    page: Any
    errors: list[str]


@pytest.fixture()
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    try:
        yield Tab(page, errors)
    finally:
        context.close()
