"""One real API process (uvicorn) over a seeded test database for every client test in
this package: the Python SDK, the JS client under node, and the browser tracker.

The Python client is imported from its source tree (``clients/python/src``), the way
``tests/clients/test_packaging.py`` checks its built wheel imports too. CORS is opened
for the demo shop page's origin, which the browser test serves on a port of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.services.data.demo import DemoSize, load_synthetic
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.insights.analytics import refresh_insights
from fastinsight.services.training.pipeline import train
from tests.conftest import ROOT
from tests.live import (
    drop_database,
    drop_tenants,
    free_port,
    live_process,
    live_settings,
    server_env,
    uvicorn_argv,
)

CLIENT_SRC = ROOT / "clients" / "python" / "src"
if str(CLIENT_SRC) not in sys.path:
    sys.path.insert(0, str(CLIENT_SRC))

DEMO = DemoSize(users=60, items=40, interactions=1500, days=30)


@dataclass(frozen=True)
class Live:
    url: str
    db_name: str
    mongo_uri: str
    active_version: str
    shop_origin: str  # the one web origin allowed to call the API from a browser
    shop_port: int

    def db(self) -> tuple[MongoClient[dict[str, Any]], Database[dict[str, Any]]]:
        """A short-lived handle on the server's database (close the client after use)."""
        client: MongoClient[dict[str, Any]] = MongoClient(self.mongo_uri, tz_aware=True)
        return client, client[self.db_name]


def _seed(settings: Settings) -> str:
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        db = client[settings.mongodb_db]
        load_synthetic(IngestService(db, settings), DEMO)
        version: str = train(db, settings, "als", reason="client tests", evaluate=False)["version"]
        refresh_insights(db)
        return version
    finally:
        client.close()


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    db_name = f"fi_clients_{uuid.uuid4().hex[:10]}"
    tmp: Path = tmp_path_factory.mktemp("clients")
    port, shop_port = free_port(), free_port()
    shop = f"http://127.0.0.1:{shop_port}"
    settings = live_settings(db_name, tmp)
    env = server_env(db_name, tmp, operator=True, FASTINSIGHT_EXPERIMENT_POLL_SECONDS="0.2",
                     FASTINSIGHT_MODEL_POLL_SECONDS="0.2", FASTINSIGHT_REPORT_CACHE_SECONDS="0",
                     FASTINSIGHT_IMPRESSION_FLUSH_SECONDS="0.2", FASTINSIGHT_SCRIPTS_DIR=str(ROOT / "scripts"),
                     FASTINSIGHT_CORS_ORIGINS=f'["{shop}"]')
    try:
        version = _seed(settings)
        with live_process(uvicorn_argv(port), env, tmp, port) as server:
            yield Live(server.url, db_name, settings.mongodb_uri, version, shop, shop_port)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        drop_database(db_name)
        drop_tenants(db_name)  # the operator operations of the SDK test create one


JS_CLIENT = ROOT / "clients" / "js"
NODE = shutil.which("node") or "node"


@pytest.fixture(scope="package")
def js_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JS client compiled by tsc in a copy under a temporary directory (``dist/``
    there, nothing written in the repository)."""
    compiler = JS_CLIENT / "node_modules" / "typescript" / "bin" / "tsc"
    if not compiler.exists():
        pytest.fail("clients/js/node_modules has no typescript: run scripts/bootstrap.sh", pytrace=False)
    build = tmp_path_factory.mktemp("js") / "fastinsight-client"
    shutil.copytree(JS_CLIENT, build, ignore=shutil.ignore_patterns("node_modules", "dist", "*.tgz"))
    (build / "node_modules").symlink_to(JS_CLIENT / "node_modules", target_is_directory=True)
    done = subprocess.run([NODE, str(compiler), "-p", "tsconfig.json"], cwd=build, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return build
