"""A small shop with two tastes, two trained versions (item-kNN active, popularity not)
and an API over it. Reports are never cached here, impressions written every 0.1 s."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.training.pipeline import train
from tests.conftest import ADMIN_KEY, API_KEY

ALPHA = [f"a{i}" for i in range(8)]
BETA = [f"b{i}" for i in range(8)]
ADMIN = {"X-API-Key": ADMIN_KEY}


@dataclass
class Shop:
    client: TestClient
    db: Database[dict[str, Any]]
    settings: Settings
    knn: str  # active
    popularity: str

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=ADMIN, **kwargs)


def _rows(rows: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    return ((n, r) for n, r in enumerate(rows, start=1))


def seed(db: Database[dict[str, Any]], settings: Settings, users_per_group: int = 15) -> None:
    svc = IngestService(db, settings)
    items = [{"item_id": i, "title": f"Alpha {i}", "categories": ["alpha"]} for i in ALPHA]
    items += [{"item_id": i, "title": f"Beta {i}", "categories": ["beta"]} for i in BETA]
    svc.import_items(_rows(items))
    now = datetime.now(UTC)
    events = []
    for group, catalogue in (("a", ALPHA), ("b", BETA)):
        for u in range(users_per_group):
            for n, item in enumerate(catalogue[: 3 + u % 4]):
                events.append({"user_id": f"{group}{u}", "item_id": item, "type": "like",
                               "timestamp": (now - timedelta(hours=n + u + 1)).isoformat()})
    assert not svc.import_interactions(_rows(events)).rejected


@pytest.fixture()
def exp_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"report_cache_seconds": 0.0, "impression_flush_seconds": 0.1,
                                       "experiment_poll_seconds": 0.5})


@pytest.fixture()
def shop(db: Database[dict[str, Any]], exp_settings: Settings) -> Iterator[Shop]:
    seed(db, exp_settings)
    popularity = train(db, exp_settings, "popularity", activate=False, evaluate=False)["version"]
    knn = train(db, exp_settings, "itemknn", evaluate=False)["version"]
    with TestClient(create_app(exp_settings), headers={"X-API-Key": API_KEY}) as client:
        yield Shop(client, db, exp_settings, knn, popularity)


def experiment(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "test", "variants": [{"name": "A", "share": 0.5},
                                                          {"name": "B", "share": 0.5}]}
    body.update(fields)
    return body
