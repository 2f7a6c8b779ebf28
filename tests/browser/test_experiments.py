"""The Experiments page: list, online click-through chart, a report with painted charts,
and a new A/B test started from the form (an overlapping one is refused with the reason)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Server, Tab
from tests.browser.test_dashboard import charts, open_view, shot, sign_in
from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.browser

PLOTTED = """(id) => window.Chart.getChart(document.querySelector(`[data-testid=${id}]`))
  .data.datasets.map((d) => d.data.filter((v) => v !== null && v !== undefined).length)"""


def _traffic(server: Server, experiment_id: str) -> None:
    """150 visitors ask for recommendations; the B arm's lists are clicked more often."""
    events = []
    for n in range(150):
        body = server.api("GET", f"/v1/users/user-{n:06d}/recommendations", params={"k": 5}).json()
        if body["experiment_id"] != experiment_id or not body["items"]:
            continue
        if body["variant"] == "B" or n % 3 == 0:
            events.append({"user_id": f"user-{n:06d}", "item_id": body["items"][0]["item_id"], "type": "click",
                           "recommendation_id": body["recommendation_id"]})
    posted = server.api("POST", "/v1/interactions/batch", json={"interactions": events})
    assert posted.status_code == 200 and not posted.json()["rejected"], posted.text


def test_experiments_page(tab: Tab, server: Server) -> None:
    older, newer = server.versions
    created = server.api("POST", "/v1/admin/experiments", key=ADMIN_KEY, json={
        "name": "older vs newer ALS", "traffic": [0.0, 0.5],
        "variants": [{"name": "A", "model_version": older, "share": 0.5},
                     {"name": "B", "model_version": newer, "share": 0.5}]})
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    _traffic(server, experiment_id)

    sign_in(tab, server)
    open_view(tab, server, "#experiments")
    tab.page.wait_for_selector("a.experiment-link")
    assert "older vs newer ALS" in tab.page.inner_text("main")
    tab.page.wait_for_function("() => document.querySelector('[data-testid=online-ctr-chart]')?.width > 0")
    assert charts(tab)["online-ctr-chart"]["painted"] > 200
    assert sum(tab.page.evaluate(PLOTTED, "online-ctr-chart")) >= 2  # a bar per served version
    shot(tab, "experiments")

    tab.page.click("a.experiment-link")
    tab.page.wait_for_function("() => document.querySelector('[data-testid=running-lift-chart]')?.width > 0")
    verdict = tab.page.inner_text("[data-testid=verdict]")
    assert "B vs A" in verdict or "Not enough data" in verdict or "better" in verdict, verdict
    found = charts(tab)
    assert found["arm-rates-chart"]["painted"] > 200 and found["running-lift-chart"]["painted"] > 200, found
    assert min(tab.page.evaluate(PLOTTED, "running-lift-chart")) >= 2  # lift, low and high have points
    assert "mSPRT" in tab.page.inner_text("[data-testid=method]")
    shot(tab, "experiment-report")

    # a second experiment from the form: overlapping traffic is refused with the reason...
    open_view(tab, server, "#experiments")
    form = "[data-testid=new-experiment]"
    tab.page.wait_for_selector(form)
    tab.page.fill(f"{form} input[name=name]", "newest ALS vs older")
    tab.page.select_option(f"{form} select[name=arm-a]", "algorithm:als")
    tab.page.select_option(f"{form} select[name=arm-b]", f"version:{older}")
    tab.page.click(f"{form} button[type=submit]")
    tab.page.wait_for_function(f"() => document.querySelector('{form} .error').textContent.includes('overlaps')")
    # ...and one on the other half starts and opens its (empty) report
    tab.page.fill(f"{form} input[name=traffic-from]", "0.5")
    tab.page.click(f"{form} button[type=submit]")
    tab.page.wait_for_selector("[data-testid=verdict]")
    assert "Not enough data yet" in tab.page.inner_text("[data-testid=verdict]")
    listed = server.api("GET", "/v1/admin/experiments", key=ADMIN_KEY).json()
    assert {e["name"] for e in listed} == {"older vs newer ALS", "newest ALS vs older"}
    assert all("409" in e for e in tab.errors), tab.errors  # the browser logs the refused request
