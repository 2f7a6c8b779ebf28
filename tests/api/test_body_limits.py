"""Body limits per route: file imports may be large, the beacon carries what sendBeacon
can (64 KiB), every other route at most ``max_json_body_bytes``. A JSON body is decoded
before its key is checked, so a 48 MB body without any key used to hold the event loop
(health probes included) for over 10 s before its 401."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.api.middleware import BEACON_MAX_BYTES
from fastinsight.config import Settings
from tests.conftest import API_KEY

JSON = {"Content-Type": "application/json"}


@pytest.fixture()
def small(settings: Settings, db: Database[dict[str, object]]) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"max_json_body_bytes": 4096, "max_body_bytes": 64 * 1024})
    with TestClient(create_app(limited), headers={"X-API-Key": API_KEY}) as client:
        yield client


def _chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def _batch(n_bytes: int) -> bytes:
    event = {"user_id": "u1", "item_id": "i1", "type": "view"}
    body = json.dumps({"interactions": [event]}).encode()
    return body[:-1] + b" " * (n_bytes - len(body)) + b"}"


def test_json_routes_take_up_to_their_limit(small: TestClient) -> None:
    assert small.post("/v1/items", json={"item_id": "i1"}).status_code == 201
    ok = small.post("/v1/interactions/batch", content=_batch(4096), headers=JSON)
    assert ok.status_code == 200 and ok.json()["inserted"] == 1, ok.text
    for body in (_batch(4097), _batch(10**6)):
        declared = small.post("/v1/interactions/batch", content=body, headers=JSON)
        assert declared.status_code == 413 and "4096 bytes" in declared.json()["message"]
        streamed = small.post("/v1/interactions/batch", content=_chunks(body), headers=JSON)
        assert streamed.status_code == 413


def test_a_keyless_oversized_body_is_refused_before_it_is_decoded(small: TestClient) -> None:
    r = small.post("/v1/interactions/batch", content=_batch(10**6),
                   headers={**JSON, "X-API-Key": ""})
    assert r.status_code == 413  # not a 401 after decoding a megabyte


def test_the_beacon_takes_what_send_beacon_sends(settings: Settings, db: Database[dict[str, object]]) -> None:
    with TestClient(create_app(settings), headers={"X-API-Key": ""}) as client:
        assert client.post("/v1/items", json={"item_id": "i1"},
                           headers={"X-API-Key": API_KEY}).status_code == 201
        event = {"user_id": "u1", "item_id": "i1", "type": "view"}
        body = json.dumps({"key": API_KEY, "interactions": [event]}).encode()
        fits = body[:-1] + b" " * (BEACON_MAX_BYTES - len(body)) + b"}"
        r = client.post("/v1/beacon", content=fits, headers={"Content-Type": "text/plain"})
        assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
        over = fits[:-1] + b" }"
        r = client.post("/v1/beacon", content=over, headers={"Content-Type": "text/plain"})
        assert r.status_code == 413, r.text
        r = client.post("/v1/beacon", content=_chunks(over), headers={"Content-Type": "text/plain"})
        assert r.status_code == 413, r.text


def test_file_imports_take_the_larger_limit(small: TestClient) -> None:
    rows = json.dumps([{"item_id": "big-1"}, {"item_id": "big-2"}]).encode()
    padded = rows[:-1] + b" " * (32 * 1024) + b"]"  # over the JSON routes' 4 KiB
    r = small.post("/v1/items/import", content=padded, headers=JSON)
    assert r.status_code == 200 and r.json()["inserted"] == 2, r.text
    too_big = rows[:-1] + b" " * (64 * 1024) + b"]"
    assert small.post("/v1/items/import", content=too_big, headers=JSON).status_code == 413
