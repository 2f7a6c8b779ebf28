"""Training -> model version in MongoDB -> serving, with known-answer data.

Two tastes: users ``a*`` interact with the ``alpha`` items, users ``b*`` with the
``beta`` items. Item ``a0``/``b0`` are the most popular of each group.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.training.pipeline import train
from tests.conftest import ADMIN_KEY, API_KEY, services_of

ALPHA = [f"a{i}" for i in range(6)]
BETA = [f"b{i}" for i in range(6)]


def _rows(rows: list[dict[str, object]]) -> Iterator[tuple[int, dict[str, object]]]:
    return ((n, r) for n, r in enumerate(rows, start=1))


def seed(db: Database[dict[str, object]], settings: Settings) -> None:
    svc = IngestService(db, settings)
    items = [{"item_id": i, "title": f"Alpha {i}", "categories": ["alpha"], "tags": ["red"]} for i in ALPHA]
    items += [{"item_id": i, "title": f"Beta {i}", "categories": ["beta"], "tags": ["blue"]} for i in BETA]
    svc.import_items(_rows(items))
    now = datetime.now(UTC)
    events = []
    for group, catalogue in (("a", ALPHA), ("b", BETA)):
        for u in range(12):
            # Everyone saw item 0..3 except user 0, who has not seen item 3 (the withheld one).
            liked = catalogue[:4] if u else catalogue[:3]
            liked = liked + ([catalogue[4]] if u % 2 else [])
            for n, item in enumerate(liked):
                events.append({"user_id": f"{group}{u}", "item_id": item, "type": "like",
                               "timestamp": (now - timedelta(hours=n + u)).isoformat()})
    report = svc.import_interactions(_rows(events))
    assert not report.rejected
    svc.import_users(_rows([{"user_id": "newcomer"}]))


@pytest.fixture()
def trained(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        yield client


def _ids(response: object) -> list[str]:
    body = response.json()  # type: ignore[attr-defined]
    return [i["item_id"] for i in body["items"]]


def test_version_stored_and_withheld_item_first(trained: TestClient, db: Database[dict[str, object]]) -> None:
    versions = trained.get("/v1/admin/models", headers={"X-API-Key": ADMIN_KEY}).json()
    assert len(versions) == 1 and versions[0]["active"] and versions[0]["algorithm"] == "itemknn"
    assert versions[0]["snapshot"]["interactions"] == db["interactions"].count_documents({})
    assert db["model_chunks"].count_documents({}) >= 3
    stages = versions[0]["stages"]
    assert {"read", "matrix", "fit", "artefacts", "candidates", "upload",
            "check_and_activate"} <= set(stages)
    assert all(stages[s]["seconds"] >= 0 and stages[s]["peak_rss_mb"] > 0
               for s in stages if s != "peak_is_per_stage")
    assert stages["peak_is_per_stage"] is True  # Linux: each peak is the stage's own
    assert versions[0]["artefact_bytes"] > 0
    r = trained.get("/v1/users/a0/recommendations", params={"k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == versions[0]["version"]
    assert body["items"][0]["item_id"] == "a3"
    assert body["items"][0]["reason"].startswith("similar to Alpha")
    assert all(i.startswith("a") for i in _ids(r))


def test_seen_hidden_disliked_and_excluded_never_returned(trained: TestClient) -> None:
    seen = {"a0", "a1", "a2"}
    assert not seen & set(_ids(trained.get("/v1/users/a0/recommendations", params={"k": 12})))
    with_seen = _ids(trained.get("/v1/users/a0/recommendations",
                                 params={"k": 12, "exclude_seen": False}))
    assert seen <= set(with_seen)
    trained.patch("/v1/items/a3", json={"hidden": True})
    assert "a3" not in _ids(trained.get("/v1/users/a0/recommendations", params={"k": 12}))
    trained.post("/v1/interactions", json={"user_id": "a0", "item_id": "a4", "type": "dislike"})
    got = _ids(trained.get("/v1/users/a0/recommendations", params={"k": 12, "exclude_seen": False}))
    assert "a4" not in got and "a3" not in got
    got = _ids(trained.get("/v1/users/a0/recommendations",
                           params={"k": 12, "exclude": ["a5", "b0"]}))
    assert "a5" not in got and "b0" not in got


def test_category_filters(trained: TestClient) -> None:
    only_beta = _ids(trained.get("/v1/users/a0/recommendations", params={"k": 5, "categories": "beta"}))
    assert only_beta and all(i.startswith("b") for i in only_beta)
    no_alpha = _ids(trained.get("/v1/users/a0/recommendations",
                                params={"k": 5, "exclude_categories": "alpha"}))
    assert no_alpha and all(i.startswith("b") for i in no_alpha)


def test_cold_user_gets_trending_with_reason(trained: TestClient) -> None:
    body = trained.get("/v1/users/newcomer/recommendations", params={"k": 4}).json()
    assert body["items"][0]["item_id"] in {"a0", "b0"}
    assert body["items"][0]["reason"].startswith("trending in")


def test_cold_item_by_content_until_next_training(trained: TestClient) -> None:
    r = trained.post("/v1/items", json={"item_id": "a-new", "title": "Alpha novelty",
                                        "categories": ["alpha"], "tags": ["red"]})
    assert r.status_code == 201
    recs = trained.get("/v1/users/a0/recommendations", params={"k": 4}).json()["items"]
    new = [i for i in recs if i["item_id"] == "a-new"]
    assert new and new[0]["reason"].startswith("new in alpha")
    assert "a-new" not in _ids(trained.get("/v1/users/b1/recommendations", params={"k": 6}))
    similar = _ids(trained.get("/v1/items/a-new/similar", params={"k": 3}))
    assert similar and all(i.startswith("a") for i in similar)


def test_real_time_interaction_changes_next_recommendations(trained: TestClient) -> None:
    before = _ids(trained.get("/v1/users/a1/recommendations", params={"k": 5}))
    assert not any(i.startswith("b") for i in before[:1])
    for item in ("b0", "b1", "b2", "b3"):
        trained.post("/v1/interactions", json={"user_id": "a1", "item_id": item, "type": "purchase"})
    after = _ids(trained.get("/v1/users/a1/recommendations", params={"k": 5}))
    assert not {"b0", "b1", "b2", "b3"} & set(after)
    assert after[0] in {"b4", "b5"}


def test_similar_trending_and_session(trained: TestClient) -> None:
    similar = trained.get("/v1/items/a0/similar", params={"k": 3}).json()
    assert [i for i in _ids_from(similar) if i.startswith("b")] == []
    trending = trained.get("/v1/items/trending", params={"k": 2, "category": "beta"}).json()
    assert _ids_from(trending)[0] == "b0" and trending["items"][0]["reason"] == "trending in beta"
    session = trained.post("/v1/recommendations/session", json={"items": ["b1", "b2"], "k": 3}).json()
    assert session["items"] and all(i.startswith("b") for i in _ids_from(session))
    assert not {"b1", "b2"} & set(_ids_from(session))


def _ids_from(body: dict[str, object]) -> list[str]:
    return [i["item_id"] for i in body["items"]]  # type: ignore[attr-defined, index]


def test_bad_parameters(trained: TestClient) -> None:
    for k in (0, 10001):
        r = trained.get("/v1/users/a0/recommendations", params={"k": k})
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "query.k"
    r = trained.get("/v1/users/nobody/recommendations", params={"exclude_seen": True})
    assert r.status_code == 404 and "nobody" in r.json()["message"]
    r = trained.post("/v1/admin/models/v-unknown/activate", headers={"X-API-Key": ADMIN_KEY})
    assert r.status_code == 404
    assert trained.post("/v1/admin/models/x/activate").status_code == 403
    r = trained.get("/v1/items/trending", params={"window": "forever"})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "window"


def test_rollback_and_switch_under_concurrent_requests(
    trained: TestClient, db: Database[dict[str, object]], settings: Settings
) -> None:
    first = trained.get("/v1/admin/models", headers={"X-API-Key": ADMIN_KEY}).json()[0]["version"]
    second = train(db, settings, "popularity", evaluate=False)["version"]
    admin = {"X-API-Key": ADMIN_KEY}
    errors: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = trained.get("/v1/users/a0/recommendations", params={"k": 3})
            if r.status_code != 200:
                errors.append(r.text)
            else:
                versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            for version in (first, second):
                assert trained.post(f"/v1/admin/models/{version}/activate", headers=admin).status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert versions == {first, second}
    trained.post(f"/v1/admin/models/{first}/activate", headers=admin)
    assert trained.get("/v1/users/a0/recommendations").json()["model_version"] == first


def test_als_version_embeddings_and_fold_in(db: Database[dict[str, object]], settings: Settings) -> None:
    from fastinsight.storage.mongo.models import ModelVersionRepository

    seed(db, settings)
    doc = train(db, settings, "als", {"factors": 2, "iterations": 30, "regularization": 0.1,
                                      "num_threads": 1}, evaluate=False)
    emb = ModelVersionRepository(db).load_embeddings()
    assert emb is not None and emb.version == doc["version"]
    assert emb.user_vectors.shape == (24, 2) and emb.item_vectors.shape == (12, 2)
    assert set(emb.item_ids.tolist()) == set(ALPHA + BETA)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        body = client.get("/v1/users/a0/recommendations", params={"k": 2}).json()
        assert body["items"][0]["item_id"] in {"a3", "a4", "a5"}
        assert body["items"][0]["reason"].startswith("similar to Alpha")
        similar = [i["item_id"] for i in client.get("/v1/items/b0/similar", params={"k": 3}).json()["items"]]
        assert all(i.startswith("b") for i in similar)
        before = [i["item_id"] for i in client.get("/v1/users/a2/recommendations").json()["items"]]
        assert before[0] in {"a4", "a5"}
        for item in ("b0", "b1", "b2"):
            client.post("/v1/interactions", json={"user_id": "a2", "item_id": item, "type": "purchase"})
        after = [i["item_id"] for i in client.get("/v1/users/a2/recommendations").json()["items"]]
        assert after[0] in {"b3", "b4"} and not {"b0", "b1", "b2"} & set(after)


def test_train_select_activates_best_on_validation(db: Database[dict[str, object]], settings: Settings) -> None:
    from fastinsight.storage.mongo.models import ModelVersionRepository

    seed(db, settings)
    doc = train(db, settings, select_from=["popularity", "itemknn"], evaluate=False)
    selection = doc["selection"]
    scores = {a: s["ndcg@10"] for a, s in selection["scores"].items()}
    assert set(scores) == {"popularity", "itemknn"}
    assert doc["algorithm"] == selection["winner"] == max(scores, key=scores.__getitem__)
    assert doc["reason"].startswith(selection["winner"])
    repo = ModelVersionRepository(db)
    assert repo.active_version() == doc["version"]
    assert repo.get(doc["version"])["selection"]["winner"] == doc["algorithm"]  # type: ignore[index]


def test_train_select_measures_candidates_with_the_side_data_they_are_trained_with(
    db: Database[dict[str, object]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastinsight.recsys.evaluation import selection

    seen: list[Any] = []
    real = selection.select_model

    def spy(matrix: Any, candidates: list[str], **kwargs: Any) -> Any:
        seen.append(kwargs["side"])
        return real(matrix, candidates, **kwargs)

    monkeypatch.setattr(selection, "select_model", spy)
    seed(db, settings)
    train(db, settings, select_from=["popularity", "itemknn"], evaluate=False)
    doc = train(db, settings, select_from=["popularity", "two_tower"], evaluate=False)
    plain, with_content = seen
    n_pairs = doc["snapshot"]["nnz"]
    # Times always (for session-aware models); item content only when a candidate takes it.
    assert plain.content is None and plain.times.nnz == n_pairs
    assert with_content.times.nnz == n_pairs
    assert with_content.content.features.shape[0] == len(ALPHA) + len(BETA)
    assert set(doc["selection"]["scores"]) == {"popularity", "two_tower"}


def test_two_tower_embeds_new_items_from_content(db: Database[dict[str, object]], settings: Settings) -> None:
    seed(db, settings)
    train(db, settings, "two_tower", {"dim": 8, "epochs": 40, "batch_size": 32, "learning_rate": 0.02,
                                      "validation_fraction": 0.0}, evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        client.post("/v1/items", json={"item_id": "a-fresh", "title": "Alpha fresh", "categories": ["alpha"],
                                       "tags": ["red"]})
        similar = client.get("/v1/items/a-fresh/similar", params={"k": 4}).json()["items"]
        assert similar and all(i["item_id"].startswith("a") for i in similar)
        assert similar[0]["reason"] == "similar content"
        recs = client.get("/v1/users/a1/recommendations", params={"k": 12}).json()["items"]
        fresh = [i for i in recs if i["item_id"] == "a-fresh"]
        assert fresh and fresh[0]["reason"] == "new item, matches your taste"
        b_recs = [i["item_id"] for i in client.get("/v1/users/b1/recommendations", params={"k": 12}).json()["items"]]
        assert b_recs.index("a-fresh") > max(b_recs.index(i) for i in b_recs if i.startswith("b"))


def test_item_hidden_by_another_process_is_applied_by_incremental_refresh(
    trained: TestClient, db: Database[dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastinsight.schemas.core import ItemPatch
    from fastinsight.services.data.catalog import CatalogService
    from fastinsight.storage.mongo import items as item_storage

    assert "a3" in _ids(trained.get("/v1/users/a0/recommendations", params={"k": 3}))
    # The database keeps milliseconds: a write in the same millisecond as a microsecond
    # ``before`` is stored as not after it. Step back one millisecond.
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    CatalogService(db).patch_item("a3", ItemPatch(hidden=True))  # another process
    manager = services_of(trained).models
    manager.refresh_changed_items()
    assert "a3" not in _ids(trained.get("/v1/users/a0/recommendations", params={"k": 12}))
    # Read through the change feed, one id at a time; past the limit, one scan of items.
    assert [d["item_id"] for d in item_storage.ItemRepository(db).changed_since(before)] == ["a3"]
    CatalogService(db).patch_item("a4", ItemPatch(title="Alpha four"))
    monkeypatch.setattr(item_storage, "CHANGES_READ_ONE_BY_ONE", 1)
    changed = item_storage.ItemRepository(db).changed_since(before)
    assert sorted(d["item_id"] for d in changed) == ["a3", "a4"]
    manager.refresh_changed_items()
    assert manager.catalog.get("a4").title == "Alpha four"


def test_item_deleted_by_another_process_is_dropped_by_incremental_refresh(
    trained: TestClient, db: Database[dict[str, object]]
) -> None:
    from fastinsight.services.data.catalog import CatalogService

    assert "a3" in _ids(trained.get("/v1/users/a0/recommendations", params={"k": 3}))
    CatalogService(db).delete_item("a3")  # another process: this app hears nothing
    manager = services_of(trained).models
    manager.refresh_changed_items()
    assert "a3" not in _ids(trained.get("/v1/users/a0/recommendations", params={"k": 12}))
    # Stored again later: the newer document wins over the tombstone.
    IngestService(db, services_of(trained).settings).import_items(
        _rows([{"item_id": "a3", "title": "Alpha a3", "categories": ["alpha"]}]))
    manager.refresh_changed_items()
    assert manager.catalog.get("a3") is not None


def test_ease_learns_sessions_from_the_stored_interaction_times(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    """Ten users viewed x and s minutes apart and l a month later; two more viewed x and l
    40 minutes apart. Over whole histories l goes with x more often, but the stored times
    say s goes with x within sessions: EASE trained from MongoDB ranks s first for a user
    who only viewed x, and ranks l first with its session term off."""
    svc = IngestService(db, settings)
    svc.import_items(_rows([{"item_id": i, "title": i.upper()} for i in ("x", "s", "l", "f")]))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    taken = {f"u{u}": [("x", 0), ("s", 3), ("l", 30 * 1440), ("f", 60 * 1440)] for u in range(10)}
    taken.update({f"u{u}": [("x", 0), ("l", 40)] for u in (10, 11)})  # minutes after day start
    events = [{"user_id": user, "item_id": item, "type": "view",
               "timestamp": (start + timedelta(days=n, minutes=m)).isoformat()}
              for n, (user, pairs) in enumerate(taken.items()) for item, m in pairs]
    events.append({"user_id": "t", "item_id": "x", "type": "view", "timestamp": start.isoformat()})
    assert not svc.import_interactions(_rows(events)).rejected
    firsts = []
    for params in ({"l2": 1.0}, {"l2": 1.0, "session_gap_seconds": 0}):
        train(db, settings, "ease", params, evaluate=False)
        with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
            r = client.get("/v1/users/t/recommendations", params={"k": 1})
            assert r.status_code == 200, r.text
            firsts.append(_ids(r)[0])
    assert firsts == ["s", "l"]
