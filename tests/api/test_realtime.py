"""Real-time state across processes: events and erasures made by another API process.

The serving process answers known users from memory; what other processes write reaches
it through the real-time poller. "Another process" here is a second set of services on
the same database that the app under test knows nothing about.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.data.catalog import CatalogService
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.data.parsing import rows_from_objects
from fastinsight.services.training.pipeline import train
from tests.api.test_recommend import _ids, seed
from tests.conftest import services_of

POLL_SECONDS = 0.05


@pytest.fixture()
def serving(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    fast = settings.model_copy(update={"realtime_poll_seconds": POLL_SECONDS})
    from tests.conftest import API_KEY

    with TestClient(create_app(fast), headers={"X-API-Key": API_KEY}) as client:
        yield client


def _wait_for(check: Callable[[], Response], done: Callable[[Response], bool],
              timeout: float = 5.0) -> tuple[Response, float]:
    started = time.perf_counter()
    while True:
        r = check()
        if done(r) or time.perf_counter() - started > timeout:
            return r, time.perf_counter() - started
        time.sleep(0.01)


def test_event_stored_by_another_process_is_reflected_after_a_poll(
    serving: TestClient, db: Database[dict[str, object]], settings: Settings
) -> None:
    before = _ids(serving.get("/v1/users/a1/recommendations", params={"k": 5}))
    assert before[0].startswith("a")
    other = IngestService(db, settings)  # no listener: only the poller can see this
    events = [{"user_id": "a1", "item_id": i, "type": "purchase"} for i in ("b0", "b1", "b2", "b3")]
    report = other.import_interactions(rows_from_objects(events), realtime=True)
    assert report.inserted == 4

    r, waited = _wait_for(lambda: serving.get("/v1/users/a1/recommendations", params={"k": 5}),
                          lambda r: _ids(r)[0] in {"b4", "b5"})
    assert _ids(r)[0] in {"b4", "b5"}, f"not reflected after {waited:.2f}s: {_ids(r)}"
    assert not {"b0", "b1", "b2", "b3"} & set(_ids(r))
    assert waited < 2.0


def test_user_erased_by_another_process_is_no_longer_served(
    serving: TestClient, db: Database[dict[str, object]]
) -> None:
    assert serving.get("/v1/users/a2/recommendations").status_code == 200
    CatalogService(db).delete_user("a2")  # another process: no listener here
    r, waited = _wait_for(lambda: serving.get("/v1/users/a2/recommendations"),
                          lambda r: r.status_code == 404)
    assert r.status_code == 404, f"still served {waited:.2f}s after erasure"
    assert r.json()["error"] == "not_found" and "a2" in r.json()["message"]


def test_erased_user_created_again_starts_cold(serving: TestClient) -> None:
    first = serving.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"]
    assert first[0]["item_id"] == "a3" and first[0]["reason"].startswith("similar to")
    assert serving.delete("/v1/users/a0").status_code == 200
    assert serving.get("/v1/users/a0/recommendations").status_code == 404  # same process: at once
    assert serving.post("/v1/users", json={"user_id": "a0"}).status_code == 201
    again = serving.get("/v1/users/a0/recommendations", params={"k": 3})
    assert again.status_code == 200, again.text
    # The trained row belonged to the erased person: the new user gets trending items.
    assert not any(i["reason"].startswith("similar to") for i in again.json()["items"])


def test_loaded_version_is_kept_out_of_full_collections(serving: TestClient) -> None:
    """The served version is frozen after loading, so a full collection does not walk
    it; garbage made afterwards is still collected."""
    import gc

    manager = services_of(serving).models
    bundle = manager.current
    assert bundle is not None
    frozen = gc.get_freeze_count()
    assert frozen > 0
    tracked_after = {id(o) for o in gc.get_objects()}  # every generation, not the frozen one
    assert id(bundle.user_index) not in tracked_after and id(bundle) not in tracked_after

    class Cycle:
        pass

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    del a, b
    assert gc.collect() >= 2


def test_a_replaced_version_s_reference_cycles_are_reclaimed_on_a_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc
    import time
    import weakref

    from fastinsight.services.serving import heap

    class Node:
        other: Node

    def replaced_cycle() -> weakref.ref[Node]:
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        heap.settle()  # loaded and frozen, like a served version
        del a, b  # replaced: only the cycle keeps it alive
        gc.collect()
        assert alive() is not None  # frozen objects are out of the collector's reach
        return alive

    monkeypatch.setattr(heap, "_state", {"reclaimed_at": float("-inf"), "pending": False})
    first = replaced_cycle()
    heap.settle(reclaim=True)  # what a version switch does
    assert first() is None
    # A second switch soon after (another tenant's) does not walk the heap again: the
    # cycle waits for the first settle once RECLAIM_EVERY_SECONDS have passed.
    second = replaced_cycle()
    heap.settle(reclaim=True)
    assert second() is not None
    monkeypatch.setitem(heap._state, "reclaimed_at", time.monotonic() - heap.RECLAIM_EVERY_SECONDS - 1)
    heap.settle()
    assert second() is None
