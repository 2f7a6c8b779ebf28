"""Import a CSV of items, users or interactions in batches, with progress, and print the
rows the server refused (numbered as in the file).

    FASTINSIGHT_URL=... FASTINSIGHT_API_KEY=... python import_csv.py items catalogue.csv
"""

from __future__ import annotations

import sys

from fastinsight_client import FastInsight, ImportProgress


def show(progress: ImportProgress) -> None:
    print(f"batch {progress.batches}: {progress.rows} rows sent, "
          f"{progress.report.inserted} inserted, {len(progress.report.rejected)} refused")


def main(kind: str, path: str) -> None:
    with FastInsight(timeout=60) as fi:
        importer = {"items": fi.import_items, "users": fi.import_users,
                    "interactions": fi.import_interactions}[kind]
        report = importer(path, batch_size=1000, on_progress=show)
    print(f"inserted {report.inserted}, updated {report.updated}, unchanged {report.unchanged}, "
          f"duplicates {report.duplicates}")
    for row in report.rejected:
        print(f"row {row.row}: " + "; ".join(f"{e.field}: {e.message}" for e in row.errors))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in {"items", "users", "interactions"}:
        sys.exit("usage: import_csv.py items|users|interactions FILE.csv")
    main(sys.argv[1], sys.argv[2])
