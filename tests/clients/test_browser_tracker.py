"""The tracker in headless Chromium on the demo shop page, served from another origin
than the API (CORS): a click tracked while offline is sent when the network returns,
a click right before the page is left goes out by ``navigator.sendBeacon``, and the
experiment report credits both to the list by its ``recommendation_id``."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from fastinsight_client import FastInsight
from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.clients.conftest import Live
from tests.conftest import ADMIN_KEY, API_KEY

pytestmark = pytest.mark.browser
STATS = "() => window.fastinsightTracker && window.fastinsightTracker.stats()"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture()
def shop(live: Live, js_build: Path) -> Iterator[str]:
    """The built client and its demo page, served on the origin the API allows."""
    server = ThreadingHTTPServer(("127.0.0.1", live.shop_port), functools.partial(_Quiet, directory=str(js_build)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{live.shop_origin}/demo/shop.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture()
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package 'chromium'", pytrace=False)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        tab = context.new_page()
        tab.errors = []
        tab.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
        tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def _poll(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def _beacons(live: Live) -> float:
    metrics = httpx.get(live.url + "/metrics").text
    found = re.search(r'fastinsight_http_requests_total\{method="POST",route="/v1/beacon",status="200"\} (\S+)', metrics)
    return float(found.group(1)) if found else 0.0


def test_a_tracked_click_is_attributed_in_the_experiment_report(live: Live, shop: str, page: Any) -> None:
    with FastInsight(live.url, api_key=API_KEY, admin_key=ADMIN_KEY) as fi:
        experiment = fi.create_experiment({
            "name": "browser tracker", "traffic": [0.5, 1.0],
            "variants": [{"name": "A", "share": 0.5},
                         {"name": "B", "share": 0.5, "rules": {"max_per_category": 1}}]})

        def visitor() -> str | None:
            return next((f"user-{n:06d}" for n in range(60)
                         if fi.recommend(f"user-{n:06d}", 4).experiment_id == experiment.id), None)

        user = _poll(visitor, "a visitor in the experiment")
        beacons_before = _beacons(live)
        config = urlencode({"api": live.url, "key": API_KEY, "user": user, "flush": 60000})
        page.goto(f"{shop}#{config}")
        page.wait_for_function("() => document.querySelectorAll('[data-testid=recommendations] button').length === 4")
        listed = page.get_attribute("[data-testid=recommendations]", "data-recommendation-id")
        assert listed and page.get_attribute("[data-testid=recommendations]", "data-variant") in {"A", "B"}
        page.screenshot(path=str(ARTIFACTS / "tracker-demo-shop.png"))

        # Offline: the click waits in the queue; back online, it is sent at once.
        page.context.set_offline(True)
        page.click("[data-testid=recommendations] li:nth-child(1) button")
        page.evaluate("() => window.fastinsightTracker.flush()")  # an attempt now, not in 60 s
        page.wait_for_function(f"() => ({STATS})().failures >= 1 && ({STATS})().queued === 1")
        page.context.set_offline(False)
        page.wait_for_function(f"() => ({STATS})().sent === 1 && ({STATS})().queued === 0")

        # The page is left right after a click: the beacon carries it.
        page.click("[data-testid=recommendations] li:nth-child(2) button")
        assert page.evaluate(STATS)["queued"] == 1
        page.goto("about:blank")
        _poll(lambda: _beacons(live) > beacons_before, "the beacon")

        report = _poll(lambda: (r := fi.experiment_report(experiment.id, fresh=True)).attribution.by_id == 2 and r,
                       "both clicks credited by recommendation_id")
        arms = {a.name: a for a in report.arms}
        served = next(a for a in arms.values() if a.clicks)
        assert served.clicks == 2 and served.clicked_exposures == 1
        assert sum(a.clicks for a in arms.values()) == 2 and report.attribution.unmatched_id == 0
        fi.stop_experiment(experiment.id)
        fi.delete_experiment(experiment.id)
    assert not page.errors, page.errors
