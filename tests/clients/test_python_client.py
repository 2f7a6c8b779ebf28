"""The Python client against a real server over the real database: every operation of
the API through a ``FastInsight`` method (the recorder proves none is left out), with
the answers read into the generated models."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from fastinsight_client import FastInsight, NotFoundError
from fastinsight_client.models import (
    DeletedOut,
    ItemIn,
    ItemPatch,
    PageUserOut,
    RecommendationsOut,
    RefreshOut,
    SegmentsOut,
)
from tests.clients.conftest import Live
from tests.clients.recorder import Recorder
from tests.conftest import ADMIN_KEY, API_KEY, OPERATOR_KEY


def _wait(predicate, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _catalogue(fi: FastInsight) -> None:
    user = fi.upsert_user({"user_id": "sdk-u1", "attributes": {"tier": "gold", "age": 41}})
    assert user.user_id == "sdk-u1" and isinstance(user.created_at, datetime)
    assert fi.get_user("sdk-u1").attributes == {"tier": "gold", "age": 41}
    patched = fi.patch_user("sdk-u1", {"attributes": {"tier": None, "city": "Oslo"}})
    assert patched.attributes == {"age": 41, "city": "Oslo"}
    page = fi.list_users(limit=5)
    assert isinstance(page, PageUserOut) and len(page.items) == 5 and page.next_cursor
    second = fi.list_users(limit=5, cursor=page.next_cursor)
    assert {u.user_id for u in page.items}.isdisjoint(u.user_id for u in second.items)

    item = fi.upsert_item(ItemIn(item_id="sdk-i1", title="Kettle", categories=["sdk-kitchen"]))
    assert item.title == "Kettle" and item.hidden is False
    fi.upsert_item({"item_id": "sdk-i2", "title": "Teapot", "categories": ["sdk-kitchen"]})
    assert fi.patch_item("sdk-i1", ItemPatch(title="Steel kettle")).categories == ["sdk-kitchen"]
    assert fi.get_item("sdk-i1").title == "Steel kettle"
    listed = fi.list_items(category="sdk-kitchen")
    assert [i.item_id for i in listed.items] == ["sdk-i1", "sdk-i2"] and listed.next_cursor is None


def _events(fi: FastInsight) -> None:
    first = fi.track("sdk-u1", "sdk-i1", "view")
    assert first.inserted == 1
    again = [fi.track("sdk-u1", "sdk-i2", "like", event_id="sdk-like-1") for _ in range(2)]
    assert (again[0].inserted, again[1].duplicates) == (1, 1)  # the same event_id is one event
    batch = fi.track_many([{"user_id": "sdk-u1", "item_id": "sdk-i2", "type": "click"},
                           {"user_id": "sdk-u1", "item_id": "sdk-missing", "type": "click"}])
    assert batch.inserted == 1 and [r.row for r in batch.rejected] == [2]
    assert batch.rejected[0].errors[0].field == "item_id"
    history = fi.user_interactions("sdk-u1", limit=10)
    assert len(history) == 3 and all(e.event_id for e in history)  # the client named every event
    assert history[0].timestamp >= history[-1].timestamp


def _recommendations(fi: FastInsight) -> RecommendationsOut:
    recs = fi.recommend("user-000001", 5)
    assert len(recs.items) == 5 and recs.recommendation_id and recs.model_version
    only = fi.recommend("user-000001", 3, categories=["books"], exclude_seen=True)
    assert all("books" in fi.get_item(i.item_id).categories for i in only.items)
    skipped = fi.recommend("user-000001", 5, exclude=[recs.items[0].item_id])
    assert recs.items[0].item_id not in {i.item_id for i in skipped.items}
    similar = fi.similar("item-000001", 3, user_id="user-000002")
    assert similar.item_id == "item-000001" and len(similar.items) == 3 and similar.recommendation_id
    trending = fi.trending(4, window="30d")
    assert len(trending.items) == 4 and trending.window_days == 30
    session = fi.recommend_session(["item-000001", "item-000002"], 4, exclude=["item-000003"])
    assert len(session.items) == 4 and "item-000003" not in {i.item_id for i in session.items}
    shown = fi.report_displayed([{"recommendation_id": recs.recommendation_id,
                                  "item_ids": [recs.items[0].item_id, recs.items[1].item_id]}])
    assert shown.accepted == 1
    return recs


def _insights(fi: FastInsight) -> None:
    refreshed = fi.refresh_insights(wait=True)
    assert isinstance(refreshed, RefreshOut) and refreshed.status == "done" and refreshed.interactions
    assert fi.insights_status().running is False
    assert fi.overview().interactions >= 1500
    assert fi.activity("week", days=30).granularity == "week"
    top = fi.top_items(days=60, k=5)
    assert len(top.entries) == 5 and top.total > 0
    assert fi.top_categories(days=60, k=3).entries
    assert [s.type for s in fi.funnel(days=60, steps="view,click").steps] == ["view", "click"]
    assert fi.funnel_by_category(days=60).categories
    assert fi.catalogue(days=60).items >= 40
    assert fi.model_health().active_version
    assert fi.online_metrics(days=7).days == 7


def _segments(fi: FastInsight) -> None:
    built = fi.rebuild_segments(k=3, wait=True)
    assert isinstance(built, SegmentsOut) and built.k == 3
    segments = fi.segments()
    biggest = max(segments.segments, key=lambda s: s.size)
    assert biggest.size > 7
    members = list(fi.iter_segment_users(biggest.segment_id, page_size=7))  # 2+ pages
    assert len(members) == biggest.size == len({m.user_id for m in members})
    assert fi.segment_users(biggest.segment_id, 0, 3).next_offset == 3
    assert fi.campaigns(per_segment=2).rows
    assert len(fi.item_audience("item-000001", 5).users) == 5
    assert fi.category_audience("books", 5, exclude_seen=False).kind == "category"


def _admin(fi: FastInsight, live: Live) -> str:
    versions = fi.list_models()
    assert [v.version for v in versions if v.active] == [live.active_version]
    assert fi.activate_model(live.active_version).active
    started = fi.train("popularity", activate=False)
    job = fi.wait_for_job(started.job_id, timeout=180, poll=0.3)
    assert job.status == "succeeded" and job.args["algorithm"] == "popularity"
    popularity = [v.version for v in fi.list_models() if v.algorithm == "popularity"]
    assert len(popularity) == 1
    cleanup = fi.start_job({"name": "cleanup_logs", "args": {"dry_run": True}})
    assert fi.wait_for_job(cleanup.id, timeout=120, poll=0.3).exit_code == 0
    assert fi.get_job(cleanup.id).name == "cleanup_logs"
    assert cleanup.id in {j.id for j in fi.list_jobs(name="cleanup_logs", status="succeeded").items}
    return popularity[0]


def _experiments(fi: FastInsight) -> None:
    created = fi.create_experiment({
        "name": "sdk: als vs popularity", "traffic": [0.0, 0.5],
        "variants": [{"name": "A", "algorithm": "als", "share": 0.5},
                     {"name": "B", "algorithm": "popularity", "share": 0.5}]})
    assert created.status == "running" and [a.name for a in created.variants] == ["A", "B"]
    assert fi.get_experiment(created.id).name == created.name
    assert created.id in {e.id for e in fi.list_experiments()}
    assert created.id in {e.id for e in fi.experiments()}
    assert fi.update_experiment(created.id, {"description": "from the SDK test"}).description

    def served() -> tuple[str, RecommendationsOut] | None:
        for n in range(60):
            user = f"user-{n:06d}"
            recs = fi.recommend(user, 5)
            if recs.experiment_id == created.id and recs.items:
                return user, recs
        return None

    user, recs = _wait(served, "a user served by the experiment")
    assert recs.variant in {"A", "B"}
    fi.track(user, recs.items[0].item_id, "purchase", value=25.0, recommendation_id=recs.recommendation_id)
    report = _wait(lambda: (r := fi.experiment_report(created.id, fresh=True)).attribution.by_id and r,
                   "the purchase credited to the list by its recommendation_id")
    arm = next(a for a in report.arms if a.name == recs.variant)
    assert arm.conversions == 1 and arm.value == 25.0 and report.attribution.by_id == 1
    assert fi.stop_experiment(created.id).status == "stopped"
    assert fi.delete_experiment(created.id) is None
    with pytest.raises(NotFoundError):
        fi.get_experiment(created.id)


def _imports(fi: FastInsight, tmp: Path) -> None:
    users = fi.import_users([{"user_id": "sdk-imp-u1"}, {"user_id": "sdk-imp-u2", "attributes": {"vip": True}}])
    assert users.inserted == 2
    (tmp / "items.csv").write_text("item_id,title,categories\nsdk-imp-i1,Mug,sdk-kitchen|sdk-gifts\n")
    items = fi.import_items(tmp / "items.csv")
    assert items.inserted == 1 and fi.get_item("sdk-imp-i1").categories == ["sdk-kitchen", "sdk-gifts"]
    (tmp / "events.jsonl").write_text('{"user_id": "sdk-imp-u1", "item_id": "sdk-imp-i1", "type": "view"}\n')
    assert fi.import_interactions(tmp / "events.jsonl").inserted == 1
    assert fi.delete_item("sdk-imp-i1").interactions_deleted == 1


def _erasure(fi: FastInsight) -> None:
    # The item's events go with it (the like and the click), the user's with them (the view).
    assert fi.delete_item("sdk-i2") == DeletedOut(deleted=True, interactions_deleted=2)
    gone = fi.delete_user("sdk-u1")
    assert gone.deleted and gone.interactions_deleted == 1
    with pytest.raises(NotFoundError) as caught:
        fi.get_user("sdk-u1")
    assert caught.value.status_code == 404 and caught.value.request_id


def _operator(live: Live, http: httpx.Client) -> None:
    """The operator's operations: a client whose api_key is the operator key."""
    with FastInsight(live.url, api_key=OPERATOR_KEY, http_client=http) as op:
        created = op.create_tenant({"id": "sdk-shop", "quotas": {"items": 10}})
        assert created.database == f"{live.db_name}_t_sdk-shop"
        assert "sdk-shop" in {t.id for t in op.list_tenants(usage=True).tenants}
        assert op.update_tenant("sdk-shop", {"limits": {"requests_per_second": 100}}).limits.requests_per_second == 100
        key = op.create_key("sdk-shop", {"scope": "api", "name": "sdk"})
        with FastInsight(live.url, api_key=key.key, http_client=http) as shop:
            assert shop.list_users().items == []  # its own, empty database
        assert [k.key_id for k in op.list_keys("sdk-shop").keys] == [key.key_id]
        assert op.revoke_key("sdk-shop", key.key_id).revoked_at is not None
        assert op.suspend_tenant("sdk-shop").status == "suspended"
        assert op.resume_tenant("sdk-shop").status == "active"
        assert op.get_tenant("sdk-shop").usage is not None
        assert op.delete_tenant("sdk-shop").deleted


def test_every_operation_through_the_sync_client(live: Live, tmp_path: Path) -> None:
    recorder = Recorder(httpx.get(live.url + "/openapi.json").json())
    http = httpx.Client(event_hooks={"request": [recorder.hook]})
    with FastInsight(live.url, api_key=API_KEY, admin_key=ADMIN_KEY, http_client=http) as fi:
        assert fi.live().status == "ok" and fi.ready().database == "ok"
        _catalogue(fi)
        _events(fi)
        _recommendations(fi)
        _insights(fi)
        _segments(fi)
        _admin(fi, live)
        _experiments(fi)
        _imports(fi, tmp_path)
        _erasure(fi)
    _operator(live, http)
    http.close()
    assert recorder.missing() == set(), "operations no client method called"
