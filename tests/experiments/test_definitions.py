"""Experiment definitions through HTTP: every bad one gets its status code and field."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.conftest import API_KEY, services_of
from tests.experiments.conftest import Shop, experiment


def _post(shop: Shop, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    r = shop.admin("POST", "/v1/admin/experiments", json=body)
    return r.status_code, r.json()


def test_create_read_list_and_defaults(shop: Shop) -> None:
    code, body = _post(shop, experiment(variants=[{"name": "knn", "model_version": shop.knn, "share": 0.45},
                                                  {"name": "boosted", "share": 0.45,
                                                   "rules": {"boost_categories": {"beta": 2.0}}}],
                                        holdout={"share": 0.1}))
    assert code == 201, body
    assert body["status"] == "running" and body["control"] == "holdout"
    arms = {a["name"]: a for a in body["variants"]}
    assert arms["holdout"]["algorithm"] == "popularity" and arms["holdout"]["holdout"] is True
    assert arms["boosted"]["rules"]["boost_categories"] == {"beta": 2.0}
    assert body["salt"] == body["id"] and body["traffic"] == [0.0, 1.0] and body["endpoints"] == ["user"]
    assert body["attribution_window_seconds"] == shop.settings.attribution_window_seconds
    assert body["serving"]["ready"] is True
    assert body["serving"]["versions"] == {"knn": shop.knn, "boosted": shop.knn, "holdout": shop.popularity}
    assert body["serving"]["loaded_bytes"][shop.popularity] > 0
    got = shop.admin("GET", f"/v1/admin/experiments/{body['id']}").json()
    assert got["id"] == body["id"]
    assert [e["id"] for e in shop.admin("GET", "/v1/admin/experiments").json()] == [body["id"]]
    assert shop.client.get("/v1/experiments").status_code == 200
    assert shop.client.post("/v1/admin/experiments", json=experiment()).status_code == 403


def test_422_for_bad_definitions(shop: Shop) -> None:
    cases = {
        "variants": experiment(variants=[{"name": "A", "share": 0.5}, {"name": "B", "share": 0.4}]),
        "variants.1": experiment(variants=[{"name": "A", "share": 0.5},
                                           {"name": "B", "share": 0.5, "model_version": shop.knn,
                                            "algorithm": "als"}]),
        "variants.0.algorithm": experiment(variants=[{"name": "A", "share": 0.5, "algorithm": "magic"},
                                                     {"name": "B", "share": 0.5}]),
        "control": experiment(control="C"),
        "traffic": experiment(traffic=[0.6, 0.4]),
        "stop_at": experiment(start_at=(datetime.now(UTC) + timedelta(days=2)).isoformat(),
                              stop_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
    }
    for field, body in cases.items():
        code, answer = _post(shop, body)
        assert code == 422, (field, answer)
        assert answer["details"][0]["field"] == field, (field, answer)
    code, answer = _post(shop, experiment(variants=[{"name": "A", "share": 1.0}]))
    assert code == 422 and "two arms" in str(answer["message"])
    code, answer = _post(shop, experiment(variants=[{"name": "A", "share": 0.5}, {"name": "A", "share": 0.5}]))
    assert code == 422 and "unique" in str(answer["message"])
    code, answer = _post(shop, experiment(variants=[{"name": "A", "share": 0.9}], holdout={"share": 0.2}))
    assert code == 422 and "sum to 1.1" in str(answer["message"])
    code, answer = _post(shop, experiment(primary_metric="revenue"))
    assert code == 422 and answer["details"][0]["field"] == "primary_metric"


def test_404_for_unknown_versions_and_experiments(shop: Shop) -> None:
    code, answer = _post(shop, experiment(variants=[{"name": "A", "share": 0.5, "model_version": "v-nope"},
                                                    {"name": "B", "share": 0.5}]))
    assert code == 404 and answer["details"][0]["field"] == "variants.0.model_version"
    code, answer = _post(shop, experiment(variants=[{"name": "A", "share": 0.5}],
                                          holdout={"share": 0.5, "algorithm": "ease"}))
    assert code == 404 and "ease" in str(answer["message"])
    assert shop.admin("GET", "/v1/admin/experiments/exp-missing").status_code == 404
    assert shop.client.get("/v1/experiments/exp-missing/report").status_code == 404


def test_400_for_unusable_definitions(shop: Shop) -> None:
    code, answer = _post(shop, experiment(start_at=(datetime.now(UTC) - timedelta(days=2)).isoformat(),
                                          stop_at=(datetime.now(UTC) - timedelta(days=1)).isoformat()))
    assert code == 400 and answer["details"][0]["field"] == "stop_at"
    shop.db["model_versions"].update_one({"_id": shop.popularity}, {"$set": {"status": "rejected"}})
    code, answer = _post(shop, experiment(variants=[{"name": "A", "share": 0.5},
                                                    {"name": "B", "share": 0.5, "model_version": shop.popularity}]))
    assert code == 400 and "cannot be served" in str(answer["message"])


def test_409_for_overlaps_and_changes_to_started_experiments(shop: Shop) -> None:
    code, first = _post(shop, experiment(traffic=[0.0, 0.5]))
    assert code == 201
    code, answer = _post(shop, experiment(traffic=[0.4, 1.0]))
    assert code == 409 and first["id"] in str(answer["message"])
    # disjoint traffic, another endpoint, or a later time do not overlap
    assert _post(shop, experiment(traffic=[0.5, 1.0]))[0] == 201
    assert _post(shop, experiment(endpoints=["similar"]))[0] == 201
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    code, scheduled = _post(shop, experiment(start_at=later, endpoints=["session"]))
    assert code == 201 and scheduled["status"] == "scheduled"
    # a started experiment keeps its arms; the name may change
    path = f"/v1/admin/experiments/{first['id']}"
    r = shop.admin("PATCH", path, json={"variants": [{"name": "A", "share": 0.2}, {"name": "B", "share": 0.8}]})
    assert r.status_code == 409
    assert shop.admin("PATCH", path, json={"name": "renamed"}).json()["name"] == "renamed"
    assert shop.admin("DELETE", path).status_code == 409  # running
    # the scheduled one may still change its arms (and is validated again)
    sched = f"/v1/admin/experiments/{scheduled['id']}"
    r = shop.admin("PATCH", sched, json={"variants": [{"name": "A", "share": 0.2}, {"name": "B", "share": 0.7}]})
    assert r.status_code == 422
    r = shop.admin("PATCH", sched, json={"variants": [{"name": "A", "share": 0.2}, {"name": "B", "share": 0.8}]})
    assert r.status_code == 200 and [a["share"] for a in r.json()["variants"]] == [0.2, 0.8]
    # stopping frees the traffic for a new experiment
    stopped = shop.admin("POST", f"{path}/stop").json()
    assert stopped["status"] == "stopped" and stopped["stopped_at"]
    assert shop.admin("POST", f"{path}/stop").status_code == 409
    assert shop.admin("PATCH", path, json={"stop_at": later}).status_code == 409
    assert _post(shop, experiment(traffic=[0.0, 0.5]))[0] == 201
    assert shop.admin("DELETE", path).status_code == 204
    assert shop.admin("GET", path).status_code == 404
    assert shop.client.get(f"/v1/experiments/{scheduled['id']}/report",
                           headers={"X-API-Key": API_KEY}).status_code == 200


def test_stopping_a_scheduled_experiment_stops_it_for_good(shop: Shop) -> None:
    later = datetime.now(UTC) + timedelta(days=30)
    code, scheduled = _post(shop, experiment(start_at=later.isoformat()))
    assert code == 201 and scheduled["status"] == "scheduled" and scheduled["serving"]["ready"] is True
    path = f"/v1/admin/experiments/{scheduled['id']}"
    r = shop.admin("POST", f"{path}/stop")
    assert r.status_code == 200, r.text
    stopped = r.json()
    assert stopped["status"] == "stopped" and stopped["stopped_at"] and stopped["serving"] is None
    assert shop.admin("GET", path).json()["status"] == "stopped"
    assert {e["id"]: e["status"] for e in shop.admin("GET", "/v1/admin/experiments").json()} == {
        scheduled["id"]: "stopped"}
    # as for a stopped running experiment: not stopped again, no new stop time, no other
    # changes but the name and description
    assert shop.admin("POST", f"{path}/stop").status_code == 409
    assert shop.admin("PATCH", path, json={"stop_at": (later + timedelta(days=1)).isoformat()}).status_code == 409
    arms = {"variants": [{"name": "A", "share": 0.2}, {"name": "B", "share": 0.8}]}
    assert shop.admin("PATCH", path, json=arms).status_code == 409
    assert shop.admin("PATCH", path, json={"start_at": datetime.now(UTC).isoformat()}).status_code == 409
    r = shop.admin("PATCH", path, json={"name": "never ran", "description": "stopped early"})
    assert r.status_code == 200 and r.json()["name"] == "never ran" and r.json()["status"] == "stopped"
    # once its start time has passed, it still never serves
    stopped_at = datetime.fromisoformat(stopped["stopped_at"])
    shop.db["experiments"].update_one({"_id": scheduled["id"]},
                                      {"$set": {"start_at": stopped_at + timedelta(milliseconds=1)}})
    time.sleep(0.01)
    services_of(shop.client).experiment_runtime.refresh()
    assert shop.admin("GET", path).json()["status"] == "stopped"
    body = shop.client.get("/v1/users/a1/recommendations").json()
    assert body["items"] and body["variant"] is None and body.get("experiment_id") is None
    report = shop.client.get(f"/v1/experiments/{scheduled['id']}/report")
    assert report.status_code == 200 and report.json()["status"] == "stopped"
    # and its traffic is free, as is deleting it
    assert _post(shop, experiment(start_at=later.isoformat()))[0] == 201
    assert shop.admin("DELETE", path).status_code == 204


def test_422_for_nul_in_experiment_text_and_plain_text_kept(shop: Shop) -> None:
    nul = "bad\u0000text"
    arm_with = {"name": "A", "share": 0.5, "algorithm": nul}
    cases = {
        "name": experiment(name=nul),
        "description": experiment(description=nul),
        "salt": experiment(salt=nul),
        "variants.0.algorithm": experiment(variants=[arm_with, {"name": "B", "share": 0.5}]),
        "holdout.algorithm": experiment(variants=[{"name": "A", "share": 0.5}],
                                        holdout={"share": 0.5, "algorithm": nul}),
    }
    for field, body in cases.items():
        code, answer = _post(shop, body)
        assert code == 422, (field, answer)
        assert answer["details"][0]["field"] == field, (field, answer)
        assert "NUL" in str(answer["details"][0]["message"]), (field, answer)
    assert shop.admin("GET", "/v1/admin/experiments").json() == []
    # text without NUL is taken as before: the name stripped, lines and tabs in the description
    code, created = _post(shop, experiment(name="  Spring test \u00e9\u2603  ", description="line 1\n\tline 2",
                                           salt="salt-1 \u00fc"))
    assert code == 201, created
    assert created["name"] == "Spring test \u00e9\u2603" and created["description"] == "line 1\n\tline 2"
    assert created["salt"] == "salt-1 \u00fc"
    # the bounds are unchanged
    for field, value in (("name", "   "), ("name", "n" * 201), ("description", "d" * 2001), ("salt", ""),
                         ("salt", "s" * 101)):
        code, answer = _post(shop, experiment(**{field: value}))
        assert code == 422 and answer["details"][0]["field"] == field, (field, answer)
    # 200 characters once stripped pass the schema: the 409 is the overlap with the one above
    assert _post(shop, experiment(name=" " + "n" * 200 + " ", traffic=[0.0, 0.0001]))[0] == 409
    path = f"/v1/admin/experiments/{created['id']}"
    for field in ("name", "description", "salt"):
        r = shop.admin("PATCH", path, json={field: nul})
        assert r.status_code == 422 and r.json()["details"][0]["field"] == field, (field, r.text)
    r = shop.admin("PATCH", path, json={"name": "renamed", "description": "new\ttext"})
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["description"] == "new\ttext"
    assert shop.admin("GET", path).json()["salt"] == "salt-1 \u00fc"
