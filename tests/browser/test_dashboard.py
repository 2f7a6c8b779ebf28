"""Every dashboard page loads without console errors, charts paint, rollback switches models."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, Server, Tab
from tests.conftest import ADMIN_KEY, OPERATOR_KEY

pytestmark = pytest.mark.browser

PAINTED = """() => [...document.querySelectorAll('canvas')].map((c) => {
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  return {id: c.dataset.testid, width: c.width, height: c.height, painted};
})"""


def sign_in(tab: Tab, server: Server, key: str = ADMIN_KEY) -> None:
    tab.page.goto(server.url + "/dashboard#overview")
    tab.page.fill("#api-key", key)
    tab.page.click("#login-form button[type=submit]")
    tab.page.wait_for_selector("#nav:not([hidden])")


def open_view(tab: Tab, server: Server, hash_: str) -> None:
    tab.page.evaluate("(h) => { window.location.hash = h; }", hash_)
    tab.page.wait_for_function(
        "(h) => document.body.dataset.state === 'ready' && window.location.hash === h"
        " && document.querySelector('[data-view]')", arg=hash_)


def charts(tab: Tab) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in tab.page.evaluate(PAINTED)}


def shot(tab: Tab, name: str) -> None:
    tab.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_sign_in_keeps_the_key_for_the_tab_only(tab: Tab, server: Server) -> None:
    tab.page.goto(server.url + "/dashboard")
    assert tab.page.is_visible("#login-form")
    sign_in(tab, server)
    assert tab.page.evaluate("sessionStorage.getItem('fastinsight.apiKey')") == ADMIN_KEY
    assert tab.page.evaluate("localStorage.length") == 0
    tab.page.click("#signout")
    assert tab.page.is_visible("#login-form")
    tab.page.fill("#api-key", "wrong-key")
    tab.page.click("#login-form button[type=submit]")
    tab.page.wait_for_selector("#login-error:not([hidden])")
    assert "not accepted" in tab.page.inner_text("#login-error")
    # the only console error is the browser logging the rejected request
    assert all("401" in e for e in tab.errors), tab.errors


def test_overview_renders_numbers_and_charts(tab: Tab, server: Server) -> None:
    sign_in(tab, server)
    open_view(tab, server, "#overview")
    tab.page.wait_for_selector("[data-testid=stat-interactions]")
    tab.page.wait_for_function("() => document.querySelector('[data-testid=activity-chart]')?.width > 0")
    assert tab.page.inner_text("[data-testid=stat-interactions] .value").replace(",", "") == "4000"
    assert "Numbers as of" in tab.page.inner_text("[data-testid=as-of]")
    found = charts(tab)
    for name in ("activity-chart", "categories-chart", "funnel-chart"):
        assert found[name]["width"] > 0 and found[name]["height"] > 0, found
        assert found[name]["painted"] > 500, found
    shot(tab, "overview")
    assert tab.errors == []


def test_user_and_item_views(tab: Tab, server: Server) -> None:
    sign_in(tab, server)
    open_view(tab, server, "#users/user-000001")
    assert "Current recommendations" in tab.page.inner_text("main")
    assert tab.page.locator("main table").count() >= 2  # recommendations and history
    shot(tab, "user")
    open_view(tab, server, "#items/item-000003")
    text = tab.page.inner_text("main")
    assert "Similar items" in text and "Audience" in text
    assert tab.page.locator("a.user-link").count() == 20
    shot(tab, "item")
    assert tab.errors == []


def test_segments_view_after_rebuild(tab: Tab, server: Server) -> None:
    built = server.api("POST", "/v1/admin/segments/rebuild?k=4", key=ADMIN_KEY)
    assert built.status_code == 200, built.text
    sign_in(tab, server)
    open_view(tab, server, "#segments")
    tab.page.wait_for_function("() => document.querySelector('[data-testid=segments-chart]')?.width > 0")
    assert charts(tab)["segments-chart"]["painted"] > 500
    assert "Campaign suggestions" in tab.page.inner_text("main")
    shot(tab, "segments")
    assert tab.errors == []


def test_models_rollback_switches_the_active_version(tab: Tab, server: Server) -> None:
    older, newer = server.versions
    assert server.api("GET", "/v1/admin/models", key=ADMIN_KEY).json()[0]["active"] is True
    sign_in(tab, server)
    open_view(tab, server, "#models")
    assert tab.page.inner_text("[data-testid=active-version]") == newer
    assert charts(tab)["metrics-chart"]["painted"] > 200
    shot(tab, "models")
    tab.page.click("[data-testid=rollback] >> nth=0")
    tab.page.wait_for_function(
        "(v) => document.querySelector('[data-testid=active-version]')?.textContent === v", arg=older)
    active = [m["version"] for m in server.api("GET", "/v1/admin/models", key=ADMIN_KEY).json()
              if m["active"]]
    assert active == [older]
    shot(tab, "models-after-rollback")
    assert tab.errors == []


def test_jobs_view_lists_jobs(tab: Tab, server: Server) -> None:
    sign_in(tab, server)
    open_view(tab, server, "#jobs")
    assert tab.page.is_visible("[data-testid=start-backup]")
    assert "Recent jobs" in tab.page.inner_text("main")
    shot(tab, "jobs")
    assert tab.errors == []


def test_operator_sees_tenants_and_a_tenant_key_sees_its_own_data(tab: Tab, server: Server) -> None:
    made = server.api("POST", "/v1/operator/tenants", key=OPERATOR_KEY, json={"id": "shop2", "name": "Shop two"})
    assert made.status_code == 201, made.text
    key = server.api("POST", "/v1/operator/tenants/shop2/keys", key=OPERATOR_KEY,
                     json={"scope": "api"}).json()["key"]
    for n in (1, 2):
        put = server.api("POST", "/v1/items", key=key, json={"item_id": f"lamp-{n}", "title": f"Lamp {n}"})
        assert put.status_code == 201, put.text

    # The operator key: the tenant list with usage, and none of the tenant views.
    tab.page.goto(server.url + "/dashboard#overview")
    tab.page.fill("#api-key", OPERATOR_KEY)
    tab.page.click("#login-form button[type=submit]")
    tab.page.wait_for_selector("[data-testid=tenants] table")
    assert tab.page.is_hidden("#nav") and tab.page.is_visible("#operator-nav")
    assert tab.page.evaluate("window.location.hash") == "#tenants"
    rows = {r.split("\t")[0].split("\n")[0]: r for r in
            tab.page.locator("[data-testid=tenants] tbody tr").all_inner_texts()}
    assert set(rows) == {"default", "shop2"}, rows
    shop2 = rows["shop2"].split("\t")
    assert shop2[1:3] == ["active", f"{server.db_name}_t_shop2"]
    assert shop2[4] == "2"  # items
    assert rows["default"].split("\t")[5] == "4,000"  # interactions
    shot(tab, "operator-tenants")
    # only the sign-in probe of a tenant route was refused
    assert tab.errors and all("403" in e for e in tab.errors), tab.errors

    # The tenant's own key: its two items, none of the default tenant's.
    tab.page.click("#signout")
    tab.errors.clear()
    tab.page.evaluate("() => { window.location.hash = '#items'; }")
    tab.page.fill("#api-key", key)
    tab.page.click("#login-form button[type=submit]")
    tab.page.wait_for_selector("#nav:not([hidden])")
    tab.page.wait_for_function(
        "() => document.body.dataset.state === 'ready' && document.querySelector('[data-view=items] table')")
    assert tab.page.is_hidden("#operator-nav")
    assert tab.page.locator("a.item-link").all_inner_texts() == ["lamp-1", "lamp-2"]
    shot(tab, "tenant-items")
    assert tab.errors == []
