"""Show recommendations, report which were displayed, and track a purchase with the
``recommendation_id`` of the list it came from, so experiments credit that list.

    FASTINSIGHT_URL=... FASTINSIGHT_API_KEY=... python track_purchase.py user-000001
"""

from __future__ import annotations

import sys

from fastinsight_client import FastInsight


def main(user_id: str) -> None:
    with FastInsight() as fi:
        recs = fi.recommend(user_id, k=10)
        shown = [item.item_id for item in recs.items[:4]]  # the page had room for four
        if recs.recommendation_id:
            fi.report_displayed([{"recommendation_id": recs.recommendation_id, "item_ids": shown}])
        bought = shown[0]
        # The client gives the event an event_id, so a retry after a lost answer is stored once.
        report = fi.track(user_id, bought, "purchase", value=24.90, recommendation_id=recs.recommendation_id)
        print(f"{user_id} bought {bought} from list {recs.recommendation_id}: "
              f"{report.inserted} stored, {report.duplicates} already known")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "user-000001")
