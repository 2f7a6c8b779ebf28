"""Recommendations for one user.

    FASTINSIGHT_URL=http://127.0.0.1:8000 FASTINSIGHT_API_KEY=... python recommend.py user-000001
"""

from __future__ import annotations

import sys

from fastinsight_client import FastInsight


def main(user_id: str) -> None:
    with FastInsight() as fi:  # URL and key from the environment
        recs = fi.recommend(user_id, k=5, exclude_seen=True)
        print(f"model {recs.model_version}, recommendation_id {recs.recommendation_id}")
        for rank, item in enumerate(recs.items, start=1):
            print(f"{rank}. {item.item_id}  score {item.score:.3f}  ({item.reason})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "user-000001")
