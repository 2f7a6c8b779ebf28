"""Typed errors carry the error body's details; cursor iterators walk every page."""

from __future__ import annotations

import httpx
import pytest

from fastinsight_client import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    FastInsight,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from fastinsight_client.errors import error_from
from tests.clients.conftest import DEMO, Live
from tests.clients.recorder import Recorder
from tests.conftest import ADMIN_KEY, API_KEY


def test_each_kind_of_error_is_its_own_class_with_the_field_details(live: Live) -> None:
    with FastInsight(live.url, api_key=API_KEY, admin_key=ADMIN_KEY) as fi:
        with pytest.raises(ValidationFailedError) as invalid:
            fi.upsert_item({"item_id": "x" * 200, "categories": ["ok", " "]})
        err = invalid.value
        assert (err.status_code, err.code) == (422, "validation_failed") and err.request_id
        assert set(err.field_messages()) == {"item_id", "categories.1"}
        assert "128" in err.field_messages()["item_id"][0]

        with pytest.raises(ValidationFailedError) as bad_type:
            fi.track("user-000001", "item-000001", "teleport")
        assert [d.field for d in bad_type.value.details] == ["type"]

        with pytest.raises(NotFoundError) as missing:
            fi.get_item("no-such-item")
        assert missing.value.code == "not_found" and "no-such-item" in missing.value.message

        first = fi.create_experiment({"name": "errors A", "traffic": [0.9, 1.0],
                                      "variants": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}]})
        try:
            with pytest.raises(ConflictError) as overlap:
                fi.create_experiment({"name": "errors B", "traffic": [0.95, 1.0],
                                      "variants": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}]})
            assert overlap.value.status_code == 409 and "overlap" in overlap.value.message
        finally:
            fi.stop_experiment(first.id)
            fi.delete_experiment(first.id)

    with FastInsight(live.url, api_key="not-the-key") as stranger, pytest.raises(AuthenticationError) as who:
        stranger.recommend("user-000001")
    assert who.value.status_code == 401
    with FastInsight(live.url, api_key=API_KEY, admin_key=API_KEY) as mistaken, \
            pytest.raises(PermissionDeniedError) as denied:
        mistaken.list_models()
    assert denied.value.code == "forbidden"


def test_configuration_errors_name_what_is_missing(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FASTINSIGHT_URL", "FASTINSIGHT_API_KEY", "FASTINSIGHT_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="FASTINSIGHT_URL"):
        FastInsight(api_key=API_KEY)
    with pytest.raises(ConfigurationError, match="FASTINSIGHT_API_KEY"):
        FastInsight(live.url)
    monkeypatch.setenv("FASTINSIGHT_URL", live.url)
    monkeypatch.setenv("FASTINSIGHT_API_KEY", API_KEY)
    with FastInsight() as from_env:  # both from the environment
        assert from_env.get_item("item-000001").item_id == "item-000001"
        with pytest.raises(ConfigurationError, match="admin key"):
            from_env.list_models()  # never sent with the API key, never attempted


def test_an_error_body_from_something_in_front_of_the_server_still_gets_a_class() -> None:
    proxy_page = httpx.Response(502, text="<html>Bad gateway</html>")
    err = error_from(proxy_page)
    assert type(err).__name__ == "ServerError" and err.code == "http_502" and "Bad gateway" in err.message
    throttled = error_from(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}))
    assert type(throttled).__name__ == "RateLimitedError" and throttled.retry_after and throttled.retry_after > 0


def test_iterators_walk_every_page_once(live: Live) -> None:
    recorder = Recorder(httpx.get(live.url + "/openapi.json").json())
    pages: list[str] = []
    http = httpx.Client(event_hooks={"request": [recorder.hook, lambda r: pages.append(str(r.url))]})
    with FastInsight(live.url, api_key=API_KEY, http_client=http) as fi:
        users = [u.user_id for u in fi.iter_users(page_size=7)]
        user_pages = len(pages)
        items = [i.item_id for i in fi.iter_items(page_size=9)]
    http.close()
    client, db = live.db()
    try:
        assert sorted(users) == sorted(d["_id"] for d in db["users"].find({}, {"_id": 1}))
        assert sorted(items) == sorted(d["_id"] for d in db["items"].find({}, {"_id": 1}))
    finally:
        client.close()
    assert len(users) == len(set(users)) >= DEMO.users and len(items) == len(set(items)) >= DEMO.items
    assert user_pages >= 9 and len(pages) - user_pages >= 5  # 2+ pages each, by cursor
    assert "cursor=" in pages[1]
