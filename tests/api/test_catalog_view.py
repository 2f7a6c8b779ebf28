"""Item writes update the serving view item by item; no request rebuilds the catalogue.

The view a version is served with is built once (a pass over the catalogue). An item
write, by this process or another, changes only that item's entries: answers reflect it
on the next request as before, and the updated view is the one a full build gives.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.data.catalog import CatalogService
from fastinsight.services.serving import view as view_module
from fastinsight.services.serving.bundle import ItemCatalog
from fastinsight.services.serving.view import CatalogView, CatalogViewCache
from fastinsight.services.training.pipeline import train
from tests.api.test_recommend import _ids, seed
from tests.conftest import API_KEY, services_of


@pytest.fixture()
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts full view builds from here on."""
    counted: list[int] = []
    real = CatalogView.__init__

    def counting(self: CatalogView, *args: Any) -> None:
        counted.append(1)
        real(self, *args)

    monkeypatch.setattr(view_module.CatalogView, "__init__", counting)
    return counted


@pytest.fixture()
def trained(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        yield client


def _assert_same(got: CatalogView, want: CatalogView) -> None:
    assert got.ids == want.ids
    assert got.hidden.tolist() == want.hidden.tolist()
    assert got.visible.tolist() == want.visible.tolist()
    assert got.titles == want.titles and got.tags == want.tags
    assert got.categories == want.categories and got.primary == want.primary
    for cat in ("alpha", "beta", "gamma"):
        assert got.category_mask(cat).tolist() == want.category_mask(cat).tolist(), cat
    by_id = {c.item_id: n for n, c in enumerate(want.cold_items)}
    assert sorted(c.item_id for c in got.cold_items) == sorted(by_id)
    assert (got.cold_vectors is None) == (want.cold_vectors is None)
    if got.cold_vectors is not None and want.cold_vectors is not None:
        order = [by_id[c.item_id] for c in got.cold_items]
        assert np.allclose(got.cold_vectors, want.cold_vectors[order], atol=1e-5)


def test_item_writes_change_only_their_entries_and_show_at_once(
    trained: TestClient, builds: list[int]
) -> None:
    svc = services_of(trained).recommend
    bundle = svc.manager.current
    view = svc._view(bundle)
    view.category_mask("beta")  # a mask built before the change is updated too
    assert "a3" in _ids(trained.get("/v1/users/a0/recommendations", params={"k": 3}))

    trained.patch("/v1/items/a3", json={"hidden": True})
    assert "a3" not in _ids(trained.get("/v1/users/a0/recommendations", params={"k": 12}))
    trained.patch("/v1/items/a4", json={"categories": ["beta", "gamma"], "title": "Now beta"})
    only_beta = _ids(trained.get("/v1/users/a0/recommendations", params={"k": 12, "categories": "beta"}))
    assert "a4" in only_beta
    assert "a4" not in _ids(trained.get("/v1/users/a0/recommendations",
                                        params={"k": 12, "exclude_categories": "beta"}))
    trained.post("/v1/items", json={"item_id": "a-new", "title": "Alpha new", "categories": ["alpha"]})
    assert "a-new" in _ids(trained.get("/v1/users/a1/recommendations", params={"k": 12}))
    trained.delete("/v1/items/a-new")
    trained.delete("/v1/items/a5")
    after = _ids(trained.get("/v1/users/a1/recommendations", params={"k": 12}))
    assert "a-new" not in after and "a5" not in after

    assert builds == [] and svc._view(bundle) is view  # never rebuilt
    assert view.revision == svc.manager.catalog.revision
    _assert_same(view, CatalogView(bundle, svc.manager.catalog))


def test_writes_of_another_process_are_applied_item_by_item(
    trained: TestClient, db: Database[dict[str, object]], builds: list[int]
) -> None:
    from fastinsight.schemas.core import ItemIn, ItemPatch

    svc = services_of(trained).recommend
    bundle = svc.manager.current
    view = svc._view(bundle)
    other = CatalogService(db)  # another process: this app hears nothing
    other.patch_item("b2", ItemPatch(hidden=True))
    other.upsert_item(ItemIn(item_id="b-new", title="Beta new", categories=["beta"]))
    other.delete_item("b3")
    svc.manager.poll()  # the catalogue refresh, as the poller runs it
    svc.manager.refresh_changed_items()
    got = _ids(trained.get("/v1/users/b1/recommendations", params={"k": 12}))
    assert "b2" not in got and "b3" not in got and "b-new" in got
    assert builds == [] and svc._view(bundle) is view
    _assert_same(view, CatalogView(bundle, svc.manager.catalog))


class _ShortJournal(ItemCatalog):
    JOURNAL = 3


def test_a_view_too_far_behind_the_change_journal_is_rebuilt(trained: TestClient) -> None:
    bundle = services_of(trained).recommend.manager.current
    catalog = _ShortJournal()
    catalog.refresh([{"item_id": i, "title": i, "categories": ["alpha"]} for i in bundle.item_index])
    cache = CatalogViewCache()
    first = cache.get(bundle, catalog)
    for n in range(5):
        catalog.apply({"item_id": "a1", "title": f"title {n}"}, "a1")
    assert catalog.changes_since(first.revision) is None
    rebuilt = cache.get(bundle, catalog)
    assert rebuilt is not first and rebuilt.titles[bundle.item_index["a1"]] == "title 4"
    catalog.apply({"item_id": "a2", "title": "two", "hidden": True}, "a2")
    assert catalog.changes_since(rebuilt.revision) == (catalog.revision, [("a2", catalog.get("a2"))])
    assert cache.get(bundle, catalog) is rebuilt  # within the journal: applied in place
    assert rebuilt.hidden[bundle.item_index["a2"]] and rebuilt.titles[bundle.item_index["a2"]] == "two"
    catalog.refresh([{"item_id": "a1", "title": "only one"}])  # a full reload: rebuilt again
    assert cache.get(bundle, catalog) is not rebuilt


def test_two_tower_embeds_only_the_changed_new_items(
    db: Database[dict[str, object]], settings: Settings, builds: list[int]
) -> None:
    seed(db, settings)
    train(db, settings, "two_tower", {"dim": 8, "epochs": 5, "batch_size": 32,
                                      "validation_fraction": 0.0}, evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        svc = services_of(client).recommend
        bundle = svc.manager.current
        view = svc._view(bundle)
        built = len(builds)  # the start-up build
        for n, cats in enumerate((["alpha"], ["beta"], ["alpha"])):
            client.post("/v1/items", json={"item_id": f"n{n}", "title": f"New {n}", "categories": cats,
                                           "tags": ["red"]})
        client.patch("/v1/items/n0", json={"title": "New zero, retitled", "categories": ["beta"]})
        client.patch("/v1/items/n1", json={"hidden": True})
        assert sorted(c.item_id for c in view.cold_items) == ["n0", "n2"]
        assert view.cold_vectors is not None and view.cold_vectors.shape[0] == 2
        assert len(builds) == built and svc._view(bundle) is view
        _assert_same(view, CatalogView(bundle, svc.manager.catalog))


def test_requests_during_item_writes_see_each_item_before_or_after(trained: TestClient) -> None:
    """Readers on four threads while items are hidden and shown again: no error, and a
    hidden item is never returned once the write that hid it was acknowledged."""
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            r = trained.get("/v1/users/a0/recommendations", params={"k": 12, "categories": "alpha"})
            if r.status_code != 200:
                errors.append(r.text)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for n in range(30):
            item = f"a{3 + n % 3}"
            assert trained.patch(f"/v1/items/{item}", json={"hidden": True}).status_code == 200
            got = _ids(trained.get("/v1/users/a0/recommendations", params={"k": 12}))
            assert item not in got, (n, item, got)
            assert trained.patch(f"/v1/items/{item}", json={"hidden": False,
                                                            "categories": ["alpha", f"c{n}"]}).status_code == 200
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []
