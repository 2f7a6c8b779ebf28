"""Bulk imports in batches: bad rows reported by their row in the whole source (the same
numbers the server gives the file sent at once), progress after each batch, and
interactions without timestamp or event id keyed by that row number, so the file sent
again in batches stores nothing twice."""

from __future__ import annotations

import io
from pathlib import Path

from fastinsight_client import FastInsight, ImportProgress
from fastinsight_client.models import UserIn
from tests.clients.conftest import Live
from tests.conftest import ADMIN_KEY, API_KEY

# Data rows 3, 5 and 8 are bad (no id; a flag that is no boolean; more columns than the header);
# the blank line and the quoted newline must not shift the numbers after them.
ITEMS_CSV = """item_id,title,hidden
imp-1,One,false
imp-2,"Two, with a comma",0

,No id,false
imp-4,Four,false
imp-5,Five,maybe
imp-6,"Six
on two lines",no
imp-7,Seven,false
imp-8,Eight,false,extra
imp-9,Nine,true
"""


def test_a_csv_in_batches_reports_bad_rows_as_the_server_numbers_the_whole_file(
    live: Live, tmp_path: Path
) -> None:
    path = tmp_path / "items.csv"
    path.write_text(ITEMS_CSV)
    progress: list[ImportProgress] = []
    with FastInsight(live.url, api_key=API_KEY) as fi:
        report = fi.import_items(path, batch_size=4, on_progress=progress.append)
        assert report.inserted == 6 and report.updated == 0
        assert [r.row for r in report.rejected] == [3, 5, 8]
        assert {e.field for e in report.rejected[0].errors} == {"item_id"}
        assert report.rejected[1].errors[0].field == "hidden"
        assert [(p.batches, p.rows) for p in progress] == [(1, 4), (2, 8), (3, 9)]
        assert progress[-1].report == report
        assert fi.get_item("imp-6").title == "Six\non two lines"
        # The same file in one request: the server's own numbering, the same rows.
        whole = fi.import_items(path, batch_size=1000)
        assert whole.unchanged == 6 and whole.rejected == report.rejected


def test_json_lines_and_iterables_in_batches(live: Live, tmp_path: Path) -> None:
    lines = [b'{"user_id": "imp-u1", "item_id": "imp-1", "type": "view"}',
             b"",
             b'{"user_id": "imp-u1", "item_id": "imp-2", "type": "view", "timestamp": "2024-05-01T10:00:00Z"}',
             b"not json",
             b'{"user_id": "imp-u1", "item_id": "imp-unknown", "type": "view"}',
             b'{"user_id": "imp-u1", "item_id": "imp-4", "type": "teleport"}']
    with FastInsight(live.url, api_key=API_KEY, admin_key=ADMIN_KEY) as fi:
        fi.import_items(io.BytesIO(ITEMS_CSV.encode()), format="csv")
        report = fi.import_interactions(io.BytesIO(b"\n".join(lines) + b"\n"), format="jsonl", batch_size=2)
        assert report.inserted == 2 and report.users_created == 1
        assert {r.row: r.errors[0].field for r in report.rejected} == {3: "(row)", 4: "item_id", 5: "type"}
        again = fi.import_interactions(io.BytesIO(b"\n".join(lines) + b"\n"), format="jsonl", batch_size=2)
        assert (again.inserted, again.duplicates, again.rejected_count) == (0, 2, 3)
        assert len(fi.user_interactions("imp-u1")) == 2

        users = fi.import_users((UserIn(user_id=f"imp-v{n}") if n % 2 else {"user_id": f"imp-v{n}", "x": 1}
                                 for n in range(7)), batch_size=3)
        assert users.inserted == 3 and [r.row for r in users.rejected] == [1, 3, 5, 7]
        assert users.rejected[0].errors[0].field == "x"


def test_a_csv_of_interactions_sent_again_in_other_batches_stores_nothing_twice(
    live: Live, tmp_path: Path
) -> None:
    """Two identical untimed rows are two events (rows 1 and 4); the whole file again,
    cut differently, finds every row it stored."""
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,type,timestamp\n"
                    "imp-w1,imp-1,view,\n"
                    "imp-w1,imp-2,view,2024-05-02T10:00:00Z\n"
                    "imp-w1,imp-4\n"
                    "imp-w1,imp-1,view,\n")
    with FastInsight(live.url, api_key=API_KEY) as fi:
        fi.import_items(io.BytesIO(ITEMS_CSV.encode()), format="csv")
        report = fi.import_interactions(path, batch_size=2)
        assert report.inserted == 3 and [r.row for r in report.rejected] == [3]
        assert report.rejected[0].errors[0].field == "type"  # the short row stays short
        again = fi.import_interactions(path, batch_size=3)
        assert (again.inserted, again.duplicates) == (0, 3)
        assert len(fi.user_interactions("imp-w1")) == 3
