"""Live users scored from the version's candidate pools get the exact answer.

Known-answer check against brute force: for every user with events since training (and
users unknown at training, and anonymous sessions) the served answer must be the best
items of scoring *every* item with the same folded-in vector, seen and disliked items
left out, ties to the lower index. Random tastes over 240 items, so that the pools (the
training-time lists and each item's pool) are far smaller than the catalogue and the
bound has to add items.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import DEFAULT_INTERACTION_WEIGHTS, Settings
from fastinsight.observability import LIVE_SCORING
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.serving.bundle import ModelBundle
from fastinsight.services.serving.exclusions import user_history
from fastinsight.services.serving.live import HistoryKey, history_key
from fastinsight.services.training.pipeline import train
from tests.conftest import API_KEY, services_of

N_ITEMS, N_USERS = 240, 60
TYPES = ["view", "click", "like", "purchase"]


def _rows(rows: list[dict[str, object]]) -> Iterator[tuple[int, dict[str, object]]]:
    return ((n, r) for n, r in enumerate(rows, start=1))


def seed(db: Database[dict[str, object]], settings: Settings) -> None:
    rng = np.random.default_rng(5)
    svc = IngestService(db, settings)
    svc.import_items(_rows([{"item_id": f"i{i}", "title": f"Item {i}", "categories": [f"c{i % 6}"]}
                            for i in range(N_ITEMS)]))
    now = datetime.now(UTC)
    events: list[dict[str, object]] = []
    for u in range(N_USERS):
        liked = rng.choice(N_ITEMS, size=int(rng.integers(3, 15)), replace=False,
                           p=np.roll(np.linspace(3, 1, N_ITEMS), 40 * (u % 6)) / np.linspace(3, 1, N_ITEMS).sum())
        events += [{"user_id": f"u{u}", "item_id": f"i{i}", "type": str(rng.choice(TYPES)),
                    "timestamp": (now - timedelta(hours=int(n) + 1)).isoformat()}
                   for n, i in enumerate(liked)]
        if u % 10 == 0:
            events.append({"user_id": f"u{u}", "item_id": f"i{(u * 7) % N_ITEMS}", "type": "dislike",
                           "timestamp": (now - timedelta(minutes=5)).isoformat()})
    assert not svc.import_interactions(_rows(events)).rejected
    svc.import_users(_rows([{"user_id": f"new{n}"} for n in range(8)]))


def brute_force(bundle: ModelBundle, row: int | None, fresh: dict[int, float],
                blocked_extra: set[int], k: int) -> list[tuple[str, float]]:
    """The best ``k`` of every item for the folded-in history, by the model's own fold-in."""
    model = bundle.model
    weights: dict[int, float] = {}
    disliked: set[int] = set()
    if row is not None:
        ui = model.user_items
        assert ui is not None
        start, stop = ui.indptr[row], ui.indptr[row + 1]
        weights.update(zip(ui.indices[start:stop].tolist(), ui.data[start:stop].tolist(), strict=True))
        neg = bundle.negatives
        disliked |= set(neg.indices[neg.indptr[row]:neg.indptr[row + 1]].tolist())
    for item, w in fresh.items():
        weights[item] = weights.get(item, 0.0) + w
    cols = np.array(sorted(i for i in weights if i not in disliked), dtype=np.int64)
    data = np.array([weights[int(i)] for i in cols], dtype=np.float32)
    history = sp.csr_matrix((data, cols, [0, len(cols)]), shape=(1, model.n_items))
    scores = model.score_history(history)[0].astype(np.float64)
    scores[cols] = -np.inf
    scores[list(disliked | blocked_extra)] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return [(str(bundle.item_ids[i]), round(float(scores[i]), 6)) for i in order]


def _answer(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(i["item_id"], i["score"]) for i in body["items"]]


def _paths() -> dict[str, float]:
    return {s.labels["path"]: s.value for m in LIVE_SCORING.collect() for s in m.samples
            if s.name.endswith("_total")}


