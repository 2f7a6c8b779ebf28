"""A real API process (uvicorn, loopback, free port) over a seeded test database, and
headless Chromium driven by Playwright. Chromium is the Debian package; Playwright's own
browser download is never used."""

from __future__ import annotations

import os
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
from tests.conftest import API_KEY, ROOT
from tests.live import (
    drop_database,
    drop_tenants,
    free_port,
    live_process,
    live_settings,
    server_env,
    uvicorn_argv,
)

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
    db_name = f"fi_browser_{uuid.uuid4().hex[:10]}"
    tmp = tmp_path_factory.mktemp("browser")
    port = free_port()
    try:
        versions = _seed(live_settings(db_name, tmp))
        env = server_env(db_name, tmp, operator=True)
        with live_process(uvicorn_argv(port), env, tmp, port) as live:
            yield Server(url=live.url, db_name=db_name, versions=versions)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        drop_database(db_name)
        drop_tenants(db_name)


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
