"""Across real API processes (uvicorn): the same user gets the same arm in two processes,
and a graceful stop (SIGTERM) writes every queued impression. Plus every
arm served through HTTP checked against the assignment function."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.services.experiments.assignment import assign
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.impressions import ImpressionRepository
from tests.conftest import ADMIN_KEY, API_KEY
from tests.experiments.conftest import Shop, experiment, seed

ADMIN = {"X-API-Key": ADMIN_KEY}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_process(settings: Settings, tmp: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")},
               "FASTINSIGHT_MONGODB_URI": settings.mongodb_uri, "FASTINSIGHT_MONGODB_DB": settings.mongodb_db,
               "FASTINSIGHT_API_KEY": API_KEY, "FASTINSIGHT_ADMIN_KEY": ADMIN_KEY,
               "FASTINSIGHT_VAR_DIR": str(tmp / "var"), "FASTINSIGHT_LOG_DIR": str(tmp / f"log{port}"),
               "FASTINSIGHT_LOG_JSON": "false", "FASTINSIGHT_LOG_LEVEL": "WARNING",
               "FASTINSIGHT_EXPERIMENT_POLL_SECONDS": "0.3", **env}
    err = (tmp / f"server{port}.err").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"],
                            cwd=tmp, env=environ, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("API did not start: " + (tmp / f"server{port}.err").read_text()[-2000:])
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()


@pytest.fixture()
def trained(db: Database[dict[str, Any]], settings: Settings) -> Settings:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    return settings


def test_same_arm_in_two_processes(trained: Settings, tmp_path: Path) -> None:
    users = [f"visitor-{n}" for n in range(300)]
    with api_process(trained, tmp_path) as (one, _), api_process(trained, tmp_path) as (two, _):
        created = httpx.post(one + "/v1/admin/experiments", headers=ADMIN, timeout=30, json=experiment(
            endpoints=["similar"], variants=[{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}])).json()
        deadline = time.monotonic() + 10
        while httpx.get(f"{two}/v1/admin/experiments/{created['id']}", headers=ADMIN).json()["serving"] is None:
            assert time.monotonic() < deadline, "the second process never loaded the experiment"
            time.sleep(0.2)
        arms = []
        with httpx.Client(headers={"X-API-Key": API_KEY}, timeout=30) as http:
            for url in (one, two):
                arms.append([http.get(f"{url}/v1/items/a0/similar", params={"user_id": u}).json()["variant"]
                             for u in users])
        assert arms[0] == arms[1] == [["A", "B"][assign(created["id"], [0.5, 0.5], u)] for u in users]
        assert set(arms[0]) == {"A", "B"}


def test_graceful_stop_writes_every_queued_impression(trained: Settings, tmp_path: Path,
                                                      db: Database[dict[str, Any]]) -> None:
    slow = {"FASTINSIGHT_IMPRESSION_FLUSH_SECONDS": "3600", "FASTINSIGHT_IMPRESSION_BATCH_SIZE": "10000"}
    with api_process(trained, tmp_path, **slow) as (url, proc):
        with httpx.Client(headers={"X-API-Key": API_KEY}, timeout=30) as http:
            ids = {http.get(f"{url}/v1/users/{u}/recommendations", params={"k": 3}).json()["recommendation_id"]
                   for u in [f"{g}{n}" for g in "ab" for n in range(15)] * 20}
        assert len(ids) == 600
        assert db["impressions"].count_documents({}) == 0  # all still queued
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its shutdown
    stored = ImpressionRepository(db).between(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    assert {d["_id"] for d in stored} == ids


def test_every_http_answer_is_the_users_assigned_arm_and_the_report_counts_them(shop: Shop) -> None:
    """2,000 users through HTTP, each checked against the assignment function (whose shares
    over 10,000 users tests/experiments/test_assignment.py checks without HTTP)."""
    created = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        endpoints=["similar"], variants=[{"name": "A", "share": 0.5}, {"name": "B", "share": 0.3},
                                         {"name": "C", "share": 0.2}])).json()
    users = [f"shopper-{n}" for n in range(2_000)]
    served = [shop.client.get("/v1/items/b1/similar", params={"user_id": user, "k": 2}).json()["variant"]
              for user in users]
    assert served == ["ABC"[assign(created["salt"], [0.5, 0.3, 0.2], user)] for user in users]
    counts = Counter(served)
    for arm, share in (("A", 0.5), ("B", 0.3), ("C", 0.2)):
        assert abs(counts[arm] / len(users) - share) < 0.04, counts  # 3.5 standard errors
    report = shop.client.get(f"/v1/experiments/{created['id']}/report").json()
    assert {a["name"]: a["users"] for a in report["arms"]} == dict(counts)
    assert report["srm"]["mismatch"] is False