@pytest.mark.parametrize("size", [12, 40])
def test_live_users_get_exactly_the_brute_force_answer(
    db: Database[dict[str, object]], settings: Settings, size: int
) -> None:
    # Every request scored (nothing kept between them): the pools themselves are checked.
    settings = settings.model_copy(update={"candidate_cache_size": size, "live_cache_users": 0})
    seed(db, settings)
    doc = train(db, settings, "als", {"factors": 6, "iterations": 12, "num_threads": 1},
                evaluate=False)
    assert doc["candidates"]["item_pools_seconds"] is not None
    rng = np.random.default_rng(11)
    before = _paths()
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        bundle = services_of(client).recommend.manager.current
        assert bundle is not None and bundle.item_pools is not None
        assert bundle.item_pools.shape == (N_ITEMS, size)
        users = [f"u{u}" for u in range(0, N_USERS, 2)] + [f"new{n}" for n in range(8)]
        weights = DEFAULT_INTERACTION_WEIGHTS
        for user in users:
            fresh: dict[int, float] = {}
            for _ in range(int(rng.integers(1, 4))):
                item, kind = int(rng.integers(N_ITEMS)), str(rng.choice(TYPES))
                r = client.post("/v1/interactions", json={"user_id": user, "item_id": f"i{item}",
                                                          "type": kind})
                assert r.status_code == 201, r.text
                col = bundle.item_index[f"i{item}"]
                fresh[col] = fresh.get(col, 0.0) + weights[kind]
            row = bundle.user_index.get(user)
            for k, offset in ((5, 0), (3, 2)):
                got = client.get(f"/v1/users/{user}/recommendations", params={"k": k, "offset": offset})
                assert got.status_code == 200, got.text
                assert _answer(got.json()) == brute_force(bundle, row, fresh, set(), k + offset)[offset:], user
            got = client.get(f"/v1/users/{user}/recommendations", params={"k": 4, "exclude": ["i1", "i2"]})
            excluded = {bundle.item_index["i1"], bundle.item_index["i2"]}
            assert _answer(got.json()) == brute_force(bundle, row, fresh, excluded, 4), user
        session = client.post("/v1/recommendations/session", json={"items": ["i3", "i50"], "k": 8})
        taken = {bundle.item_index["i3"]: 1.0, bundle.item_index["i50"]: 1.0}
        assert _answer(session.json()) == brute_force(bundle, None, taken, set(), 8)
    after = _paths()
    used = {path: after.get(path, 0) - before.get(path, 0) for path in after}
    answered = sum(used.values())
    assert answered >= len(users) * 3
    assert used.get("index", 0) == 0
    # Both pool paths answered many of the requests checked above: the pools alone, and
    # the pools plus the items the bound added. (On 240 items the bound often reaches
    # more than a quarter of the catalogue, and then every item is scored instead.)
    assert used.get("pool", 0) >= 15 and used.get("pool_scan", 0) >= 5, used


def test_a_live_user_asking_again_gets_the_exact_answer_whatever_changed_in_between(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    """The pooled candidates (and the last answer) kept per live user are only reused while
    they still give the brute-force answer: same request again, a smaller request, an item
    hidden since, exclusions that leave the kept candidates short, a new event."""
    settings = settings.model_copy(update={"candidate_cache_size": 12})
    seed(db, settings)
    train(db, settings, "als", {"factors": 6, "iterations": 12, "num_threads": 1}, evaluate=False)
    weights = DEFAULT_INTERACTION_WEIGHTS
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        bundle = services_of(client).recommend.manager.current
        assert bundle is not None
        checked = 0
        for user in ("u2", "u4", "u8", "u14", "new1"):
            row = bundle.user_index.get(user)
            fresh: dict[int, float] = {}

            def post(item: int) -> None:
                r = client.post("/v1/interactions", json={"user_id": user, "item_id": f"i{item}",
                                                          "type": "like"})
                assert r.status_code == 201, r.text
                col = bundle.item_index[f"i{item}"]
                fresh[col] = fresh.get(col, 0.0) + weights["like"]

            def check(k: int, offset: int = 0, exclude: tuple[str, ...] = (),
                      hidden: frozenset[int] = frozenset()) -> list[tuple[str, float]]:
                params: dict[str, Any] = {"k": k, "offset": offset, "exclude": list(exclude)}
                got = client.get(f"/v1/users/{user}/recommendations", params=params)
                assert got.status_code == 200, got.text
                blocked = {bundle.item_index[i] for i in exclude} | set(hidden)
                want = brute_force(bundle, row, fresh, blocked, k + offset)[offset:]
                assert _answer(got.json()) == want, (user, k, offset, exclude)
                return want

            post((sum(map(ord, user)) * 37) % N_ITEMS)
            before = _paths()
            first = check(5)
            check(5)  # the same request: the kept answer
            check(3, offset=1)  # fewer items: the kept candidates, walked again
            assert _paths().get("pool_cached", 0) - before.get("pool_cached", 0) >= 2, user
            # An item of the answer hidden since: never shown, the rest still exact.
            top = first[0][0]
            assert client.patch(f"/v1/items/{top}", json={"hidden": True}).status_code == 200
            try:
                check(5, hidden=frozenset({bundle.item_index[top]}))
            finally:
                assert client.patch(f"/v1/items/{top}", json={"hidden": False}).status_code == 200
            check(5)
            # Exclusions that remove the whole answer: the kept candidates run short and
            # the user is scored again.
            check(5, exclude=tuple(item for item, _ in first))
            # A new event changes the history: a new answer.
            post((sum(map(ord, user)) * 53 + 7) % N_ITEMS)
            check(5)
            check(5)
            checked += 1
        assert checked == 5
        # An erased user's kept candidates and answer are forgotten with them.
        kept = services_of(client).recommend.pool_cache
        assert kept.get("u2", history_key_of(client, "u2"), 5) is not None
        assert client.delete("/v1/users/u2").status_code == 200
        assert "u2" not in kept and "u4" in kept


def history_key_of(client: TestClient, user: str) -> HistoryKey:
    """The key the user's next answer would be kept under."""
    svc = services_of(client).recommend
    bundle = svc.manager.current
    assert bundle is not None
    row = bundle.user_index.get(user)
    history = user_history(bundle, row, svc.realtime.events(user), svc.settings)
    return history_key(bundle.version, history, False)
