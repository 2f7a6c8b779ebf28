"""Attribution rules on hand-made lists and events, then end to end through HTTP."""

from __future__ import annotations

from typing import Any

from fastinsight.services.experiments.attribution import CLOCK_SKEW, Attributor, Event, Shown
from tests.conftest import services_of
from tests.experiments.conftest import Shop, experiment


def _shown(rid: str, user: str | None, items: str, ts: float, offset: int = 0,
           displayed: str | None = None) -> Shown:
    return Shown(rid, user, tuple(items), offset, ts, "e", "A", "v1",
                 frozenset(displayed) if displayed is not None else None)


def _event(key: str, user: str, item: str, ts: float, rid: str | None = None) -> Event:
    return Event(key, user, item, "click", None, ts, rid)


def _credits(lists: list[Shown], events: list[Event], window: float = 100) -> dict[str, tuple[str, int, str]]:
    attributor = Attributor(window, events)
    for shown in lists:
        if attributor.wants(shown):
            attributor.add(shown)
    result = attributor.run()
    out = {c.event.key: (c.impression.rid, c.position, c.rule) for c in result.credits}
    out.update({e.key: ("unmatched", 0, "id") for e in result.unmatched})
    return out


def test_by_id_and_last_touch_fallback() -> None:
    lists = [_shown("r1", "u", "xyz", 10, offset=5), _shown("r2", "u", "wy", 50),
             _shown("r3", "v", "x", 60), _shown("r4", "u", "q", 70, displayed="")]
    events = [
        _event("id", "u", "z", 20, "r1"),           # named list, third item after offset 5
        _event("id-late", "u", "x", 10 + 101, "r1"),  # after the window
        _event("id-early", "u", "x", 10 - CLOCK_SKEW - 1, "r1"),
        _event("id-other-user", "v", "x", 20, "r1"),
        _event("id-not-shown", "u", "w", 55, "r1"),
        _event("id-unknown", "u", "x", 20, "nope"),
        _event("fb-latest", "u", "y", 55),           # y in r1 and r2: the latest one wins
        _event("fb-older", "u", "x", 55),            # only r1 holds x
        _event("fb-window", "u", "x", 111),          # r1 is 101 s old
        _event("fb-before", "u", "w", 40),           # r2 served after the event
        _event("fb-not-displayed", "u", "q", 75),    # r4 was served but nothing displayed
    ]
    got = _credits(lists, events)
    assert got["id"] == ("r1", 8, "id")
    assert got["fb-latest"] == ("r2", 2, "fallback") and got["fb-older"] == ("r1", 6, "fallback")
    for key in ("id-late", "id-early", "id-other-user", "id-not-shown", "id-unknown"):
        assert got[key] == ("unmatched", 0, "id"), key
    for key in ("fb-window", "fb-before", "fb-not-displayed"):
        assert key not in got, key


def test_displayed_subset_limits_credit() -> None:
    lists = [_shown("r1", "u", "abc", 0, displayed="ab")]
    got = _credits(lists, [_event("1", "u", "b", 1, "r1"), _event("2", "u", "c", 1, "r1")])
    assert got["1"] == ("r1", 2, "id") and got["2"][0] == "unmatched"


def test_attribution_through_http(shop: Shop) -> None:
    exp = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        variants=[{"name": "A", "share": 0.5}, {"name": "B", "algorithm": "popularity", "share": 0.5}])).json()
    served: dict[str, dict[str, Any]] = {}
    users = [f"a{u}" for u in range(15)] + [f"b{u}" for u in range(15)]
    for user in users:
        served[user] = shop.client.get(f"/v1/users/{user}/recommendations", params={"k": 3}).json()
    expected = {arm: {"clicks": 0, "conversions": 0, "value": 0.0, "users": 0, "first": 0, "second": 0}
                for arm in ("A", "B")}
    events = []
    for n, user in enumerate(users):
        body = served[user]
        items, rid, arm = [i["item_id"] for i in body["items"]], body["recommendation_id"], body["variant"]
        expected[arm]["users"] += 1
        events.append({"user_id": user, "item_id": items[0], "type": "click", "recommendation_id": rid})
        expected[arm]["clicks"] += 1
        expected[arm]["first"] += 1
        if n % 2 == 0:  # no id: the fallback rule finds the list
            events.append({"user_id": user, "item_id": items[1], "type": "view"})
            expected[arm]["clicks"] += 1
            expected[arm]["second"] += 1
        if n % 3 == 0:
            events.append({"user_id": user, "item_id": items[0], "type": "purchase", "value": 5.0,
                           "recommendation_id": rid})
            expected[arm]["clicks"] += 1
            expected[arm]["first"] += 1
            expected[arm]["conversions"] += 1
            expected[arm]["value"] += 5.0
        events.append({"user_id": user, "item_id": items[2], "type": "dislike", "recommendation_id": rid})
    not_shown = next(i for i in ("a0", "a1", "a2", "a3", "a7") if i not in
                     [x["item_id"] for x in served["a0"]["items"]])
    events.append({"user_id": "a0", "item_id": not_shown, "type": "click",
                   "recommendation_id": served["a0"]["recommendation_id"]})
    r = shop.client.post("/v1/interactions/batch", json={"interactions": events})
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    report = shop.client.get(f"/v1/experiments/{exp['id']}/report").json()
    assert report["attribution"] == {"by_id": 30 + 10, "fallback": 15, "unmatched_id": 1}
    for arm in report["arms"]:
        want = expected[arm["name"]]
        assert arm["exposures"] == arm["users"] == arm["clicked_exposures"] == want["users"]
        assert (arm["clicks"], arm["conversions"], arm["value"]) == (want["clicks"], want["conversions"],
                                                                    want["value"])
        assert arm["ctr"]["value"] == 1.0
        assert arm["clicks_by_position"] == [want["first"], want["second"]]
    assert services_of(shop.client).impressions.written >= 30
