"""Retries: 429 and 503 are sent again after ``Retry-After`` (a scripted proxy in front of
the real server, and a real backup write pause); other 4xx never; an answer lost on the
way back is retried only where the event id makes a second delivery harmless."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from fastinsight.storage.mongo.maintenance import clear_pause_flag, set_pause_flag
from fastinsight_client import (
    NO_RETRIES,
    BadRequestError,
    FastInsight,
    RateLimitedError,
    RetryPolicy,
    TransportError,
    UnavailableError,
    ValidationFailedError,
)
from tests.clients.conftest import Live
from tests.clients.proxy import scripted_proxy
from tests.conftest import ADMIN_KEY, API_KEY

FAST = RetryPolicy(max_retries=3, backoff=0.05, max_backoff=0.2)


def _client(url: str, retry: RetryPolicy = FAST) -> FastInsight:
    return FastInsight(url, api_key=API_KEY, admin_key=ADMIN_KEY, retry=retry, timeout=30)


def test_a_503_then_success_waits_for_retry_after(live: Live) -> None:
    with scripted_proxy(live.url, ["503:1"]) as proxy, _client(proxy.url) as fi:
        recs = fi.recommend("user-000001", 3)
    assert len(recs.items) == 3
    assert [s.path.split("?")[0] for s in proxy.seen] == ["/v1/users/user-000001/recommendations"] * 2
    assert proxy.seen[1].at - proxy.seen[0].at >= 1.0  # Retry-After: 1 was honoured, not the 0.05 s backoff


def test_a_429_then_success_and_the_same_event_is_sent_again(live: Live) -> None:
    with scripted_proxy(live.url, ["429:0", "429:0"]) as proxy, _client(proxy.url) as fi:
        report = fi.track("user-000001", "item-000001", "view")
    assert report.inserted == 1 and len(proxy.seen) == 3
    assert proxy.seen[0].body == proxy.seen[2].body  # one body, one event_id, for every attempt


def test_other_client_errors_are_never_retried(live: Live) -> None:
    with scripted_proxy(live.url, ["422", "400"]) as proxy, _client(proxy.url) as fi:
        with pytest.raises(ValidationFailedError) as caught:
            fi.get_item("item-000001")
        assert len(proxy.seen) == 1 and caught.value.details[0].field == "scripted"
        with pytest.raises(BadRequestError):
            fi.get_item("item-000001")
        assert len(proxy.seen) == 2
        assert fi.get_item("item-000001").item_id == "item-000001"  # the script is spent: forwarded


def test_giving_up_raises_the_last_error_with_its_retry_hint(live: Live) -> None:
    give_up = RetryPolicy(max_retries=2, backoff=0.01)
    with (scripted_proxy(live.url, ["503:0"] * 3) as proxy, _client(proxy.url, give_up) as fi,
          pytest.raises(UnavailableError) as caught):
        fi.overview()
    assert len(proxy.seen) == 3 and caught.value.retry_after == 0.0
    with (scripted_proxy(live.url, ["429:120"]) as proxy, _client(proxy.url) as fi,
          pytest.raises(RateLimitedError) as limited):
        fi.overview()  # a wait longer than max_retry_after is not shortened: raised at once
    assert len(proxy.seen) == 1 and limited.value.retry_after == 120.0


def test_a_lost_answer_is_retried_only_when_that_cannot_store_twice(live: Live) -> None:
    event_id = f"lost-{uuid.uuid4().hex[:8]}"
    with scripted_proxy(live.url, ["forward-drop"]) as proxy, _client(proxy.url) as fi:
        report = fi.track("user-000003", "item-000004", "click", event_id=event_id)
    assert len(proxy.seen) == 2 and report.duplicates == 1  # stored by the first, recognised by the second
    client, db = live.db()
    try:
        assert db["interactions"].count_documents({"event_id": event_id}) == 1
    finally:
        client.close()
    with (scripted_proxy(live.url, ["drop"]) as proxy, _client(proxy.url) as fi,
          pytest.raises(TransportError)):
        fi.train("popularity", activate=False)  # a second job is not a retry: not sent again
    assert len(proxy.seen) == 1


def test_a_real_write_pause_is_waited_out(live: Live) -> None:
    """A backup's write pause answers 503 with Retry-After: 5; the client waits and succeeds."""
    client, db = live.db()
    set_pause_flag(db, {"reason": "client retry test", "since": time.time()})
    try:
        with _client(live.url, NO_RETRIES) as probe:
            def refused() -> bool:
                try:
                    probe.upsert_item({"item_id": "pause-probe"})
                except UnavailableError as exc:
                    return exc.retry_after == 5.0 and "paused" in exc.message
                return False

            deadline = time.monotonic() + 10
            while not refused():  # the server reads the flag about once a second
                assert time.monotonic() < deadline, "the write pause was never seen"
                time.sleep(0.1)
        resumed = threading.Timer(1.0, clear_pause_flag, args=(db,))
        resumed.start()
        statuses: list[int] = []
        http = httpx.Client(event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
        with FastInsight(live.url, api_key=API_KEY, http_client=http) as fi:
            report = fi.track("user-000002", "item-000002", "click")
        resumed.join()
        assert report.inserted == 1 and statuses == [503, 201]
    finally:
        clear_pause_flag(db)
        client.close()
