"""Lookups by ``_id`` use the index: every hot path of the service depends on it.

On the FerretDB development server this holds only with the predicate fix that
``scripts/db.sh`` applies when it builds the server; without it the plan is a SCAN.
"""

from __future__ import annotations

from pymongo.database import Database


def test_find_by_id_is_an_index_search(db: Database[dict[str, object]]) -> None:
    db["users"].insert_many([{"_id": f"u{n}", "user_id": f"u{n}"} for n in range(50)])
    plan = db.command("explain", {"find": "users", "filter": {"_id": "u42"}})
    if "ferretdbVersion" in plan.get("serverInfo", {}):
        steps = " ".join(plan["queryPlanner"]["Plan"])
        assert "USING INDEX" in steps and "__id_" in steps, steps
    else:  # MongoDB: the _id index is always used for an equality match
        assert "IDHACK" in str(plan) or "IXSCAN" in str(plan) or "EXPRESS" in str(plan), plan
    assert db["users"].find_one({"_id": "u42"})["user_id"] == "u42"  # type: ignore[index]
