"""What the one response middleware adds to every answer: the request id (echoed or made
up), the security headers, Prometheus metrics per route template and an access log line.
Written against the two middlewares it replaced, unchanged since."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from fastinsight.api.hardening import DATA_CSP

SECURITY = {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer"}


def _secured(headers: object) -> bool:
    return all(headers[k] == v for k, v in SECURITY.items())  # type: ignore[index]


def test_request_id_is_echoed_or_made_and_matches_the_error_body(client: TestClient) -> None:
    r = client.get("/v1/users/nobody", headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "abc-123" and r.json()["request_id"] == "abc-123"
    made = client.get("/v1/users/nobody").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/health/live", headers={"X-Request-ID": "x" * 100}).headers["x-request-id"] == "x" * 64
    r = client.get("/v1/users", params={"limit": "many"})
    assert r.status_code == 422 and r.json()["request_id"] == r.headers["x-request-id"]


def test_every_answer_has_one_set_of_security_headers(client: TestClient) -> None:
    responses = [client.get("/health/live"), client.get("/v1/users/nobody"),
                 client.get("/v1/users", headers={"X-API-Key": "wrong"}),
                 client.post("/v1/users", content=b"x" * 100, headers={"Content-Length": str(10**12)}),
                 client.get("/metrics")]
    assert [r.status_code for r in responses] == [200, 404, 401, 413, 200]
    for r in responses:
        assert _secured(r.headers), r.url
        assert r.headers["content-security-policy"] == DATA_CSP
        for name in (*SECURITY, "content-security-policy", "x-request-id"):
            assert len(r.headers.get_list(name)) == 1, name


def test_metrics_count_by_route_template_and_access_lines_are_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fastinsight.access")
    client.get("/v1/users/someone-1")
    client.get("/v1/users/someone-2", headers={"X-Request-ID": "rid-7"})
    text = client.get("/metrics").text
    line = next(ln for ln in text.splitlines() if ln.startswith("fastinsight_http_requests_total")
                and 'route="/v1/users/{user_id}"' in ln and 'status="404"' in ln)
    assert float(line.rsplit(" ", 1)[1]) >= 2
    assert 'fastinsight_http_request_seconds_count{method="GET",route="/v1/users/{user_id}"}' in text
    records = [r for r in caplog.records if r.name == "fastinsight.access"]
    mine = next(r for r in records if getattr(r, "request_id", None) == "rid-7")
    assert mine.getMessage().startswith("GET /v1/users/someone-2 404 ")
    assert mine.route == "/v1/users/{user_id}" and mine.status == 404  # type: ignore[attr-defined]


def test_an_unexpected_error_answers_500_and_keeps_the_connection(
    settings: object, db: object, caplog: pytest.LogCaptureFixture
) -> None:
    """A real server: uvicorn closes a keep-alive connection when an exception leaves the
    application, which Starlette's catch-all handler does after answering. The answer is
    made inside the middleware instead, so the next request reuses the connection."""
    import http.client
    import json
    import threading
    import time

    import uvicorn

    from fastinsight.api.app import create_app
    from fastinsight.config import Settings
    from tests.conftest import API_KEY
    from tests.live import free_port

    assert isinstance(settings, Settings)
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("a defect")

    app.add_api_route("/boom", boom)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        with caplog.at_level(logging.ERROR):
            conn.request("GET", "/boom", headers={"X-Request-ID": "req-1"})
            first = conn.getresponse()
            body = json.loads(first.read())
        sock = conn.sock
        assert first.status == 500 and body["error"] == "internal_error"
        assert body["request_id"] == "req-1" and first.getheader("x-request-id") == "req-1"
        assert _secured({k.lower(): v for k, v in first.getheaders()})
        assert "unhandled error on GET /boom" in caplog.text and "a defect" in caplog.text
        conn.request("GET", "/v1/users", headers={"X-API-Key": API_KEY})
        second = conn.getresponse()
        second.read()
        assert second.status == 200 and conn.sock is sock  # the same connection
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_request_id_that_is_not_printable_ascii_is_replaced(client: TestClient) -> None:
    for sent in ("caf\u00e9".encode(), b"a b", b"\x00x"):
        r = client.get("/v1/users/nobody", headers={"X-Request-ID": sent})  # type: ignore[dict-item]
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), (sent, r.headers["x-request-id"])
        assert r.json()["request_id"] == r.headers["x-request-id"]


def test_a_rate_limit_near_zero_still_answers_a_sane_retry_after() -> None:
    from fastinsight.errors import RateLimited
    from fastinsight.services.tenancy.ratelimit import MAX_RETRY_AFTER, RateLimiter

    limiter = RateLimiter(clock=lambda: 0.0)
    limiter.take("shop", 1e-300, 1.0)
    with pytest.raises(RateLimited) as refused:
        limiter.take("shop", 1e-300, 1.0)
    assert refused.value.retry_after == MAX_RETRY_AFTER
