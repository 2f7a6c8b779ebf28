"""``AsyncFastInsight``: the same operations awaited, with its own retry loop, async
iterators over pages, batched imports and job waits, against the real server."""

from __future__ import annotations

import asyncio
import io

import pytest

from fastinsight_client import AsyncFastInsight, NotFoundError, RetryPolicy, ValidationFailedError
from tests.clients.conftest import DEMO, Live
from tests.clients.proxy import scripted_proxy
from tests.conftest import ADMIN_KEY, API_KEY


async def _scenario(url: str) -> None:
    async with AsyncFastInsight(url, api_key=API_KEY, admin_key=ADMIN_KEY,
                                retry=RetryPolicy(backoff=0.05)) as fi:
        recs, trending = await asyncio.gather(fi.recommend("user-000004", 4), fi.trending(3, window="30d"))
        assert len(recs.items) == 4 and len(trending.items) == 3
        first = await fi.track("user-000004", recs.items[0].item_id, "click",
                               recommendation_id=recs.recommendation_id, event_id="async-1")
        again = await fi.track("user-000004", recs.items[0].item_id, "click", event_id="async-1")
        assert (first.inserted, again.duplicates) == (1, 1)
        users = [u.user_id async for u in fi.iter_users(page_size=11)]
        assert len(users) == len(set(users)) >= DEMO.users
        items = [i.item_id async for i in fi.iter_items(page_size=50, category="books")]
        assert items
        for item_id in items[:3]:
            assert "books" in (await fi.get_item(item_id)).categories
        report = await fi.import_users(io.BytesIO(b"user_id,attr.city\nasync-u1,Lima\n,Quito\n"),
                                       format="csv", batch_size=1)
        assert report.inserted == 1 and [r.row for r in report.rejected] == [2]
        assert (await fi.get_user("async-u1")).attributes == {"city": "Lima"}
        with pytest.raises(ValidationFailedError) as invalid:
            await fi.patch_item("item-000001", {"hidden": "perhaps"})
        assert invalid.value.details[0].field == "hidden"
        with pytest.raises(NotFoundError):
            await fi.get_job("abc123")
        job = await fi.start_job({"name": "cleanup_logs", "args": {"dry_run": True}})
        done = await fi.wait_for_job(job.id, timeout=120, poll=0.2)
        assert done.status == "succeeded" and done.id in {j.id for j in (await fi.list_jobs(limit=5)).items}


def test_the_async_client_against_the_real_server(live: Live) -> None:
    asyncio.run(_scenario(live.url))


def test_the_async_client_retries_a_503(live: Live) -> None:
    async def run(url: str) -> int:
        async with AsyncFastInsight(url, api_key=API_KEY, retry=RetryPolicy(backoff=0.05)) as fi:
            return len((await fi.similar("item-000002", 3)).items)

    with scripted_proxy(live.url, ["503:0", "429:0"]) as proxy:
        assert asyncio.run(run(proxy.url)) == 3
    assert len(proxy.seen) == 3
